//! `creature net create|list|info|start|stop|delete|leases`.

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::backend::libvirt::network as lvnet;
use crate::backend::taken;
use crate::cli::{NetCommand, NetCreateArgs};
use crate::cmd::gate::{self, Subject};
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::net::{self, ipv4::Subnet, NetMode, NetworkSpec};
use crate::op::Op;
use crate::output::{self, Table};
use crate::store::{NetworkRecord, Store};

fn parse_range(s: &str, sub: &Subnet) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let bad = |why: &str| Error::invalid(format!("--dhcp-range {s:?}: {why}"));
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| bad("expected FIRST-LAST"))?;
    let a: Ipv4Addr = a
        .trim()
        .parse()
        .map_err(|_| bad("FIRST is not an IPv4 address"))?;
    let b: Ipv4Addr = b
        .trim()
        .parse()
        .map_err(|_| bad("LAST is not an IPv4 address"))?;
    if !sub.host_usable(a) || !sub.host_usable(b) {
        return Err(bad(&format!("both ends must be machine addresses inside {sub} (not its network, gateway or broadcast address)")));
    }
    if u32::from(a) > u32::from(b) {
        return Err(bad("FIRST is after LAST"));
    }
    Ok((a, b))
}

/// Which VLAN network a host can have. Here: a bridge of its own with an
/// uplink into this host's Open vSwitch, which creature plumbs. On a Xen
/// host creature reaches dom0 through libvirt alone, which cannot plumb an
/// uplink: the network is a VLAN of an Open vSwitch bridge of dom0's,
/// whose ports libvirt tags.
fn vlan_form(host: &crate::backend::Host, mode: NetMode, vlan: u16, trunk: &str) -> Result<()> {
    let h = host.name();
    match (host.is_local(), mode == NetMode::Bridge) {
        (true, false) => crate::backend::ovs::require(),
        (true, true) => Err(Error::invalid(
            "on this host a VLAN network has a bridge of its own (drop --mode bridge); \
             --mode bridge --vlan joins an Open vSwitch bridge of a Xen host's",
        )),
        (false, false) => Err(Error::invalid(format!(
            "creature makes a VLAN network's uplink with this host's Open vSwitch, which cannot \
             reach host {h}: join a VLAN of an Open vSwitch bridge there instead (--mode bridge \
             --bridge OVSBRIDGE --vlan {vlan})"
        ))),
        (false, true) if host.vm_engine() != crate::backend::Backend::Xen => Err(Error::new(
            crate::error::Kind::Refused,
            format!(
                "a VLAN of an Open vSwitch bridge is proven on Xen hosts only, and {h} is a \
                     qemu host"
            ),
        )),
        (false, true) if trunk != net::vlan::DEFAULT_TRUNK => Err(Error::invalid(
            "--mode bridge names the Open vSwitch bridge with --bridge; --trunk is for a VLAN \
             network with a bridge of its own",
        )),
        (false, true) => Ok(()),
    }
}

/// Check every argument of `net create` before anything happens.
fn plan(ctx: &Ctx, a: &NetCreateArgs) -> Result<(NetworkSpec, bool)> {
    names::check(What::Network, &a.name)?;
    if let Some(b) = &a.bridge {
        net::check_ifname(b)?;
    }
    if let Some(vlan) = a.vlan {
        gate::check(ctx, Op::NetVlan, Subject::Host)?;
        net::check_ifname(&a.trunk)?;
        vlan_form(&ctx.host()?, a.mode, vlan, &a.trunk)?;
    }
    match a.mode {
        NetMode::Route => gate::check(ctx, Op::NetRoute, Subject::Host).map(|_| ())?,
        NetMode::Bridge => gate::check(ctx, Op::NetFlat, Subject::Host).map(|_| ())?,
        NetMode::Nat | NetMode::Isolated => {}
    }
    let auto = a.subnet == "auto";
    if a.mode == NetMode::Bridge {
        let bridge = a.bridge.clone().ok_or_else(|| {
            Error::invalid(
                "--mode bridge attaches to an existing host bridge: give it with --bridge",
            )
        })?;
        if !auto || a.dhcp_range.is_some() || a.no_dhcp {
            return Err(Error::invalid(
                "--mode bridge is flat networking: the outside network runs DHCP, so --subnet, --dhcp-range and --no-dhcp do not apply",
            ));
        }
        // Another host's bridges cannot be seen from here (libvirt lists a
        // host's interfaces only through netcf): a missing one fails there
        // when a machine first starts on it.
        if ctx.host()?.is_local()
            && !std::path::Path::new("/sys/class/net")
                .join(&bridge)
                .join("bridge")
                .exists()
        {
            return Err(Error::not_found(format!(
                "host bridge {bridge:?} does not exist"
            )));
        }
        return Ok((
            NetworkSpec {
                name: a.name.clone(),
                mode: NetMode::Bridge,
                bridge,
                subnet: None,
                dhcp: None,
                serve_dhcp: false,
                ovs_vlan: a.vlan,
            },
            false,
        ));
    }
    let subnet = if auto {
        None
    } else {
        Some(a.subnet.parse::<Subnet>().map_err(Error::invalid)?)
    };
    if let (Some(r), Some(s)) = (&a.dhcp_range, &subnet) {
        parse_range(r, s)?;
    }
    if a.dhcp_range.is_some() && subnet.is_none() {
        return Err(Error::invalid("--dhcp-range needs an explicit --subnet"));
    }
    let bridge = a.bridge.clone().unwrap_or_else(|| net::bridge_for(&a.name));
    let spec = NetworkSpec {
        name: a.name.clone(),
        mode: a.mode,
        bridge,
        subnet,
        dhcp: match (&a.dhcp_range, &subnet) {
            (Some(r), Some(s)) => Some(parse_range(r, s)?),
            (None, Some(s)) => Some(s.default_range()),
            _ => None,
        },
        serve_dhcp: !a.no_dhcp,
        ovs_vlan: None,
    };
    Ok((spec, auto))
}

fn create(ctx: &Ctx, a: &NetCreateArgs) -> Result<()> {
    let (mut spec, auto) = plan(ctx, a)?;
    let host = ctx.host_name().to_string();
    let mut store = Store::open(&ctx.global.state_dir)?;
    if store.network(&host, &a.name)?.is_some() {
        return Err(Error::conflict(format!(
            "network {:?} already exists",
            a.name
        )));
    }
    let conn = ctx.network_conn()?;
    if conn.lookup_network_by_name(&spec.libvirt_name()).is_ok() {
        return Err(Error::conflict(format!(
            "libvirt already has a network {}",
            spec.libvirt_name()
        )));
    }
    // Every subnet in use, with who uses it, so an overlap names its holder.
    // creature's own first, so its networks are named as the user knows them.
    let mut used = Vec::new();
    for n in store.networks(&host)? {
        if let Some(s) = n.subnet.as_deref().and_then(|s| s.parse::<Subnet>().ok()) {
            used.push((s, format!("creature network {}", n.name)));
        }
    }
    // This host's interfaces matter only to its own networks.
    if ctx.host()?.is_local() {
        used.extend(taken::host_subnets());
    }
    used.extend(lvnet::used_subnets(&conn));
    if spec.mode != NetMode::Bridge {
        match spec.subnet {
            Some(s) => {
                if let Some((u, who)) = used.iter().find(|(u, _)| u.overlaps(&s)) {
                    return Err(Error::conflict(format!("subnet {s} overlaps {u} of {who}")));
                }
            }
            None if auto => {
                let s = net::ipv4::pick_free(
                    &a.name,
                    &used.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
                )
                .ok_or_else(|| {
                    Error::new(
                        crate::error::Kind::Exhausted,
                        "no free /24 left in 10.0.0.0/8",
                    )
                })?;
                spec.subnet = Some(s);
                spec.dhcp = Some(s.default_range());
            }
            None => {}
        }
    }
    if spec.mode != NetMode::Bridge {
        if let Some(who) = lvnet::bridge_holder(&conn, &spec.bridge) {
            return Err(Error::conflict(format!(
                "bridge {} already exists, held by {who}; remove it or name the network differently",
                spec.bridge
            )));
        }
    }
    lvnet::define(&conn, &spec, a.autostart)?;
    let rec = NetworkRecord {
        vlan: a.vlan,
        // On another host's Open vSwitch bridge, the bridge carries the tag.
        trunk: a.vlan.map(|_| match spec.ovs_vlan {
            Some(_) => spec.bridge.clone(),
            None => a.trunk.clone(),
        }),
        name: spec.name.clone(),
        mode: spec.mode.to_string(),
        subnet: spec.subnet.map(|s| s.to_string()),
        bridge: spec.bridge.clone(),
        dhcp_start: spec.dhcp.map(|d| d.0.to_string()),
        dhcp_end: spec.dhcp.map(|d| d.1.to_string()),
        autostart: a.autostart,
        // libvirt's filters (ebtables) see Linux bridges' ports only.
        antispoof: !a.no_antispoof && spec.ovs_vlan.is_none(),
        dhcp: spec.serve_dhcp,
    };
    if let Err(e) = crate::backend::ovs::attach(&rec).and_then(|_| store.add_network(&host, &rec)) {
        let _ = crate::backend::ovs::detach(&rec);
        let _ = lvnet::remove(&conn, &spec.libvirt_name());
        return Err(e);
    }
    ctx.say(&format!(
        "created network {} ({}, bridge {}{}{})",
        spec.name,
        spec.mode,
        spec.bridge,
        spec.subnet
            .map(|s| format!(", subnet {s}"))
            .unwrap_or_default(),
        rec.vlan
            .zip(rec.trunk.as_deref())
            .map(|(v, t)| format!(", VLAN {v} on {t}"))
            .unwrap_or_default()
    ));
    Ok(())
}

#[derive(Serialize)]
struct NetView {
    #[serde(flatten)]
    rec: NetworkRecord,
    active: Option<bool>,
    machines: Vec<String>,
}

fn view(
    ctx: &Ctx,
    store: &Store,
    conn: Option<&virt::connect::Connect>,
    rec: NetworkRecord,
) -> Result<NetView> {
    let active = conn.and_then(|c| {
        c.lookup_network_by_name(&net::libvirt_name(&rec.name))
            .ok()?
            .is_active()
            .ok()
    });
    let machines = store.network_users(ctx.host_name(), &rec.name)?;
    Ok(NetView {
        rec,
        active,
        machines,
    })
}

fn record(ctx: &Ctx, name: &str) -> Result<(Store, NetworkRecord)> {
    names::check(What::Network, name)?;
    let store = Store::open_read_only(&ctx.global.state_dir)?
        .ok_or_else(|| Error::not_found(format!("network {name:?} not found")))?;
    let rec = store.network(ctx.host_name(), name)?.ok_or_else(|| {
        Error::not_found(format!(
            "network {name:?} not found (see `creature net list`)"
        ))
    })?;
    Ok((store, rec))
}

pub fn run(ctx: &Ctx, cmd: NetCommand) -> Result<()> {
    match cmd {
        NetCommand::Create(a) => create(ctx, &a),
        NetCommand::List => {
            let Some(store) = Store::open_read_only(&ctx.global.state_dir)? else {
                return output::emit(ctx.global.format, &Vec::<NetView>::new(), || {
                    Table::new(["NAME", "MODE", "SUBNET", "BRIDGE", "STATE", "MACHINES"])
                });
            };
            let conn = ctx.network_conn().ok();
            let views: Vec<NetView> = store
                .networks(ctx.host_name())?
                .into_iter()
                .map(|r| view(ctx, &store, conn.as_ref(), r))
                .collect::<Result<_>>()?;
            output::emit(ctx.global.format, &views, || {
                let mut t = Table::new(["NAME", "MODE", "SUBNET", "BRIDGE", "STATE", "MACHINES"]);
                for v in &views {
                    t.row([
                        v.rec.name.clone(),
                        v.rec.mode.clone(),
                        v.rec.subnet.clone().unwrap_or_else(|| "-".into()),
                        v.rec.bridge.clone(),
                        match v.active {
                            Some(true) => "active".into(),
                            Some(false) => "inactive".into(),
                            None => "unknown".into(),
                        },
                        v.machines.len().to_string(),
                    ]);
                }
                t
            })
        }
        NetCommand::Info(a) => {
            let (store, rec) = record(ctx, &a.name)?;
            let conn = ctx.network_conn().ok();
            let v = view(ctx, &store, conn.as_ref(), rec)?;
            output::emit(ctx.global.format, &v, || {
                let mut t = Table::new(["KEY", "VALUE"]);
                t.row(["name", v.rec.name.as_str()]);
                t.row(["mode", v.rec.mode.as_str()]);
                t.row(["subnet", v.rec.subnet.as_deref().unwrap_or("-")]);
                t.row(["bridge", v.rec.bridge.as_str()]);
                if let (Some(vlan), Some(trunk)) = (v.rec.vlan, &v.rec.trunk) {
                    t.row([
                        "vlan".to_string(),
                        format!("{vlan} on Open vSwitch bridge {trunk}"),
                    ]);
                }
                if let (Some(a), Some(b)) = (&v.rec.dhcp_start, &v.rec.dhcp_end) {
                    let what = if v.rec.dhcp {
                        "dhcp range"
                    } else {
                        "address range (no DHCP: told on the config drive)"
                    };
                    t.row([what.to_string(), format!("{a}-{b}")]);
                }
                t.row(["autostart", if v.rec.autostart { "yes" } else { "no" }]);
                t.row([
                    "anti-spoofing",
                    if v.rec.antispoof {
                        "yes (VM NICs: clean-traffic)"
                    } else if v.rec.on_ovs() {
                        "no (libvirt's filters do not see Open vSwitch ports)"
                    } else {
                        "no"
                    },
                ]);
                t.row([
                    "machines".to_string(),
                    if v.machines.is_empty() {
                        "-".into()
                    } else {
                        v.machines.join(", ")
                    },
                ]);
                t
            })
        }
        NetCommand::Start(a) => {
            let (_, rec) = record(ctx, &a.name)?;
            let conn = ctx.network_conn()?;
            let lv = net::libvirt_name(&a.name);
            let active = conn
                .lookup_network_by_name(&lv)
                .ok()
                .and_then(|n| n.is_active().ok())
                .unwrap_or(false);
            if !active && rec.mode != NetMode::Bridge.to_string() {
                if let Some(who) = lvnet::bridge_holder(&conn, &rec.bridge) {
                    return Err(Error::conflict(format!(
                        "bridge {} already exists, held by {who}; network {} cannot start on it",
                        rec.bridge, a.name
                    )));
                }
            }
            lvnet::start(&conn, &lv)?;
            crate::backend::ovs::attach(&rec)?;
            ctx.say(&format!("started network {}", a.name));
            Ok(())
        }
        NetCommand::Stop(a) => {
            let (store, _) = record(ctx, &a.name)?;
            let users = store.network_users(ctx.host_name(), &a.name)?;
            if !users.is_empty() && !ctx.global.yes {
                return Err(Error::conflict(format!(
                    "network {:?} is used by {}; stopping it cuts them off (pass --yes to stop anyway)",
                    a.name,
                    users.join(", ")
                )));
            }
            lvnet::stop(&ctx.network_conn()?, &net::libvirt_name(&a.name))?;
            ctx.say(&format!("stopped network {}", a.name));
            Ok(())
        }
        NetCommand::Delete(a) => {
            let (store, rec) = record(ctx, &a.name)?;
            let users = store.network_users(ctx.host_name(), &a.name)?;
            if !users.is_empty() {
                return Err(Error::conflict(format!(
                    "network {:?} is used by {}; delete those machines first",
                    a.name,
                    users.join(", ")
                )));
            }
            drop(store);
            crate::cmd::lifecycle::confirm(ctx, &format!("delete network {}?", a.name))?;
            let mut store = Store::open(&ctx.global.state_dir)?;
            crate::backend::ovs::detach(&rec)?;
            lvnet::remove(&ctx.network_conn()?, &net::libvirt_name(&a.name))?;
            store.remove_network(ctx.host_name(), &a.name)?;
            ctx.say(&format!("deleted network {}", a.name));
            Ok(())
        }
        NetCommand::Leases(a) => leases(ctx, &a.name),
    }
}

/// One row of `net leases`: a reservation beside dnsmasq's lease.
#[derive(Serialize)]
pub struct LeaseRow {
    pub machine: Option<String>,
    pub mac: String,
    pub reserved: Option<String>,
    pub leased: Option<String>,
    /// ok, no-lease (not asked yet), mismatch (holds another IP) or no-owner.
    pub status: &'static str,
}

fn leases(ctx: &Ctx, name: &str) -> Result<()> {
    let (store, _) = record(ctx, name)?;
    let conn = ctx.network_conn()?;
    let leases = lvnet::leases(&conn, &net::libvirt_name(name))?;
    let mut rows: Vec<LeaseRow> = Vec::new();
    let reservations = store.reservations(ctx.host_name(), name)?;
    for (machine, mac, ip) in &reservations {
        let lease = leases.iter().find(|l| l.mac.eq_ignore_ascii_case(mac));
        rows.push(LeaseRow {
            machine: Some(machine.clone()),
            mac: mac.clone(),
            reserved: ip.clone(),
            leased: lease.map(|l| l.ip.clone()),
            status: match (lease, ip) {
                (None, _) => "no-lease",
                (Some(l), Some(r)) if &l.ip == r => "ok",
                (Some(_), None) => "ok",
                (Some(_), Some(_)) => "mismatch",
            },
        });
    }
    for l in &leases {
        if !reservations
            .iter()
            .any(|(_, m, _)| m.eq_ignore_ascii_case(&l.mac))
        {
            rows.push(LeaseRow {
                machine: None,
                mac: l.mac.clone(),
                reserved: None,
                leased: Some(l.ip.clone()),
                status: "no-owner",
            });
        }
    }
    output::emit(ctx.global.format, &rows, || {
        let mut t = Table::new(["MACHINE", "MAC", "RESERVED", "LEASED", "STATUS"]);
        for r in &rows {
            t.row([
                r.machine.clone().unwrap_or_else(|| "-".into()),
                r.mac.clone(),
                r.reserved.clone().unwrap_or_else(|| "-".into()),
                r.leased.clone().unwrap_or_else(|| "-".into()),
                r.status.to_string(),
            ]);
        }
        t
    })
}
