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
            let conn =
                crate::backend::libvirt::open(&host.network_uri()?, Duration::from_secs(30))?;
            let net = crate::net::libvirt_name(&nic.network);
            poll(
                &format!("waiting for {name} to take its DHCP lease"),
                limit,
                || {
                    Ok(crate::backend::libvirt::network::leases(&conn, &net)?
                        .iter()
                        .any(|l| l.mac.eq_ignore_ascii_case(&nic.mac)))
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
