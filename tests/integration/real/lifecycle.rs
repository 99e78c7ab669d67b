//! The libvirt backend on the namespace's real libvirtd: the tiny guest
//! under QEMU (TCG) through its whole life, the --force path, rollback of a
//! failed create, and KVM machines started to running.

use std::io::Write;
use std::time::{Duration, Instant};

use super::vm::{count, last_tick, virsh, Lab};

const BOOTED: &str = "creature-test-guest: booted";

/// Proves Launch, Shutdown, Reboot, Pause/Unpause, Suspend/Restore, Guest
/// instance status, serial logs and image storage for qemu.
#[test]
fn qemu_machine_full_lifecycle() {
    let Some(lab) = Lab::if_available("qemu_machine_full_lifecycle") else {
        return;
    };
    let m = "lc-qemu";
    lab.run(&[
        "create",
        m,
        "-t",
        "tiny",
        "--set",
        "boot.cmdline=console=ttyS0 quiet creature.tick=1",
    ])
    .ok()
    .stdout_has("created lc-qemu (qemu, template tiny)");
    let row = lab.list_row(m);
    assert_eq!(row["state"], "shut-off");
    assert_eq!(row["record"], "ok");
    assert_eq!(row["backend"], "qemu");

    // create, then start: the serial log shows the boot line.
    lab.run(&["start", m, "--wait", "running"]).ok();
    assert_eq!(lab.state(m), "running");
    lab.wait_log(m, "boot line", |l| l.contains(BOOTED));
    lab.wait_log(m, "ticks", |l| last_tick(l).is_some());

    // A running machine is not deleted without --force.
    lab.run(&["delete", m, "--yes"])
        .code(5)
        .stderr_has("is running");

    // pause: the guest's clock stops; unpause: it goes on.
    lab.run(&["pause", m]).ok();
    assert_eq!(lab.state(m), "paused");
    std::thread::sleep(Duration::from_millis(500));
    let frozen = lab.log(m);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        last_tick(&lab.log(m)),
        last_tick(&frozen),
        "ticks while paused"
    );
    lab.run(&["unpause", m]).ok();
    let before = last_tick(&frozen).unwrap();
    lab.wait_log(m, "a tick after unpause", |l| {
        last_tick(l).is_some_and(|t| t > before + 1.0)
    });

    // suspend (managed save) and restore: back running, not rebooted.
    lab.run(&["suspend", m]).ok();
    assert_eq!(lab.state(m), "saved");
    assert!(std::path::Path::new(&format!("/var/lib/libvirt/qemu/save/{m}.save")).exists());
    assert_eq!(lab.list_row(m)["state"], "saved");
    lab.run(&["restore", m]).ok();
    assert_eq!(lab.state(m), "running");
    let t = last_tick(&lab.log(m)).unwrap();
    lab.wait_log(m, "a tick after restore", |l| {
        last_tick(l).is_some_and(|x| x > t)
    });
    assert_eq!(count(&lab.log(m), BOOTED), 1, "restore must not reboot");

    // reboot: the boot line appears twice.
    lab.run(&["reboot", m]).ok();
    lab.wait_log(m, "a second boot line", |l| count(l, BOOTED) == 2);
    lab.run(&["start", m, "--wait", "running"]).code(5); // already running

    // info and list, table and JSON.
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert_eq!(info["backend"], "qemu");
    assert_eq!(info["cpus"], 1);
    assert_eq!(info["memory_bytes"], 256u64 << 20);
    assert_eq!(info["template"], "tiny");
    assert!(info["cpu_time_ns"].as_u64().unwrap() > 0);
    let table = lab.run(&["info", m]).ok().stdout;
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["state", "running"]),
        "{table}"
    );
    lab.run(&["list"]).ok().stdout_has("lc-qemu");

    // log shows what the guest printed; -n the last lines of it; JSON is
    // refused rather than silently printing text.
    lab.run(&["log", m]).ok().stdout_has(BOOTED);
    // (The guest ticks, so the log only grows: read the tail first.)
    let last2 = lab.run(&["log", m, "-n", "2"]).ok().stdout;
    let whole = lab.run(&["log", m]).ok().stdout;
    assert_eq!(last2.lines().count(), 2, "{last2}");
    assert!(
        whole.contains(&last2),
        "the last two lines are the log's own: {last2:?}"
    );
    assert!(whole.lines().count() > 2);
    lab.run(&["log", m, "--format", "json"])
        .code(2)
        .stderr_has("--format json is not supported for log");

    // stop: a real ACPI shutdown.
    lab.run(&["stop", m, "--timeout", "60"]).ok();
    assert_eq!(lab.state(m), "shut-off");
    assert!(lab.log(m).contains("power button, powering off"));

    // delete: nothing is left.
    lab.run(&["delete", m]).code(2).stderr_has("--yes");
    lab.run(&["delete", m, "--yes"])
        .ok()
        .stdout_has("removed domain lc-qemu");
    assert!(
        !virsh(&["dominfo", m]).status.success(),
        "domain left behind"
    );
    assert!(!lab
        .path()
        .join("logs")
        .join(format!("{m}.serial.log"))
        .exists());
    let store = creature::store::Store::open(lab.path()).unwrap();
    assert!(store.machine("local", m).unwrap().is_none());
    assert!(store.journal_rows("local", m).unwrap().is_empty());
    assert!(store
        .image("tiny-guest")
        .unwrap()
        .unwrap()
        .used_by
        .is_empty());
    lab.run(&["info", m]).code(4);
}

/// A guest that ignores the power button: stop times out (exit 7) and
/// --force powers it off.
#[test]
fn stop_force_path_for_a_guest_ignoring_acpi() {
    let Some(lab) = Lab::if_available("stop_force_path_for_a_guest_ignoring_acpi") else {
        return;
    };
    let m = "lc-stubborn";
    lab.run(&[
        "create",
        m,
        "-t",
        "tiny",
        "--set",
        "boot.cmdline=console=ttyS0 quiet creature.ignore_acpi=1",
    ])
    .ok();
    lab.run(&["start", m]).ok();
    lab.wait_log(m, "the ignore line", |l| {
        l.contains("ignoring the power button")
    });
    lab.run(&["stop", m, "--timeout", "3"])
        .code(7)
        .stderr_has("--force");
    assert_eq!(lab.state(m), "running");
    lab.run(&["stop", m, "--timeout", "2", "--force"])
        .ok()
        .stdout_has("powered off");
    assert_eq!(lab.state(m), "shut-off");
    lab.run(&["start", m]).ok();
    lab.run(&["stop", m, "--force", "--timeout", "0"]).ok();
    assert_eq!(lab.state(m), "shut-off");
    // `destroy` (virsh's word) is the same forced stop; `restart` is reboot.
    lab.run(&["start", m, "--wait", "running"]).ok();
    lab.run(&["destroy", m])
        .ok()
        .stdout_has(&format!("powered off {m}"));
    assert_eq!(lab.state(m), "shut-off");
    // On a machine that is already off it answers as `stop` does: exit 5.
    lab.run(&["destroy", m]).code(5).stderr_has("shut-off");
    lab.run(&["stop", m, "--force"]).code(5);
    lab.run(&["rm", m, "--yes"]).ok();
}

/// A stop right after start: the first power-button press reaches a guest
/// that has no ACPI handler yet and is lost; creature presses again until
/// the guest goes down, so the stop is graceful, not a timeout.
#[test]
fn stop_during_boot_is_repeated_until_the_guest_listens() {
    let Some(lab) = Lab::if_available("stop_during_boot_is_repeated_until_the_guest_listens")
    else {
        return;
    };
    let m = "lc-early";
    lab.run(&["create", m, "-t", "tiny"]).ok();
    lab.run(&["start", m, "--wait", "none"]).ok();
    assert!(
        !lab.log(m).contains(BOOTED),
        "the guest booted too fast to test this"
    );
    lab.run(&["stop", m, "--timeout", "60"])
        .ok()
        .stdout_has("stopped lc-early");
    assert_eq!(lab.state(m), "shut-off");
    let log = lab.log(m);
    let (booted, off) = (log.find(BOOTED), log.find("power button, powering off"));
    assert!(
        matches!((booted, off), (Some(b), Some(o)) if b < o),
        "expected a boot and then a graceful power-off:\n{log}"
    );
    lab.run(&["delete", m, "--yes"]).ok();
}

/// A failure injected at each step of create leaves nothing behind.
#[test]
fn failed_create_leaves_nothing() {
    let Some(lab) = Lab::if_available("failed_create_leaves_nothing") else {
        return;
    };
    crate::util::require_hooks();
    // With a config drive: the failure after it is written removes it too.
    for step in ["overlay", "define", "ready", "seed"] {
        let m = format!("lc-fail-{step}");
        lab.create_tiny_with_drive(&m)
            .env("CREATURE_TEST_FAIL_AT", step)
            .run()
            .code(1)
            .stderr_has(&format!("injected failure at step \"{step}\""));
        assert!(
            !virsh(&["dominfo", &m]).status.success(),
            "{step}: domain left behind"
        );
        let disks = lab.path().join("disks");
        let left: Vec<_> = std::fs::read_dir(&disks)
            .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{step}: volumes left behind: {left:?}");
        assert!(
            !creature::seed::store::dir(lab.path(), &m).exists(),
            "{step}: config drive left behind"
        );
        let store = creature::store::Store::open(lab.path()).unwrap();
        assert!(
            store.machine("local", &m).unwrap().is_none(),
            "{step}: record left"
        );
        assert!(
            store.journal_rows("local", &m).unwrap().is_empty(),
            "{step}: journal left"
        );
    }
    // Ctrl-C in the middle of a create (after the disk, before the domain)
    // undoes it: exit 130, nothing left.
    let child = std::process::Command::new(crate::util::bin())
        .args([
            "create",
            "lc-int",
            "-t",
            "tiny",
            "--set",
            "disk.0.size=16MiB",
        ])
        .env("CREATURE_STATE_DIR", lab.path())
        .env("CREATURE_TEST_STALL_AT", "define")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let vol = lab.path().join("disks/lc-int-disk0.qcow2");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !vol.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the create never made its disk"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    crate::util::interrupt(child);
    assert!(
        !vol.exists(),
        "the disk of an interrupted create was left behind"
    );
    assert!(!virsh(&["dominfo", "lc-int"]).status.success());
    let store = creature::store::Store::open(lab.path()).unwrap();
    assert!(store.machine("local", "lc-int").unwrap().is_none());
    drop(store);

    // A disk smaller than its image is refused (exit 2) and leaves nothing.
    let big = lab.path().join("big.qcow2");
    assert!(std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&big)
        .arg("64M")
        .status()
        .unwrap()
        .success());
    lab.c()
        .args(["image", "import", "--name", "big"])
        .arg_path(&big)
        .run()
        .ok();
    lab.run(&[
        "create",
        "lc-small",
        "-t",
        "tiny",
        "--set",
        "disk.0.source.image=big",
        "--set",
        "disk.0.size=16MiB",
    ])
    .code(2)
    .stderr_has("below the image's own size");
    assert!(!virsh(&["dominfo", "lc-small"]).status.success());
    assert!(!lab.path().join("disks/lc-small-disk0.qcow2").exists());

    // A domain creature did not make is listed as foreign and never touched.
    let xml = lab.path().join("foreign.xml");
    std::fs::write(
        &xml,
        "<domain type='qemu'><name>lc-foreign</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64'>hvm</type></os></domain>",
    )
    .unwrap();
    assert!(virsh(&["define", xml.to_str().unwrap()]).status.success());
    let f = lab.list_row("lc-foreign");
    assert_eq!(f["record"], "foreign");
    assert_eq!(f["state"], "shut-off");
    lab.run(&["create", "lc-foreign", "-t", "tiny"])
        .code(5)
        .stderr_has("already exists");
    lab.run(&["delete", "lc-foreign", "--yes"]).code(4);
    lab.run(&["start", "lc-foreign"]).code(4);
    assert!(
        virsh(&["dominfo", "lc-foreign"]).status.success(),
        "foreign domain was touched"
    );
    assert!(virsh(&["undefine", "lc-foreign"]).status.success());
    // A record whose domain is gone shows as missing.
    crate::util::seed(
        lab.path(),
        &[("lc-ghost", creature::backend::Backend::Qemu)],
    );
    let ghost = lab.list_row("lc-ghost");
    assert_eq!(ghost["record"], "missing");
    assert_eq!(ghost["state"], "-");
    lab.run(&["delete", "lc-ghost", "--yes"]).ok();
    // The same create without the failure works, disk included.
    lab.run(&[
        "create",
        "lc-fail-none",
        "-t",
        "tiny",
        "--set",
        "disk.0.size=16MiB",
    ])
    .ok();
    let info = lab
        .run(&["info", "lc-fail-none", "--format", "json"])
        .ok()
        .json();
    assert_eq!(info["disks"][0]["format"], "qcow2");
    // A second create of the name conflicts and leaves the first alone.
    lab.run(&["create", "lc-fail-none", "-t", "tiny"])
        .code(5)
        .stderr_has("already exists");
    assert_eq!(lab.state("lc-fail-none"), "shut-off");
    lab.run(&["delete", "lc-fail-none", "--yes"])
        .ok()
        .stdout_has("removed volume lc-fail-none-disk0.qcow2");
}

/// KVM machines are defined and started to running (nested KVM is too
/// slow to boot a guest here; docs/testing.md says so).
#[test]
fn kvm_machine_defined_and_started() {
    let Some(lab) = Lab::if_available("kvm_machine_defined_and_started") else {
        return;
    };
    let m = "lc-kvm";
    lab.run(&["create", m, "-t", "tiny-kvm"]).ok();
    let dumpxml = virsh(&["dumpxml", m]);
    assert!(String::from_utf8_lossy(&dumpxml.stdout).contains("<domain type='kvm'"));
    lab.run(&["start", m, "--wait", "running", "--wait-timeout", "120"])
        .ok();
    assert_eq!(lab.state(m), "running");
    lab.run(&["pause", m]).ok();
    assert_eq!(lab.state(m), "paused");
    lab.run(&["unpause", m]).ok();
    lab.run(&["stop", m, "--force", "--timeout", "0"]).ok();
    assert_eq!(lab.state(m), "shut-off");
    lab.run(&["delete", m, "--yes"]).ok();
}

/// Rule 5 of the matrix: kvm shares qemu's code path, and the cells proven
/// on qemu are allowed for kvm once a real kvm machine has been through
/// each operation's kvm part. Here a kvm guest's QEMU starts but its kernel
/// never boots (shared/multihost.md), so this proves everything that needs
/// no booted guest: a kvm domain from the image cache with a disk from the
/// pool (#35) resized before it starts (#12), its serial log (#27) and console stream (#28), live disk
/// I/O limits (#22), a reboot request (#10), a managed save of a kvm guest and its restore (#17, #13).
#[test]
fn kvm_machine_smoke_test_of_the_shared_path() {
    let Some(lab) = Lab::if_available("kvm_machine_smoke_test_of_the_shared_path") else {
        return;
    };
    let m = "lc-kvm2";
    lab.run(&["create", m, "-t", "tiny-kvm", "--set", "disk.0.size=16MiB"])
        .ok();
    let xml = String::from_utf8_lossy(&virsh(&["dumpxml", m]).stdout).into_owned();
    assert!(xml.contains("<domain type='kvm'"), "{xml}");
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert_eq!(info["disks"][0]["target"], "vda", "{info}");
    // Resize of a kvm machine's definition (#12): what it starts with.
    lab.run(&[
        "resize", m, "--cpus", "2", "--memory", "384MiB", "--disk", "24MiB",
    ])
    .ok()
    .stdout_has("vCPUs 1 -> 2 (persistent)")
    .stdout_has("disk vda 16MiB -> 24MiB");
    // Snapshots (#16) of a stopped kvm machine: made and merged offline.
    lab.run(&["snapshot", "create", m, "k0"]).ok();
    lab.run(&["snapshot", "create", m, "k0m", "--memory"])
        .code(5)
        .stderr_has("--memory needs a running machine");
    lab.run(&["snapshot", "delete", m, "k0"]).ok();
    lab.run(&["snapshot", "create", m, "k1"]).ok();
    // A volume (#31, #1) attached to the stopped kvm machine is there when it runs.
    lab.run(&[
        "volume",
        "create",
        "kv",
        "--size",
        "8MiB",
        "--disk-format",
        "raw",
    ])
    .ok();
    lab.run(&["volume", "attach", m, "kv"])
        .ok()
        .stdout_has("as vdb (persistent");
    // Swapped while stopped (#18): the data is copied offline.
    lab.run(&[
        "volume",
        "create",
        "kv2",
        "--size",
        "8MiB",
        "--disk-format",
        "raw",
    ])
    .ok();
    {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .write(true)
            .open(lab.path().join("volumes").join("kv.img"))
            .unwrap()
            .write_all(b"kv-marker")
            .unwrap();
    }
    lab.run(&["volume", "swap", m, "kv", "kv2"]).ok();
    let kv2 = std::fs::read(lab.path().join("volumes").join("kv2.img")).unwrap();
    assert!(kv2.starts_with(b"kv-marker"));
    lab.run(&["start", m]).ok();
    let live = String::from_utf8_lossy(&virsh(&["dumpxml", m]).stdout).into_owned();
    assert!(
        live.contains("kv2.img") && !live.contains("kv.img"),
        "{live}"
    );
    assert_eq!(lab.state(m), "running");
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert_eq!(
        (info["cpus"].as_u64(), info["memory_bytes"].as_u64()),
        (Some(2), Some(384 << 20)),
        "{info}"
    );
    // The serial log exists from QEMU's start (the guest prints nothing here).
    lab.run(&["log", m]).ok();
    assert!(lab
        .path()
        .join("logs")
        .join(format!("{m}.serial.log"))
        .exists());
    // The console stream opens on a kvm domain and Ctrl-] leaves it.
    let mut child = std::process::Command::new(crate::util::bin())
        .args(["console", m])
        .env("CREATURE_STATE_DIR", lab.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"\n\x1d").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "console did not leave on Ctrl-]");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "console exited {status}");
    // Disk I/O limits on a running kvm guest, live, read back (#22).
    lab.run(&["limits", m, "--total-bps", "2MiB", "--read-iops", "40"])
        .ok();
    let j = lab.run(&["limits", m, "--format", "json"]).ok().json();
    assert_eq!(
        (
            j[0]["total_bytes_sec"].as_u64(),
            j[0]["read_iops_sec"].as_u64()
        ),
        (Some(2 << 20), Some(40))
    );
    // A reboot request is taken; the domain keeps running.
    lab.run(&["reboot", m]).ok();
    assert_eq!(lab.state(m), "running");
    // Managed save of a kvm guest, and back.
    lab.run(&["suspend", m]).ok();
    assert_eq!(lab.state(m), "saved");
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert_eq!(info["has_saved_state"], true);
    lab.run(&["restore", m]).ok();
    assert_eq!(lab.state(m), "running");
    // Rescue (#11): the kvm domain boots its rescue definition, then its own again.
    lab.run(&["rescue", m, "--image", "tiny-guest"]).ok();
    assert_eq!(lab.state(m), "running");
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert_eq!(info["rescued"], "tiny-guest");
    let xml = String::from_utf8_lossy(&virsh(&["dumpxml", m]).stdout).into_owned();
    assert!(
        xml.contains("creature.rescue=1") && xml.contains("<domain type='kvm'"),
        "{xml}"
    );
    lab.run(&["unrescue", m]).ok();
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert!(info["rescued"].is_null());
    // Snapshots of the running kvm domain: live overlay, revert, live merges.
    lab.run(&["snapshot", "create", m, "k2"]).ok();
    let rows = lab
        .run(&["snapshot", "list", m, "--format", "json"])
        .ok()
        .json();
    assert_eq!(rows[1]["parent"], "k1", "{rows}");
    assert_eq!(rows[1]["state"], "running", "{rows}");
    lab.run(&["snapshot", "revert", m, "k1", "--yes"])
        .ok()
        .stdout_has("started again");
    assert_eq!(lab.state(m), "running");
    lab.run(&["snapshot", "delete", m, "k2"]).ok();
    lab.run(&["snapshot", "delete", m, "k1"]).ok();
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert!(
        info["disks"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("-disk0-1.qcow2"),
        "{info}"
    );
    // A config drive (#23) carrying a file (#24) and network configuration
    // (#25) on a kvm domain: QEMU takes it read-only, and it goes with it.
    let k = "lc-kvm-seed";
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f"), "x").unwrap();
    std::fs::write(
        work.path().join("k.pub"),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKvmTest kvm@test\n",
    )
    .unwrap();
    let inject = format!("{}:/etc/f:0600", work.path().join("f").display());
    lab.c()
        .args(["create", k, "-t", "tiny-kvm", "--set", "disk.0.size=16MiB"])
        .args(["--set", "display.type=vnc"])
        .args(["--inject-file", &inject, "--ssh-key"])
        .arg_path(&work.path().join("k.pub"))
        .run()
        .ok();
    let (label, files) =
        creature::seed::iso::list(&creature::seed::store::iso(lab.path(), k)).unwrap();
    assert_eq!(label, "cidata");
    assert_eq!(files, ["meta-data", "network-config", "user-data"]);
    lab.run(&["start", k]).ok();
    // Its VNC display (#30), and a SPICE one (#29) on another kvm domain.
    let j = lab.run(&["display", k, "--format", "json"]).ok().json();
    assert!(
        j["uri"].as_str().unwrap().starts_with("vnc://127.0.0.1:"),
        "{j}"
    );
    // It is in a security group (#38) with a rule (#36): libvirt binds
    // its NIC's filter to the kvm domain's tap when it starts.
    let sp = "lc-kvm-spice";
    lab.run(&["net", "create", "lc-kn", "--subnet", "10.97.0.0/24"])
        .ok();
    lab.run(&["secgroup", "create", "kvm-sg"]).ok();
    lab.run(&[
        "create",
        sp,
        "-t",
        "tiny-kvm",
        "--network",
        "lc-kn",
        "--set",
        "disk.0.size=16MiB",
        "--set",
        "display.type=spice",
        "--set",
        "security_groups=[\"kvm-sg\"]",
    ])
    .ok();
    lab.run(&["start", sp]).ok();
    let j = lab.run(&["display", sp, "--format", "json"]).ok().json();
    assert!(
        j["uri"].as_str().unwrap().starts_with("spice://127.0.0.1:"),
        "{j}"
    );
    let filter = creature::secgroup::filter::nic_filter_name(
        &creature::backend::firewall::scope(lab.path()),
        sp,
        0,
    );
    let bound = String::from_utf8_lossy(&virsh(&["nwfilter-binding-list"]).stdout).into_owned();
    assert!(bound.contains(&filter), "{bound}");
    let nic = String::from_utf8_lossy(&virsh(&["nwfilter-dumpxml", &filter]).stdout).into_owned();
    assert!(nic.contains(".sg.kvm-sg'"), "{nic}");
    lab.run(&[
        "secgroup",
        "rule",
        "add",
        "kvm-sg",
        "--direction",
        "in",
        "--proto",
        "tcp",
        "--port",
        "22",
    ])
    .ok()
    .stdout_has("(1 machine, live)");
    lab.run(&["delete", sp, "--force", "--yes"]).ok();
    lab.run(&["secgroup", "delete", "kvm-sg", "--yes"]).ok();
    lab.run(&["net", "delete", "lc-kn", "--yes"]).ok();
    let live = String::from_utf8_lossy(&virsh(&["dumpxml", k]).stdout).into_owned();
    assert!(
        live.contains("<domain type='kvm'")
            && live.contains("drive.iso")
            && live.contains("<readonly/>"),
        "{live}"
    );
    lab.run(&["delete", k, "--force", "--yes"])
        .ok()
        .stdout_has("config drive");
    assert!(!creature::seed::store::dir(lab.path(), k).exists());
    lab.run(&["delete", m, "--force", "--yes"])
        .ok()
        .stdout_has("kept volume kv2 (was its vdb)");
    lab.run(&["volume", "delete", "kv", "--yes"]).ok();
    lab.run(&["volume", "delete", "kv2", "--yes"]).ok();
    assert!(!virsh(&["dominfo", m]).status.success());
}

/// A symlink planted where creature keeps disks or serial logs is refused
/// (exit 9) before anything is written through it, and the create leaves
/// nothing: no domain, no record, nothing in the link's target.
#[test]
fn planted_symlinks_are_never_written_through() {
    if !super::available("planted_symlinks_are_never_written_through") {
        return;
    }
    for planted in ["disks", "logs", "seeds"] {
        let lab = Lab::new();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), lab.path().join(planted)).unwrap();
        let m = format!("lc-planted-{planted}");
        lab.create_tiny_with_drive(&m)
            .run()
            .code(9)
            .stderr_has(&format!("{planted} is a symlink"));
        let written: Vec<_> = std::fs::read_dir(elsewhere.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            written.is_empty(),
            "{planted}: written through: {written:?}"
        );
        assert!(
            !virsh(&["dominfo", &m]).status.success(),
            "{planted}: domain left"
        );
        let store = creature::store::Store::open(lab.path()).unwrap();
        assert!(
            store.machine("local", &m).unwrap().is_none(),
            "{planted}: record left"
        );
    }
}

/// A disk larger than the pool's free space is refused (exit 2) naming the
/// field and the space, unless the template allows a sparse overcommit.
#[test]
fn disk_beyond_the_pool_needs_overcommit() {
    let Some(lab) = Lab::if_available("disk_beyond_the_pool_needs_overcommit") else {
        return;
    };
    lab.run(&[
        "create",
        "lc-huge",
        "-t",
        "tiny",
        "--set",
        "disk.0.size=100TiB",
    ])
    .code(2)
    .stderr_has("disk.0.size 100.0TiB does not fit in the pool's free space (");
    assert!(!virsh(&["dominfo", "lc-huge"]).status.success());
    assert!(!lab.path().join("disks/lc-huge-disk0.qcow2").exists());
    lab.run(&[
        "create",
        "lc-huge",
        "-t",
        "tiny",
        "--set",
        "disk.0.size=100TiB",
        "--set",
        "disk.0.overcommit=true",
    ])
    .ok();
    assert!(lab.path().join("disks/lc-huge-disk0.qcow2").exists());
    lab.run(&["delete", "lc-huge", "--yes"]).ok();
}
