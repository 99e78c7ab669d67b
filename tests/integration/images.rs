//! The image cache: import, pull from a local HTTP server (success, bad
//! checksum, a dropped connection resumed with a Range request, Ctrl-C),
//! and removal refused while a machine uses the image.

use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::http::{serve, Mode};
use crate::util::{bin, state_dir, Creature};

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn tmp_files(state: &Path) -> Vec<String> {
    std::fs::read_dir(state.join("images/tmp"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pull_checks_the_checksum_and_caches_by_content() {
    let d = state_dir();
    let data = body(3 << 20);
    let srv = serve(data.clone(), Mode::Normal);
    let sum = sha256(&data);
    let j = Creature::new(d.path())
        .args([
            "image", "pull", &srv.url, "--sha256", &sum, "--name", "img1", "--format", "json",
        ])
        .run()
        .ok()
        .json();
    assert_eq!(j["files"][0]["sha256"], sum.as_str());
    assert_eq!(j["files"][0]["format"], "raw");
    assert_eq!(
        std::fs::read(d.path().join("images/sha256").join(&sum)).unwrap(),
        data
    );
    assert!(tmp_files(d.path()).is_empty());
}

#[test]
fn bad_checksum_caches_nothing() {
    let d = state_dir();
    let srv = serve(body(1 << 20), Mode::Normal);
    let wrong = "0".repeat(64);
    Creature::new(d.path())
        .args([
            "image", "pull", &srv.url, "--sha256", &wrong, "--name", "img1",
        ])
        .run()
        .code(1)
        .stderr_has("checksum mismatch")
        .stderr_has("nothing was cached");
    assert!(tmp_files(d.path()).is_empty());
    let sha_dir = d.path().join("images/sha256");
    assert_eq!(std::fs::read_dir(sha_dir).unwrap().count(), 0);
    let j = Creature::new(d.path())
        .args(["image", "list", "--format", "json"])
        .run()
        .ok()
        .json();
    assert_eq!(j, serde_json::json!([]));
}

#[test]
fn dropped_connection_resumes_with_a_range_request() {
    let d = state_dir();
    let data = body(2 << 20);
    let srv = serve(data.clone(), Mode::DropFirst);
    Creature::new(d.path())
        .args([
            "image",
            "pull",
            &srv.url,
            "--sha256",
            &sha256(&data),
            "--name",
            "img1",
        ])
        .run()
        .ok();
    let ranges = srv.ranges.lock().unwrap().clone();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0], "");
    assert_eq!(ranges[1], format!("bytes={}-", data.len() / 2));
    assert_eq!(
        std::fs::read(d.path().join("images/sha256").join(sha256(&data))).unwrap(),
        data
    );
}

#[test]
fn ctrl_c_leaves_no_partial_file() {
    let d = state_dir();
    let data = body(8 << 20); // about 10 s at the slow server's pace
    let srv = serve(data.clone(), Mode::Slow);
    let child = std::process::Command::new(bin())
        .args([
            "image",
            "pull",
            &srv.url,
            "--sha256",
            &sha256(&data),
            "--name",
            "img1",
        ])
        .env("CREATURE_STATE_DIR", d.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tmp_files(d.path()).is_empty() {
        assert!(Instant::now() < deadline, "no partial file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let out = crate::util::interrupt(child);
    assert!(String::from_utf8_lossy(&out.stderr).contains("partial file was removed"));
    assert!(tmp_files(d.path()).is_empty(), "{:?}", tmp_files(d.path()));
    let j = Creature::new(d.path())
        .args(["image", "list", "--format", "json"])
        .run()
        .ok()
        .json();
    assert_eq!(j, serde_json::json!([]));
}

#[test]
fn url_without_checksum_is_refused() {
    let d = state_dir();
    Creature::new(d.path())
        .args(["image", "pull", "http://127.0.0.1:9/x.qcow2", "--name", "x"])
        .run()
        .code(2)
        .stderr_has("needs --sha256 or --sha512");
}

#[test]
fn import_kernel_pair_and_refuse_removal_while_used() {
    let d = state_dir();
    let k = d.path().join("vmlinuz");
    let i = d.path().join("initrd.img");
    std::fs::write(&k, body(100_000)).unwrap();
    std::fs::write(&i, body(50_000)).unwrap();
    let j = Creature::new(d.path())
        .args(["image", "import", "--name", "pair", "--format", "json"])
        .arg_path(&k)
        .arg_path(&i)
        .run()
        .ok()
        .json();
    let files: Vec<&str> = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["initrd.img", "vmlinuz"]);
    // A machine that uses it (recorded as create will record it).
    crate::util::seed(d.path(), &[("vm", creature::backend::Backend::Qemu)]);
    creature::store::Store::open(d.path())
        .unwrap()
        .use_image("local", "vm", "pair")
        .unwrap();
    Creature::new(d.path())
        .args(["image", "rm", "pair"])
        .run()
        .code(5)
        .stderr_has("used by vm");
    creature::store::Store::open(d.path())
        .unwrap()
        .remove_machine("local", "vm", creature::store::Leases::MayLive)
        .unwrap();
    Creature::new(d.path())
        .args(["image", "rm", "pair"])
        .run()
        .ok();
    assert_eq!(
        std::fs::read_dir(d.path().join("images/sha256"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn qcow2_with_backing_file_is_refused() {
    let d = state_dir();
    let base = d.path().join("base.qcow2");
    let over = d.path().join("over.qcow2");
    let q = |args: &[&str]| {
        assert!(std::process::Command::new("qemu-img")
            .args(args)
            .status()
            .unwrap()
            .success());
    };
    q(&["create", "-q", "-f", "qcow2", base.to_str().unwrap(), "16M"]);
    q(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        base.to_str().unwrap(),
        "-F",
        "qcow2",
        over.to_str().unwrap(),
    ]);
    Creature::new(d.path())
        .args(["image", "import", "--name", "over"])
        .arg_path(&over)
        .run()
        .code(2)
        .stderr_has("with a backing file");
    assert!(tmp_files(d.path()).is_empty());
}

/// Images that make the hypervisor open another host file, need a key or
/// hide one format inside another are refused at import, and nothing of
/// them is kept in the cache.
#[test]
fn untrusted_image_features_are_refused() {
    let d = state_dir();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let q = |args: &[&str]| {
        let out = std::process::Command::new("qemu-img")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    q(&["create", "-q", "-f", "raw", &p("host-file.raw"), "1M"]);
    q(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        &format!("data_file={},data_file_raw=on", p("host-file.raw")),
        &p("data-file.qcow2"),
        "1M",
    ]);
    let enc = [
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        "secret,id=s0,data=abc",
        "-o",
        "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=100",
        &p("encrypted.qcow2"),
        "1M",
    ];
    // qemu-img times its LUKS key derivation and can fail under load
    // ("Unable to get accurate CPU usage"): try a few times.
    let made = (0..20).any(|i| {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        std::process::Command::new("qemu-img")
            .args(enc)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(made, "qemu-img could not make an encrypted image");
    // A "raw" file whose first bytes are a qcow2 header with a data file:
    // probed, it is what it hides, and refused as such.
    std::fs::copy(p("data-file.qcow2"), p("disguised.img")).unwrap();
    let cases = [
        ("data-file.qcow2", "external data file"),
        ("encrypted.qcow2", "encrypted"),
        ("disguised.img", "external data file"),
    ];
    for (file, why) in cases {
        Creature::new(d.path())
            .args(["image", "import", "--name", "bad"])
            .arg_path(&d.path().join(file))
            .run()
            .code(2)
            .stderr_has(why);
        assert!(
            tmp_files(d.path()).is_empty(),
            "{file}: a temporary file was kept"
        );
    }
    Creature::new(d.path())
        .args(["image", "list", "--format", "json"])
        .run()
        .code(0)
        .stdout_has("[]");
}

/// A symlink planted in the image cache (the cache itself, its temporary
/// or its content directory) is refused (exit 9) and nothing is written
/// through it.
#[test]
fn planted_symlinks_in_the_cache_are_refused() {
    for planted in ["images", "images/tmp", "images/sha256"] {
        let d = state_dir();
        let sd = d.path().join("state");
        let img = d.path().join("disk.raw");
        std::fs::write(&img, vec![0u8; 1 << 16]).unwrap();
        // A first import makes the state directory and the cache.
        Creature::new(&sd)
            .args(["--quiet", "image", "import", "--name", "first"])
            .arg_path(&img)
            .run()
            .code(0);
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let at = sd.join(planted);
        std::fs::rename(&at, d.path().join("moved-away")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &at).unwrap();
        Creature::new(&sd)
            .args(["image", "import", "--name", "second"])
            .arg_path(&img)
            .run()
            .code(9)
            .stderr_has("is a symlink");
        assert_eq!(
            std::fs::read_dir(&elsewhere).unwrap().count(),
            0,
            "{planted}: written through"
        );
    }
}

/// A raw disk whose guest wrote a qcow2 header at its start: named raw
/// (`--image-format raw`), it is cached as raw and never probed into a
/// qcow2; named qcow2, a raw file is refused; unnamed, it is probed (and
/// what the header claims is checked like any qcow2).
#[test]
fn a_named_format_is_never_probed_into_another() {
    let d = state_dir();
    let sd = d.path().join("state");
    let qcow = d.path().join("header.qcow2");
    assert!(std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&qcow)
        .arg("1M")
        .status()
        .unwrap()
        .success());
    // A "raw disk" that starts with a qcow2 header.
    let raw = d.path().join("disk.raw");
    let mut bytes = std::fs::read(&qcow).unwrap();
    bytes.resize(4 << 20, 0);
    std::fs::write(&raw, &bytes).unwrap();
    let import = |name: &str, file: &std::path::Path, format: Option<&str>| {
        let mut c = Creature::new(&sd).args(["--quiet", "image", "import", "--name", name]);
        if let Some(f) = format {
            c = c.args(["--image-format", f]);
        }
        c.arg_path(file).run()
    };
    import("as-raw", &raw, Some("raw")).code(0);
    import("probed", &raw, None).code(0);
    import("not-qcow2", &d.path().join("plain.raw"), Some("qcow2")).code(4);
    std::fs::write(d.path().join("plain.raw"), vec![0u8; 1 << 20]).unwrap();
    import("not-qcow2", &d.path().join("plain.raw"), Some("qcow2"))
        .code(2)
        .stderr_has("is named qcow2 but is a raw image");
    let list = Creature::new(&sd)
        .args(["image", "list", "--format", "json"])
        .run()
        .ok()
        .json();
    let format_of = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == n)
            .map(|i| i["files"][0]["format"].as_str().unwrap().to_string())
    };
    assert_eq!(format_of("as-raw").as_deref(), Some("raw"));
    assert_eq!(format_of("probed").as_deref(), Some("qcow2"));
    assert_eq!(format_of("not-qcow2"), None);
}

/// `image prune` and `image rm` keep what a record names and what a disk
/// still backs onto (a qcow2 overlay whose machine record was lost), and
/// remove the rest, saying what they freed.
#[test]
fn prune_keeps_used_and_backing_images_and_frees_the_rest() {
    let d = state_dir();
    let import = |name: &str, len: usize| {
        let f = d.path().join(format!("{name}.raw"));
        std::fs::write(&f, body(len)).unwrap();
        let j = Creature::new(d.path())
            .args([
                "image",
                "import",
                "--image-format",
                "raw",
                "--name",
                name,
                "--format",
                "json",
            ])
            .arg_path(&f)
            .run()
            .ok()
            .json();
        std::fs::remove_file(&f).unwrap();
        j["files"][0]["sha256"].as_str().unwrap().to_string()
    };
    import("recorded", 1 << 20);
    let backed = import("backed", (1 << 20) + 512);
    import("loose", 3 << 20);
    crate::util::seed(d.path(), &[("vm", creature::backend::Backend::Qemu)]);
    creature::store::Store::open(d.path())
        .unwrap()
        .use_image("local", "vm", "recorded")
        .unwrap();
    // A disk whose record is gone, still on the image's blob.
    std::fs::create_dir_all(d.path().join("disks")).unwrap();
    let orphan = d.path().join("disks/lost-disk0.qcow2");
    let blob = d.path().join("images/sha256").join(&backed);
    assert!(std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
        .arg(&blob)
        .arg(&orphan)
        .status()
        .unwrap()
        .success());

    Creature::new(d.path())
        .args(["image", "rm", "backed"])
        .run()
        .code(5)
        .stderr_has("backing file of")
        .stderr_has("lost-disk0.qcow2");
    let j = Creature::new(d.path())
        .args(["image", "prune", "--dry-run", "--format", "json"])
        .run()
        .ok()
        .json();
    let names = |k: &str| -> Vec<String> {
        j[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("keep"), ["backed", "recorded"], "{j:#}");
    assert_eq!(names("remove"), ["loose"], "{j:#}");
    assert_eq!(j["remove"][0]["bytes"], 3 << 20);
    assert_eq!(j["freed_bytes"], 0);
    let doc = crate::real::json::documented();
    let mut got = std::collections::BTreeSet::new();
    crate::real::json::paths(&j, "", &mut got);
    crate::real::json::check("image prune --dry-run", &doc["image prune --dry-run"], &got);
    Creature::new(d.path())
        .args(["image", "prune"])
        .run()
        .code(2)
        .stderr_has("pass --yes");
    Creature::new(d.path())
        .args(["image", "prune", "--yes"])
        .run()
        .ok()
        .stdout_has("keeping image recorded: used by vm")
        .stdout_has("removing image loose (3.0MiB)")
        .stdout_has("freed 3.0MiB");
    assert_eq!(
        std::fs::read_dir(d.path().join("images/sha256"))
            .unwrap()
            .count(),
        2
    );
    assert!(blob.exists(), "the backing blob went");
    // The overlay gone, the image goes too; then nothing is left to prune.
    std::fs::remove_file(&orphan).unwrap();
    Creature::new(d.path())
        .args(["image", "prune", "--yes"])
        .run()
        .ok()
        .stdout_has("removing image backed");
    assert!(!blob.exists());
    Creature::new(d.path())
        .args(["image", "prune", "--yes"])
        .run()
        .ok()
        .stdout_has("keeping image recorded")
        .stdout_has("nothing to prune");
}
