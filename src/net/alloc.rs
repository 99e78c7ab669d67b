//! MAC and IP allocation: a pure choice from what is taken, which the
//! store reads inside the create's transaction. The database still
//! enforces uniqueness (UNIQUE constraints); this only decides.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::backend::Backend;
use crate::error::{Error, Kind, Result};
use crate::net::ipv4::Subnet;
use crate::net::Mac;

/// What a create asks for one NIC.
#[derive(Debug, Clone)]
pub struct Request {
    pub network: String,
    pub mac: Option<Mac>,
    pub ip: Option<Ipv4Addr>,
}

/// The network a NIC is allocated on: its DHCP pool, if it has one.
#[derive(Debug, Clone)]
pub struct Pool {
    pub network: String,
    pub mode: String,
    pub subnet: Option<Subnet>,
    pub range: Option<(Ipv4Addr, Ipv4Addr)>,
}

/// What is taken, with who holds it, for the error messages.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    /// Every MAC on the host: creature's machines, other domains and
    /// containers, host NICs.
    pub macs: HashMap<Mac, String>,
    /// IPs reserved on this network, by machine.
    pub ips: HashMap<Ipv4Addr, String>,
    /// Released less than a lease time ago: their old lease may still live.
    pub recently_released: HashSet<Ipv4Addr>,
    /// Ever handed out on this network.
    pub ever_used: HashSet<Ipv4Addr>,
}

/// Who the NIC is for: the MAC hash's inputs.
#[derive(Debug, Clone, Copy)]
pub struct For<'a> {
    pub backend: Backend,
    pub host_id: &'a str,
    pub machine: &'a str,
    pub nic: usize,
}

/// The MAC and (on a DHCP network) the IP for one NIC.
pub fn allocate(
    who: For<'_>,
    req: &Request,
    pool: &Pool,
    taken: &Taken,
) -> Result<(Mac, Option<Ipv4Addr>)> {
    let mac = match req.mac {
        Some(m) => {
            if let Some(owner) = taken.macs.get(&m) {
                return Err(Error::conflict(format!(
                    "MAC {m} is already used by {owner}"
                )));
            }
            m
        }
        None => {
            let keys: HashSet<Mac> = taken.macs.keys().copied().collect();
            choose_mac(who.backend, who.host_id, who.machine, who.nic, &keys)
                .ok_or_else(|| Error::new(Kind::Exhausted, "no free MAC address found"))?
        }
    };
    let ip = match (&pool.subnet, pool.range) {
        (Some(sub), Some(range)) => Some(match req.ip {
            Some(ip) => {
                if !sub.host_usable(ip) {
                    return Err(Error::invalid(format!(
                        "IP {ip} is not a machine address of {sub} (not the network, gateway or broadcast address, and inside the subnet)"
                    )));
                }
                if let Some(owner) = taken.ips.get(&ip) {
                    return Err(Error::conflict(format!(
                        "IP {ip} on network {:?} is already reserved for machine {owner}",
                        pool.network
                    )));
                }
                ip
            }
            None => {
                let used: HashSet<Ipv4Addr> = taken.ips.keys().copied().collect();
                choose_ip(range, &used, &taken.recently_released, &taken.ever_used).ok_or_else(
                    || {
                        Error::new(
                            Kind::Exhausted,
                            format!(
                                "network {:?} has no free address left in {}-{}",
                                pool.network, range.0, range.1
                            ),
                        )
                    },
                )?
            }
        }),
        _ => {
            if let Some(ip) = req.ip {
                return Err(Error::invalid(format!(
                    "network {:?} ({}) has no DHCP here; a fixed IP ({ip}) cannot be reserved on it",
                    pool.network, pool.mode
                )));
            }
            None
        }
    };
    Ok((mac, ip))
}

/// The MAC for (host, machine, NIC index): the first candidate is a hash,
/// so a recreated machine gets the same MAC where it is free; collisions
/// move on to the next attempt.
pub fn choose_mac(
    backend: Backend,
    host_id: &str,
    machine: &str,
    nic: usize,
    taken: &HashSet<Mac>,
) -> Option<Mac> {
    let p = Mac::prefix(backend);
    (0u32..10_000).find_map(|attempt| {
        let h = Sha256::digest(format!("{host_id}\0{machine}\0{nic}\0{attempt}").as_bytes());
        let m = Mac([p[0], p[1], p[2], h[0], h[1], h[2]]);
        (!taken.contains(&m)).then_some(m)
    })
}

/// An IP from `range`: never-used addresses first, then released ones whose
/// old lease has had time to expire; none while every address is busy.
pub fn choose_ip(
    range: (Ipv4Addr, Ipv4Addr),
    in_use: &HashSet<Ipv4Addr>,
    recently_released: &HashSet<Ipv4Addr>,
    ever_used: &HashSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let (a, b) = (u32::from(range.0), u32::from(range.1));
    let free = |ip: &Ipv4Addr| !in_use.contains(ip) && !recently_released.contains(ip);
    let all = (a..=b).map(Ipv4Addr::from);
    all.clone()
        .find(|ip| free(ip) && !ever_used.contains(ip))
        .or_else(|| all.clone().find(free))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_stable_prefixed_and_avoid_collisions() {
        let none = HashSet::new();
        let a = choose_mac(Backend::Qemu, "h", "web", 0, &none).unwrap();
        assert_eq!(a, choose_mac(Backend::Qemu, "h", "web", 0, &none).unwrap());
        assert_eq!(&a.0[..3], &[0x52, 0x54, 0x00]);
        assert_ne!(a, choose_mac(Backend::Qemu, "h", "web", 1, &none).unwrap());
        let lxc = choose_mac(Backend::Lxc, "h", "web", 0, &none).unwrap();
        assert_eq!(&lxc.0[..3], &[0x00, 0x16, 0x3e]);
        let taken: HashSet<Mac> = [a].into();
        let b = choose_mac(Backend::Qemu, "h", "web", 0, &taken).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<Mac>(), Ok(a));
    }

    #[test]
    fn ips_prefer_never_used_and_respect_recent_leases() {
        let r = (Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 12));
        let e = HashSet::new();
        assert_eq!(choose_ip(r, &e, &e, &e), Some(Ipv4Addr::new(10, 0, 0, 10)));
        let used: HashSet<_> = [Ipv4Addr::new(10, 0, 0, 10)].into();
        let ever: HashSet<_> = [Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 11)].into();
        // .11 was used before and released long ago; .12 never: .12 first.
        assert_eq!(
            choose_ip(r, &used, &e, &ever),
            Some(Ipv4Addr::new(10, 0, 0, 12))
        );
        let used_all: HashSet<_> =
            [Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 12)].into();
        assert_eq!(
            choose_ip(r, &used_all, &e, &ever),
            Some(Ipv4Addr::new(10, 0, 0, 11))
        );
        let recent: HashSet<_> = [Ipv4Addr::new(10, 0, 0, 11)].into();
        assert_eq!(choose_ip(r, &used_all, &recent, &ever), None);
    }

    fn pool() -> Pool {
        let sub: Subnet = "10.9.0.0/24".parse().unwrap();
        Pool {
            network: "lan".into(),
            mode: "nat".into(),
            subnet: Some(sub),
            range: Some((Ipv4Addr::new(10, 9, 0, 10), Ipv4Addr::new(10, 9, 0, 11))),
        }
    }

    fn req(mac: Option<&str>, ip: Option<Ipv4Addr>) -> Request {
        Request {
            network: "lan".into(),
            mac: mac.map(|m| m.parse().unwrap()),
            ip,
        }
    }

    const WHO: For<'static> = For {
        backend: Backend::Qemu,
        host_id: "h",
        machine: "web",
        nic: 0,
    };

    /// The whole policy without SQLite: conflicts name the holder, the pool
    /// runs out with exit 8, flat networks take no fixed IP.
    #[test]
    fn allocation_decides_from_what_is_taken() {
        let mut taken = Taken::default();
        let (mac, ip) = allocate(WHO, &req(None, None), &pool(), &taken).unwrap();
        assert_eq!(ip, Some(Ipv4Addr::new(10, 9, 0, 10)));
        taken.macs.insert(mac, "machine web".into());
        taken.ips.insert(Ipv4Addr::new(10, 9, 0, 10), "web".into());

        let e = allocate(WHO, &req(Some(&mac.to_string()), None), &pool(), &taken).unwrap_err();
        assert_eq!(e.kind(), Kind::Conflict);
        assert!(e.message().contains("machine web"), "{}", e.message());
        let e = allocate(
            WHO,
            &req(None, Some(Ipv4Addr::new(10, 9, 0, 10))),
            &pool(),
            &taken,
        )
        .unwrap_err();
        assert_eq!(e.kind(), Kind::Conflict);
        let e = allocate(
            WHO,
            &req(None, Some(Ipv4Addr::new(10, 9, 0, 1))),
            &pool(),
            &taken,
        )
        .unwrap_err();
        assert_eq!(e.kind(), Kind::Invalid, "the gateway is no machine address");

        let (mac2, ip2) = allocate(WHO, &req(None, None), &pool(), &taken).unwrap();
        assert_ne!(mac2, mac);
        assert_eq!(ip2, Some(Ipv4Addr::new(10, 9, 0, 11)));
        taken.ips.insert(Ipv4Addr::new(10, 9, 0, 11), "db".into());
        let e = allocate(WHO, &req(None, None), &pool(), &taken).unwrap_err();
        assert_eq!(e.kind(), Kind::Exhausted);

        let flat = Pool {
            mode: "bridge".into(),
            subnet: None,
            range: None,
            ..pool()
        };
        assert_eq!(
            allocate(WHO, &req(None, None), &flat, &taken).unwrap().1,
            None
        );
        let e = allocate(
            WHO,
            &req(None, Some(Ipv4Addr::new(10, 9, 0, 5))),
            &flat,
            &taken,
        )
        .unwrap_err();
        assert_eq!(e.kind(), Kind::Invalid);
    }
}
