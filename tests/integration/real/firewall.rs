//! Network security (#36, #38). Every NIC creature makes references a
//! filter of its own holding libvirt's clean-traffic by default: a guest
//! that sends from another address it gave itself gets no answer, and with
//! `nic.antispoof = false` (a router) the same packet goes through, so the
//! filter is what stops it. Security groups, proven by real traffic to a VM
//! and a container on one network: only what a rule allows gets in, live
//! rule changes and membership changes apply at once, and nothing is left
//! in libvirt afterwards.

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use super::vm::{virsh, Lab};

/// Whether one ping from `src` to the gateway is answered (the guest's `ip`
/// and `ping` are busybox's).
fn answered(lab: &Lab, m: &str, src: &str) -> bool {
    let out = lab.guest(
        m,
        &format!("ping -c 1 -W 3 -I {src} 10.93.0.1 >/dev/null 2>&1 && echo yes || echo no"),
    );
    out == "yes"
}

/// The name of a machine's first NIC's filter in the lab's scope.
fn nic_filter(lab: &Lab, m: &str) -> String {
    creature::secgroup::filter::nic_filter_name(
        &creature::backend::firewall::scope(lab.path()),
        m,
        0,
    )
}

fn nic_filter_xml(lab: &Lab, m: &str) -> String {
    let out = virsh(&["nwfilter-dumpxml", &nic_filter(lab, m)]);
    assert!(out.status.success(), "no filter for {m}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_guest_cannot_send_from_an_address_it_was_not_given() {
    let Some(lab) = Lab::if_available("a_guest_cannot_send_from_an_address_it_was_not_given")
    else {
        return;
    };
    lab.run(&["net", "create", "fw", "--subnet", "10.93.0.0/24"])
        .ok();
    for (m, extra) in [("fw-vm", None), ("fw-open", Some("nic.0.antispoof=false"))] {
        let mut args = vec![
            "launch",
            m,
            "-t",
            "tiny",
            "--network",
            "fw",
            "--wait",
            "lease",
        ];
        if let Some(e) = extra {
            args.extend(["--set", e]);
        }
        lab.run(&args).ok();
    }
    // Each NIC references its own filter, which holds clean-traffic or not.
    let filtered = String::from_utf8_lossy(&virsh(&["dumpxml", "fw-vm"]).stdout).into_owned();
    assert!(
        filtered.contains(&format!("filter='{}'", nic_filter(&lab, "fw-vm"))),
        "{filtered}"
    );
    assert!(nic_filter_xml(&lab, "fw-vm").contains("filter='clean-traffic'"));
    assert!(!nic_filter_xml(&lab, "fw-open").contains("clean-traffic"));
    for (m, spoof) in [("fw-vm", "10.93.0.250"), ("fw-open", "10.93.0.251")] {
        let own = lab.reserved_ip(m);
        assert!(answered(&lab, m, &own), "{m}: its own address is answered");
        lab.guest(m, &format!("ip addr add {spoof}/24 dev eth0"));
        let got = answered(&lab, m, spoof);
        assert_eq!(
            got,
            m == "fw-open",
            "{m}: a ping from {spoof} answered: {got}"
        );
    }
    // A network of routers: none of its VM NICs is filtered.
    lab.run(&[
        "net",
        "create",
        "fw-r",
        "--subnet",
        "10.94.0.0/24",
        "--no-antispoof",
    ])
    .ok();
    let j = lab
        .run(&["net", "info", "fw-r", "--format", "json"])
        .ok()
        .json();
    assert_eq!(j["antispoof"], false, "{j}");
    lab.run(&["create", "fw-router", "-t", "tiny", "--network", "fw-r"])
        .ok();
    assert!(!nic_filter_xml(&lab, "fw-router").contains("clean-traffic"));
    lab.run(&[
        "delete",
        "fw-vm",
        "fw-open",
        "fw-router",
        "--force",
        "--yes",
    ])
    .ok();
    lab.run(&["net", "delete", "fw", "--yes"]).ok();
    lab.run(&["net", "delete", "fw-r", "--yes"]).ok();
}

/// A TCP connection from this host (the network's gateway) that the
/// machine's listener answers with "open".
fn host_gets_in(ip: &str, port: u16) -> bool {
    let addr = format!("{ip}:{port}").parse().unwrap();
    // On one bridge an answer takes milliseconds, a TCG guest's included.
    match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(mut s) => {
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut said = String::new();
            let _ = s.read_to_string(&mut said);
            said.contains("open")
        }
        Err(_) => false,
    }
}

/// The same from inside machine `from`.
fn machine_gets_in(lab: &Lab, from: &str, ip: &str, port: u16) -> bool {
    lab.guest(
        from,
        &format!("timeout 3 nc {ip} {port} </dev/null 2>/dev/null; true"),
    )
    .contains("open")
}

fn host_pings(ip: &str) -> bool {
    Command::new("busybox")
        .args(["ping", "-c", "1", "-W", "2", ip])
        .output()
        .unwrap()
        .status
        .success()
}

/// A listener answering "open" on each port, left running in the machine.
fn listen(lab: &Lab, m: &str, ports: &[u16]) {
    for p in ports {
        lab.guest(
            m,
            &format!("setsid nc -ll -p {p} -e /bin/echo open </dev/null >/dev/null 2>&1 &"),
        );
    }
}

fn scope_filters(lab: &Lab) -> Vec<String> {
    let prefix = format!("{}.", creature::backend::firewall::scope(lab.path()));
    String::from_utf8_lossy(&virsh(&["nwfilter-list"]).stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|n| n.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

fn bindings() -> String {
    String::from_utf8_lossy(&virsh(&["nwfilter-binding-list"]).stdout).into_owned()
}

#[test]
fn security_groups_filter_a_vm_and_a_container_live() {
    let Some(lab) = Lab::if_available("security_groups_filter_a_vm_and_a_container_live") else {
        return;
    };
    lab.run(&["net", "create", "sg", "--subnet", "10.96.0.0/24"])
        .ok();
    lab.run(&["secgroup", "create", "web", "--description", "the web tier"])
        .ok()
        .stdout_has("created security group web");
    lab.run(&["secgroup", "create", "clients"]).ok();
    lab.run(&["secgroup", "create", "web"])
        .code(5)
        .stderr_has("already exists");
    // The group every machine named in a template must exist first.
    lab.run(&[
        "create",
        "sg-none",
        "-t",
        "lxc-busybox",
        "--network",
        "sg",
        "--set",
        "security_groups=[\"nosuch\"]",
    ])
    .code(4)
    .stderr_has("security group \"nosuch\" not found");

    // Two machines in group web from their templates, a VM and a
    // container; a peer in no group (not filtered but for anti-spoofing).
    lab.run(&[
        "launch",
        "sg-vm",
        "-t",
        "tiny",
        "--network",
        "sg",
        "--wait",
        "lease",
        "--set",
        "security_groups=[\"web\"]",
    ])
    .ok();
    // The peer is a router (anti-spoofing off), to show what the filter stops.
    for (m, set) in [
        ("sg-ct", "security_groups=[\"web\"]"),
        ("sg-peer", "nic.0.antispoof=false"),
    ] {
        lab.run(&[
            "launch",
            m,
            "-t",
            "lxc-busybox",
            "--network",
            "sg",
            "--wait",
            "lease",
            "--set",
            set,
        ])
        .ok();
    }
    let (vm, ct, peer) = (
        lab.reserved_ip("sg-vm"),
        lab.reserved_ip("sg-ct"),
        lab.reserved_ip("sg-peer"),
    );
    // The container's filter sits on its host-side veth, bound by name.
    let b = bindings();
    let veth = creature::secgroup::filter::veth_name(
        &creature::backend::firewall::scope(lab.path()),
        "sg-ct",
        0,
    );
    assert!(b.contains(&veth), "{b}");
    for m in ["sg-vm", "sg-ct"] {
        listen(&lab, m, &[22, 80]);
    }

    // Only outbound is allowed so far: nothing gets in, answers get out.
    for ip in [&vm, &ct] {
        assert!(!host_gets_in(ip, 22), "{ip}:22 open with no inbound rule");
        assert!(!host_pings(ip), "{ip} answers pings with no icmp rule");
    }
    assert!(
        lab.guest("sg-ct", "ping -c 1 -W 2 10.96.0.1 >/dev/null && echo yes")
            .contains("yes"),
        "outbound (and its answer) allowed by the default rule"
    );

    // tcp/22 from the peer alone: the peer gets in, this host does not.
    lab.run(&[
        "secgroup",
        "rule",
        "add",
        "web",
        "--direction",
        "in",
        "--proto",
        "tcp",
        "--port",
        "22",
        "--remote",
        &format!("{peer}/32"),
    ])
    .ok()
    .stdout_has("(2 machines, live)");
    for ip in [&vm, &ct] {
        assert!(machine_gets_in(&lab, "sg-peer", ip, 22), "peer -> {ip}:22");
        assert!(!host_gets_in(ip, 22), "host -> {ip}:22 let in");
        assert!(
            !machine_gets_in(&lab, "sg-peer", ip, 80),
            "peer -> {ip}:80 let in"
        );
    }
    // A rule added live opens icmp, with no restart.
    lab.run(&[
        "secgroup",
        "rule",
        "add",
        "web",
        "--direction",
        "in",
        "--proto",
        "icmp",
    ])
    .ok();
    for ip in [&vm, &ct] {
        assert!(
            host_pings(ip),
            "{ip} does not answer pings after the icmp rule"
        );
    }
    // --remote-group: port 80 for members of clients only, following
    // membership live.
    lab.run(&[
        "secgroup",
        "rule",
        "add",
        "web",
        "--direction",
        "in",
        "--proto",
        "tcp",
        "--port",
        "80",
        "--remote-group",
        "clients",
    ])
    .ok();
    assert!(
        !machine_gets_in(&lab, "sg-peer", &ct, 80),
        "not yet a client"
    );
    lab.run(&["secgroup", "attach", "sg-peer", "clients"])
        .ok()
        .stdout_has("added sg-peer to security group clients");
    for ip in [&vm, &ct] {
        assert!(
            machine_gets_in(&lab, "sg-peer", ip, 80),
            "client -> {ip}:80"
        );
        assert!(!host_gets_in(ip, 80), "host -> {ip}:80 let in");
    }
    // show and list say it all, for scripts too.
    let j = lab
        .run(&["secgroup", "show", "web", "--format", "json"])
        .ok()
        .json();
    assert_eq!(j["machines"], serde_json::json!(["sg-ct", "sg-vm"]), "{j}");
    assert_eq!(j["description"], "the web tier");
    let rules: Vec<&str> = j["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "out any to 0.0.0.0/0",
            &format!("in tcp port 22 from {peer}/32"),
            "in icmp from 0.0.0.0/0",
            "in tcp port 80 from group clients"
        ]
    );
    assert_eq!(j["rules"][3]["remote_group"], "clients");
    // In use: a group cannot go.
    lab.run(&["secgroup", "delete", "web", "--yes"])
        .code(5)
        .stderr_has("used by sg-ct, sg-vm");
    lab.run(&["secgroup", "delete", "clients", "--yes"])
        .code(5)
        .stderr_has("sg-peer");

    // Outbound: without the default rule, the machine's own traffic stops
    // (its answers to allowed inbound still pass).
    lab.run(&[
        "secgroup",
        "rule",
        "remove",
        "web",
        "--direction",
        "out",
        "--proto",
        "any",
    ])
    .ok();
    assert!(
        !lab.guest(
            "sg-ct",
            "ping -c 1 -W 2 10.96.0.1 >/dev/null && echo yes; true"
        )
        .contains("yes"),
        "outbound still allowed"
    );
    assert!(host_pings(&ct), "answers to allowed inbound stopped");

    // Detach, live: the VM is open again but for anti-spoofing.
    lab.run(&["secgroup", "detach", "sg-vm", "web"]).ok();
    assert!(host_gets_in(&vm, 80), "detached, yet filtered");
    assert!(!host_gets_in(&ct, 80), "the container is still in web");

    // A container cannot send from an address it was not given; the
    // unfiltered peer proves the packet would otherwise be answered.
    lab.run(&[
        "secgroup",
        "rule",
        "add",
        "web",
        "--direction",
        "out",
        "--proto",
        "any",
    ])
    .ok();
    let ping_from = |m: &str, src: &str| {
        lab.guest(
            m,
            &format!("ping -c 1 -W 2 -I {src} 10.96.0.1 >/dev/null && echo yes; true"),
        )
        .contains("yes")
    };
    for (m, spoof, filtered) in [
        ("sg-ct", "10.96.0.250", true),
        ("sg-peer", "10.96.0.251", false),
    ] {
        lab.guest(m, &format!("ip addr add {spoof}/24 dev eth0"));
        let got = ping_from(m, spoof);
        assert_eq!(got, !filtered, "{m} sent from {spoof}: answered {got}");
    }
    // Another MAC, its own address: dropped for the filtered one only.
    for (m, mac, filtered) in [
        ("sg-ct", "00:16:3e:aa:bb:01", true),
        ("sg-peer", "00:16:3e:aa:bb:02", false),
    ] {
        lab.guest(m, &format!("ip link set eth0 address {mac}"));
        let own = lab.reserved_ip(m);
        let got = ping_from(m, &own);
        assert_eq!(got, !filtered, "{m} sent as {mac}: answered {got}");
    }

    // Deleting the machines removes their filters and bindings; then the
    // groups go, and nothing of this state directory is left in libvirt.
    lab.run(&["delete", "sg-vm", "sg-ct", "sg-peer", "--force", "--yes"])
        .ok();
    assert!(!bindings().contains(&veth), "{}", bindings());
    lab.run(&["secgroup", "delete", "web", "--yes"]).ok();
    lab.run(&["secgroup", "delete", "clients", "--yes"]).ok();
    assert_eq!(scope_filters(&lab), Vec::<String>::new());
    lab.run(&["net", "delete", "sg", "--yes"]).ok();
}
