//! MAC addresses: parsed strictly where a user gives one, leniently where
//! the host reports one.

use std::fmt;
use std::str::FromStr;

use crate::backend::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

const SHAPE: &str = "must be six hex pairs like 52:54:00:12:34:56";

/// libvirt gives a VM's host-side tap the guest's MAC with the first octet
/// set to this, so a guest MAC starting with it collides with another
/// guest's tap.
pub const TAP_OCTET: u8 = 0xfe;

impl Mac {
    /// The OUI: 52:54:00 (QEMU/KVM) or 00:16:3e (Xen, also used for LXC).
    pub fn prefix(b: Backend) -> [u8; 3] {
        match b {
            Backend::Kvm | Backend::Qemu => [0x52, 0x54, 0x00],
            Backend::Xen | Backend::Lxc => [0x00, 0x16, 0x3e],
        }
    }

    /// Any six hex pairs, as the host reports MACs (its taps included).
    pub fn parse_any(s: &str) -> Option<Mac> {
        let mut b = [0u8; 6];
        let mut parts = s.split(':');
        for byte in b.iter_mut() {
            let p = parts.next()?;
            if p.len() != 2 {
                return None;
            }
            *byte = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(b))
    }
}

/// A MAC a machine's NIC may have: unicast, not zero, not a tap's.
impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let m = Mac::parse_any(s).ok_or_else(|| format!("MAC {s:?} {SHAPE}"))?;
        if m.0 == [0; 6] {
            return Err(format!("MAC {s:?} is all zeros"));
        }
        if m.0[0] & 1 == 1 {
            return Err(format!(
                "MAC {s:?} is a multicast or broadcast address; a NIC needs a unicast one"
            ));
        }
        if m.0[0] == TAP_OCTET {
            return Err(format!(
                "MAC {s:?} starts with fe, which libvirt gives the host side of every VM's tap; choose another first octet (52:54:00 for VMs, 00:16:3e for containers)"
            ));
        }
        Ok(m)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_for_nics_lenient_for_the_host() {
        let m: Mac = "52:54:00:AA:bb:01".parse().unwrap();
        assert_eq!(m.to_string(), "52:54:00:aa:bb:01");
        for (bad, why) in [
            ("52:54:00:aa:bb", "six hex pairs"),
            ("52:54:00:aa:bb:01:02", "six hex pairs"),
            ("52:54:00:aa:bb:1", "six hex pairs"),
            ("52:54:00:aa:bb:zz", "six hex pairs"),
            ("00:00:00:00:00:00", "all zeros"),
            ("ff:ff:ff:ff:ff:ff", "multicast or broadcast"),
            ("01:00:5e:00:00:01", "multicast"),
            ("fe:54:00:aa:bb:01", "tap"),
        ] {
            let e = bad.parse::<Mac>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(
            Mac::parse_any("fe:54:00:aa:bb:01"),
            Some(Mac([0xfe, 0x54, 0, 0xaa, 0xbb, 1]))
        );
        assert_eq!(Mac::parse_any("fe:54:00:aa:bb"), None);
    }
}
