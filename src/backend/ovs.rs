//! Open vSwitch, through `ovs-vsctl` (an argument vector each), for VLAN
//! networks: the trunk bridge and each network's access port on it.

use std::path::Path;

use crate::error::{Error, Kind, Result};
use crate::store::NetworkRecord;

/// Seconds ovs-vsctl waits for ovsdb-server before it gives up.
const TIMEOUT: &str = "--timeout=10";

fn vsctl(what: &str, args: &[&str]) -> Result<String> {
    let mut v = vec![TIMEOUT];
    v.extend_from_slice(args);
    crate::tool::run(what, "ovs-vsctl", &v)
}

/// Whether VLAN networks can be made here, and if not why (for `host info`
/// and before `net create --vlan` makes anything).
pub fn usable() -> std::result::Result<(), String> {
    let out = std::process::Command::new("ovs-vsctl")
        .args(["--timeout=3", "show"])
        .output();
    match out {
        Err(_) => Err("ovs-vsctl is not installed (Debian: openvswitch-switch)".into()),
        Ok(o) if !o.status.success() => Err(format!(
            "Open vSwitch does not answer (is ovs-vswitchd running?): {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => Ok(()),
    }
}

pub fn require() -> Result<()> {
    usable().map_err(|why| {
        Error::new(
            Kind::Unavailable,
            format!("VLAN networks need Open vSwitch: {why}"),
        )
    })
}

/// The trunk, made if missing: with the kernel's datapath where the kernel
/// has Open vSwitch's module, else in userspace (`netdev`). An existing
/// bridge (the admin's) is used as it is.
pub fn ensure_trunk(trunk: &str) -> Result<()> {
    let exists = std::process::Command::new("ovs-vsctl")
        .args([TIMEOUT, "br-exists", trunk])
        .status()
        .map_err(|e| Error::unavailable("cannot run ovs-vsctl").caused_by(e))?;
    if exists.success() {
        return Ok(());
    }
    let datapath = if Path::new("/sys/module/openvswitch").exists() {
        "system"
    } else {
        "netdev"
    };
    vsctl(
        "making the VLAN trunk",
        &[
            "--may-exist",
            "add-br",
            trunk,
            "--",
            "set",
            "bridge",
            trunk,
            &format!("datapath_type={datapath}"),
        ],
    )?;
    crate::tool::run("bringing the trunk up", "ip", &["link", "set", trunk, "up"]).map(|_| ())
}

fn link_exists(dev: &str) -> bool {
    Path::new("/sys/class/net").join(dev).exists()
}

/// Connect a running VLAN network's bridge to its trunk: a veth pair, one
/// end a port of the bridge, the other an access port of the VLAN on the
/// trunk. Safe to repeat (after `net start`, at host boot).
pub fn attach(n: &NetworkRecord) -> Result<()> {
    let (Some(vlan), Some(trunk)) = (n.vlan, n.trunk.as_deref()) else {
        return Ok(());
    };
    if n.on_ovs() {
        return Ok(());
    }
    let (b, t) = crate::net::vlan::uplink(&n.name);
    ensure_trunk(trunk)?;
    if !link_exists(&b) {
        crate::tool::run(
            "making the VLAN uplink",
            "ip",
            &["link", "add", &b, "type", "veth", "peer", "name", &t],
        )?;
    }
    crate::tool::run(
        "putting the VLAN uplink on the network's bridge",
        "ip",
        &["link", "set", &b, "master", &n.bridge, "up"],
    )?;
    crate::tool::run(
        "bringing the VLAN uplink up",
        "ip",
        &["link", "set", &t, "up"],
    )?;
    let tag = format!("tag={vlan}");
    vsctl(
        "adding the VLAN's access port to the trunk",
        &[
            "--may-exist",
            "add-port",
            trunk,
            &t,
            "--",
            "set",
            "port",
            &t,
            &tag,
        ],
    )
    .map(|_| ())
}

/// Remove a network's uplink (the trunk stays: other networks may use it).
pub fn detach(n: &NetworkRecord) -> Result<()> {
    let Some(trunk) = n.trunk.as_deref() else {
        return Ok(());
    };
    if n.on_ovs() {
        return Ok(());
    }
    let (b, t) = crate::net::vlan::uplink(&n.name);
    if usable().is_ok() {
        vsctl(
            "removing the VLAN's access port",
            &["--if-exists", "del-port", trunk, &t],
        )?;
    }
    if link_exists(&b) {
        crate::tool::run("removing the VLAN uplink", "ip", &["link", "del", &b])?;
    }
    Ok(())
}

/// The tag of the network's access port as Open vSwitch has it.
pub fn port_tag(n: &NetworkRecord) -> Result<Option<u16>> {
    let (_, t) = crate::net::vlan::uplink(&n.name);
    let out = vsctl(
        "reading the VLAN port",
        &["--if-exists", "get", "port", &t, "tag"],
    )?;
    Ok(out.trim().parse().ok())
}
