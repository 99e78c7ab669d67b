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
