//! IPv4 subnets: parsing, membership and the addresses a network reserves.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let mask = Self::mask_of(prefix);
        Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        }
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    pub fn mask(&self) -> Ipv4Addr {
        Ipv4Addr::from(Self::mask_of(self.prefix))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !Self::mask_of(self.prefix))
    }

    /// The first host address: the bridge's own (the gateway).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & Self::mask_of(self.prefix) == u32::from(self.network)
    }

    pub fn overlaps(&self, o: &Subnet) -> bool {
        self.contains(o.network) || o.contains(self.network)
    }

    /// Usable for a machine: inside, not the network, broadcast or gateway.
    pub fn host_usable(&self, a: Ipv4Addr) -> bool {
        self.contains(a) && a != self.network && a != self.broadcast() && a != self.gateway()
    }

    /// The default DHCP range: the upper half of the host addresses.
    pub fn default_range(&self) -> (Ipv4Addr, Ipv4Addr) {
        let first = u32::from(self.gateway()) + 1;
        let last = u32::from(self.broadcast()) - 1;
        let mid = first + (last - first) / 2;
        (Ipv4Addr::from(mid.max(first)), Ipv4Addr::from(last))
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(s: &str) -> Result<Subnet, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR subnet such as 10.20.30.0/24"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{s:?}: {a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("{s:?}: /{p} is not a prefix length"))?;
        if !(8..=29).contains(&prefix) {
            return Err(format!(
                "{s:?}: the prefix must be from /8 to /29 (room for a gateway and machines)"
            ));
        }
        let net = Subnet::new(addr, prefix);
        if net.network != addr {
            return Err(format!("{s:?} has host bits set; did you mean {net}?"));
        }
        Ok(net)
    }
}

impl serde::Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// A free /24 in 10.0.0.0/8 overlapping none of `taken`, starting from a
/// place derived from `seed` so networks spread out.
pub fn pick_free(seed: &str, taken: &[Subnet]) -> Option<Subnet> {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(seed.as_bytes());
    let start = u32::from(u16::from_be_bytes([h[0], h[1]]));
    (0..65536u32).find_map(|i| {
        let n = (start + i) % 65536;
        let cand = Subnet::new(Ipv4Addr::new(10, (n >> 8) as u8, (n & 0xff) as u8, 0), 24);
        (!taken.iter().any(|t| t.overlaps(&cand))).then_some(cand)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_describes() {
        let s: Subnet = "10.1.2.0/24".parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 1, 2, 1));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 1, 2, 255));
        assert_eq!(s.mask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(
            s.default_range(),
            (Ipv4Addr::new(10, 1, 2, 128), Ipv4Addr::new(10, 1, 2, 254))
        );
        assert!(s.host_usable(Ipv4Addr::new(10, 1, 2, 9)));
        assert!(!s.host_usable(Ipv4Addr::new(10, 1, 2, 1)));
        assert!(!s.host_usable(Ipv4Addr::new(10, 1, 2, 255)));
        let tiny: Subnet = "10.9.9.8/29".parse().unwrap();
        assert_eq!(
            tiny.default_range(),
            (Ipv4Addr::new(10, 9, 9, 12), Ipv4Addr::new(10, 9, 9, 14))
        );
    }

    #[test]
    fn rejects_bad_cidrs() {
        for bad in [
            "10.1.2.0",
            "10.1.2.0/33",
            "10.1.2.0/30",
            "10.1.2.5/24",
            "300.1.2.0/24",
            "x/24",
            "10.0.0.0/7",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad}");
        }
        assert!("10.1.2.5/24"
            .parse::<Subnet>()
            .unwrap_err()
            .contains("did you mean 10.1.2.0/24"));
    }

    #[test]
    fn auto_avoids_taken_subnets() {
        let first = pick_free("lan", &[]).unwrap();
        let again = pick_free("lan", &[first]).unwrap();
        assert_ne!(first, again);
        let wide: Subnet = "10.0.0.0/9".parse().unwrap();
        let p = pick_free("lan", &[wide]).unwrap();
        assert!(!wide.overlaps(&p));
        assert!(p.network.octets()[1] >= 128);
    }
}
