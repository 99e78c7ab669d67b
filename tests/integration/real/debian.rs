//! A Debian container from debootstrap, created twice: the first create
//! builds the root filesystem from the packages and caches it, the second
//! copies it; a third lays an overlay on it. The packages were downloaded outside the namespace
//! (scripts/test: `creature image pull lxc-debian`). Both durations are
//! written to target/creature-bench/ for the benchmark, never asserted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use creature::backend::lxc::debootstrap::{Cache, Key};
use creature::template::{self, HostLimits, Library};

use super::vm::{attach, Lab};

fn prefetched() -> Option<PathBuf> {
    std::env::var_os("CREATURE_TEST_DEBIAN_STATE").map(PathBuf::from)
}

/// Copy the packages of `template`'s root filesystem, downloaded outside
/// the namespace (scripts/test: `creature image pull`), into the lab's
/// cache; that cache.
pub fn prefetched_into(lab: &Lab, template_name: &str) -> Cache {
    let r =
        template::resolve(&Library::new(None), template_name, &[], HostLimits::local()).unwrap();
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
    ours
}

#[test]
fn debian_container_from_the_rootfs_cache() {
    let Some(lab) = Lab::if_available("debian_container_from_the_rootfs_cache") else {
        return;
    };
    let ours = prefetched_into(&lab, "lxc-debian");

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
    let v = attach("dt2", &["cat", "/etc/debian_version"]);
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

    // An overlay on the cached (shifted) tree: changes land in the
    // container's upper layer, never in the cache, and delete keeps the cache.
    let tree = std::fs::read_dir(&ours.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("tree-")
        })
        .expect("the unprivileged tree in the cache");
    let tree_hostname = std::fs::read(tree.join("etc/hostname")).unwrap();
    lab.run(&[
        "create",
        "dt3",
        "-t",
        "lxc-debian",
        "--set",
        "rootfs.overlay=true",
    ])
    .ok()
    .stderr_has("an overlay on the cache");
    let dir = Path::new("/var/lib/lxc/dt3");
    assert!(
        !dir.join("rootfs").exists(),
        "an overlay container has no copy"
    );
    lab.run(&["start", "dt3", "--wait", "running"]).ok();
    let in_dt3 = |cmd: &str| {
        let o = attach("dt3", &["sh", "-c", cmd]);
        assert!(o.status.success(), "{cmd}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(in_dt3("cat /etc/hostname"), "dt3\n");
    assert!(in_dt3("cat /etc/debian_version").starts_with("12."));
    in_dt3("echo changed > /root/overlay-probe");
    let probe = dir.join("delta/root/overlay-probe");
    let meta = std::fs::metadata(&probe).expect("the change in the upper layer");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), 100000, "written by the container's root");
    assert!(
        !tree.join("root/overlay-probe").exists(),
        "the cache changed"
    );
    assert_eq!(
        std::fs::read(tree.join("etc/hostname")).unwrap(),
        tree_hostname
    );
    // The cache is dt3's lower layer: prune keeps it.
    let id = ours.dir.file_name().unwrap().to_string_lossy().into_owned();
    lab.run(&["image", "prune", "--dry-run"])
        .ok()
        .stdout_has(&format!("keeping rootfs {id}: lower layer of dt3"));
    lab.run(&["stop", "dt3", "--timeout", "60"]).ok();
    lab.run(&["delete", "dt3", "--yes"])
        .ok()
        .stdout_has("(the cached tree stays)");
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(
        tree.join("etc/debian_version").exists(),
        "delete removed the cache"
    );

    // No container on it any more: prune removes it and says what it freed.
    let dry = lab
        .run(&["image", "prune", "--dry-run", "--format", "json"])
        .ok()
        .json();
    let rootfs = dry["remove"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "rootfs")
        .unwrap_or_else(|| panic!("no rootfs to remove: {dry:#}"));
    assert_eq!(rootfs["name"], id.as_str());
    let bytes = rootfs["bytes"].as_u64().unwrap();
    assert!(bytes > 100 << 20, "a Debian tree is over 100 MiB: {bytes}");
    assert!(ours.dir.exists(), "a dry run removed it");
    lab.run(&["image", "prune"])
        .code(2)
        .stderr_has("pass --yes");
    lab.run(&["image", "prune", "--yes"])
        .ok()
        .stdout_has(&format!("removing rootfs {id}"))
        .stdout_has("freed ");
    assert!(!ours.dir.exists(), "{} left behind", ours.dir.display());
}
