//! Autostart and autostop on real backends: six machines, qemu VMs and lxc
//! containers, over three priorities. Order is read from the backends
//! themselves (process start times, dnsmasq's lease, states polled from
//! libvirt and liblxc), never from creature's own log.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::vm::Lab;

/// When a process started, in seconds since the epoch (/proc/PID/stat).
fn started_at(pid: i64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let start_ticks: f64 = after.split_whitespace().nth(19).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let btime: f64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    btime + start_ticks / hz
}

/// The backend's process for a machine: QEMU's pid from libvirt, or the
/// container's init from liblxc.
fn backend_pid(name: &str, vm: bool) -> i64 {
    if vm {
        std::fs::read_to_string(format!("/run/libvirt/qemu/{name}.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    } else {
        let out = Command::new("lxc-info")
            .args(["-n", name, "-p", "-H"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

fn active(name: &str, vm: bool) -> bool {
    if vm {
        let o = Command::new("virsh")
            .args(["-c", "qemu:///system", "domstate", name])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&o.stdout);
        s.contains("running") || s.contains("paused") || s.contains("in shutdown")
    } else {
        let o = Command::new("lxc-info")
            .args(["-n", name, "-s", "-H"])
            .output()
            .unwrap();
        !String::from_utf8_lossy(&o.stdout).contains("STOPPED")
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The machine names of each batch of a `--dry-run --format json` plan.
fn batch_names(plan: &serde_json::Value) -> Vec<Vec<String>> {
    let names = |b: &serde_json::Value| {
        b["machines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    plan["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(names)
        .collect()
}

/// (name, is a VM, priority, create arguments, `autostart enable` arguments)
type Machine<'a> = (&'a str, bool, &'a str, &'a [&'a str], &'a [&'a str]);

#[test]
fn boot_and_shutdown_in_priority_order() {
    let Some(lab) = Lab::if_available("boot_and_shutdown_in_priority_order") else {
        return;
    };
    lab.run(&[
        "net",
        "create",
        "n-boot",
        "--subnet",
        "10.85.0.0/24",
        "--autostart",
    ])
    .ok();
    let machines: &[Machine] = &[
        (
            "as-gw",
            true,
            "30",
            &["-t", "tiny", "--network", "n-boot"],
            &["--wait", "lease"],
        ),
        ("as-vm2", true, "20", &["-t", "tiny"], &[]),
        (
            "as-ct1",
            false,
            "20",
            &["-t", "lxc-busybox", "--network", "n-boot"],
            &[],
        ),
        ("as-ct2", false, "10", &["-t", "lxc-busybox"], &[]),
        ("as-ct3", false, "10", &["-t", "lxc-busybox"], &[]),
        (
            "as-stub",
            true,
            "10",
            &[
                "-t",
                "tiny",
                "--set",
                "boot.cmdline=console=ttyS0 quiet creature.ignore_acpi=1",
            ],
            &["--stop-timeout", "6"],
        ),
    ];
    let vm: HashMap<&str, bool> = machines.iter().map(|m| (m.0, m.1)).collect();
    for (name, _, p, create, enable) in machines {
        let mut args = vec!["create", name];
        args.extend_from_slice(create);
        lab.run(&args).ok();
        let mut args = vec!["autostart", "enable", name, "--priority", p];
        args.extend_from_slice(enable);
        lab.run(&args).ok();
    }

    // The dry run's plan, to compare with what happens.
    let plan = lab
        .run(&["autostart", "run", "--dry-run", "--format", "json"])
        .ok()
        .json();
    let planned = batch_names(&plan);
    assert_eq!(
        planned,
        vec![
            vec!["as-gw"],
            vec!["as-ct1", "as-vm2"],
            vec!["as-ct2", "as-ct3", "as-stub"]
        ]
    );

    // As after a host boot: the network is down until autostart brings it up,
    // before any machine (the gateway then waits for its lease on it).
    lab.run(&["net", "stop", "n-boot", "--yes"]).ok();
    lab.run(&["autostart", "run"])
        .ok()
        .stderr_has("started network n-boot");
    let start: HashMap<&str, f64> = machines
        .iter()
        .map(|m| (m.0, started_at(backend_pid(m.0, m.1))))
        .collect();
    // Batches start in the planned order: all of one before any of the next.
    for w in planned.windows(2) {
        let last_before = w[0]
            .iter()
            .map(|n| start[n.as_str()])
            .fold(f64::MIN, f64::max);
        let first_after = w[1]
            .iter()
            .map(|n| start[n.as_str()])
            .fold(f64::MAX, f64::min);
        assert!(
            last_before <= first_after,
            "{:?} started after some of {:?}: {start:?}",
            w[0],
            w[1]
        );
    }
    // The gateway held its DHCP lease before the next batch started
    // (dnsmasq's lease: expiry minus libvirt's one-hour lease time).
    let leases = lab
        .run(&["net", "leases", "n-boot", "--format", "json"])
        .ok()
        .json();
    let gw_mac = creature::store::Store::open(lab.path())
        .unwrap()
        .nics("local", "as-gw")
        .unwrap()[0]
        .mac
        .clone();
    let out = Command::new("virsh")
        .args(["-c", "qemu:///system", "net-dhcp-leases", "creature-n-boot"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        leases
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["mac"] == gw_mac.as_str() && l["status"] == "ok"),
        "{leases}"
    );
    let expiry = creature::backend::libvirt::network::leases(
        &creature::backend::libvirt::open(
            &creature::backend::libvirt::Uri("qemu:///system".into()),
            Duration::from_secs(10),
        )
        .unwrap(),
        "creature-n-boot",
    )
    .unwrap()
    .into_iter()
    .find(|l| l.mac == gw_mac)
    .unwrap_or_else(|| panic!("no lease for the gateway:\n{text}"))
    .expires as f64;
    let leased_at = expiry - 3600.0;
    let second_batch = planned[1]
        .iter()
        .map(|n| start[n.as_str()])
        .fold(f64::MAX, f64::min);
    assert!(
        leased_at <= second_batch + 1.0,
        "lease at {leased_at}, second batch at {second_batch}"
    );

    // One machine is stopped by hand: autostop must not count it as running.
    lab.run(&["stop", "as-ct3", "--timeout", "20"]).ok();
    lab.run(&["autostart", "disable", "as-vm2"]).ok();

    // Autostop, watched from the backends: when each machine goes down.
    let down: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    let done = Arc::new(AtomicBool::new(false));
    let watch = {
        let (down, done) = (down.clone(), done.clone());
        let names: Vec<(String, bool)> = machines
            .iter()
            .filter(|m| m.0 != "as-ct3")
            .map(|m| (m.0.to_string(), m.1))
            .collect();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                for (n, v) in &names {
                    if !down.lock().unwrap().contains_key(n) && !active(n, *v) {
                        down.lock().unwrap().insert(n.clone(), now());
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let stop_plan = lab
        .run(&["autostop", "run", "--dry-run", "--format", "json"])
        .ok()
        .json();
    let stop_batches = batch_names(&stop_plan);
    assert_eq!(
        stop_batches,
        vec![
            vec!["as-ct2", "as-stub"],
            vec!["as-ct1", "as-vm2"],
            vec!["as-gw"]
        ]
    );
    let t0 = now();
    lab.run(&["autostop", "run"])
        .ok()
        .stderr_has("as-stub: did not stop within 6s; powered off");
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::SeqCst);
    watch.join().unwrap();
    let down = down.lock().unwrap().clone();
    assert_eq!(down.len(), 5, "{down:?}");
    for w in stop_batches.windows(2) {
        let last_before = w[0].iter().map(|n| down[n]).fold(f64::MIN, f64::max);
        let first_after = w[1].iter().map(|n| down[n]).fold(f64::MAX, f64::min);
        assert!(
            last_before <= first_after + 0.1,
            "{:?} went down after some of {:?}: {down:?}",
            w[0],
            w[1]
        );
    }
    // The stubborn guest was forced after its own timeout; its batch mate was not slowed by it.
    assert!(down["as-stub"] - t0 >= 5.5, "forced too early: {down:?}");
    // Order, not a time: as-ct2 went down while as-stub was still up.
    assert!(
        down["as-ct2"] < down["as-stub"],
        "as-ct2 waited for as-stub: {down:?}"
    );

    // A second autostop (the unit's, after one by hand) finds nothing
    // running and must not make the first one's record forgotten.
    lab.run(&["autostop", "run"]).ok();

    // Exactly the machines that were running come back.
    lab.run(&["autostart", "run", "--restore-last-state"]).ok();
    for (name, _, _, _, _) in machines {
        let expect = *name != "as-ct3";
        assert_eq!(
            active(name, vm[name]),
            expect,
            "{name} after --restore-last-state"
        );
    }
    for (name, _, _, _, _) in machines {
        lab.run(&["delete", name, "--yes", "--force"]).ok();
    }
    lab.run(&["net", "delete", "n-boot", "--yes"]).ok();
}
