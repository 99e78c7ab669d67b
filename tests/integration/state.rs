use std::os::unix::fs::PermissionsExt;

use crate::util::{seed, state_dir, Creature};

#[test]
fn foreign_database_exits_9_and_is_untouched() {
    let d = state_dir();
    let db = d.path().join("creature.db");
    std::fs::write(&db, b"definitely not a database, but someone's notes\n").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::read(&db).unwrap();
    Creature::new(d.path())
        .args(["list"])
        .run()
        .code(9)
        .stderr_has(&db.display().to_string());
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn world_writable_state_dir_exits_9() {
    let d = state_dir();
    seed(d.path(), &[("vm", creature::backend::Backend::Qemu)]);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    Creature::new(d.path())
        .args(["list"])
        .run()
        .code(9)
        .stderr_has("writable by group or others");
}

#[test]
fn symlinked_state_dir_exits_9() {
    let d = state_dir();
    let real = d.path().join("real");
    std::fs::create_dir(&real).unwrap();
    seed(&real, &[("vm", creature::backend::Backend::Qemu)]);
    let link = d.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    Creature::new(&link)
        .args(["list"])
        .run()
        .code(9)
        .stderr_has("symlink");
}
