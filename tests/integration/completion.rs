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
        .args(["--", "creature", "start", ""])
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
