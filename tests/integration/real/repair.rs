//! kill -9 at every step of create and delete, for a VM and a container,
//! then `creature repair`: state and backends agree again and nothing is
//! left behind (domain, container, volume, DHCP host entry, reservation,
//! record, journal, temporary file or held lock).

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use super::vm::{virsh, Lab};

/// Run `args` with CREATURE_TEST_STALL_AT=`step`, wait for it to stall
/// there, and SIGKILL it.
fn kill_at(lab: &Lab, args: &[&str], step: &str) {
    let mut child = lab
        .c()
        .args(args.iter().copied())
        .env("CREATURE_TEST_STALL_AT", step)
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(|l| l.ok()) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l.contains("stalled at step") => break,
            Ok(l) => seen.push(l),
            Err(_) => panic!("`{}` never stalled at {step}: {seen:?}", args.join(" ")),
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn host_entries(net: &str) -> usize {
    String::from_utf8_lossy(&virsh(&["net-dumpxml", &format!("creature-{net}")]).stdout)
        .matches("<host ")
        .count()
}

#[test]
fn kill_9_at_every_step_then_repair() {
    let Some(lab) = Lab::if_available("kill_9_at_every_step_then_repair") else {
        return;
    };
    crate::util::require_hooks();
    lab.run(&["net", "create", "n-kill", "--subnet", "10.88.0.0/24"])
        .ok();
    let vm_steps = [
        "record",
        "reserve",
        "filters",
        "overlay",
        "disk",
        "define",
        "ready",
        "seed",
        "autostart",
    ];
    let ct_steps = [
        "record",
        "reserve",
        "filters",
        "rootfs",
        "define",
        "ready",
        "seed",
        "autostart",
    ];
    // Every create has a config drive, so each kill may leave one.
    let key = super::vm::dummy_key(lab.path());
    let key = key.to_str().unwrap().to_string();
    let mut names = Vec::new();
    for (kind, template, steps) in [
        ("vm", "tiny", &vm_steps[..]),
        ("ct", "lxc-busybox", &ct_steps[..]),
    ] {
        for step in steps {
            let m = format!("kl-{kind}-{step}");
            kill_at(
                &lab,
                &[
                    "create",
                    &m,
                    "-t",
                    template,
                    "--network",
                    "n-kill",
                    "--set",
                    if kind == "vm" {
                        "disk.0.size=16MiB"
                    } else {
                        "description=killed"
                    },
                    "--ssh-key",
                    &key,
                ],
                step,
            );
            // Killed mid-create, the machine is listed as incomplete, or
            // not at all when it was killed before its record.
            let list = lab.run(&["list", "--format", "json"]).ok().json();
            if let Some(row) = list
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == m.as_str())
            {
                assert_ne!(row["record"], "ok", "{m}: {row}");
            }
            names.push(m);
        }
    }
    // A delete killed after it marked the record, and after it removed
    // the machine.
    for (kind, template) in [("ct", "lxc-busybox"), ("vm", "tiny")] {
        for step in ["deleting", "removed"] {
            let m = format!("kl-del-{kind}-{step}");
            lab.run(&["create", &m, "-t", template, "--network", "n-kill"])
                .ok();
            kill_at(&lab, &["delete", &m, "--yes"], step);
            names.push(m);
        }
    }
    assert!(
        host_entries("n-kill") > 0,
        "the kills left host entries to repair"
    );

    let plan = lab
        .run(&["repair", "--dry-run", "--format", "json"])
        .ok()
        .json();
    assert!(!plan["actions"].as_array().unwrap().is_empty(), "{plan}");
    assert!(plan["unchecked"].as_array().unwrap().is_empty(), "{plan}");
    // Off a terminal, repair without --yes changes nothing.
    lab.run(&["repair"]).code(2).stderr_has("pass --yes");
    lab.run(&["repair", "--yes"]).ok();

    // Agreement: nothing left, and a second repair finds nothing.
    lab.run(&["repair", "--dry-run"])
        .ok()
        .stdout_has("nothing to repair");
    let s = creature::store::Store::open(lab.path()).unwrap();
    assert!(s.machines(None).unwrap().is_empty(), "records left");
    assert!(s.reservations("local", "n-kill").unwrap().is_empty());
    assert!(s.journal_machines("local").unwrap().is_empty());
    drop(s);
    assert_eq!(host_entries("n-kill"), 0, "DHCP host entries left");
    for m in &names {
        assert!(!virsh(&["dominfo", m]).status.success(), "domain {m} left");
        assert!(
            !std::path::Path::new(&format!("/var/lib/lxc/{m}")).exists(),
            "container {m} left"
        );
        assert!(
            !creature::statedir::machine_busy(lab.path(), "local", m),
            "lock of {m} still held"
        );
    }
    let disks: Vec<_> = std::fs::read_dir(lab.path().join("disks"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(disks.is_empty(), "volumes left: {disks:?}");
    let seeds: Vec<_> = std::fs::read_dir(lab.path().join("seeds"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(seeds.is_empty(), "config drives left: {seeds:?}");
    assert!(creature::statedir::stale_files(lab.path()).is_empty());
    let scope = format!("{}.", creature::backend::firewall::scope(lab.path()));
    let filters = String::from_utf8_lossy(&virsh(&["nwfilter-list"]).stdout).into_owned();
    assert!(!filters.contains(&scope), "network filters left: {filters}");

    // The names are free again: a VM and a container are made under them.
    lab.run(&[
        "create",
        "kl-vm-define",
        "-t",
        "tiny",
        "--network",
        "n-kill",
        "--set",
        "disk.0.size=16MiB",
    ])
    .ok();
    lab.run(&[
        "create",
        "kl-ct-rootfs",
        "-t",
        "lxc-busybox",
        "--network",
        "n-kill",
    ])
    .ok();
    lab.run(&["delete", "kl-vm-define", "--yes"]).ok();
    lab.run(&["delete", "kl-ct-rootfs", "--yes"]).ok();
    lab.run(&["net", "delete", "n-kill", "--yes"]).ok();
}
