use std::net::Ipv4Addr;

use super::filter::*;
use super::*;

fn rule(d: Direction, p: Proto, ports: Option<&str>, remote: Remote) -> Rule {
    Rule {
        direction: d,
        proto: p,
        ports: ports.map(|s| s.parse().unwrap()),
        remote,
    }
}

#[test]
fn cidrs_and_ports_parse_or_say_why() {
    assert_eq!(
        "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        "10.1.2.3".parse::<Cidr>().unwrap().to_string(),
        "10.1.2.3/32"
    );
    assert_eq!("0.0.0.0/0".parse::<Cidr>().unwrap(), Cidr::ANY);
    for (bad, why) in [
        ("10.0.0.1/24", "did you mean 10.0.0.0/24?"),
        ("10.0.0.0/33", "from 0 to 32"),
        ("fe80::/64", "not an address"),
        ("", "not an address"),
    ] {
        let e = bad.parse::<Cidr>().unwrap_err();
        assert!(e.message().contains(why), "{bad}: {}", e.message());
    }
    assert_eq!("22".parse::<Ports>().unwrap(), Ports { min: 22, max: 22 });
    assert_eq!(
        "8000-8080".parse::<Ports>().unwrap().to_string(),
        "8000-8080"
    );
    for bad in ["0", "80-22", "65536", "a", "1-", "-1"] {
        assert!(bad.parse::<Ports>().is_err(), "{bad}");
    }
    let icmp_port = rule(
        Direction::In,
        Proto::Icmp,
        Some("22"),
        Remote::Cidr(Cidr::ANY),
    );
    assert!(icmp_port
        .check()
        .unwrap_err()
        .message()
        .contains("no ports"));
    let bad_group = rule(Direction::In, Proto::Any, None, Remote::Group("Bad".into()));
    assert!(bad_group.check().is_err());
}

#[test]
fn rules_describe_themselves() {
    let r = rule(
        Direction::In,
        Proto::Tcp,
        Some("22"),
        Remote::Cidr("10.0.0.0/24".parse().unwrap()),
    );
    assert_eq!(r.describe(), "in tcp port 22 from 10.0.0.0/24");
    assert_eq!(Rule::egress_all().describe(), "out any to 0.0.0.0/0");
    let g = rule(
        Direction::In,
        Proto::Icmp,
        None,
        Remote::Group("web".into()),
    );
    assert_eq!(g.describe(), "in icmp from group web");
}

#[test]
fn golden_filters() {
    let rules = [
        rule(
            Direction::In,
            Proto::Tcp,
            Some("22"),
            Remote::Cidr("10.23.5.0/24".parse().unwrap()),
        ),
        rule(
            Direction::In,
            Proto::Udp,
            Some("5000-5010"),
            Remote::Cidr(Cidr::ANY),
        ),
        rule(
            Direction::In,
            Proto::Icmp,
            None,
            Remote::Group("web".into()),
        ),
        rule(
            Direction::In,
            Proto::Tcp,
            None,
            Remote::Group("empty".into()),
        ),
        Rule::egress_all(),
    ];
    let members = |g: &str| -> Vec<Ipv4Addr> {
        match g {
            "web" => vec![Ipv4Addr::new(10, 23, 5, 9), Ipv4Addr::new(10, 23, 5, 7)],
            _ => vec![],
        }
    };
    let resolved: Vec<Resolved<'_>> = rules.iter().map(|r| resolve(r, members)).collect();
    // A group with no members admits no one: no rule at all.
    assert!(resolved[3].remotes.is_empty());
    let x = group_filter("creature", "ssh", &resolved);
    crate::golden::check("nwfilter/group.xml", &x);
    assert_eq!(x.matches("<rule ").count(), 5, "{x}");
    crate::golden::check("nwfilter/closing.xml", &closing_filter());
    let nic = nic_filter("creature", "web-1", 0, true, &["ssh".into(), "web".into()]);
    crate::golden::check("nwfilter/nic.xml", &nic);
    let first = |n: &str| nic.find(n).unwrap();
    assert!(first("clean-traffic") < first("creature.sg.ssh"));
    assert!(first("creature.sg.web") < first(CLOSING));
    // Neither anti-spoofing nor a group: an empty filter, still referenced.
    let empty = nic_filter("creature", "web-1", 1, false, &[]);
    assert!(!empty.contains("filterref"), "{empty}");
    crate::golden::check(
        "nwfilter/binding.xml",
        &binding(
            "creature",
            "box-1",
            0,
            &veth_name("creature", "box-1", 0),
            "00:16:3e:12:34:56",
            Some("10.23.5.130"),
        ),
    );
}

#[test]
fn names_and_uuids_are_stable_and_distinct() {
    assert_eq!(uuid_of("creature.sg.ssh"), uuid_of("creature.sg.ssh"));
    assert_ne!(uuid_of("creature.sg.ssh"), uuid_of("creature.sg.web"));
    let u = uuid_of("x");
    assert_eq!(u.len(), 36);
    assert_eq!(&u[14..15], "5");
    // A group named like a NIC filter's tail cannot collide with it.
    assert_ne!(
        group_filter_name("creature", "nic.x.0"),
        nic_filter_name("creature", "x", 0)
    );
    let f = nic_filter_name("creature-0a1b2c3d", "web-1", 3);
    assert_eq!(f, "creature-0a1b2c3d.nic.web-1.3");
    assert_eq!(
        machine_of_nic_filter("creature-0a1b2c3d", &f),
        Some("web-1")
    );
    // Another state directory's filters are not this one's.
    assert_eq!(machine_of_nic_filter("creature", &f), None);
    assert_eq!(machine_of_nic_filter("creature", "creature.sg.web"), None);
    let v = veth_name("creature", &"m".repeat(63), 200);
    assert_eq!(v.len(), crate::net::IFNAMSIZ - 1, "{v}");
    assert_ne!(veth_name("creature", "a", 0), veth_name("creature", "b", 0));
    assert_ne!(veth_name("creature", "a", 0), veth_name("creature", "a", 1));
    assert_ne!(
        veth_name("creature", "a", 0),
        veth_name("creature-0a1b2c3d", "a", 0)
    );
}
