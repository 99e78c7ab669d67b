//! A Debian container from debootstrap, created twice: the first create
//! builds the root filesystem from the packages and caches it, the second
//! copies it. The packages were downloaded outside the namespace
//! (scripts/test: `creature image pull lxc-debian`). Both durations are
//! written to target/creature-bench/ for the benchmark, never asserted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use creature::backend::lxc::debootstrap::{Cache, Key};
use creature::template::{self, HostLimits, Library};

use super::vm::Lab;

fn prefetched() -> Option<PathBuf> {
    std::env::var_os("CREATURE_TEST_DEBIAN_STATE").map(PathBuf::from)
}

#[test]
fn debian_container_from_the_rootfs_cache() {
    if !super::available("debian_container_from_the_rootfs_cache") {
        return;
    }
    let lab = Lab::new();
    let r = template::resolve(&Library::new(None), "lxc-debian", &[], HostLimits::local()).unwrap();
    let key = Key::of(r.template.rootfs.as_ref().unwrap());
    let from = Cache::new(
        &prefetched().expect("CREATURE_TEST_DEBIAN_STATE (scripts/test sets it)"),
        key.clone(),
    );
    assert!(
        from.debs().exists(),
        "no prefetched packages at {} (scripts/test downloads them)",
        from.debs().display()
    );
    let ours = Cache::new(lab.path(), key);
    std::fs::create_dir_all(&ours.dir).unwrap();
    std::fs::copy(from.debs(), ours.debs()).unwrap();

    let t = Instant::now();
    lab.run(&["create", "dt1", "-t", "lxc-debian"])
        .ok()
        .stderr_has("built with debootstrap and cached");
    let first = t.elapsed();
    let t = Instant::now();
    lab.run(&["create", "dt2", "-t", "lxc-debian"])
        .ok()
        .stderr_has("copied from the cache");
    let second = t.elapsed();
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/creature-bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("lxc-debian-create.json"),
        format!(
            "{{\"first_create_s\": {:.3}, \"cached_create_s\": {:.3}}}\n",
            first.as_secs_f64(),
            second.as_secs_f64()
        ),
    )
    .unwrap();

    lab.run(&["start", "dt2", "--wait", "running"]).ok();
    let v = std::process::Command::new("lxc-attach")
        .args(["-n", "dt2", "--", "cat", "/etc/debian_version"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&v.stdout).starts_with("12."),
        "{v:?}"
    );
    let info = lab.run(&["info", "dt2", "--format", "json"]).ok().json();
    let pid = info["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.contains("100000")),
        "{status}"
    );
    lab.run(&["stop", "dt2", "--timeout", "60"]).ok();
    lab.run(&["delete", "dt1", "--yes"]).ok();
    lab.run(&["delete", "dt2", "--yes"]).ok();
}
