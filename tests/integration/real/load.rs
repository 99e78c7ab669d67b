//! Load: fifty admins at once. 25 VMs and 25 containers created in
//! parallel on one network, then deleted in parallel; two creates of one
//! name; a delete racing a start.

use std::collections::HashSet;

use super::vm::{virsh, Lab};

fn hostsfile(net: &str) -> String {
    std::fs::read_to_string(format!("/var/lib/libvirt/dnsmasq/creature-{net}.hostsfile"))
        .unwrap_or_default()
}

#[test]
fn fifty_parallel_creates_and_deletes() {
    let Some(lab) = Lab::if_available("fifty_parallel_creates_and_deletes") else {
        return;
    };
    lab.run(&["net", "create", "n-load", "--subnet", "10.86.0.0/24"])
        .ok();
    let names: Vec<String> = (0..50).map(|i| format!("ld-{i}")).collect();
    let spawn_all = |args: &dyn Fn(&str) -> Vec<String>| {
        let handles: Vec<_> = names
            .iter()
            .map(|m| {
                let c = lab.c().args(args(m));
                let m = m.clone();
                std::thread::spawn(move || (m, c.run()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    };
    let created = spawn_all(&|m: &str| {
        let n: usize = m[3..].parse().unwrap();
        let template = if n % 2 == 0 { "tiny" } else { "lxc-busybox" };
        ["create", m, "-t", template, "--network", "n-load"]
            .map(String::from)
            .to_vec()
    });
    for (m, r) in created {
        assert_eq!(r.code, 0, "create {m}: {}", r.stderr);
    }
    // Every MAC and IP distinct, in the database, libvirt and dnsmasq.
    let s = creature::store::Store::open(lab.path()).unwrap();
    let res = s.reservations("local", "n-load").unwrap();
    drop(s);
    assert_eq!(res.len(), 50);
    let macs: HashSet<_> = res.iter().map(|r| r.1.to_ascii_lowercase()).collect();
    let ips: HashSet<_> = res.iter().map(|r| r.2.clone().unwrap()).collect();
    assert_eq!((macs.len(), ips.len()), (50, 50));
    let xml =
        String::from_utf8_lossy(&virsh(&["net-dumpxml", "creature-n-load"]).stdout).into_owned();
    assert_eq!(xml.matches("<host ").count(), 50, "libvirt's host entries");
    let hosts = hostsfile("n-load");
    for (_, mac, ip) in &res {
        assert!(
            hosts.to_ascii_lowercase().contains(&format!(
                "{},{}",
                mac.to_ascii_lowercase(),
                ip.as_ref().unwrap()
            )),
            "dnsmasq's hostsfile lacks {mac} {ip:?}:\n{hosts}"
        );
    }
    let list = lab.run(&["list", "--format", "json"]).ok().json();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.iter().filter(|r| r["record"] == "ok").count(), 50);

    // Two creates of one name: exactly one wins, the other exits 5.
    let twins: Vec<_> = (0..2)
        .map(|_| {
            let c = lab.c().args(["create", "ld-twin", "-t", "lxc-busybox"]);
            std::thread::spawn(move || c.run())
        })
        .collect();
    let mut codes: Vec<i32> = twins.into_iter().map(|h| h.join().unwrap().code).collect();
    codes.sort();
    assert_eq!(codes, vec![0, 5], "two creates of one name");
    lab.run(&["delete", "ld-twin", "--yes"]).ok();

    // A delete racing a start, on five VMs at once: one of each pair wins;
    // the loser exits 4 or 5; nothing is half-done (each machine is either
    // wholly there or wholly gone, never a domain without its record).
    let raced = ["ld-0", "ld-2", "ld-4", "ld-6", "ld-8"];
    let pairs: Vec<_> = raced
        .iter()
        .map(|m| {
            let s = lab.c().args(["start", m]);
            let d = lab.c().args(["delete", m, "--yes"]);
            (
                std::thread::spawn(move || s.run()),
                std::thread::spawn(move || d.run()),
            )
        })
        .collect();
    for (m, (s, d)) in raced.iter().zip(pairs) {
        let (start, delete) = (s.join().unwrap(), d.join().unwrap());
        let domain = virsh(&["dominfo", m]).status.success();
        let record = creature::store::Store::open(lab.path())
            .unwrap()
            .machine("local", m)
            .unwrap()
            .is_some();
        assert_eq!(
            domain, record,
            "{m}: domain and record disagree after the race"
        );
        if delete.code == 0 {
            assert!(!domain, "{m}: deleted but the domain is there");
        } else {
            assert!(
                [4, 5].contains(&delete.code),
                "{m}: delete: {}",
                delete.stderr
            );
            assert_eq!(
                start.code, 0,
                "{m}: both lost: {} / {}",
                start.stderr, delete.stderr
            );
        }
        if domain {
            lab.run(&["delete", m, "--yes", "--force"]).ok();
        }
    }

    // Fifty deletes at once leave nothing.
    let deleted =
        spawn_all(&|m: &str| ["delete", m, "--yes", "--force"].map(String::from).to_vec());
    for (m, r) in deleted {
        if !raced.contains(&m.as_str()) {
            assert_eq!(r.code, 0, "delete {m}: {}", r.stderr);
        }
    }
    let s = creature::store::Store::open(lab.path()).unwrap();
    assert!(s.reservations("local", "n-load").unwrap().is_empty());
    assert!(s.machines(None).unwrap().is_empty());
    drop(s);
    let xml =
        String::from_utf8_lossy(&virsh(&["net-dumpxml", "creature-n-load"]).stdout).into_owned();
    assert!(!xml.contains("<host "), "{xml}");
    for m in &names {
        assert!(!virsh(&["dominfo", m]).status.success(), "domain {m} left");
        assert!(
            !std::path::Path::new(&format!("/var/lib/lxc/{m}")).exists(),
            "container {m} left"
        );
    }
    let disks: Vec<_> = std::fs::read_dir(lab.path().join("disks"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(disks.is_empty(), "volumes left: {disks:?}");
    lab.run(&["net", "delete", "n-load", "--yes"]).ok();
}
