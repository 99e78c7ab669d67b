//! Copy-on-write overlays of cached images, made through libvirt's storage
//! volume API on the namespace's own libvirtd.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use creature::backend::libvirt::{self, storage};
use creature::backend::Backend;

use crate::util::{run_ok, state_dir, Creature};

fn qemu_img_info(path: &str) -> serde_json::Value {
    let out = run_ok(Command::new("qemu-img").args(["info", "--output=json", "-U", path]));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn overlays_are_made_by_libvirt_with_explicit_backing_formats() {
    if !super::available("overlays_are_made_by_libvirt_with_explicit_backing_formats") {
        return;
    }
    let d = state_dir();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let q = d.path().join("base.qcow2");
    let raw = d.path().join("base.raw");
    assert!(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&q)
        .arg("64M")
        .status()
        .unwrap()
        .success());
    std::fs::write(&raw, vec![0u8; 4 << 20]).unwrap();
    for (name, file) in [("base-q", &q), ("base-raw", &raw)] {
        Creature::new(d.path())
            .args(["image", "import", "--name", name])
            .arg_path(file)
            .run()
            .ok();
    }
    let store = creature::store::Store::open(d.path()).unwrap();
    let conn = libvirt::open(
        &libvirt::Uri::local(Backend::Qemu).unwrap(),
        Duration::from_secs(30),
    )
    .unwrap();
    let pool_name = storage::pool_name(d.path());
    let pool = storage::ensure_pool(
        &conn,
        &pool_name,
        &d.path().join("disks"),
        &d.path().join("pool.lock"),
    )
    .unwrap();
    for (image, fmt) in [("base-q", "qcow2"), ("base-raw", "raw")] {
        let rec = store.image(image).unwrap().unwrap();
        let blob = d.path().join("images/sha256").join(&rec.files[0].sha256);
        let vol_name = format!("vm-{image}.qcow2");
        let vol = storage::create_volume(
            &pool,
            &storage::overlay_xml(&vol_name, 128 << 20, &blob, fmt),
            &vol_name,
        )
        .unwrap();
        let path = vol.path().unwrap();
        assert!(Path::new(&path).starts_with(d.path().join("disks")));
        let info = qemu_img_info(&path);
        assert_eq!(info["format"], "qcow2");
        assert_eq!(info["virtual-size"], 128 << 20);
        assert_eq!(info["backing-filename"], blob.display().to_string());
        assert_eq!(
            info["backing-filename-format"], fmt,
            "backing format must be explicit"
        );
        // Copy-on-write: the overlay holds metadata only, whatever the image's size.
        assert!(info["actual-size"].as_u64().unwrap() < 1 << 20, "{info}");
        assert!(storage::delete_volume(&pool, &vol_name).unwrap());
        assert!(!Path::new(&path).exists());
        assert!(!storage::delete_volume(&pool, &vol_name).unwrap());
    }
    pool.destroy().unwrap();
    pool.undefine().unwrap();
}

/// A state directory on a tmpfs of `size` of its own (the test namespace's
/// mounts are private); unmount it when done.
fn tmpfs_state(size: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = state_dir();
    let sd = d.path().join("state");
    std::fs::create_dir(&sd).unwrap();
    run_ok(
        Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0711"),
                "tmpfs",
            ])
            .arg(&sd),
    );
    (d, sd)
}

/// A full filesystem under the state directory is exit 8 naming the
/// filesystem and what is left on it, and the partial copy is removed.
/// (A 2 MiB tmpfs, mounted inside the test namespace's private mounts.)
#[test]
fn a_full_filesystem_is_exit_8_naming_it() {
    if !super::available("a_full_filesystem_is_exit_8_naming_it") {
        return;
    }
    let (d, sd) = tmpfs_state("2m");
    let img = d.path().join("big.raw");
    std::fs::write(&img, vec![7u8; 4 << 20]).unwrap();
    let r = Creature::new(&sd)
        .args(["image", "import", "--name", "big"])
        .arg_path(&img)
        .run();
    let tmp: Vec<_> = std::fs::read_dir(sd.join("images/tmp"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    run_ok(Command::new("umount").arg(&sd));
    r.code(8)
        .stderr_has(&format!("the filesystem at {} is full", sd.display()));
    assert!(tmp.is_empty(), "partial copies left: {tmp:?}");
}

/// A state directory on a read-only filesystem: reads work, every change
/// exits 6 saying so, and nothing is written.
#[test]
fn a_read_only_state_directory_is_read_but_never_changed() {
    if !super::available("a_read_only_state_directory_is_read_but_never_changed") {
        return;
    }
    let (d, sd) = tmpfs_state("8m");
    let img = d.path().join("small.raw");
    std::fs::write(&img, vec![1u8; 1 << 16]).unwrap();
    Creature::new(&sd)
        .args(["--quiet", "image", "import", "--name", "kept"])
        .arg_path(&img)
        .run()
        .ok();
    run_ok(Command::new("mount").args(["-o", "remount,ro"]).arg(&sd));
    let before = crate::util::snapshot(&sd);
    let list = Creature::new(&sd).args(["image", "list"]).run();
    let import = Creature::new(&sd)
        .args(["image", "import", "--name", "more"])
        .arg_path(&img)
        .run();
    let rm = Creature::new(&sd).args(["image", "rm", "kept"]).run();
    let after = crate::util::snapshot(&sd);
    run_ok(Command::new("umount").arg(&sd));
    list.ok().stdout_has("kept");
    import.code(6).stderr_has("read-only filesystem");
    rm.code(6).stderr_has("read-only filesystem");
    assert_eq!(before, after);
}
