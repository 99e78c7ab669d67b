//! One answer about a machine's addresses, shared by `info` and `list`: per
//! NIC the reservation (always) and the address DHCP leased to its MAC
//! (only while the machine runs), each labelled, so the two verbs never
//! disagree and a stale lease of a deleted machine is never shown.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::backend::Host;
use crate::store::Nic;

/// A NIC as `info` and `list --format json` show it (a stable shape,
/// docs/json.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NicView {
    pub index: u32,
    pub network: String,
    pub mac: String,
    /// The address reserved for the MAC (static DHCP host entry).
    pub reserved_ip: Option<String>,
    /// The address the DHCP server leased to the MAC, only while the
    /// machine is running.
    pub leased_ip: Option<String>,
}

/// Leases by lower-case MAC.
pub type Leases = BTreeMap<String, String>;

pub fn views(nics: &[Nic], leases: &Leases, active: bool) -> Vec<NicView> {
    let mut v: Vec<NicView> = nics
        .iter()
        .map(|n| NicView {
            index: n.index,
            network: n.network.clone(),
            mac: n.mac.clone(),
            reserved_ip: n.ip.clone(),
            leased_ip: None,
        })
        .collect();
    fill_leases(&mut v, leases, active);
    v
}

/// Each NIC's lease, by its MAC, only while the machine runs.
pub fn fill_leases(nics: &mut [NicView], leases: &Leases, active: bool) {
    for n in nics {
        n.leased_ip = active
            .then(|| leases.get(&n.mac.to_ascii_lowercase()).cloned())
            .flatten();
    }
}

/// The IP column of one NIC, labelled where lease and reservation differ.
pub fn label(n: &NicView) -> String {
    match (&n.leased_ip, &n.reserved_ip) {
        (Some(l), Some(r)) if l == r => l.clone(),
        (Some(l), Some(r)) => format!("{l} (reserved {r})"),
        (Some(l), None) => l.clone(),
        (None, Some(r)) => format!("{r} (reserved)"),
        (None, None) => "-".into(),
    }
}

/// The IP column of a machine: its NICs' labels.
pub fn labels(nics: &[NicView]) -> String {
    if nics.is_empty() {
        return "-".into();
    }
    nics.iter().map(label).collect::<Vec<_>>().join(", ")
}

/// The current DHCP leases of these networks, asked within a deadline; a
/// network whose leases cannot be read contributes none (the caller shows
/// the reservation alone).
pub fn leases(host: &Host, networks: BTreeSet<String>) -> Leases {
    if networks.is_empty() {
        return Leases::new();
    }
    let Ok(uri) = host.network_uri() else {
        return Leases::new();
    };
    crate::deadline::run("the DHCP leases", Duration::from_secs(10), move || {
        let conn = crate::backend::libvirt::open(&uri, Duration::from_secs(5))?;
        let mut out = Leases::new();
        for net in networks {
            let lv = crate::net::libvirt_name(&net);
            if let Ok(ls) = crate::backend::libvirt::network::leases(&conn, &lv) {
                for l in ls {
                    out.insert(l.mac.to_ascii_lowercase(), l.ip);
                }
            }
        }
        Ok(out)
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(mac: &str, ip: Option<&str>) -> Nic {
        Nic {
            index: 0,
            network: "lan".into(),
            bridge: "crbr-lan".into(),
            mac: mac.into(),
            ip: ip.map(Into::into),
        }
    }

    #[test]
    fn a_lease_shows_only_while_running_and_only_for_the_nics_mac() {
        let mut leases = Leases::new();
        leases.insert("52:54:00:aa:bb:01".into(), "10.0.0.9".into());
        // The old lease of a deleted machine's MAC is not this NIC's.
        leases.insert("52:54:00:dd:ee:ff".into(), "10.0.0.5".into());
        let nics = [nic("52:54:00:AA:BB:01", Some("10.0.0.5"))];
        let up = views(&nics, &leases, true);
        assert_eq!(up[0].leased_ip.as_deref(), Some("10.0.0.9"));
        assert_eq!(label(&up[0]), "10.0.0.9 (reserved 10.0.0.5)");
        let down = views(&nics, &leases, false);
        assert_eq!(down[0].leased_ip, None);
        assert_eq!(label(&down[0]), "10.0.0.5 (reserved)");
        let agree = views(&[nic("52:54:00:dd:ee:ff", Some("10.0.0.5"))], &leases, true);
        assert_eq!(label(&agree[0]), "10.0.0.5");
        assert_eq!(labels(&[]), "-");
        assert_eq!(label(&views(&[nic("x", None)], &leases, true)[0]), "-");
    }
}
