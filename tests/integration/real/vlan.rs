//! VLAN networks (#40), proven by traffic over a real Open vSwitch trunk
//! (ovs-vswitchd in userspace, started by scripts/ns-run): machines of a
//! VLAN network reach each other and, across the trunk, a far end on the
//! same VLAN, but not a far end in the same subnet on another VLAN; frames
//! on the trunk carry their 802.1Q tag (tcpdump); DHCP reservations work
//! on a VLAN network as on any other.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::vm::Lab;
use crate::util::run_ok;

fn sh(prog: &str, args: &[&str]) {
    run_ok(Command::new(prog).args(args));
}

/// A far end on the trunk: a namespace behind an access port of `vlan`
/// with `addr`, as another host on that VLAN would be.
fn far_end(name: &str, vlan: u16, addrs: &[&str]) {
    let (port, inner) = (format!("cf{name}"), format!("cf{name}p"));
    sh("ip", &["netns", "add", name]);
    sh(
        "ip",
        &["link", "add", &port, "type", "veth", "peer", "name", &inner],
    );
    sh("ip", &["link", "set", &inner, "netns", name]);
    sh("ip", &["link", "set", &port, "up"]);
    for a in addrs {
        sh("ip", &["-n", name, "addr", "add", a, "dev", &inner]);
    }
    sh("ip", &["-n", name, "link", "set", &inner, "up"]);
    sh(
        "ovs-vsctl",
        &[
            "add-port",
            "crtrunk0",
            &port,
            "--",
            "set",
            "port",
            &port,
            &format!("tag={vlan}"),
        ],
    );
}

fn pings(lab: &Lab, m: &str, ip: &str) -> bool {
    lab.guest(
        m,
        &format!("ping -c 1 -W 2 {ip} >/dev/null && echo yes; true"),
    )
    .contains("yes")
}

#[test]
fn vlan_networks_tag_frames_on_the_trunk_and_keep_vlans_apart() {
    let Some(lab) = Lab::if_available("vlan_networks_tag_frames_on_the_trunk_and_keep_vlans_apart")
    else {
        return;
    };
    let j = lab.run(&["host", "info", "--format", "json"]).ok().json();
    assert_eq!(j["vlan"]["usable"], true, "{j}");
    lab.run(&[
        "net",
        "create",
        "v100",
        "--vlan",
        "100",
        "--subnet",
        "10.98.0.0/24",
        "--mode",
        "isolated",
    ])
    .ok()
    .stdout_has("VLAN 100 on crtrunk0");
    lab.run(&[
        "net",
        "create",
        "v200",
        "--vlan",
        "200",
        "--subnet",
        "10.98.1.0/24",
        "--mode",
        "isolated",
    ])
    .ok();
    lab.run(&[
        "net", "create", "v-bad", "--vlan", "300", "--mode", "bridge", "--bridge", "x",
    ])
    .code(2)
    .stderr_has("on this host a VLAN network has a bridge of its own");
    let j = lab
        .run(&["net", "info", "v100", "--format", "json"])
        .ok()
        .json();
    assert_eq!(
        (j["vlan"].as_u64(), j["trunk"].as_str()),
        (Some(100), Some("crtrunk0"))
    );
    // The uplink's trunk end is an access port of the VLAN.
    let rec = creature::store::Store::open(lab.path())
        .unwrap()
        .network("local", "v100")
        .unwrap()
        .unwrap();
    assert_eq!(creature::backend::ovs::port_tag(&rec).unwrap(), Some(100));

    // A container and a qemu VM on VLAN 100, a container on 200, each
    // with its reservation by DHCP; a kvm domain's NIC on VLAN 100's bridge
    // (rule 5: the same path as qemu's).
    for (m, t, net) in [
        ("vl-a", "lxc-busybox", "v100"),
        ("vl-vm", "tiny", "v100"),
        ("vl-b", "lxc-busybox", "v200"),
    ] {
        lab.run(&["launch", m, "-t", t, "--network", net, "--wait", "lease"])
            .ok();
    }
    lab.run(&["launch", "vl-kvm", "-t", "tiny-kvm", "--network", "v100"])
        .ok();
    let ports: Vec<String> = std::fs::read_dir("/sys/class/net/crbr-v100/brif")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        ports.iter().filter(|p| p.starts_with("vnet")).count() == 2
            && ports.contains(&creature::net::vlan::uplink("v100").0),
        "ports of VLAN 100's bridge: {ports:?}"
    );
    let (vm, a) = (lab.reserved_ip("vl-vm"), lab.reserved_ip("vl-a"));
    assert!(pings(&lab, "vl-a", &vm), "same VLAN: container -> qemu VM");
    assert!(!pings(&lab, "vl-b", &a), "VLAN 200 reached VLAN 100");

    // Far ends behind the trunk: one on VLAN 100, one in the same subnet on
    // VLAN 200 (only the tag keeps it apart), which also serves VLAN 200's.
    far_end("far100", 100, &["10.98.0.250/24"]);
    far_end("far200", 200, &["10.98.0.251/24", "10.98.1.250/24"]);
    assert!(
        pings(&lab, "vl-a", "10.98.0.250"),
        "across the trunk on VLAN 100"
    );
    assert!(
        pings(&lab, "vl-vm", "10.98.0.250"),
        "the VM across the trunk"
    );
    assert!(
        !pings(&lab, "vl-a", "10.98.0.251"),
        "VLAN 200's far end, same subnet, reached"
    );
    assert!(
        pings(&lab, "vl-b", "10.98.1.250"),
        "VLAN 200 across the trunk"
    );

    // On a trunk port (no tag: every VLAN), frames carry their 802.1Q tag.
    sh(
        "ip",
        &[
            "link", "add", "cftap", "type", "veth", "peer", "name", "cftapp",
        ],
    );
    sh("ip", &["link", "set", "cftap", "up"]);
    sh("ip", &["link", "set", "cftapp", "up"]);
    sh("ovs-vsctl", &["add-port", "crtrunk0", "cftap"]);
    let dump = Command::new("timeout")
        .args(["10", "tcpdump", "-e", "-n", "-l", "-i", "cftapp", "vlan"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_secs(1));
    // No one has these addresses: the ARP requests flood every port.
    lab.guest("vl-a", "ping -c 2 -W 1 10.98.0.77 >/dev/null; true");
    lab.guest("vl-b", "ping -c 2 -W 1 10.98.1.77 >/dev/null; true");
    let out = dump.wait_with_output().unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.contains("vlan 100"),
        "no frame tagged 100 on the trunk:\n{seen}"
    );
    assert!(
        seen.contains("vlan 200"),
        "no frame tagged 200 on the trunk:\n{seen}"
    );

    // A restart of the network's bridge puts its uplink back on it.
    lab.run(&["net", "stop", "v200", "--yes"]).ok();
    lab.run(&["net", "start", "v200"]).ok();
    let (b, _) = creature::net::vlan::uplink("v200");
    let master = std::fs::read_link(format!("/sys/class/net/{b}/master")).unwrap();
    assert!(master.ends_with("crbr-v200"), "{}", master.display());

    lab.run(&[
        "delete", "vl-a", "vl-vm", "vl-kvm", "vl-b", "--force", "--yes",
    ])
    .ok();
    lab.run(&["net", "delete", "v100", "--yes"]).ok();
    lab.run(&["net", "delete", "v200", "--yes"]).ok();
    let ports = run_ok(Command::new("ovs-vsctl").args(["list-ports", "crtrunk0"])).stdout;
    let ports = String::from_utf8_lossy(&ports);
    assert!(
        !ports.contains("crvl"),
        "uplinks left on the trunk: {ports}"
    );
    // The far ends' veths go with their namespaces.
    for p in ["cffar100", "cffar200", "cftap"] {
        sh("ovs-vsctl", &["--if-exists", "del-port", "crtrunk0", p]);
    }
    sh("ip", &["link", "del", "cftap"]);
    for n in ["far100", "far200"] {
        sh("ip", &["netns", "del", n]);
    }
}
