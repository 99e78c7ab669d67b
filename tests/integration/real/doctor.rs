//! `creature doctor` against the namespace's own daemons, and each broken
//! prerequisite produced for real. A break lives in a mount namespace of
//! the one doctor process (bind mounts made between fork and exec), so the
//! rest of the suite keeps its daemons, /dev/kvm and /etc.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{state_dir, Creature};

/// Run `doctor --format json` with `binds` (source over target) in place.
fn doctor(state: &Path, binds: &[(PathBuf, &str)]) -> (i32, Value, String) {
    let pairs: Vec<(CString, CString)> = binds
        .iter()
        .map(|(s, t)| {
            (
                CString::new(s.as_os_str().as_bytes()).unwrap(),
                CString::new(*t).unwrap(),
            )
        })
        .collect();
    let mut cmd = Creature::new(state)
        .args(["doctor", "--format", "json"])
        .command();
    // SAFETY: between fork and exec only async-signal-safe calls (unshare,
    // mount) on memory prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let root = c"/";
            if libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for (s, t) in &pairs {
                if libc::mount(
                    s.as_ptr(),
                    t.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run creature doctor");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The verdicts of one check (`space` may appear more than once).
fn status(j: &Value, check: &str) -> Vec<(String, String)> {
    j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == check)
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                format!("{} | fix: {}", c["detail"], c["fix"]),
            )
        })
        .collect()
}

fn one(j: &Value, check: &str) -> (String, String) {
    let v = status(j, check);
    assert_eq!(v.len(), 1, "{check}: {j:#}");
    v.into_iter().next().unwrap()
}

fn assert_fails(code: i32, j: &Value, stderr: &str, check: &str, needle: &str) {
    let (st, detail) = one(j, check);
    assert_eq!(st, "fail", "{check}: {detail}");
    assert!(
        detail.contains(needle),
        "{check}: {needle:?} not in {detail}"
    );
    assert_eq!(code, 6, "a failed check exits 6: {stderr}");
    assert!(stderr.contains(check), "{stderr}");
    assert_eq!(j["ok"], false);
}

#[test]
fn doctor_names_each_broken_prerequisite() {
    if !super::available("doctor_names_each_broken_prerequisite") {
        return;
    }
    let d = state_dir();
    let scratch = tempfile::tempdir().unwrap();

    // The namespace as scripts/ns-run made it: the daemons answer.
    let (code, j, stderr) = doctor(d.path(), &[]);
    for check in [
        "libvirtd", "virtlogd", "qemu", "liblxc", "subuid", "subgid", "dnsmasq",
    ] {
        assert_eq!(one(&j, check).0, "ok", "{check}: {j:#}");
    }
    assert!(one(&j, "libvirtd").1.contains("/run/libvirt/libvirt-sock"));
    let failed = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["status"] == "fail");
    assert_eq!(code == 0, !failed, "exit {code} with {j:#}\n{stderr}");
    let doc = super::json::documented();
    let mut got = std::collections::BTreeSet::new();
    super::json::paths(&j, "", &mut got);
    super::json::check("doctor", &doc["doctor"], &got);

    // Another host that does not answer: a warning naming it, not a failure.
    let with_host = state_dir();
    Creature::new(with_host.path())
        .args(["host", "add", "far", "qemu+tcp://127.0.0.1:1/system"])
        .run()
        .ok();
    let (code_h, j, _) = doctor(with_host.path(), &[]);
    let (st, detail) = one(&j, "host");
    assert_eq!(st, "warn", "{detail}");
    assert!(
        detail.contains("far: qemu+tcp://127.0.0.1:1/system does not answer")
            && detail.contains("creature host remove far"),
        "{detail}"
    );
    assert_eq!(code_h, code, "a warning changes no exit code");

    // virtlogd stopped: its socket file stays behind, nobody listens.
    let dead = scratch.path().join("virtlogd-sock");
    std::fs::write(&dead, "").unwrap();
    let (code, j, stderr) = doctor(d.path(), &[(dead, "/run/libvirt/virtlogd-sock")]);
    assert_fails(code, &j, &stderr, "virtlogd", "systemctl start virtlogd");
    assert_eq!(one(&j, "libvirtd").0, "ok");

    // /dev/kvm root-only: the trap that makes every libvirt call slow.
    if Path::new("/dev/kvm").exists() {
        let node = scratch.path().join("kvm");
        let c = CString::new(node.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path; mknod creates a device node, nothing else.
        let r = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(10, 232)) };
        assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
        let (code, j, stderr) = doctor(d.path(), &[(node, "/dev/kvm")]);
        assert_fails(code, &j, &stderr, "kvm", "chmod 660 /dev/kvm");
    } else {
        let (_, j, _) = doctor(d.path(), &[]);
        assert_eq!(one(&j, "kvm").0, "warn", "no /dev/kvm is a warning: {j:#}");
    }

    // No subordinate ids for root: unprivileged containers cannot start.
    let subuid = scratch.path().join("subuid");
    std::fs::write(&subuid, "alice:100000:65536\n").unwrap();
    let (code, j, stderr) = doctor(d.path(), &[(subuid, "/etc/subuid")]);
    assert_fails(
        code,
        &j,
        &stderr,
        "subuid",
        "root:100000:65536 >> /etc/subuid",
    );
    assert_eq!(one(&j, "subgid").0, "ok");

    // A small state filesystem, then full.
    let small = scratch.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=300m,mode=700", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(st.success());
    let unmount = Unmount(small.clone());
    let (_, j, _) = doctor(&small, &[]);
    let (st, detail) = one(&j, "space");
    assert_eq!(st, "warn", "300 MiB free is a warning: {detail}");
    let fill = std::fs::File::create(small.join("fill")).unwrap();
    fill.set_len(0).unwrap();
    std::io::Write::write_all(&mut &fill, &vec![7u8; 100 << 20]).unwrap();
    let (code, j, stderr) = doctor(&small, &[]);
    assert_fails(code, &j, &stderr, "space", "image prune");
    drop(fill);
    drop(unmount);

    // An interrupted create left in the journal: a warning, repair is the fix.
    {
        let mut s = creature::store::Store::open(d.path()).unwrap();
        s.begin_create(
            "local",
            "halfway",
            creature::backend::Backend::Qemu,
            Some("seeded"),
        )
        .unwrap();
    }
    let (_, j, _) = doctor(d.path(), &[]);
    let (st, detail) = one(&j, "journal");
    assert_eq!(st, "warn", "{detail}");
    assert!(
        detail.contains("halfway") && detail.contains("creature repair"),
        "{detail}"
    );
    assert_eq!(one(&j, "database").0, "ok");

    // The database damaged: pages overwritten in the middle of the file.
    let db = d.path().join(creature::store::DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 8192, "{} bytes", bytes.len());
    for b in &mut bytes[4096 + 100..] {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    let (code, j, stderr) = doctor(d.path(), &[]);
    assert_fails(code, &j, &stderr, "database", "backup");

    // A unit whose stop timeout is shorter than autostop's budget.
    let units = scratch.path().join("system");
    std::fs::create_dir_all(units.join("multi-user.target.wants")).unwrap();
    let unit: Vec<String> = Creature::new(scratch.path())
        .args(["autostart", "unit"])
        .run()
        .ok()
        .stdout
        .lines()
        .map(|l| match l.starts_with("TimeoutStopSec=") {
            true => "TimeoutStopSec=45".to_string(),
            false => l.to_string(),
        })
        .collect();
    let unit = unit.join("\n");
    std::fs::write(units.join("creature.service"), unit).unwrap();
    std::os::unix::fs::symlink(
        "/etc/systemd/system/creature.service",
        units.join("multi-user.target.wants/creature.service"),
    )
    .unwrap();
    let fresh = state_dir();
    let (code, j, stderr) = doctor(fresh.path(), &[(units, "/etc/systemd/system")]);
    assert_eq!(one(&j, "unit").0, "ok", "installed and enabled: {j:#}");
    assert_fails(code, &j, &stderr, "unit-timeout", "creature autostart unit");
}

use std::process::Command;

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
