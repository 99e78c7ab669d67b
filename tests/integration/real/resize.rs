//! `creature resize` (#12) on a real qemu guest: vCPUs hotplugged and
//! onlined, memory through the balloon, a disk grown live; what is beyond
//! the running maximum waits for the restart; a shrink and an injected
//! failure change nothing; a stopped machine's new size is what it boots
//! with. The guest itself says what it sees (through its agent).

use std::time::{Duration, Instant};

use super::vm::{virsh, Lab};

fn cpus(lab: &Lab, m: &str) -> u64 {
    lab.guest(m, "grep -c ^processor /proc/cpuinfo")
        .parse()
        .unwrap()
}

fn mem_kib(lab: &Lab, m: &str) -> u64 {
    lab.guest(
        m,
        "sed -n 's/^MemTotal: *\\([0-9]*\\) kB$/\\1/p' /proc/meminfo",
    )
    .parse()
    .unwrap()
}

fn sectors(lab: &Lab, m: &str) -> u64 {
    lab.guest(m, "cat /sys/block/vda/size").parse().unwrap()
}

#[track_caller]
fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "the guest never saw {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn inactive(m: &str) -> String {
    String::from_utf8_lossy(&virsh(&["dumpxml", "--inactive", m]).stdout).into_owned()
}

#[test]
fn resize_a_running_guest_and_a_stopped_one() {
    let Some(lab) = Lab::if_available("resize_a_running_guest_and_a_stopped_one") else {
        return;
    };
    let m = "rz-vm";
    lab.run(&[
        "create",
        m,
        "-t",
        "tiny",
        "--set",
        "max_cpus=2",
        "--set",
        "max_memory=512MiB",
        "--set",
        "disk.0.size=32MiB",
    ])
    .ok();
    lab.run(&["start", m]).ok();
    lab.wait_log(m, "the guest agent", |l| {
        l.contains("creature-test-guest: guest agent on")
    });
    assert_eq!(cpus(&lab, m), 1);
    assert_eq!(sectors(&lab, m), 32 * 2048);
    let mem_before = mem_kib(&lab, m);

    // Live: up to the maximum, and persistent.
    lab.run(&[
        "resize", m, "--cpus", "2", "--memory", "400MiB", "--disk", "48MiB",
    ])
    .ok()
    .stdout_has("vCPUs 1 -> 2 (live, onlined by the guest agent)")
    .stdout_has("disk vda 32MiB -> 48MiB");
    eventually("2 vCPUs", || cpus(&lab, m) == 2);
    eventually("the larger disk", || sectors(&lab, m) == 48 * 2048);
    eventually("more memory", || {
        mem_kib(&lab, m) >= mem_before + 100 * 1024
    });
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert_eq!(info["cpus"], 2);
    // libvirt learns the balloon's size from QEMU's (throttled) events.
    eventually("libvirt to report 400MiB", || {
        lab.run(&["info", m, "--format", "json"]).ok().json()["memory_bytes"] == 400u64 << 20
    });
    let xml = inactive(m);
    // (libvirt leaves out current= when all vCPUs are on.)
    assert!(
        xml.contains("<vcpu placement='static'>2</vcpu>")
            && xml.contains(">409600</currentMemory>"),
        "{xml}"
    );

    // Beyond the running maximum: persistent now, live at the next start.
    lab.run(&["resize", m, "--memory", "1GiB"]).ok().stderr_has(
        "rz-vm needs a restart for 1GiB of memory (the running machine takes at most 512MiB",
    );
    assert!(inactive(m).contains("<memory unit='KiB'>1048576</memory>"));
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert_eq!(info["memory_bytes"], 400u64 << 20);

    // A shrink, and a failure injected before the live step, change nothing.
    let before = inactive(m);
    lab.run(&["resize", m, "--disk", "16MiB"])
        .code(2)
        .stderr_has("disks only grow: vda is 48MiB, asked for 16MiB");
    crate::util::require_hooks();
    lab.c()
        .args(["resize", m, "--cpus", "1"])
        .env("CREATURE_TEST_FAIL_AT", "resize-live")
        .run()
        .code(1)
        .stderr_has("the steps before it were undone");
    assert_eq!(cpus(&lab, m), 2);
    assert_eq!(inactive(m), before);

    // Stopped: the persistent definition, which the next boot takes.
    lab.run(&["destroy", m]).ok();
    lab.run(&[
        "resize", m, "--cpus", "1", "--memory", "300MiB", "--disk", "64MiB",
    ])
    .ok()
    .stdout_has("vCPUs 2 -> 1 (persistent)")
    .stdout_has("disk vda 48MiB -> 64MiB");
    lab.run(&["start", m]).ok();
    lab.wait_log(m, "the guest agent again", |l| {
        l.matches("guest agent on").count() == 2
    });
    assert_eq!(cpus(&lab, m), 1);
    assert_eq!(sectors(&lab, m), 64 * 2048);
    // It boots with its maximum (1GiB, set above); the balloon takes it down.
    eventually("at most 300MiB", || mem_kib(&lab, m) <= 300 * 1024);
    lab.run(&["resize", m, "--cpus", "1"])
        .ok()
        .stdout_has("already has that size");
    lab.run(&["delete", m, "--force", "--yes"]).ok();
}
