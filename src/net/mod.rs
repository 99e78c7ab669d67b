//! Networks as creature plans them, pure: modes, bridge names, subnets,
//! MACs and the allocation of MACs and IPs. backend/libvirt/ makes them
//! libvirt networks (a bridge, dnsmasq for DHCP, NAT or routing rules).

pub mod alloc;
pub mod ipv4;
mod mac;
pub mod vlan;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

pub use mac::Mac;

/// Bridge interface names the kernel accepts: at most 15 characters.
pub const IFNAMSIZ: usize = 15;

/// How a network reaches the outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// NAT to the host's uplink (libvirt's forward mode nat).
    Nat,
    /// Routed, no NAT (#37).
    Route,
    /// No forwarding at all.
    Isolated,
    /// Flat: an existing host bridge; the outside runs DHCP (#39).
    Bridge,
}

impl NetMode {
    pub const ALL: [NetMode; 4] = [
        NetMode::Nat,
        NetMode::Route,
        NetMode::Isolated,
        NetMode::Bridge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NetMode::Nat => "nat",
            NetMode::Route => "route",
            NetMode::Isolated => "isolated",
            NetMode::Bridge => "bridge",
        }
    }
}

impl FromStr for NetMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<NetMode> {
        NetMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "network mode {s:?}: use nat, route, isolated or bridge"
                ))
            })
    }
}

impl fmt::Display for NetMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    pub mode: NetMode,
    pub bridge: String,
    /// None for bridge mode (the outside runs DHCP).
    pub subnet: Option<ipv4::Subnet>,
    /// The range creature reserves machines' addresses from.
    pub dhcp: Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)>,
    /// Whether libvirt's dnsmasq serves DHCP on that range.
    pub serve_dhcp: bool,
    /// Bridge mode only: the VLAN of an Open vSwitch bridge whose ports
    /// libvirt tags (a VLAN network with a bridge of its own is tagged by
    /// its uplink instead, which is not libvirt's).
    pub ovs_vlan: Option<u16>,
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
