//! creature networks as libvirt networks: define and start them, push each
//! reservation as a static DHCP host entry (live and config), read leases.

use std::ffi::CStr;

use virt::connect::Connect;
use virt::network::Network;
use virt::sys;

use crate::backend::libvirt::map_error;
use crate::backend::libvirt::network_xml as xml;
use crate::error::{Error, Result};
use crate::net::NetworkSpec;

pub fn lookup(conn: &Connect, libvirt_name: &str) -> Result<Network> {
    conn.lookup_network_by_name(libvirt_name)
        .map_err(|e| map_error(format!("libvirt has no network {libvirt_name}"), e))
}

/// Define, start and (optionally) autostart a network. A failure after the
/// definition removes it again.
pub fn define(conn: &Connect, spec: &NetworkSpec, autostart: bool) -> Result<()> {
    let name = spec.libvirt_name();
    let text = xml::render(spec);
    crate::trace::text(&format!("network XML of {name}"), &text);
    let net = conn
        .define_network_xml(&text)
        .map_err(|e| map_error(format!("cannot define network {name}"), e))?;
    let started = net
        .create()
        .map(|_| ())
        .map_err(|e| map_error(format!("cannot start network {name}"), e))
        .and_then(|_| {
            net.set_autostart(autostart)
                .map(|_| ())
                .map_err(|e| map_error(format!("cannot set autostart of network {name}"), e))
        });
    if let Err(e) = started {
        let _ = net.destroy();
        let _ = net.undefine();
        return Err(e);
    }
    Ok(())
}

pub fn start(conn: &Connect, libvirt_name: &str) -> Result<()> {
    let n = lookup(conn, libvirt_name)?;
    if n.is_active().unwrap_or(false) {
        return Err(Error::conflict(format!(
            "network {libvirt_name} is already running"
        )));
    }
    n.create()
        .map(|_| ())
        .map_err(|e| map_error(format!("cannot start network {libvirt_name}"), e))
}

pub fn stop(conn: &Connect, libvirt_name: &str) -> Result<()> {
    let n = lookup(conn, libvirt_name)?;
    if !n.is_active().unwrap_or(false) {
        return Err(Error::conflict(format!(
            "network {libvirt_name} is not running"
        )));
    }
    n.destroy()
        .map_err(|e| map_error(format!("cannot stop network {libvirt_name}"), e))
}

/// Stop and undefine; a network that is already gone is fine.
pub fn remove(conn: &Connect, libvirt_name: &str) -> Result<()> {
    let Ok(n) = conn.lookup_network_by_name(libvirt_name) else {
        return Ok(());
    };
    if n.is_active().unwrap_or(false) {
        n.destroy()
            .map_err(|e| map_error(format!("cannot stop network {libvirt_name}"), e))?;
    }
    n.undefine()
        .map_err(|e| map_error(format!("cannot undefine network {libvirt_name}"), e))
}

fn update(
    conn: &Connect,
    libvirt_name: &str,
    cmd: sys::virNetworkUpdateCommand,
    entry: &str,
) -> Result<()> {
    let n = lookup(conn, libvirt_name)?;
    let mut flags = sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG;
    if n.is_active().unwrap_or(false) {
        flags |= sys::VIR_NETWORK_UPDATE_AFFECT_LIVE;
    }
    crate::trace::text(&format!("DHCP host entry for {libvirt_name}"), entry);
    crate::trace::call(
        || format!("libvirt: virNetworkUpdate {libvirt_name} (DHCP host)"),
        || n.update(cmd, sys::VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, entry, flags),
    )
    .map_err(|e| {
        map_error(
            format!("cannot update the DHCP hosts of network {libvirt_name}"),
            e,
        )
    })
}

/// Reserve `ip` for `mac` in the network's DHCP server, now and across restarts.
pub fn add_host(
    conn: &Connect,
    libvirt_name: &str,
    mac: &str,
    host: &str,
    ip: std::net::Ipv4Addr,
) -> Result<()> {
    update(
        conn,
        libvirt_name,
        sys::VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
        &xml::dhcp_host(mac, host, ip),
    )
}

pub fn remove_host(
    conn: &Connect,
    libvirt_name: &str,
    mac: &str,
    host: &str,
    ip: std::net::Ipv4Addr,
) -> Result<()> {
    update(
        conn,
        libvirt_name,
        sys::VIR_NETWORK_UPDATE_COMMAND_DELETE,
        &xml::dhcp_host(mac, host, ip),
    )
}

/// The static host entries libvirt holds for a network: (mac, ip).
pub fn hosts(conn: &Connect, libvirt_name: &str) -> Result<Vec<(String, String)>> {
    let n = lookup(conn, libvirt_name)?;
    let x = n
        .xml_desc(0)
        .map_err(|e| map_error("cannot read the network", e))?;
    Ok(crate::xml::attrs_of(&x, "host")
        .into_iter()
        .filter_map(|mut a| Some((a.remove("mac")?, a.remove("ip")?)))
        .collect())
}

/// A lease dnsmasq handed out.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Lease {
    pub mac: String,
    pub ip: String,
    pub hostname: Option<String>,
    pub expires: i64,
}

/// The network's current DHCP leases (virNetworkGetDHCPLeases).
pub fn leases(conn: &Connect, libvirt_name: &str) -> Result<Vec<Lease>> {
    let n = lookup(conn, libvirt_name)?;
    let mut arr: *mut sys::virNetworkDHCPLeasePtr = std::ptr::null_mut();
    // SAFETY: libvirt fills `arr` with `count` leases, each freed with
    // virNetworkDHCPLeaseFree, and the array with free().
    unsafe {
        let count = sys::virNetworkGetDHCPLeases(n.as_ptr(), std::ptr::null(), &mut arr, 0);
        if count < 0 {
            return Err(map_error(
                format!("cannot read the leases of {libvirt_name}"),
                virt::error::Error::last_error(),
            ));
        }
        let s = |p: *mut std::os::raw::c_char| {
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        let mut out = Vec::new();
        for i in 0..count as isize {
            let l = *arr.offset(i);
            out.push(Lease {
                mac: s((*l).mac).unwrap_or_default(),
                ip: s((*l).ipaddr).unwrap_or_default(),
                hostname: s((*l).hostname),
                expires: (*l).expirytime,
            });
            sys::virNetworkDHCPLeaseFree(l);
        }
        if !arr.is_null() {
            libc::free(arr.cast());
        }
        Ok(out)
    }
}

/// Subnets libvirt networks already use, each with its network's name.
pub fn used_subnets(conn: &Connect) -> Vec<(crate::net::ipv4::Subnet, String)> {
    let mut out = Vec::new();
    for n in conn.list_all_networks(0).unwrap_or_default() {
        let Ok(x) = n.xml_desc(0) else { continue };
        let name = n.name().unwrap_or_default();
        for a in crate::xml::attrs_of(&x, "ip") {
            let addr = a
                .get("address")
                .and_then(|v| v.parse::<std::net::Ipv4Addr>().ok());
            let mask = a
                .get("netmask")
                .and_then(|v| v.parse::<std::net::Ipv4Addr>().ok());
            if let (Some(addr), Some(mask)) = (addr, mask) {
                out.push((
                    crate::net::ipv4::Subnet::new(addr, u32::from(mask).count_ones() as u8),
                    format!("libvirt network {name}"),
                ));
            }
        }
    }
    out
}

/// Who already has the interface `bridge`, if it exists: a libvirt network
/// (by its name) or something made outside libvirt. A network defined on
/// it would fail to start with a message that names neither.
pub fn bridge_holder(conn: &Connect, bridge: &str) -> Option<String> {
    if !std::path::Path::new("/sys/class/net").join(bridge).exists() {
        return None;
    }
    for n in conn.list_all_networks(0).unwrap_or_default() {
        let Ok(x) = n.xml_desc(0) else { continue };
        if crate::xml::attrs_of(&x, "bridge")
            .iter()
            .any(|a| a.get("name").map(String::as_str) == Some(bridge))
        {
            return Some(format!("libvirt network {}", n.name().unwrap_or_default()));
        }
    }
    Some("an interface made outside libvirt (see `ip link show`)".to_string())
}

/// The static DHCP hosts of a libvirt network: (MAC, IP, name).
pub fn host_entries(conn: &Connect, libvirt_name: &str) -> Result<Vec<(String, String, String)>> {
    let n = lookup(conn, libvirt_name)?;
    let x = n
        .xml_desc(0)
        .map_err(|e| map_error(format!("cannot read network {libvirt_name}"), e))?;
    Ok(crate::xml::attrs_of(&x, "host")
        .into_iter()
        .filter_map(|a| {
            Some((
                a.get("mac")?.clone(),
                a.get("ip")?.clone(),
                a.get("name").cloned().unwrap_or_default(),
            ))
        })
        .collect())
}
