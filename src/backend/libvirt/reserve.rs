//! Pushing a machine's IP reservations to its networks' DHCP servers (static
//! host entries, live and persistent) and taking them back.

use virt::connect::Connect;

use crate::backend::libvirt::network as lvnet;
use crate::error::{Error, Result};
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

/// Refuse an address that dnsmasq has leased to another MAC (a machine
/// deleted on a host where its lease could not be dropped, or a client
/// creature did not make): dnsmasq would not give it to this machine, which
/// would get another address than its reservation (exit 5).
pub fn unleased(conn: &Connect, nics: &[Nic]) -> Result<()> {
    for n in nics {
        let Some(ip) = &n.ip else { continue };
        let leases = lvnet::leases(conn, &libvirt_name(&n.network))?;
        let now = crate::time::unix_now() as i64;
        if let Some(l) = leases.iter().find(|l| {
            &l.ip == ip
                && !l.mac.eq_ignore_ascii_case(&n.mac)
                && (l.expires == 0 || l.expires > now)
        }) {
            return Err(Error::conflict(format!(
                "IP {ip} on network {} is still leased to MAC {} until {}; dnsmasq would give this machine another address (release the lease or pick another --ip)",
                n.network,
                l.mac,
                if l.expires > 0 { crate::time::rfc3339(l.expires as u64) } else { "it is released".into() }
            )));
        }
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

/// Ask each network's dnsmasq to drop the leases of a deleted machine's
/// NICs (dnsmasq's `dhcp_release`, run on the host where the bridge is), so
/// its addresses can be given out again at once: dnsmasq will not hand a
/// reserved address to a new MAC while another MAC's lease on it lives.
/// True when every lease is gone; false when one may live on (no
/// dhcp_release, a remote host, or a failure), and the store then keeps
/// those addresses out of the automatic pool until the lease time passes.
pub fn drop_leases(local: bool, nics: &[Nic]) -> bool {
    let mut all = true;
    for n in nics {
        let Some(ip) = &n.ip else { continue };
        if !local {
            all = false;
            continue;
        }
        let ok = std::process::Command::new("dhcp_release")
            .args([n.bridge.as_str(), ip.as_str(), n.mac.as_str()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        all &= ok;
    }
    all
}
