//! Completion asks the binary at completion time, so machine names come
//! from the state database.

use creature::backend::Backend;

use crate::util::{seed, state_dir, Creature};

#[test]
fn machine_names_come_from_the_state_database() {
    let d = state_dir();
    seed(d.path(), &[("web1", Backend::Qemu), ("db1", Backend::Lxc)]);
    let r = Creature::new(d.path())
        .env("COMPLETE", "fish")
        .args(["--", "creature", "info", ""])
        .run()
        .ok();
    let got: Vec<&str> = r
        .stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert!(got.contains(&"web1") && got.contains(&"db1"), "{got:?}");
}

#[test]
fn subcommands_complete_and_nothing_is_created() {
    let d = state_dir();
    let sd = d.path().join("state");
    let r = Creature::new(&sd)
        .env("COMPLETE", "fish")
        .args(["--", "creature", "sus"])
        .run()
        .ok();
    assert!(
        r.stdout.lines().any(|l| l.starts_with("suspend")),
        "{}",
        r.stdout
    );
    assert!(!sd.exists());
}

/// `matrix --feature` completes the matrix's feature ids, with titles.
#[test]
fn feature_ids_complete_after_feature() {
    let d = state_dir();
    let r = Creature::new(d.path())
        .env("COMPLETE", "fish")
        .args(["--", "creature", "matrix", "--feature", "sus"])
        .run()
        .ok();
    assert!(
        r.stdout.lines().any(|l| l.starts_with("suspend\t")),
        "{}",
        r.stdout
    );
    let all = Creature::new(d.path())
        .env("COMPLETE", "fish")
        .args(["--", "creature", "matrix", "--feature", ""])
        .run()
        .ok();
    assert_eq!(
        all.stdout.lines().count(),
        creature::matrix::Feature::ALL.len(),
        "{}",
        all.stdout
    );
}

fn candidates(d: &std::path::Path, words: &[&str]) -> Vec<String> {
    let r = Creature::new(d)
        .env("COMPLETE", "fish")
        .args(["--"])
        .args(words)
        .run()
        .ok();
    r.stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

/// `--state-dir` and `--host` typed on the line are the ones completion
/// reads, whatever the environment says; names come before flags.
#[test]
fn the_state_dir_and_host_on_the_line_are_respected() {
    let env_dir = state_dir();
    seed(env_dir.path(), &[("from-env", Backend::Qemu)]);
    let line_dir = state_dir();
    seed(line_dir.path(), &[("from-line", Backend::Qemu)]);
    let dir = line_dir.path().to_str().unwrap();
    for words in [
        &["creature", "--state-dir", dir, "info", ""][..],
        &["creature", "info", "--state-dir", dir, ""][..],
        &["creature", &format!("--state-dir={dir}"), "info", ""][..],
    ] {
        let got = candidates(env_dir.path(), words);
        assert_eq!(
            got.first().map(String::as_str),
            Some("from-line"),
            "{words:?}: {got:?}"
        );
        assert!(!got.iter().any(|c| c == "from-env"), "{got:?}");
        let first_flag = got.iter().position(|c| c.starts_with('-')).unwrap();
        assert!(got[..first_flag].iter().all(|c| !c.starts_with('-')) && first_flag >= 1);
    }
    // Another host's machines are not this host's.
    let got = candidates(
        env_dir.path(),
        &["creature", "--host", "elsewhere", "info", ""],
    );
    assert!(!got.iter().any(|c| c == "from-env"), "{got:?}");
}

/// `snapshot revert|delete MACHINE <TAB>` offers that machine's snapshots
/// only, from the records.
#[test]
fn snapshot_names_are_the_machines_own() {
    use creature::store::{SnapshotRecord, Store};
    let d = state_dir();
    seed(d.path(), &[("web", Backend::Qemu), ("db", Backend::Qemu)]);
    let mut s = Store::open(d.path()).unwrap();
    for (m, snap) in [
        ("web", "before-upgrade"),
        ("web", "nightly"),
        ("db", "db-snap"),
    ] {
        s.add_snapshot(
            "local",
            m,
            &SnapshotRecord {
                name: snap.into(),
                created_at: "2026-12-03T00:00:00Z".into(),
                state: "running".into(),
                memory: None,
                disks: vec![("vda".into(), format!("/d/{m}-disk0.qcow2"))],
            },
        )
        .unwrap();
    }
    drop(s);
    for verb in ["revert", "delete"] {
        let got = candidates(d.path(), &["creature", "snapshot", verb, "web", ""]);
        let names: Vec<&String> = got.iter().filter(|c| !c.starts_with('-')).collect();
        assert_eq!(names, ["before-upgrade", "nightly"], "{verb}: {got:?}");
    }
    // Before a machine is named there is nothing to offer but machines.
    let got = candidates(d.path(), &["creature", "snapshot", "revert", ""]);
    assert!(
        got.iter().any(|c| c == "web") && !got.iter().any(|c| c == "nightly"),
        "{got:?}"
    );
}
