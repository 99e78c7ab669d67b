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

/// A damaged database (truncated to nothing, zeroed, cut in half, or with
/// its schema page overwritten) exits 9 naming the file, for read and write
/// verbs alike, and nothing in the state directory changes: the damaged
/// file is kept as it is.
#[test]
fn damaged_database_exits_9_and_is_kept() {
    let good = state_dir();
    seed(good.path(), &[("vm", creature::backend::Backend::Qemu)]);
    let bytes = std::fs::read(good.path().join("creature.db")).unwrap();
    assert!(bytes.len() >= 8192, "a seeded database has several pages");
    let mut schema_page_overwritten = bytes.clone();
    for b in &mut schema_page_overwritten[100..4096] {
        *b = 0xa5;
    }
    let damage: [(&str, Vec<u8>); 5] = [
        ("empty", Vec::new()),
        ("zeroed", vec![0; bytes.len()]),
        ("cut in half", bytes[..bytes.len() / 2].to_vec()),
        ("header only", bytes[..100].to_vec()),
        ("schema page overwritten", schema_page_overwritten),
    ];
    let verbs: [&[&str]; 5] = [
        &["list"],
        &["info", "vm"],
        &["net", "create", "n1", "--subnet", "10.99.0.0/24"],
        &["image", "list"],
        &["autostart", "show", "vm"],
    ];
    for (what, content) in &damage {
        let d = state_dir();
        let db = d.path().join("creature.db");
        std::fs::write(&db, content).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
        let before = crate::util::snapshot(d.path());
        for args in verbs {
            Creature::new(d.path())
                .args(args.iter().copied())
                .run()
                .code(9)
                .stderr_has(&db.display().to_string());
            assert_eq!(
                crate::util::snapshot(d.path()),
                before,
                "{what}: `{}` changed the state directory",
                args.join(" ")
            );
        }
    }
}

/// A fresh state directory still gets its database when several writers
/// race to make it: each finds it complete, none fails on it.
#[test]
fn fresh_state_dir_gets_a_database() {
    let d = state_dir();
    let sd = d.path().join("state");
    let img = d.path().join("disk.raw");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let children: Vec<_> = (0..8)
        .map(|i| {
            Creature::new(&sd)
                .args(["--quiet", "image", "import", "--name", &format!("i{i}")])
                .arg_path(&img)
                .command()
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a racing import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names: Vec<String> = std::fs::read_dir(&sd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".new-")),
        "a temporary database was left: {names:?}"
    );
    let mut list = Creature::new(&sd).args(["image", "list"]).run().code(0);
    for i in 0..8 {
        list = list.stdout_has(&format!("i{i}"));
    }
}

/// A writer that cannot get the lock waits CREATURE_LOCK_WAIT seconds, then
/// exits 7 naming the holder's pid, and changes nothing.
#[test]
fn a_held_lock_times_out_naming_its_holder() {
    let d = state_dir();
    seed(d.path(), &[("vm", creature::backend::Backend::Qemu)]);
    let img = d.path().join("disk.raw");
    std::fs::write(&img, vec![0u8; 1 << 16]).unwrap();
    let holder = rusqlite::Connection::open(d.path().join("creature.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let pid = std::process::id().to_string();
    let run = |args: &[&str]| {
        Creature::new(d.path())
            .env("CREATURE_LOCK_WAIT", "1")
            .args(args.iter().copied())
            .arg_path(&img)
            .run()
    };
    run(&["image", "import", "--name", "i1"])
        .code(7)
        .stderr_has("is locked by pid ")
        .stderr_has(&pid);
    // Reads do not wait for writers.
    Creature::new(d.path())
        .env("CREATURE_LOCK_WAIT", "1")
        .args(["image", "list"])
        .run()
        .code(0);
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    run(&["--quiet", "image", "import", "--name", "i1"]).code(0);
}
