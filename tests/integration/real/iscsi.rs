//! iSCSI volumes with CHAP (#33, #34) against a real target nobody here
//! wrote: Debian's tgt (tgtd + tgtadm), started inside the test namespace
//! on the loopback. The right secret gives the guest the LUN (its size,
//! the marker written into the backing file); a wrong one, or a target
//! that is down, leaves nothing defined or recorded; the secret is never
//! shown or written by creature.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command};

use super::vm::{virsh, Lab};

const PORT: &str = "3261";
const CONTROL: &str = "7";
pub const IQN: &str = "iqn.2026-12.test.creature:lun-target";
pub const SECRET: &str = "chap-Secret-77";

/// tgtd on 127.0.0.1:PORT, killed when dropped.
pub struct Tgt(Child);

impl Drop for Tgt {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tgtadm(control: &str, args: &[&str]) {
    let out = Command::new("tgtadm")
        .args(["-C", control, "--lld", "iscsi"])
        .args(args)
        .output()
        .expect("tgtadm");
    assert!(
        out.status.success(),
        "tgtadm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn start_target(backing: &std::path::Path) -> Tgt {
    start_target_at(CONTROL, &format!("127.0.0.1:{PORT}"), backing)
}

/// tgtd on `portal` (its control port `control`: each test its own), LUN 1
/// on `backing`, CHAP user cuser with SECRET, open to every initiator.
pub fn start_target_at(control: &str, portal: &str, backing: &std::path::Path) -> Tgt {
    let tgtadm = |args: &[&str]| tgtadm(control, args);
    let child = Command::new("tgtd")
        .args(["-f", "-C", control, "--iscsi", &format!("portal={portal}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tgtd (Debian package tgt) is needed here");
    let tgt = Tgt(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !Command::new("tgtadm")
        .args([
            "-C", control, "--lld", "iscsi", "--op", "show", "--mode", "target",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(std::time::Instant::now() < deadline, "tgtd did not come up");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    tgtadm(&["--op", "new", "--mode", "target", "--tid", "1", "-T", IQN]);
    tgtadm(&[
        "--op",
        "new",
        "--mode",
        "logicalunit",
        "--tid",
        "1",
        "--lun",
        "1",
        "-b",
        backing.to_str().unwrap(),
    ]);
    tgtadm(&[
        "--op",
        "new",
        "--mode",
        "account",
        "--user",
        "cuser",
        "--password",
        SECRET,
    ]);
    tgtadm(&[
        "--op", "bind", "--mode", "account", "--tid", "1", "--user", "cuser",
    ]);
    tgtadm(&[
        "--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL",
    ]);
    tgt
}

fn virsh_out(args: &[&str]) -> String {
    String::from_utf8_lossy(&virsh(args).stdout).into_owned()
}

fn boots(lab: &Lab, m: &str) -> usize {
    lab.log(m)
        .matches("creature-test-guest: guest agent on")
        .count()
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_holding(&p, needle));
        } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[test]
fn an_iscsi_lun_with_chap_from_a_real_tgt_target() {
    let Some(lab) = Lab::if_available("an_iscsi_lun_with_chap_from_a_real_tgt_target") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let backing = work.path().join("lun1.img");
    let f = std::fs::File::create(&backing).unwrap();
    f.set_len(64 << 20).unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = f;
        f.seek(SeekFrom::Start(100 * 512)).unwrap();
        f.write_all(b"iscsi-marker-1").unwrap();
    }
    let tgt = start_target(&backing);
    let portal = format!("127.0.0.1:{PORT}");
    let secret_file = work.path().join("chap");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let create = |name: &str, secret: &std::path::Path| {
        lab.run(&[
            "volume",
            "create",
            name,
            "--iscsi",
            &portal,
            "--iqn",
            IQN,
            "--lun",
            "1",
            "--chap-user",
            "cuser",
            "--chap-secret-file",
            secret.to_str().unwrap(),
        ])
    };
    create("lun1", &secret_file)
        .code(2)
        .stderr_has("readable by everyone");
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // Wrong secret: one line, exit 6, nothing defined or recorded.
    let secrets_before = virsh_out(&["secret-list"]);
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    create("bad", &wrong)
        .code(6)
        .stderr_has("cannot log in to iSCSI target");
    assert_eq!(virsh_out(&["secret-list"]), secrets_before);
    assert!(!virsh_out(&["pool-list", "--all"]).contains("iscsi-bad"));
    lab.run(&["volume", "info", "bad"]).code(4);
    // A target that is down: exit 6 as well.
    lab.run(&[
        "volume",
        "create",
        "down",
        "--iscsi",
        "127.0.0.1:3299",
        "--iqn",
        IQN,
        "--lun",
        "1",
    ])
    .code(6);

    // The right secret: registered with its size, CHAP said, the secret nowhere.
    create("lun1", &secret_file).ok().stdout_has("CHAP: yes");
    let info = lab.run(&["volume", "info", "lun1"]).ok();
    assert!(info.stdout.contains("yes (user cuser)"), "{}", info.stdout);
    let j = lab
        .run(&["volume", "info", "lun1", "--format", "json"])
        .ok()
        .json();
    assert_eq!(j["iscsi"]["iqn"], IQN);
    let capacity = j["capacity_bytes"].as_u64().unwrap();
    assert_eq!(j["allocation_bytes"].as_u64(), Some(capacity), "{j}");
    assert!(capacity > 60 << 20 && capacity <= 64 << 20, "{j}");
    for out in [
        info.stdout.clone(),
        j.to_string(),
        lab.run(&["volume", "list"]).ok().stdout,
    ] {
        assert!(!out.contains(SECRET));
    }
    assert!(files_holding(lab.path(), SECRET.as_bytes()).is_empty());
    // libvirt keeps it private: not even libvirt's own client reads it back.
    let uuid = virsh_out(&["secret-list"])
        .lines()
        .find(|l| l.contains("iscsi-lun1"))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_string)
        .expect("the CHAP secret is in libvirt");
    assert!(!virsh(&["secret-get-value", &uuid]).status.success());

    // A running guest gets the LUN and reads what the test wrote into it.
    let m = "isc-vm";
    lab.run(&["create", m, "-t", "tiny", "--set", "disk.0.size=16MiB"])
        .ok();
    lab.run(&["start", m]).ok();
    lab.wait_log(m, "boot", |_| boots(&lab, m) == 1);
    // The target down: exit 6, the machine and the records unchanged.
    drop(tgt);
    lab.run(&["volume", "attach", m, "lun1"]).code(6);
    assert!(!virsh_out(&["dumpxml", m]).contains("iscsi-lun1"));
    let j = lab
        .run(&["volume", "info", "lun1", "--format", "json"])
        .ok()
        .json();
    assert_eq!(j["attachments"].as_array().unwrap().len(), 0, "{j}");
    let _tgt = start_target(&backing);
    lab.run(&["volume", "attach", m, "lun1"]).ok();
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    assert_eq!(info["volumes"][0]["name"], "lun1", "{info}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let seen = lab.guest(m, "cat /sys/block/vdb/size 2>/dev/null; true");
        // The whole 64 MiB LUN (libvirt's iscsi-direct pool reports one
        // block less: it counts up to the last block's address).
        if seen == (64u64 << 20 >> 9).to_string() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the guest never saw the LUN ({capacity} bytes): vdb size {seen:?}; {}",
            virsh_out(&["dumpxml", m])
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert_eq!(
        lab.guest(
            m,
            "dd if=/dev/vdb bs=512 skip=100 count=1 2>/dev/null | head -c 14"
        ),
        "iscsi-marker-1"
    );
    lab.run(&["volume", "delete", "lun1"])
        .code(5)
        .stderr_has("detach it first");
    lab.run(&["volume", "detach", m, "lun1"]).ok();
    lab.run(&["delete", m, "--force", "--yes"]).ok();

    // Deleting the volume forgets the way to it, not the LUN's data.
    lab.run(&["volume", "delete", "lun1"])
        .ok()
        .stdout_has("the LUN's data stays on the target");
    assert!(!virsh_out(&["pool-list", "--all"]).contains("iscsi-lun1"));
    assert!(!virsh_out(&["secret-list"]).contains("iscsi-lun1"));
    let data = std::fs::read(&backing).unwrap();
    assert_eq!(&data[100 * 512..100 * 512 + 14], b"iscsi-marker-1");
}
