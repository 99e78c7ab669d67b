//! Pushing a machine's IP reservations to its networks' DHCP servers (static
//! host entries, live and persistent) and taking them back.

use virt::connect::Connect;

use crate::backend::libvirt::network as lvnet;
use crate::error::Result;
use crate::net::libvirt_name;
use crate::store::Nic;
use crate::undo::Undo;

/// Add a host entry for every NIC with an IP; each one's undo removes it.
pub fn push(conn: &Connect, machine: &str, nics: &[Nic], undo: &mut Undo) -> Result<()> {
    for n in nics {
        let Some(ip) = n.ip.as_ref().and_then(|i| i.parse().ok()) else {
            continue;
        };
        let net = libvirt_name(&n.network);
        lvnet::add_host(conn, &net, &n.mac, machine, ip)?;
        let (conn, mac, m) = (conn.clone(), n.mac.clone(), machine.to_string());
        undo.push(
            format!("remove the DHCP host entry {mac} from {net}"),
            move || lvnet::remove_host(&conn, &net, &mac, &m, ip),
        );
    }
    Ok(())
}

/// Remove the host entries of a machine's NICs; says what was released.
pub fn release(conn: &Connect, machine: &str, nics: &[Nic]) -> Vec<String> {
    let mut out = Vec::new();
    for n in nics {
        let Some(ip) = n.ip.as_ref().and_then(|i| i.parse().ok()) else {
            continue;
        };
        if lvnet::remove_host(conn, &libvirt_name(&n.network), &n.mac, machine, ip).is_ok() {
            out.push(format!("IP {ip} (MAC {}) on network {}", n.mac, n.network));
        }
    }
    out
}
