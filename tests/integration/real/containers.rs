//! The LXC backend on the namespace's private /var/lib/lxc: a busybox
//! container through its whole life, its console, refusals on a real
//! container, and rollback of a failed create.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::vm::Lab;

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The host uid and gid a process runs as.
fn host_ids(pid: i64) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(k)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("Uid:"), field("Gid:"))
}

fn pid(lab: &Lab, m: &str) -> Option<i64> {
    lab.run(&["info", m, "--format", "json"]).ok().json()["pid"].as_i64()
}

/// Proves Launch, Shutdown, Reboot, Pause/Unpause (freeze), Guest instance
/// status and the console (#28, Nova: unknown) for lxc.
#[test]
fn busybox_container_full_lifecycle() {
    let Some(lab) = Lab::if_available("busybox_container_full_lifecycle") else {
        return;
    };
    let m = "ct-box";
    lab.run(&["create", m, "-t", "lxc-busybox"])
        .ok()
        .stdout_has("created ct-box (lxc, template lxc-busybox)");
    let dir = Path::new("/var/lib/lxc").join(m);
    assert!(dir.join("config").exists() && dir.join("rootfs/bin/busybox").exists());
    let row = lab.list_row(m);
    assert_eq!(row["backend"], "lxc");
    assert_eq!(row["state"], "shut-off");

    lab.run(&["start", m, "--wait", "running"]).ok();
    assert_eq!(lab.state(m), "running");
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    let first_pid = info["pid"].as_i64().expect("init pid");
    assert!(first_pid > 1);
    assert_eq!(info["memory_bytes"], 64u64 << 20);
    assert!(
        info["memory_used_bytes"].as_u64().is_some_and(|u| u > 0),
        "{info}"
    );
    // The init process really is the container's busybox, running as the
    // mapped root (unprivileged: host uid and gid from /etc/subuid, subgid).
    let exe = std::fs::read_link(format!("/proc/{first_pid}/exe")).unwrap();
    assert!(exe.ends_with("busybox"), "{}", exe.display());
    assert_eq!(host_ids(first_pid), (100000, 100000));

    // Refused on a real container, and it keeps running.
    lab.run(&["suspend", m])
        .code(3)
        .stderr_has("missing for lxc");
    assert_eq!(lab.state(m), "running");

    // pause/unpause are freeze/thaw: the init process is frozen in between.
    lab.run(&["pause", m]).ok();
    assert_eq!(lab.state(m), "paused");
    let status = std::fs::read_to_string(format!("/proc/{first_pid}/status")).unwrap();
    assert!(status.lines().any(|l| l.starts_with("State:")
        && (l.contains("(stopped)") || l.contains("D ") || l.contains("S "))));
    lab.run(&["unpause", m]).ok();
    assert_eq!(lab.state(m), "running");

    super::vm::console_says(&lab, m, b"\n");
    assert_eq!(lab.state(m), "running");

    // reboot: a new init process.
    lab.run(&["reboot", m]).ok();
    wait_until("a new init after reboot", || {
        pid(&lab, m).is_some_and(|p| p != first_pid)
    });

    lab.run(&["delete", m, "--yes"]).code(5);
    lab.run(&["stop", m, "--timeout", "30"]).ok();
    assert_eq!(lab.state(m), "shut-off");
    lab.run(&["delete", m, "--yes"])
        .ok()
        .stdout_has("removed root filesystem");
    assert!(!dir.exists(), "container directory left behind");
    let store = creature::store::Store::open(lab.path()).unwrap();
    assert!(store.machine("local", m).unwrap().is_none());
    assert!(store.journal_rows("local", m).unwrap().is_empty());
}

#[test]
fn failed_container_create_leaves_nothing() {
    let Some(lab) = Lab::if_available("failed_container_create_leaves_nothing") else {
        return;
    };
    crate::util::require_hooks();
    for step in ["rootfs", "define", "ready"] {
        let m = format!("ct-fail-{step}");
        lab.c()
            .args(["create", &m, "-t", "lxc-busybox"])
            .env("CREATURE_TEST_FAIL_AT", step)
            .run()
            .code(1);
        assert!(
            !Path::new("/var/lib/lxc").join(&m).exists(),
            "{step}: container left behind"
        );
        let store = creature::store::Store::open(lab.path()).unwrap();
        assert!(
            store.machine("local", &m).unwrap().is_none(),
            "{step}: record left behind"
        );
    }
    // A privileged container runs its init as host root.
    lab.run(&[
        "launch",
        "ct-priv",
        "-t",
        "lxc-busybox",
        "--set",
        "rootfs.unprivileged=false",
    ])
    .ok();
    let p = pid(&lab, "ct-priv").expect("init pid");
    assert_eq!(host_ids(p), (0, 0));
    lab.run(&["delete", "ct-priv", "--yes", "--force"]).ok();
    assert!(!Path::new("/var/lib/lxc/ct-priv").exists());

    // A container creature did not make is foreign and never touched.
    crate::util::run_ok(Command::new("lxc-create").args(["-n", "ct-foreign", "-t", "busybox"]));
    let f = lab.list_row("ct-foreign");
    assert_eq!(f["record"], "foreign");
    assert_eq!(f["backend"], "lxc");
    lab.run(&["create", "ct-foreign", "-t", "lxc-busybox"])
        .code(5);
    assert!(Path::new("/var/lib/lxc/ct-foreign/config").exists());
    assert!(Command::new("lxc-destroy")
        .args(["-n", "ct-foreign"])
        .status()
        .unwrap()
        .success());
}

/// Root filesystems from a checksummed tarball and from a directory.
#[test]
fn tarball_and_directory_root_filesystems() {
    let Some(lab) = Lab::if_available("tarball_and_directory_root_filesystems") else {
        return;
    };
    let tree = lab.path().join("tree");
    creature::backend::lxc::rootfs::build_busybox(&tree, "t").unwrap();
    let tarball = lab.path().join("rootfs.tar.gz");
    assert!(Command::new("tar")
        .args(["-czf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&tree)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let sum = {
        use sha2::Digest;
        let b = std::fs::read(&tarball).unwrap();
        sha2::Sha256::digest(&b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let tdir = lab.path().join("templates");
    std::fs::create_dir(&tdir).unwrap();
    std::fs::write(
        tdir.join("from-tar.toml"),
        format!(
            "backend = \"lxc\"\nmemory = \"64MiB\"\n[rootfs]\ntype = \"tarball\"\nunprivileged = true\nsource = {{ path = \"{}\", sha256 = \"{sum}\" }}\n",
            tarball.display()
        ),
    )
    .unwrap();
    std::fs::write(
        tdir.join("from-dir.toml"),
        format!("backend = \"lxc\"\nmemory = \"64MiB\"\n[rootfs]\ntype = \"dir\"\nsource = {{ path = \"{}\" }}\n", tree.display()),
    )
    .unwrap();
    let td = tdir.to_str().unwrap();
    // A wrong checksum is refused and leaves nothing.
    let wrong = "0".repeat(64);
    lab.run(&[
        "create",
        "ct-badsum",
        "-t",
        "from-tar",
        "--template-dir",
        td,
        "--set",
        &format!("rootfs.source.sha256={wrong}"),
    ])
    .code(2)
    .stderr_has("checksum mismatch");
    assert!(!Path::new("/var/lib/lxc/ct-badsum").exists());
    for (m, t) in [("ct-tar", "from-tar"), ("ct-dir", "from-dir")] {
        lab.run(&["launch", m, "-t", t, "--template-dir", td]).ok();
        assert_eq!(lab.state(m), "running", "{m}");
        assert!(Path::new("/var/lib/lxc")
            .join(m)
            .join("rootfs/bin/busybox")
            .exists());
        lab.run(&["stop", m, "--timeout", "20"]).ok();
        lab.run(&["delete", m, "--yes"]).ok();
    }
    let j = lab.run(&["list", "--format", "json"]).ok().json();
    assert!(!j
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "ct-tar" || r["name"] == "ct-dir"));
}
