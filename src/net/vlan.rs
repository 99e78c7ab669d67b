//! VLAN networks (#40), pure: names. A VLAN network is a creature network
//! (its own bridge, libvirt's dnsmasq, reservations, filters) whose bridge
//! has one more port: a veth whose other end is an access port of the VLAN
//! on an Open vSwitch bridge, the trunk. Frames leave on the trunk with
//! their 802.1Q tag; machines on another VLAN are on another bridge and
//! another tag. This is Nova's VlanManager (a bridge per VLAN over a tagged
//! uplink), with Open vSwitch doing the tagging, so no 802.1Q module or
//! bridge VLAN filtering is needed in the host's kernel.

use sha2::{Digest, Sha256};

/// The trunk creature makes when `--trunk` is not given.
pub const DEFAULT_TRUNK: &str = "crtrunk0";

/// The uplink's two ends, (bridge side, trunk side): fixed per network, at
/// most 15 characters.
pub fn uplink(network: &str) -> (String, String) {
    let h = crate::image::cache::hex(&Sha256::digest(format!("vlan uplink {network}").as_bytes()));
    (format!("crvl{}b", &h[..9]), format!("crvl{}t", &h[..9]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn uplink_names_fit_and_differ() {
        let (b, t) = super::uplink(&"n".repeat(63));
        assert!(b.len() <= crate::net::IFNAMSIZ && t.len() <= crate::net::IFNAMSIZ);
        assert_ne!(b, t);
        assert_ne!(super::uplink("a"), super::uplink("b"));
        crate::net::check_ifname(&b).unwrap();
    }
}
