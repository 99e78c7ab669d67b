//! Networks on the namespace's libvirtd (its own bridges and dnsmasq): DHCP
//! reservations for a VM and a container, parallel creates, exhaustion,
//! conflicts, `--subnet auto`, routed and flat networks.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use super::vm::{attach, virsh, Lab};
use crate::util::run_ok;

fn sh(args: &[&str]) -> String {
    String::from_utf8_lossy(&run_ok(Command::new(args[0]).args(&args[1..])).stdout).into_owned()
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn vm_and_container_get_their_reserved_ips() {
    let Some(lab) = Lab::if_available("vm_and_container_get_their_reserved_ips") else {
        return;
    };
    lab.run(&["net", "create", "n-dhcp", "--subnet", "10.81.0.0/24"])
        .ok();
    lab.run(&["create", "nd-vm", "-t", "tiny", "--network", "n-dhcp"])
        .ok();
    lab.run(&[
        "launch",
        "nd-ct",
        "-t",
        "lxc-busybox",
        "--network",
        "n-dhcp",
        "--wait",
        "lease",
    ])
    .ok();
    lab.run(&["start", "nd-vm", "--wait", "lease"]).ok();
    let vm_ip = lab.reserved_ip("nd-vm");
    let ct_ip = lab.reserved_ip("nd-ct");
    // The guest says what it got; the container shows it on eth0.
    lab.wait_log("nd-vm", "its lease", |l| {
        l.contains(&format!("lease eth0 {vm_ip}"))
    });
    wait_until("the container's address", || {
        String::from_utf8_lossy(&attach("nd-ct", &["ip", "-4", "addr", "show", "eth0"]).stdout)
            .contains(&format!("inet {ct_ip}/24"))
    });
    // The container reaches the VM.
    let ping = attach("nd-ct", &["ping", "-c", "1", "-W", "5", &vm_ip]);
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    // leases, info and list agree with the reservations.
    let leases = lab
        .run(&["net", "leases", "n-dhcp", "--format", "json"])
        .ok()
        .json();
    for r in leases.as_array().unwrap() {
        assert_eq!(r["status"], "ok", "{r}");
    }
    assert_eq!(leases.as_array().unwrap().len(), 2);
    // info and list give one answer per NIC: the reservation, and the
    // lease while running; the container's limits are numbers in both.
    for (m, ip) in [("nd-ct", &ct_ip), ("nd-vm", &vm_ip)] {
        let info = lab.run(&["info", m, "--format", "json"]).ok().json();
        let row = lab.list_row(m);
        for nics in [&info["nics"], &row["nics"]] {
            assert_eq!(nics[0]["reserved_ip"], ip.as_str(), "{m}: {nics}");
            assert_eq!(nics[0]["leased_ip"], ip.as_str(), "{m}: {nics}");
        }
        assert_eq!(info["cpus"], row["cpus"], "{m}");
        assert_eq!(info["memory_bytes"], row["memory_bytes"], "{m}");
        assert!(info["cpus"].as_u64().is_some_and(|c| c >= 1), "{m}: {info}");
        let table = lab.run(&["list"]).ok().stdout;
        let line = table.lines().find(|l| l.starts_with(m)).unwrap();
        assert!(
            line.contains(ip.as_str()) && !line.contains("reserved"),
            "{line}"
        );
    }
    // A network in use is not deleted.
    lab.run(&["net", "delete", "n-dhcp", "--yes"])
        .code(5)
        .stderr_has("nd-ct, nd-vm");
    let old_mac = creature::store::Store::open(lab.path())
        .unwrap()
        .nics("local", "nd-vm")
        .unwrap()[0]
        .mac
        .clone();
    lab.run(&["delete", "nd-vm", "--yes", "--force"])
        .ok()
        .stdout_has(&format!("IP {vm_ip}"));
    // The deleted machine's lease is dropped with it, so a new machine
    // asking for the same fixed IP gets that IP, not another one.
    let leased_to_old = |leases: &serde_json::Value| {
        leases.as_array().unwrap().iter().any(|l| {
            l["mac"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(&old_mac))
        })
    };
    wait_until("the old lease to be dropped", || {
        !leased_to_old(
            &lab.run(&["net", "leases", "n-dhcp", "--format", "json"])
                .ok()
                .json(),
        )
    });
    lab.run(&[
        "create",
        "nd-vm2",
        "-t",
        "tiny",
        "--network",
        "n-dhcp",
        "--ip",
        &vm_ip,
    ])
    .ok();
    // Shut off: the reservation only, labelled; no stale lease of nd-vm.
    let info = lab.run(&["info", "nd-vm2", "--format", "json"]).ok().json();
    assert_eq!(info["nics"][0]["reserved_ip"], vm_ip.as_str());
    assert!(info["nics"][0]["leased_ip"].is_null(), "{info}");
    lab.run(&["info", "nd-vm2"])
        .ok()
        .stdout_has(&format!("{vm_ip} (reserved)"));
    lab.run(&["start", "nd-vm2", "--wait", "lease"]).ok();
    lab.wait_log("nd-vm2", "its lease on the reused IP", |l| {
        l.contains(&format!("lease eth0 {vm_ip}"))
    });
    let info = lab.run(&["info", "nd-vm2", "--format", "json"]).ok().json();
    assert_eq!(info["nics"][0]["leased_ip"], vm_ip.as_str(), "{info}");
    lab.run(&["delete", "nd-vm2", "--yes", "--force"]).ok();
    lab.run(&["delete", "nd-ct", "--yes", "--force"]).ok();
    // Nothing is left: no host entries, no reservations, no bridge ports.
    let xml =
        String::from_utf8_lossy(&virsh(&["net-dumpxml", "creature-n-dhcp"]).stdout).into_owned();
    assert!(!xml.contains("<host "), "{xml}");
    assert!(std::fs::read_dir("/sys/class/net/crbr-n-dhcp/brif")
        .unwrap()
        .next()
        .is_none());
    let s = creature::store::Store::open(lab.path()).unwrap();
    assert!(s.reservations("local", "n-dhcp").unwrap().is_empty());
    drop(s);
    lab.run(&["net", "delete", "n-dhcp", "--yes"]).ok();
    assert!(!std::path::Path::new("/sys/class/net/crbr-n-dhcp").exists());
}

#[test]
fn parallel_creates_conflicts_and_exhaustion() {
    let Some(lab) = Lab::if_available("parallel_creates_conflicts_and_exhaustion") else {
        return;
    };
    crate::util::require_hooks();
    lab.run(&["net", "create", "n-par", "--subnet", "10.82.0.0/24"])
        .ok();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let c = lab.c().args([
                "create",
                &format!("np-{i}"),
                "-t",
                "lxc-busybox",
                "--network",
                "n-par",
            ]);
            std::thread::spawn(move || c.run())
        })
        .collect();
    for h in handles {
        h.join().unwrap().ok();
    }
    let s = creature::store::Store::open(lab.path()).unwrap();
    let res = s.reservations("local", "n-par").unwrap();
    assert_eq!(res.len(), 20);
    let macs: HashSet<_> = res.iter().map(|r| r.1.clone()).collect();
    let ips: HashSet<_> = res.iter().map(|r| r.2.clone()).collect();
    assert_eq!((macs.len(), ips.len()), (20, 20));
    let hosts = String::from_utf8_lossy(&virsh(&["net-dumpxml", "creature-n-par"]).stdout)
        .matches("<host ")
        .count();
    assert_eq!(hosts, 20, "every reservation is a static DHCP host");
    drop(s);

    // Explicit addresses: conflicts name the owner, bad ones are refused.
    let taken_ip = res[0].2.clone().unwrap();
    let taken_mac = res[0].1.clone();
    lab.run(&[
        "create",
        "nx-1",
        "-t",
        "lxc-busybox",
        "--network",
        "n-par",
        "--ip",
        &taken_ip,
    ])
    .code(5)
    .stderr_has(&format!("machine {}", res[0].0));
    lab.run(&[
        "create",
        "nx-2",
        "-t",
        "lxc-busybox",
        "--network",
        "n-par",
        "--mac",
        &taken_mac,
    ])
    .code(5)
    .stderr_has(&format!("machine {}", res[0].0));
    let bridge_mac = std::fs::read_to_string("/sys/class/net/crbr-n-par/address").unwrap();
    lab.run(&[
        "create",
        "nx-3",
        "-t",
        "lxc-busybox",
        "--network",
        "n-par",
        "--mac",
        bridge_mac.trim(),
    ])
    .code(5)
    .stderr_has("host NIC crbr-n-par");
    lab.run(&[
        "create",
        "nx-4",
        "-t",
        "lxc-busybox",
        "--network",
        "n-par",
        "--mac",
        "ff:ff:ff:ff:ff:ff",
    ])
    .code(2);
    lab.run(&[
        "create",
        "nx-5",
        "-t",
        "lxc-busybox",
        "--network",
        "n-par",
        "--ip",
        "10.82.0.1",
    ])
    .code(2);
    lab.run(&[
        "create",
        "nx-6",
        "-t",
        "lxc-busybox",
        "--network",
        "n-par",
        "--ip",
        "10.99.0.5",
    ])
    .code(2);
    lab.run(&[
        "create",
        "nx-7",
        "-t",
        "lxc-busybox",
        "--network",
        "n-par",
        "--ip",
        "10.82.0.77",
    ])
    .ok();
    assert_eq!(lab.reserved_ip("nx-7"), "10.82.0.77");
    for i in 1..=6 {
        assert!(!std::path::Path::new(&format!("/var/lib/lxc/nx-{i}")).exists());
    }

    // A /29 runs out: exit 8, nothing created.
    lab.run(&["net", "create", "n-small", "--subnet", "10.83.0.8/29"])
        .ok();
    // Creates that fail late give their addresses straight back: they never
    // ran, so no lease can hold them.
    for step in ["rootfs", "define", "ready"] {
        lab.c()
            .args([
                "create",
                "ns-fail",
                "-t",
                "lxc-busybox",
                "--network",
                "n-small",
            ])
            .env("CREATURE_TEST_FAIL_AT", step)
            .run()
            .code(1)
            .stderr_has("injected failure");
    }
    for i in 0..3 {
        lab.run(&[
            "create",
            &format!("ns-{i}"),
            "-t",
            "lxc-busybox",
            "--network",
            "n-small",
        ])
        .ok();
    }
    lab.run(&[
        "create",
        "ns-3",
        "-t",
        "lxc-busybox",
        "--network",
        "n-small",
    ])
    .code(8)
    .stderr_has("no free address");
    assert!(!std::path::Path::new("/var/lib/lxc/ns-3").exists());
    assert!(creature::store::Store::open(lab.path())
        .unwrap()
        .machine("local", "ns-3")
        .unwrap()
        .is_none());

    for i in 0..20 {
        lab.run(&["delete", &format!("np-{i}"), "--yes"]).ok();
    }
    for m in ["nx-7", "ns-0", "ns-1", "ns-2"] {
        lab.run(&["delete", m, "--yes"]).ok();
    }
    lab.run(&["net", "delete", "n-par", "--yes"]).ok();
    lab.run(&["net", "delete", "n-small", "--yes"]).ok();
}

#[test]
fn subnet_auto_avoids_addresses_in_use() {
    let Some(lab) = Lab::if_available("subnet_auto_avoids_addresses_in_use") else {
        return;
    };
    // The subnet auto would pick first, occupied by a dummy interface.
    let first = creature::net::ipv4::pick_free("n-auto", &[]).unwrap();
    let addr = format!(
        "{}/24",
        std::net::Ipv4Addr::from(u32::from(first.network) + 5)
    );
    // A dummy interface where the kernel has the driver, else a bare bridge
    // (this test only needs an address on some interface).
    let dummy = Command::new("ip")
        .args(["link", "add", "crdummy0", "type", "dummy"])
        .status()
        .unwrap();
    if !dummy.success() {
        sh(&["ip", "link", "add", "crdummy0", "type", "bridge"]);
    }
    sh(&["ip", "addr", "add", &addr, "dev", "crdummy0"]);
    let j = lab
        .run(&["net", "create", "n-auto", "--subnet", "auto"])
        .ok();
    assert!(j.stdout.contains("subnet 10."), "{}", j.stdout);
    let info = lab
        .run(&["net", "info", "n-auto", "--format", "json"])
        .ok()
        .json();
    let got: creature::net::ipv4::Subnet = info["subnet"].as_str().unwrap().parse().unwrap();
    assert!(
        !got.overlaps(&first),
        "auto picked {got}, which overlaps the dummy's {first}"
    );
    // An explicit overlap names what holds the subnet: the interface, or
    // the creature network.
    lab.run(&["net", "create", "n-over", "--subnet", &first.to_string()])
        .code(5)
        .stderr_has("of host interface crdummy0");
    lab.run(&["net", "create", "n-over", "--subnet", &got.to_string()])
        .code(5)
        .stderr_has("of creature network n-auto");
    lab.run(&["net", "delete", "n-auto", "--yes"]).ok();
    sh(&["ip", "link", "del", "crdummy0"]);
}

/// Proves #37 (network routing): a routed network forwards without NAT,
/// and a container on it gets its reserved address.
#[test]
fn routed_network() {
    let Some(lab) = Lab::if_available("routed_network") else {
        return;
    };
    lab.run(&[
        "net",
        "create",
        "n-route",
        "--mode",
        "route",
        "--subnet",
        "10.84.0.0/24",
    ])
    .ok();
    let routes = sh(&["ip", "-4", "route", "show", "10.84.0.0/24"]);
    assert!(routes.contains("dev crbr-n-route"), "{routes}");
    let nat = String::from_utf8_lossy(
        &Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        !nat.contains("10.84.0.0/24 ! -d 10.84.0.0/24 -j MASQUERADE"),
        "a routed network must not masquerade:\n{nat}"
    );
    lab.run(&[
        "launch",
        "nr-ct",
        "-t",
        "lxc-busybox",
        "--network",
        "n-route",
        "--wait",
        "lease",
    ])
    .ok();
    let ip = lab.reserved_ip("nr-ct");
    wait_until("the container's address", || {
        String::from_utf8_lossy(&attach("nr-ct", &["ip", "-4", "addr", "show", "eth0"]).stdout)
            .contains(&format!("inet {ip}/24"))
    });
    lab.run(&["delete", "nr-ct", "--yes", "--force"]).ok();
    lab.run(&["net", "delete", "n-route", "--yes"]).ok();
}

/// Proves #39 (flat networking): a network on an existing host bridge; the
/// machine's interface becomes a port of that bridge, and no DHCP is run.
/// Rule 5 for networks: kvm machines plug into routed and flat networks as
/// qemu machines do (the same libvirt interfaces). Each running kvm
/// domain's tap is a port of its network's bridge, and the routed network's
/// DHCP host entry holds its MAC and reserved address.
#[test]
fn kvm_machines_on_routed_and_flat_networks() {
    let Some(lab) = Lab::if_available("kvm_machines_on_routed_and_flat_networks") else {
        return;
    };
    lab.run(&[
        "net",
        "create",
        "n-kr",
        "--mode",
        "route",
        "--subnet",
        "10.95.0.0/24",
    ])
    .ok();
    sh(&["ip", "link", "add", "br-kflat", "type", "bridge"]);
    sh(&["ip", "link", "set", "br-kflat", "up"]);
    lab.run(&[
        "net", "create", "n-kf", "--mode", "bridge", "--bridge", "br-kflat",
    ])
    .ok();
    for (m, net, bridge) in [
        ("nk-route", "n-kr", "crbr-n-kr"),
        ("nk-flat", "n-kf", "br-kflat"),
    ] {
        lab.run(&["launch", m, "-t", "tiny-kvm", "--network", net])
            .ok();
        let xml = String::from_utf8_lossy(&virsh(&["dumpxml", m]).stdout).into_owned();
        assert!(xml.contains("<domain type='kvm'"), "{xml}");
        let ports: Vec<String> = std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            ports.iter().any(|p| p.starts_with("vnet")),
            "{m}: ports of {bridge}: {ports:?}"
        );
    }
    let nic = creature::store::Store::open(lab.path())
        .unwrap()
        .nics("local", "nk-route")
        .unwrap()[0]
        .clone();
    let net_xml =
        String::from_utf8_lossy(&virsh(&["net-dumpxml", "creature-n-kr"]).stdout).into_owned();
    assert!(
        net_xml.contains(&nic.mac) && net_xml.contains(nic.ip.as_deref().unwrap()),
        "{net_xml}"
    );
    lab.run(&["delete", "nk-route", "nk-flat", "--force", "--yes"])
        .ok();
    lab.run(&["net", "delete", "n-kr", "--yes"]).ok();
    lab.run(&["net", "delete", "n-kf", "--yes"]).ok();
    sh(&["ip", "link", "del", "br-kflat"]);
}

#[test]
fn flat_network_on_an_existing_bridge() {
    let Some(lab) = Lab::if_available("flat_network_on_an_existing_bridge") else {
        return;
    };
    sh(&["ip", "link", "add", "br-flat", "type", "bridge"]);
    sh(&["ip", "link", "set", "br-flat", "up"]);
    lab.run(&[
        "net", "create", "n-flat", "--mode", "bridge", "--bridge", "br-flat",
    ])
    .ok();
    lab.run(&[
        "launch",
        "nf-ct",
        "-t",
        "lxc-busybox",
        "--network",
        "n-flat",
    ])
    .ok();
    let ports: Vec<_> = std::fs::read_dir("/sys/class/net/br-flat/brif")
        .unwrap()
        .collect();
    assert_eq!(ports.len(), 1, "the container's veth is a port of br-flat");
    let s = creature::store::Store::open(lab.path()).unwrap();
    let nic = &s.nics("local", "nf-ct").unwrap()[0];
    assert!(nic.ip.is_none(), "flat networks reserve no IP");
    drop(s);
    lab.run(&[
        "net", "create", "n-flat2", "--mode", "bridge", "--bridge", "br-none",
    ])
    .code(4);
    // A NAT network whose bridge name someone else already holds: exit 5
    // naming the bridge and its holder, and no libvirt network is left.
    sh(&["ip", "link", "add", "crbr-n-taken", "type", "bridge"]);
    lab.run(&["net", "create", "n-taken", "--subnet", "10.87.0.0/24"])
        .code(5)
        .stderr_has(
            "bridge crbr-n-taken already exists, held by an interface made outside libvirt",
        );
    assert!(!virsh(&["net-info", "creature-n-taken"]).status.success());
    sh(&["ip", "link", "del", "crbr-n-taken"]);
    // The same when the bridge appears while creature's network is down.
    lab.run(&["net", "create", "n-taken", "--subnet", "10.87.0.0/24"])
        .ok();
    lab.run(&["net", "stop", "n-taken"]).ok();
    sh(&["ip", "link", "add", "crbr-n-taken", "type", "bridge"]);
    lab.run(&["net", "start", "n-taken"])
        .code(5)
        .stderr_has("bridge crbr-n-taken already exists");
    sh(&["ip", "link", "del", "crbr-n-taken"]);
    lab.run(&["net", "start", "n-taken"]).ok();
    lab.run(&["net", "delete", "n-taken", "--yes"]).ok();
    lab.run(&["delete", "nf-ct", "--yes", "--force"]).ok();
    lab.run(&["net", "delete", "n-flat", "--yes"]).ok();
    assert!(
        std::path::Path::new("/sys/class/net/br-flat").exists(),
        "the host's bridge is not creature's to remove"
    );
    sh(&["ip", "link", "del", "br-flat"]);
}
