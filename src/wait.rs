//! What a start waits for, and the waiting: one type for `start --wait`,
//! `launch --wait` and autostart's `wait` setting.

use std::net::{SocketAddr, TcpStream};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::{Driver, Host, PowerState};
use crate::error::{Error, Kind, Result};
use crate::interrupt;
use crate::store::Nic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wait {
    /// Return as soon as the start was requested.
    None,
    /// Until the backend reports the machine running.
    Running,
    /// Until the machine holds its DHCP lease.
    Lease,
    /// Until a TCP port of its reserved IP answers.
    Tcp(u16),
}

pub const CHOICES: &str = "none, running, lease or tcp:PORT";

impl FromStr for Wait {
    type Err = Error;
    fn from_str(s: &str) -> Result<Wait> {
        match s {
            "none" => Ok(Wait::None),
            "running" => Ok(Wait::Running),
            "lease" => Ok(Wait::Lease),
            _ => s
                .strip_prefix("tcp:")
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p > 0)
                .map(Wait::Tcp)
                .ok_or_else(|| Error::invalid(format!("wait {s:?}: use {CHOICES}"))),
        }
    }
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wait::None => f.write_str("none"),
            Wait::Running => f.write_str("running"),
            Wait::Lease => f.write_str("lease"),
            Wait::Tcp(p) => write!(f, "tcp:{p}"),
        }
    }
}

const POLL: Duration = Duration::from_millis(200);

/// Poll until `done` says yes, the limit passes (exit 7) or Ctrl-C (130).
pub fn poll(what: &str, limit: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if done()? {
            return Ok(());
        }
        if interrupt::requested() {
            return Err(interrupt::error(what));
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                Kind::Timeout,
                format!("{what}: not done after {} s", limit.as_secs()),
            ));
        }
        std::thread::sleep(POLL);
    }
}

/// Whether the NIC with `mac` holds its lease: not yet (false), on its
/// reserved address (true), or on another one, which is an error (exit 5):
/// the reservation and what the guest got disagree, and saying "done"
/// would be a lie.
pub fn lease_taken(
    machine: &str,
    network: &str,
    mac: &str,
    want: &str,
    leases: &[crate::backend::libvirt::network::Lease],
) -> Result<bool> {
    let mine: Vec<&str> = leases
        .iter()
        .filter(|l| l.mac.eq_ignore_ascii_case(mac))
        .map(|l| l.ip.as_str())
        .collect();
    if mine.contains(&want) {
        return Ok(true);
    }
    match mine.first() {
        None => Ok(false),
        Some(got) => {
            let holder = leases
                .iter()
                .find(|l| l.ip == want)
                .map(|l| format!(" (its reserved address is leased to MAC {})", l.mac))
                .unwrap_or_default();
            Err(Error::conflict(format!(
                "{machine} took {got} on network {network}, not its reserved {want}{holder}"
            )))
        }
    }
}

/// Wait after a start as `wait` says; `nics` are the machine's records.
pub fn until_started(
    host: &Host,
    drv: &dyn Driver,
    name: &str,
    nics: &[Nic],
    wait: Wait,
    limit: Duration,
) -> Result<()> {
    match wait {
        Wait::None => Ok(()),
        Wait::Running => poll(&format!("waiting for {name} to run"), limit, || {
            Ok(drv.state(name)? == PowerState::Running)
        }),
        Wait::Lease => {
            let nic = nics.iter().find(|n| n.ip.is_some()).ok_or_else(|| {
                Error::invalid(format!(
                    "--wait lease: machine {name:?} has no NIC with a reserved IP on a creature network"
                ))
            })?;
            let want = nic.ip.as_deref().expect("found with an IP");
            let conn =
                crate::backend::libvirt::open(&host.network_uri()?, Duration::from_secs(30))?;
            let net = crate::net::libvirt_name(&nic.network);
            poll(
                &format!("waiting for {name} to take its DHCP lease"),
                limit,
                || {
                    let leases = crate::backend::libvirt::network::leases(&conn, &net)?;
                    lease_taken(name, &nic.network, &nic.mac, want, &leases)
                },
            )
        }
        Wait::Tcp(port) => {
            let ip = nics.iter().find_map(|n| n.ip.clone()).ok_or_else(|| {
                Error::invalid(format!("{name}: wait tcp:{port} needs a reserved IP"))
            })?;
            let addr: SocketAddr = format!("{ip}:{port}")
                .parse()
                .map_err(|_| Error::other(format!("bad address {ip}:{port}")))?;
            let deadline = Instant::now() + limit;
            while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
                if interrupt::requested() {
                    return Err(interrupt::error(&format!("waiting for {addr}")));
                }
                if Instant::now() >= deadline {
                    return Err(Error::new(
                        Kind::Timeout,
                        format!("{name}: {addr} did not answer within {} s", limit.as_secs()),
                    ));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(mac: &str, ip: &str) -> crate::backend::libvirt::network::Lease {
        crate::backend::libvirt::network::Lease {
            mac: mac.into(),
            ip: ip.into(),
            hostname: None,
            expires: 0,
        }
    }

    #[test]
    fn a_lease_counts_only_on_the_reserved_address() {
        let mac = "52:54:00:00:00:0c";
        let want = "10.77.0.128";
        let none: [crate::backend::libvirt::network::Lease; 0] = [];
        assert!(!lease_taken("c", "n", mac, want, &none).unwrap());
        let others = [lease("52:54:00:00:00:0a", want)];
        assert!(!lease_taken("c", "n", mac, want, &others).unwrap());
        let right = [lease("52:54:00:00:00:0C", want)];
        assert!(lease_taken("c", "n", mac, want, &right).unwrap());
        let wrong = [lease(mac, "10.77.0.194"), lease("52:54:00:00:00:0a", want)];
        let e = lease_taken("c", "n", mac, want, &wrong).unwrap_err();
        assert_eq!(e.kind(), Kind::Conflict);
        assert_eq!(
            e.message(),
            "c took 10.77.0.194 on network n, not its reserved 10.77.0.128 (its reserved address is leased to MAC 52:54:00:00:00:0a)"
        );
    }

    #[test]
    fn waits_parse_and_print() {
        for w in ["none", "running", "lease", "tcp:22"] {
            assert_eq!(w.parse::<Wait>().unwrap().to_string(), w);
        }
        for bad in ["tcp:0", "tcp:x", "soon", "tcp:70000", ""] {
            let e = bad.parse::<Wait>().unwrap_err();
            assert!(e.message().contains(CHOICES), "{}", e.message());
        }
    }
}
