//! Block volumes (#31, #1, #2) on real qemu guests: a volume hot-plugged
//! into a running guest is a disk it writes; hot-unplugged it is gone from
//! the guest and the definition; attached read-only to a second machine it
//! holds the first one's data; one holder at a time; deleting a machine
//! keeps its volumes; failures change nothing.

use super::vm::{virsh, Lab};

fn wait_guest(lab: &Lab, m: &str, what: &str, ok: impl Fn(&str) -> bool, script: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = lab.guest(m, script);
        if ok(&out) {
            return out;
        }
        assert!(std::time::Instant::now() < deadline, "{m}: {what}: {out}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

fn boots(lab: &Lab, m: &str) -> usize {
    lab.log(m)
        .matches("creature-test-guest: guest agent on")
        .count()
}

fn dumpxml(m: &str, inactive: bool) -> String {
    let mut a = vec!["dumpxml", m];
    if inactive {
        a.push("--inactive");
    }
    String::from_utf8_lossy(&virsh(&a).stdout).into_owned()
}

#[test]
fn volumes_hotplug_into_a_running_guest_and_keep_their_data() {
    let Some(lab) = Lab::if_available("volumes_hotplug_into_a_running_guest_and_keep_their_data")
    else {
        return;
    };
    crate::util::require_hooks();
    let (m, m2) = ("vol-vm", "vol-vm2");
    for x in [m, m2] {
        lab.run(&["create", x, "-t", "tiny", "--set", "disk.0.size=16MiB"])
            .ok();
    }
    lab.run(&["start", m]).ok();
    lab.wait_log(m, "boot", |_| boots(&lab, m) == 1);

    lab.run(&["volume", "create", "data", "--size", "32MiB"])
        .ok()
        .stdout_has("created volume data: 32MiB qcow2");
    lab.run(&["volume", "create", "data", "--size", "1MiB"])
        .code(5);
    lab.run(&["volume", "create", "huge", "--size", "900TiB"])
        .code(8)
        .stderr_has("needs 900TiB");
    lab.run(&["volume", "create", "Bad_Name", "--size", "1MiB"])
        .code(2);
    let j = lab.run(&["volume", "list", "--format", "json"]).ok().json();
    assert_eq!(j.as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j[0]["capacity_bytes"], 32 << 20);
    assert_eq!(j[0]["attachments"].as_array().unwrap().len(), 0);
    let path = j[0]["path"].as_str().unwrap().to_string();

    // A failure after the holder is recorded leaves no record and no disk.
    lab.c()
        .args(["volume", "attach", m, "data"])
        .env("CREATURE_TEST_FAIL_AT", "volume-recorded")
        .run()
        .code(1);
    assert!(!dumpxml(m, false).contains(&path));
    assert!(!dumpxml(m, true).contains(&path));
    let j = lab.run(&["volume", "list", "--format", "json"]).ok().json();
    assert_eq!(j[0]["attachments"].as_array().unwrap().len(), 0, "{j}");

    // Hot-plugged: the guest sees a 32 MiB disk and writes on it.
    lab.run(&["volume", "attach", m, "data"])
        .ok()
        .stdout_has("attached volume data to vol-vm as vdb (live and persistent)");
    wait_guest(
        &lab,
        m,
        "vdb appears",
        |o| o == "65536",
        "cat /sys/block/vdb/size 2>/dev/null; true",
    );
    lab.guest(
        m,
        "printf volume-mark-7 | dd of=/dev/vdb bs=512 seek=100 conv=notrunc 2>/dev/null; sync",
    );
    assert!(dumpxml(m, true).contains(&path), "persistent too");
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert_eq!(info["volumes"][0]["name"], "data", "{info}");
    assert_eq!(info["volumes"][0]["target"], "vdb", "{info}");
    lab.run(&["volume", "info", "data"])
        .ok()
        .stdout_has("vol-vm:vdb");
    lab.run(&["volume", "attach", m, "data"])
        .code(5)
        .stderr_has("attached to vol-vm already");
    lab.run(&["volume", "attach", m2, "data"])
        .code(5)
        .stderr_has("attached to vol-vm:vdb");
    lab.run(&["volume", "attach", m2, "data", "--shareable"])
        .code(2)
        .stderr_has("only raw volumes");
    lab.run(&["volume", "delete", "data", "--yes"])
        .code(5)
        .stderr_has("detach it first");

    // Swapped while the guest runs (#18): the guest's vdb now reads data2,
    // with the marker written before the swap; data is free again.
    lab.run(&["volume", "create", "data2", "--size", "32MiB"])
        .ok();
    lab.run(&["volume", "create", "small", "--size", "8MiB"])
        .ok();
    lab.run(&["volume", "swap", m, "data", "small"])
        .code(2)
        .stderr_has("the same size");
    lab.run(&["volume", "swap", m, "data", "data2"])
        .ok()
        .stdout_has("swapped volume data for data2 on vol-vm (vdb)");
    let path2 = lab
        .run(&["volume", "info", "data2", "--format", "json"])
        .ok()
        .json()["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(dumpxml(m, false).contains(&path2) && !dumpxml(m, false).contains(&path));
    assert!(dumpxml(m, true).contains(&path2) && !dumpxml(m, true).contains(&path));
    assert_eq!(
        lab.guest(
            m,
            "dd if=/dev/vdb bs=512 skip=100 count=1 2>/dev/null | head -c 13"
        ),
        "volume-mark-7"
    );
    lab.guest(
        m,
        "printf volume-mark-8 | dd of=/dev/vdb bs=512 seek=200 conv=notrunc 2>/dev/null; sync",
    );
    lab.run(&["volume", "swap", m, "data2", "data"]).ok();
    assert_eq!(
        lab.guest(
            m,
            "dd if=/dev/vdb bs=512 skip=200 count=1 2>/dev/null | head -c 13"
        ),
        "volume-mark-8"
    );
    lab.run(&["volume", "delete", "data2", "--yes"]).ok();
    lab.run(&["volume", "delete", "small", "--yes"]).ok();

    // Hot-unplugged: gone from the guest and from the definition.
    lab.run(&["volume", "detach", m, "data"])
        .ok()
        .stdout_has("detached volume data (vdb) from vol-vm");
    wait_guest(
        &lab,
        m,
        "vdb goes",
        |o| o == "gone",
        "test -e /sys/block/vdb || echo gone; true",
    );
    assert!(!dumpxml(m, true).contains(&path));
    lab.run(&["volume", "detach", m, "data"])
        .code(5)
        .stderr_has("not attached to vol-vm");

    // Read-only on a stopped machine, at a chosen device: the data is there.
    lab.run(&[
        "volume",
        "attach",
        m2,
        "data",
        "--readonly",
        "--target",
        "vdc",
    ])
    .ok()
    .stdout_has("as vdc (persistent; the guest sees it from its next start)");
    lab.run(&["start", m2]).ok();
    lab.wait_log(m2, "boot", |_| boots(&lab, m2) == 1);
    // The guest names virtio disks in slot order: its second disk is vdb.
    assert_eq!(
        lab.guest(
            m2,
            "dd if=/dev/vdb bs=512 skip=100 count=1 2>/dev/null | head -c 13"
        ),
        "volume-mark-7"
    );
    assert_eq!(lab.guest(m2, "cat /sys/block/vdb/ro"), "1");

    // Deleting a machine keeps its volumes, detached.
    lab.run(&["delete", m2, "--force", "--yes"])
        .ok()
        .stdout_has("kept volume data (was its vdc), now detached");
    let j = lab.run(&["volume", "list", "--format", "json"]).ok().json();
    assert_eq!(j[0]["attachments"].as_array().unwrap().len(), 0, "{j}");
    assert!(std::path::Path::new(&path).exists());
    lab.run(&["volume", "delete", "data", "--yes"])
        .ok()
        .stdout_has("deleted volume data");
    assert!(!std::path::Path::new(&path).exists());
    lab.run(&["volume", "info", "data"]).code(4);
    lab.run(&["delete", m, "--force", "--yes"]).ok();

    // A template's [[volume]]: made with the machine (removed with it unless
    // keep), or an existing one (always kept).
    lab.run(&["volume", "create", "shared1", "--size", "2MiB"])
        .ok();
    let t = "vol-tpl";
    let tpl = |name: &str| {
        vec![
            "create".to_string(),
            name.into(),
            "-t".into(),
            "tiny".into(),
            "--set".into(),
            "disk.0.size=16MiB".into(),
            "--set".into(),
            "volume.0.size=8MiB".into(),
            "--set".into(),
            "volume.1.size=4MiB".into(),
            "--set".into(),
            "volume.1.keep=true".into(),
            "--set".into(),
            "volume.2.name=shared1".into(),
        ]
    };
    lab.run(&["create", "x", "-t", "tiny", "--set", "volume.0.keep=true"])
        .code(2)
        .stderr_has("needs either `name`");
    // A create that fails after its volumes were made leaves none of them.
    lab.c()
        .args(tpl("vol-tpl2"))
        .env("CREATURE_TEST_FAIL_AT", "volumes")
        .run()
        .code(1);
    let names = |j: &serde_json::Value| -> Vec<String> {
        j.as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    let j = lab.run(&["volume", "list", "--format", "json"]).ok().json();
    assert_eq!(names(&j), ["shared1"], "{j}");
    assert!(!lab
        .path()
        .join("volumes")
        .join("vol-tpl2-vol0.qcow2")
        .exists());

    lab.c().args(tpl(t)).run().ok();
    let j = lab.run(&["volume", "list", "--format", "json"]).ok().json();
    assert_eq!(
        names(&j),
        ["shared1", "vol-tpl-vol0", "vol-tpl-vol1"],
        "{j}"
    );
    assert_eq!(j[1]["made_for"], t);
    assert!(j[2]["made_for"].is_null());
    let targets: Vec<&str> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["attachments"][0]["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["vdd", "vdb", "vdc"], "{j}");
    let def = dumpxml(t, true);
    for v in ["shared1.qcow2", "vol-tpl-vol0.qcow2", "vol-tpl-vol1.qcow2"] {
        assert!(def.contains(v), "{v}: {def}");
    }
    lab.run(&["delete", t, "--yes"])
        .ok()
        .stdout_has("removed volume vol-tpl-vol0")
        .stdout_has("kept volume vol-tpl-vol1 (was its vdc)")
        .stdout_has("kept volume shared1 (was its vdd)");
    let j = lab.run(&["volume", "list", "--format", "json"]).ok().json();
    assert_eq!(names(&j), ["shared1", "vol-tpl-vol1"], "{j}");
    assert!(!lab
        .path()
        .join("volumes")
        .join("vol-tpl-vol0.qcow2")
        .exists());
    lab.run(&["volume", "delete", "shared1", "--yes"]).ok();
    lab.run(&["volume", "delete", "vol-tpl-vol1", "--yes"]).ok();

    // A file an interrupted `volume create` left in creature's pool, with no
    // record: repair removes it, and nothing recorded.
    lab.run(&["volume", "create", "recorded", "--size", "1MiB"])
        .ok();
    let stray = lab.path().join("volumes").join("stray.qcow2");
    assert!(std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", stray.to_str().unwrap(), "1M"])
        .status()
        .unwrap()
        .success());
    let plan = lab
        .run(&["repair", "--dry-run", "--format", "json"])
        .ok()
        .json();
    let text = plan.to_string();
    assert!(
        text.contains("delete-block-volume") && text.contains("stray.qcow2"),
        "{plan}"
    );
    assert!(!text.contains("recorded.qcow2"), "{plan}");
    lab.run(&["repair", "--yes"]).ok();
    assert!(!stray.exists());
    assert!(lab.path().join("volumes").join("recorded.qcow2").exists());
    lab.run(&["volume", "delete", "recorded", "--yes"]).ok();

    // Any libvirt pool by name; an unknown one is exit 4.
    let other = tempfile::tempdir().unwrap();
    let dir = other.path().to_str().unwrap();
    for a in [
        &["pool-define-as", "vol-other", "dir", "--target", dir][..],
        &["pool-start", "vol-other"],
    ] {
        assert!(virsh(a).status.success(), "virsh {a:?}");
    }
    lab.run(&[
        "volume",
        "create",
        "elsewhere",
        "--size",
        "1MiB",
        "--pool",
        "nosuch",
    ])
    .code(4)
    .stderr_has("no libvirt storage pool \"nosuch\"");
    lab.run(&[
        "volume",
        "create",
        "elsewhere",
        "--size",
        "1MiB",
        "--pool",
        "vol-other",
    ])
    .ok()
    .stdout_has("in pool vol-other");
    assert!(other.path().join("elsewhere.qcow2").exists());
    lab.run(&["volume", "delete", "elsewhere", "--yes"]).ok();
    assert!(!other.path().join("elsewhere.qcow2").exists());
    virsh(&["pool-destroy", "vol-other"]);
    virsh(&["pool-undefine", "vol-other"]);
}

/// Containers (#31, #18): a template volume is a raw file with an ext4
/// filesystem, on a loop device, mounted where the template says at each
/// start; its data survives restarts and a swap (the container stopped);
/// a running container's swap is refused; delete releases the loop device
/// and removes the volume it made.
#[test]
fn container_volumes_on_loop_devices_survive_restarts_and_swaps() {
    let Some(lab) =
        Lab::if_available("container_volumes_on_loop_devices_survive_restarts_and_swaps")
    else {
        return;
    };
    let c = "vol-box";
    lab.run(&[
        "create",
        c,
        "-t",
        "lxc-busybox",
        "--set",
        "volume.0.size=16MiB",
        "--set",
        "volume.0.path=/srv/data",
    ])
    .ok();
    lab.run(&[
        "create",
        "x",
        "-t",
        "lxc-busybox",
        "--set",
        "volume.0.size=16MiB",
    ])
    .code(2)
    .stderr_has("needs the path it is mounted at");
    let file = lab.path().join("volumes").join(format!("{c}-vol0.img"));
    assert!(file.exists());
    lab.run(&["start", c]).ok();
    lab.run(&["info", c]).ok().stdout_has("/srv/data");
    let mounts = lab.guest(c, "grep ' /srv/data ' /proc/mounts; true");
    assert!(mounts.contains("ext4"), "{mounts}");
    lab.guest(c, "echo kept-across > /srv/data/f; sync");
    // The matrix refuses attach for containers; block storage and swap are theirs.
    lab.run(&[
        "volume",
        "create",
        "other",
        "--size",
        "16MiB",
        "--disk-format",
        "raw",
    ])
    .ok();
    lab.run(&["volume", "attach", c, "other"]).code(3);
    lab.run(&["volume", "swap", c, &format!("{c}-vol0"), "other"])
        .code(5)
        .stderr_has("stop it to swap");
    lab.run(&["stop", c, "--force"]).ok();
    lab.run(&["start", c]).ok();
    assert_eq!(lab.guest(c, "cat /srv/data/f"), "kept-across");
    lab.run(&["stop", c, "--force"]).ok();
    lab.run(&["volume", "swap", c, &format!("{c}-vol0"), "other"])
        .ok();
    lab.run(&["start", c]).ok();
    assert_eq!(lab.guest(c, "cat /srv/data/f"), "kept-across");
    let loops = |f: &std::path::Path| {
        String::from_utf8_lossy(
            &std::process::Command::new("losetup")
                .args(["-j", f.to_str().unwrap()])
                .output()
                .unwrap()
                .stdout,
        )
        .trim()
        .to_string()
    };
    let other = lab.path().join("volumes").join("other.img");
    assert!(!loops(&other).is_empty());
    lab.run(&["delete", c, "--force", "--yes"])
        .ok()
        .stdout_has(&format!("removed volume {c}-vol0"))
        .stdout_has("kept volume other (was its /srv/data)");
    assert!(
        loops(&other).is_empty(),
        "loop device left: {}",
        loops(&other)
    );
    assert!(loops(&file).is_empty());
    assert!(!file.exists());
    lab.run(&["volume", "delete", "other", "--yes"]).ok();
}
