//! The nwfilter documents that enforce security groups, and the bindings
//! that put them on a container's host-side veth. One filter per group
//! (a rule change redefines it once and libvirt updates every NIC that
//! uses it, live); one filter per NIC referencing anti-spoofing, its
//! machine's groups and the closing rules. Names begin with the scope of
//! the state directory (its storage pool's name: `creature` for the
//! default one), so two state directories on one libvirtd never touch
//! each other's filters, and carry a `.`, which creature names never do,
//! so a group's filter and a NIC's cannot meet.

use sha2::{Digest, Sha256};

use super::{Cidr, Direction, Proto, Remote, Rule};
use crate::xml::El;

/// Drops what no group allowed; referenced last by a NIC in any group. The
/// same for every scope.
pub const CLOSING: &str = "creature-closing";
/// libvirt's own filter: no MAC, IP or ARP spoofing, no other L2 traffic.
pub const CLEAN_TRAFFIC: &str = "clean-traffic";

/// Group rules sit here; DHCP (900) and the closing drop (1000) after.
const RULE_PRIORITY: &str = "500";

pub fn group_filter_name(scope: &str, group: &str) -> String {
    format!("{scope}.sg.{group}")
}

pub fn nic_filter_name(scope: &str, machine: &str, nic: usize) -> String {
    format!("{scope}.nic.{machine}.{nic}")
}

/// The machine a NIC filter of this scope is for.
pub fn machine_of_nic_filter<'a>(scope: &str, filter: &'a str) -> Option<&'a str> {
    let rest = filter.strip_prefix(scope)?.strip_prefix(".nic.")?;
    let (machine, nic) = rest.rsplit_once('.')?;
    nic.parse::<usize>().ok().map(|_| machine)
}

/// A stable UUID per filter name: redefining a filter must give libvirt
/// the UUID it already has.
pub fn uuid_of(name: &str) -> String {
    let h = Sha256::digest(format!("creature nwfilter {name}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50; // name-based
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let x: Vec<String> = b.iter().map(|v| format!("{v:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        x[0..4].concat(),
        x[4..6].concat(),
        x[6..8].concat(),
        x[8..10].concat(),
        x[10..16].concat()
    )
}

/// A rule with its remote made addresses: a CIDR stays itself, a group
/// becomes its members' reserved addresses (none: the rule admits no one).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved<'a> {
    pub rule: &'a Rule,
    pub remotes: Vec<Cidr>,
}

fn filter(name: &str) -> El {
    El::new("filter")
        .attr("name", name.to_string())
        .attr("chain", "root")
        .child(El::leaf("uuid", uuid_of(name)))
}

/// The protocol element of one rule towards one remote. Attributes are
/// the packet's: inbound, the remote is the source; outbound, the
/// destination. The port is always the destination's (the machine's port
/// inbound, the service's outbound).
fn proto_el(r: &Rule, remote: Cidr) -> El {
    let mut el = El::new(match r.proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Icmp => "icmp",
        Proto::Any => "all",
    });
    if remote != Cidr::ANY {
        let (addr, mask) = match r.direction {
            Direction::In => ("srcipaddr", "srcipmask"),
            Direction::Out => ("dstipaddr", "dstipmask"),
        };
        el = el
            .attr(addr, remote.addr.to_string())
            .attr(mask, remote.prefix.to_string());
    }
    if let Some(p) = r.ports {
        el = el
            .attr("dstportstart", p.min.to_string())
            .attr("dstportend", p.max.to_string());
    }
    el
}

/// A group's filter: one accepting rule per rule and remote. libvirt adds
/// the answers' direction for each (connection state ESTABLISHED).
pub fn group_filter(scope: &str, group: &str, rules: &[Resolved<'_>]) -> String {
    let mut f = filter(&group_filter_name(scope, group));
    for r in rules {
        for remote in &r.remotes {
            f = f.child(
                El::new("rule")
                    .attr("action", "accept")
                    .attr("direction", r.rule.direction.as_str())
                    .attr("priority", RULE_PRIORITY)
                    .child(proto_el(r.rule, *remote)),
            );
        }
    }
    f.render()
}

/// After the groups: DHCP both ways (its broadcasts are no connection
/// conntrack can pair, and a machine must keep its lease), then nothing.
pub fn closing_filter() -> String {
    let dhcp = |direction: &'static str, src: &'static str, dst: &'static str| {
        El::new("rule")
            .attr("action", "accept")
            .attr("direction", direction)
            .attr("priority", "900")
            .attr("statematch", "false")
            .child(
                El::new("udp")
                    .attr("srcportstart", src)
                    .attr("dstportstart", dst),
            )
    };
    let drop = |proto: &'static str| {
        El::new("rule")
            .attr("action", "drop")
            .attr("direction", "inout")
            .attr("priority", "1000")
            .child(El::new(proto))
    };
    filter(CLOSING)
        .child(dhcp("in", "67", "68"))
        .child(dhcp("out", "68", "67"))
        .child(drop("all"))
        .child(drop("all-ipv6"))
        .render()
}

/// A NIC's filter: anti-spoofing unless turned off, then its machine's
/// groups and the closing rules if it is in any. Empty when neither: the
/// NIC keeps the reference, so a group attached later needs no change to
/// the machine.
pub fn nic_filter(
    scope: &str,
    machine: &str,
    nic: usize,
    antispoof: bool,
    groups: &[String],
) -> String {
    let fref = |name: String| El::new("filterref").attr("filter", name);
    let mut f = filter(&nic_filter_name(scope, machine, nic));
    if antispoof {
        f = f.child(fref(CLEAN_TRAFFIC.into()));
    }
    for g in groups {
        f = f.child(fref(group_filter_name(scope, g)));
    }
    if !groups.is_empty() {
        f = f.child(fref(CLOSING.into()));
    }
    f.render()
}

/// A NIC's reference to its filter, with its reserved address (none: libvirt
/// learns it from the NIC's first DHCP or ARP traffic).
pub fn filterref(filter: &str, ip: Option<&str>) -> El {
    El::new("filterref")
        .attr("filter", filter.to_string())
        .children(ip.map(|ip| {
            El::new("parameter")
                .attr("name", "IP")
                .attr("value", ip.to_string())
        }))
}

/// A container NIC's binding: libvirt creates no veth for a container, so
/// the filter is put on the host-side one by name.
pub fn binding(
    scope: &str,
    machine: &str,
    nic: usize,
    portdev: &str,
    mac: &str,
    ip: Option<&str>,
) -> String {
    El::new("filterbinding")
        .child(
            El::new("owner")
                .child(El::leaf("name", machine.to_string()))
                .child(El::leaf(
                    "uuid",
                    uuid_of(&format!("owner {scope} {machine}")),
                )),
        )
        .child(El::new("portdev").attr("name", portdev.to_string()))
        .child(El::new("mac").attr("address", mac.to_string()))
        .child(filterref(&nic_filter_name(scope, machine, nic), ip))
        .render()
}

/// The host-side veth name of a container's NIC: fixed, so its binding can
/// name it before the container exists; 14 characters, so a placeholder's
/// peer can take one more within the kernel's 15.
pub fn veth_name(scope: &str, machine: &str, nic: usize) -> String {
    let h = Sha256::digest(format!("{scope}/{machine}").as_bytes());
    let hex: String = h[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("crv{}{:02x}", &hex[..9], nic % 256)
}

/// The members' addresses of a remote group, or the rule's CIDR.
pub fn resolve<'a>(
    rule: &'a Rule,
    members_of: impl Fn(&str) -> Vec<std::net::Ipv4Addr>,
) -> Resolved<'a> {
    let remotes = match &rule.remote {
        Remote::Cidr(c) => vec![*c],
        Remote::Group(g) => {
            let mut v: Vec<Cidr> = members_of(g).into_iter().map(Cidr::host).collect();
            v.sort();
            v.dedup();
            v
        }
    };
    Resolved { rule, remotes }
}
