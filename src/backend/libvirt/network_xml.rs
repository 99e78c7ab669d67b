//! libvirt network XML and DHCP host entries: pure, golden-tested.

use std::net::Ipv4Addr;

use crate::net::{NetMode, NetworkSpec};
use crate::xml::El;

pub fn render(s: &NetworkSpec) -> String {
    let mut net = El::new("network").child(El::leaf("name", s.libvirt_name()));
    net = match s.mode {
        NetMode::Nat | NetMode::Route | NetMode::Bridge => {
            net.child(El::new("forward").attr("mode", s.mode.as_str()))
        }
        NetMode::Isolated => net, // no forward element
    };
    if s.mode == NetMode::Bridge {
        // Flat: an existing host bridge; libvirt neither makes it nor runs DHCP.
        // On an Open vSwitch bridge, libvirt tags each machine's port.
        return net
            .child(El::new("bridge").attr("name", s.bridge.clone()))
            .children(
                s.ovs_vlan
                    .map(|_| El::new("virtualport").attr("type", "openvswitch")),
            )
            .children(
                s.ovs_vlan
                    .map(|v| El::new("vlan").child(El::new("tag").attr("id", v.to_string()))),
            )
            .render();
    }
    net = net.child(
        El::new("bridge")
            .attr("name", s.bridge.clone())
            .attr("stp", "on")
            .attr("delay", "0"),
    );
    if let Some(sub) = &s.subnet {
        let mut ip = El::new("ip")
            .attr("address", sub.gateway().to_string())
            .attr("netmask", sub.mask().to_string());
        if let (Some((a, b)), true) = (s.dhcp, s.serve_dhcp) {
            ip = ip.child(
                El::new("dhcp").child(
                    El::new("range")
                        .attr("start", a.to_string())
                        .attr("end", b.to_string()),
                ),
            );
        }
        net = net.child(ip);
    }
    net.render()
}

/// A static DHCP host entry (virNetworkUpdate, section ip-dhcp-host).
pub fn dhcp_host(mac: &str, name: &str, ip: Ipv4Addr) -> String {
    El::new("host")
        .attr("mac", mac)
        .attr("name", name)
        .attr("ip", ip.to_string())
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: NetMode) -> NetworkSpec {
        let sub: crate::net::ipv4::Subnet = "10.23.5.0/24".parse().unwrap();
        NetworkSpec {
            name: "lan".into(),
            mode,
            bridge: if mode == NetMode::Bridge {
                "br0".into()
            } else {
                "crbr-lan".into()
            },
            subnet: (mode != NetMode::Bridge).then_some(sub),
            dhcp: (mode != NetMode::Bridge).then(|| sub.default_range()),
            serve_dhcp: mode != NetMode::Bridge,
            ovs_vlan: None,
        }
    }

    #[test]
    fn golden_per_mode() {
        for mode in NetMode::ALL {
            crate::golden::check(&format!("network/{mode}.xml"), &render(&spec(mode)));
        }
        // --no-dhcp: the subnet and the host's address, no DHCP server.
        let quiet = NetworkSpec {
            serve_dhcp: false,
            ..spec(NetMode::Isolated)
        };
        crate::golden::check("network/isolated-no-dhcp.xml", &render(&quiet));
        // A VLAN of another host's Open vSwitch bridge: libvirt tags the ports.
        let vlan = NetworkSpec {
            bridge: "ovsbr0".into(),
            ovs_vlan: Some(100),
            ..spec(NetMode::Bridge)
        };
        crate::golden::check("network/bridge-ovs-vlan.xml", &render(&vlan));
    }

    #[test]
    fn host_entry() {
        assert_eq!(
            dhcp_host("52:54:00:01:02:03", "web", Ipv4Addr::new(10, 23, 5, 130)),
            "<host mac=\"52:54:00:01:02:03\" name=\"web\" ip=\"10.23.5.130\"/>\n"
        );
    }
}
