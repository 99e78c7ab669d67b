//! Networks: libvirt networks (a bridge, dnsmasq for DHCP, NAT or routing
//! rules) that creature defines, and the MAC and IP addresses it hands out.

pub mod alloc;
pub mod ipv4;
pub mod reserve;
pub mod taken;
pub mod xml;

use serde::Serialize;

use crate::cli::NetMode;
use crate::error::{Error, Result};

/// Bridge interface names the kernel accepts: at most 15 characters.
pub const IFNAMSIZ: usize = 15;

pub fn mode_str(m: NetMode) -> &'static str {
    match m {
        NetMode::Nat => "nat",
        NetMode::Route => "route",
        NetMode::Isolated => "isolated",
        NetMode::Bridge => "bridge",
    }
}

pub fn mode_parse(s: &str) -> Option<NetMode> {
    match s {
        "nat" => Some(NetMode::Nat),
        "route" => Some(NetMode::Route),
        "isolated" => Some(NetMode::Isolated),
        "bridge" => Some(NetMode::Bridge),
        _ => None,
    }
}

/// A bridge name for a network: `crbr-NAME` when it fits, else a hash.
pub fn bridge_for(network: &str) -> String {
    let b = format!("crbr-{network}");
    if b.len() <= IFNAMSIZ {
        return b;
    }
    use sha2::{Digest, Sha256};
    let h = crate::image::cache::hex(&Sha256::digest(network.as_bytes()));
    format!("crbr-{}", &h[..10])
}

pub fn check_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= IFNAMSIZ
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "bridge name {name:?} is not an interface name: at most {IFNAMSIZ} characters of [A-Za-z0-9._-]"
        )))
    }
}

/// A network as creature records and renders it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkSpec {
    pub name: String,
    pub mode: &'static str,
    pub bridge: String,
    /// None for bridge mode (the outside runs DHCP).
    pub subnet: Option<ipv4::Subnet>,
    pub dhcp: Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)>,
}

impl NetworkSpec {
    /// The libvirt network's name: creature's networks are prefixed so
    /// they never collide with networks creature did not make.
    pub fn libvirt_name(&self) -> String {
        libvirt_name(&self.name)
    }
}

pub fn libvirt_name(network: &str) -> String {
    format!("creature-{network}")
}
