//! MAC and IP allocation: pure choices from what is taken. The database
//! enforces uniqueness (UNIQUE constraints in the same transaction as the
//! machine record); these functions only choose candidates.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::matrix::Backend;

pub type Mac = [u8; 6];

/// The OUI: 52:54:00 (QEMU/KVM) or 00:16:3e (Xen, also used for LXC).
pub fn prefix(b: Backend) -> [u8; 3] {
    match b {
        Backend::Kvm | Backend::Qemu => [0x52, 0x54, 0x00],
        Backend::Xen | Backend::Lxc => [0x00, 0x16, 0x3e],
    }
}

pub fn format(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse(s: &str) -> Option<Mac> {
    crate::template::resolve::check_mac(s).ok()
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
    let p = prefix(backend);
    (0u32..10_000).find_map(|attempt| {
        let h = Sha256::digest(format!("{host_id}\0{machine}\0{nic}\0{attempt}").as_bytes());
        let m = [p[0], p[1], p[2], h[0], h[1], h[2]];
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
        assert_eq!(&a[..3], &[0x52, 0x54, 0x00]);
        assert_ne!(a, choose_mac(Backend::Qemu, "h", "web", 1, &none).unwrap());
        let lxc = choose_mac(Backend::Lxc, "h", "web", 0, &none).unwrap();
        assert_eq!(&lxc[..3], &[0x00, 0x16, 0x3e]);
        let taken: HashSet<Mac> = [a].into();
        let b = choose_mac(Backend::Qemu, "h", "web", 0, &taken).unwrap();
        assert_ne!(a, b);
        assert_eq!(format(&a).len(), 17);
        assert_eq!(parse(&format(&a)), Some(a));
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
}
