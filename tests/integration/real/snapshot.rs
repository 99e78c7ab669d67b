//! Snapshots (#16) of a real running qemu guest: markers written on its
//! disk between snapshots come back with each revert, branches survive,
//! deletes merge without losing what was written after them, a memory
//! snapshot resumes the guest where it was, export makes an image another
//! machine boots with the data, and failures change nothing.

use super::vm::Lab;

fn write_mark(lab: &Lab, m: &str, mark: &str) {
    lab.guest(
        m,
        &format!("printf '%-16s' {mark} | dd of=/dev/vda bs=512 seek=2048 conv=notrunc 2>/dev/null; sync"),
    );
}

fn mark(lab: &Lab, m: &str) -> String {
    lab.guest(
        m,
        "dd if=/dev/vda bs=512 skip=2048 count=1 2>/dev/null | head -c 16",
    )
    .trim()
    .to_string()
}

fn boots(lab: &Lab, m: &str) -> usize {
    lab.log(m)
        .matches("creature-test-guest: guest agent on")
        .count()
}

fn wait_boot(lab: &Lab, m: &str, n: usize) {
    lab.wait_log(m, &format!("boot {n}"), |_| boots(lab, m) == n);
}

fn snaps(lab: &Lab, m: &str) -> Vec<serde_json::Value> {
    lab.run(&["snapshot", "list", m, "--format", "json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

fn row<'a>(rows: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    rows.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no snapshot {name}: {rows:?}"))
}

/// The machine's files in the pool directory, sorted.
fn files(lab: &Lab, m: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(lab.path().join("disks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(&format!("{m}-")))
        .collect();
    v.sort();
    v
}

fn disk_path(lab: &Lab, m: &str) -> String {
    let info = lab.run(&["info", m, "--format", "json"]).ok().json();
    info["disks"][0]["path"].as_str().unwrap().to_string()
}

#[test]
fn snapshots_of_a_running_guest_revert_branch_merge_and_export() {
    let Some(lab) =
        Lab::if_available("snapshots_of_a_running_guest_revert_branch_merge_and_export")
    else {
        return;
    };
    crate::util::require_hooks();
    let m = "sn-vm";
    lab.run(&["create", m, "-t", "tiny", "--set", "disk.0.size=16MiB"])
        .ok();
    lab.run(&["start", m]).ok();
    wait_boot(&lab, m, 1);

    write_mark(&lab, m, "one");
    lab.run(&["snapshot", "create", m, "s1"])
        .ok()
        .stdout_has("snapshotted sn-vm: s1 (vda)");
    write_mark(&lab, m, "two");
    lab.run(&["snapshot", "create", m, "s2"]).ok();
    write_mark(&lab, m, "three");
    let rows = snaps(&lab, m);
    assert_eq!(rows.len(), 2);
    assert!(row(&rows, "s1")["parent"].is_null());
    assert_eq!(row(&rows, "s2")["parent"], "s1");
    assert_eq!(row(&rows, "s2")["current"], true);
    assert_eq!(row(&rows, "s1")["state"], "running");
    lab.run(&["snapshot", "list", m]).ok().stdout_has("  s2");
    lab.run(&["snapshot", "create", m, "s2"])
        .code(5)
        .stderr_has("already has a snapshot \"s2\"");
    lab.run(&["snapshot", "revert", m, "nosuch", "--yes"])
        .code(4)
        .stderr_has("has no snapshot \"nosuch\" (it has: s1, s2)");

    // Back to s1: the guest boots on what the disk held then.
    lab.run(&["snapshot", "revert", m, "s1", "--yes"])
        .ok()
        .stdout_has("reverted sn-vm to s1: started again");
    wait_boot(&lab, m, 2);
    assert_eq!(mark(&lab, m), "one");
    write_mark(&lab, m, "four");
    assert_eq!(row(&snaps(&lab, m), "s1")["current"], true);
    // And over to the other branch: s2 is whole.
    lab.run(&["snapshot", "revert", m, "s2", "--yes"]).ok();
    wait_boot(&lab, m, 3);
    assert_eq!(mark(&lab, m), "two");

    // Deleting s1, under s2 on the running chain: s2 keeps its data.
    lab.run(&["snapshot", "delete", m, "s1"])
        .ok()
        .stdout_has("deleted snapshot s1 of sn-vm");
    assert_eq!(mark(&lab, m), "two");
    write_mark(&lab, m, "five");
    let rows = snaps(&lab, m);
    assert_eq!(rows.len(), 1);
    assert!(row(&rows, "s2")["parent"].is_null());
    assert_eq!(row(&rows, "s2")["current"], true);
    // Deleting s2 merges the running disk into it: "five", written after
    // it, is still there, and still there after a cold restart.
    lab.run(&["snapshot", "delete", m, "s2"]).ok();
    assert!(snaps(&lab, m).is_empty());
    assert_eq!(mark(&lab, m), "five");
    assert_eq!(files(&lab, m).len(), 1, "{:?}", files(&lab, m));
    lab.run(&["destroy", m, "--yes"]).ok();
    lab.run(&["start", m]).ok();
    wait_boot(&lab, m, 4);
    assert_eq!(mark(&lab, m), "five");

    // A failure after the overlay exists leaves no record and no file, and
    // the machine on its old disk.
    let before = (files(&lab, m), disk_path(&lab, m));
    lab.c()
        .args(["snapshot", "create", m, "s3"])
        .env("CREATURE_TEST_FAIL_AT", "snapshot-taken")
        .run()
        .code(1)
        .stderr_has("injected failure");
    assert!(snaps(&lab, m).is_empty());
    assert_eq!((files(&lab, m), disk_path(&lab, m)), before);
    assert_eq!(mark(&lab, m), "five");
    // A revert that fails before the machine moves leaves it running on its
    // own disk, with no new file.
    lab.run(&["snapshot", "create", m, "s3"]).ok();
    let with_s3 = (files(&lab, m), disk_path(&lab, m));
    lab.c()
        .args(["snapshot", "revert", m, "s3", "--yes"])
        .env("CREATURE_TEST_FAIL_AT", "revert-before-define")
        .run()
        .code(1)
        .stderr_has("injected failure");
    assert_eq!((files(&lab, m), disk_path(&lab, m)), with_s3);
    assert_eq!(lab.state(m), "running");
    wait_boot(&lab, m, 5);
    assert_eq!(mark(&lab, m), "five");
    lab.run(&["snapshot", "delete", m, "s3"]).ok();
    assert_eq!(disk_path(&lab, m), before.1);
    // A file named like the next overlay is never written over.
    let planted = lab.path().join("disks").join(format!("{m}-disk0-5.qcow2"));
    std::fs::write(&planted, b"not mine").unwrap();
    lab.run(&["snapshot", "create", m, "s3"]).ok();
    assert!(disk_path(&lab, m).ends_with("-disk0-6.qcow2"));
    assert_eq!(std::fs::read(&planted).unwrap(), b"not mine");
    lab.run(&["snapshot", "delete", m, "s3"]).ok();
    std::fs::remove_file(&planted).unwrap();
    assert_eq!(disk_path(&lab, m), before.1);

    // Memory: the guest resumes where it was, without booting.
    lab.guest(m, "echo before > /tmp/mem-mark");
    lab.run(&["snapshot", "create", m, "m1", "--memory"])
        .ok()
        .stdout_has("and its memory");
    lab.guest(m, "echo after > /tmp/mem-mark");
    lab.run(&["snapshot", "revert", m, "m1", "--yes"])
        .ok()
        .stdout_has("resumed as it was (running)");
    assert_eq!(lab.state(m), "running");
    assert_eq!(lab.guest(m, "cat /tmp/mem-mark"), "before");
    assert_eq!(boots(&lab, m), 5, "a memory revert does not boot");

    // Export while running: an image another machine boots with the data.
    lab.run(&["snapshot", "export", m, "--image", "sn-img"])
        .ok()
        .stdout_has("exported sn-vm (vda) as image sn-img");
    assert_eq!(snaps(&lab, m).len(), 1, "the export's own snapshot is gone");
    lab.run(&["snapshot", "export", m, "--image", "sn-img"])
        .code(5);
    let m2 = "sn-vm2";
    lab.run(&[
        "create",
        m2,
        "-t",
        "tiny",
        "--set",
        "disk.0.source.image=sn-img",
    ])
    .ok();
    lab.run(&["start", m2]).ok();
    wait_boot(&lab, m2, 1);
    assert_eq!(mark(&lab, m2), "five");
    lab.run(&["delete", m2, "--force", "--yes"]).ok();

    // Deleting the machine takes its snapshots, files and memory images.
    lab.run(&["delete", m, "--force", "--yes"])
        .ok()
        .stdout_has("snapshot memory images");
    assert!(files(&lab, m).is_empty(), "{:?}", files(&lab, m));
    assert!(!lab.path().join("snapshots").join(m).exists());
}
