use super::*;
use std::os::unix::fs::symlink;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn creates_private_dir_and_schema() {
    let d = dir();
    let sd = d.path().join("state");
    let s = Store::open(&sd).unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len() as i64);
    let mode = fs::metadata(&sd).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o711);
    let mode = fs::metadata(sd.join(DB_FILE)).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn read_only_open_creates_nothing() {
    let d = dir();
    let sd = d.path().join("state");
    assert!(Store::open_read_only(&sd).unwrap().is_none());
    assert!(!sd.exists());
}

#[test]
fn second_create_of_a_name_conflicts() {
    let d = dir();
    let mut s = Store::open(d.path()).unwrap();
    s.begin_create("local", "web", Backend::Qemu, Some("tiny"))
        .unwrap();
    let e = s
        .begin_create("local", "web", Backend::Lxc, None)
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Conflict);
    let m = s.machine("local", "web").unwrap().unwrap();
    assert_eq!(m.backend, Backend::Qemu);
    assert_eq!(m.state, RecordState::Creating);
}

#[test]
fn remove_clears_journal() {
    let d = dir();
    let mut s = Store::open(d.path()).unwrap();
    s.begin_create("local", "web", Backend::Qemu, None).unwrap();
    s.set_state("local", "web", RecordState::Ready).unwrap();
    assert_eq!(s.journal_rows("local", "web").unwrap().len(), 2);
    assert!(s.remove_machine("local", "web").unwrap());
    assert!(s.journal_rows("local", "web").unwrap().is_empty());
    assert!(s.machine("local", "web").unwrap().is_none());
}

#[test]
fn foreign_file_is_never_touched() {
    let d = dir();
    let db = d.path().join(DB_FILE);
    fs::write(&db, b"this is not sqlite at all, just some bytes..........").unwrap();
    fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::read(&db).unwrap();
    let e = Store::open(d.path()).err().unwrap();
    assert_eq!(e.kind(), Kind::StateCorrupt);
    assert!(e.message().contains(&db.display().to_string()));
    assert_eq!(fs::read(&db).unwrap(), before);
}

#[test]
fn other_sqlite_database_is_refused() {
    let d = dir();
    let db = d.path().join(DB_FILE);
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    fs::set_permissions(&db, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::read(&db).unwrap();
    let e = Store::open(d.path()).err().unwrap();
    assert_eq!(e.kind(), Kind::StateCorrupt);
    assert_eq!(fs::read(&db).unwrap(), before);
}

#[test]
fn newer_schema_is_refused() {
    let d = dir();
    drop(Store::open(d.path()).unwrap());
    Connection::open(d.path().join(DB_FILE))
        .unwrap()
        .execute_batch("PRAGMA user_version = 999")
        .unwrap();
    let e = Store::open(d.path()).err().unwrap();
    assert_eq!(e.kind(), Kind::StateCorrupt);
    assert!(e.message().contains("newer"), "{}", e.message());
}

#[test]
fn symlinked_state_dir_is_refused() {
    let d = dir();
    let real = d.path().join("real");
    fs::create_dir(&real).unwrap();
    let link = d.path().join("link");
    symlink(&real, &link).unwrap();
    let e = Store::open(&link).err().unwrap();
    assert_eq!(e.kind(), Kind::StateCorrupt);
    assert!(e.message().contains("symlink"));
    assert!(!real.join(DB_FILE).exists());
}

#[test]
fn symlinked_database_is_refused() {
    let d = dir();
    let target = d.path().join("elsewhere.db");
    fs::write(&target, b"").unwrap();
    symlink(&target, d.path().join(DB_FILE)).unwrap();
    let e = Store::open(d.path()).err().unwrap();
    assert_eq!(e.kind(), Kind::StateCorrupt);
}

#[test]
fn world_writable_state_dir_is_refused() {
    let d = dir();
    let sd = d.path().join("state");
    fs::create_dir(&sd).unwrap();
    fs::set_permissions(&sd, fs::Permissions::from_mode(0o777)).unwrap();
    let e = Store::open(&sd).err().unwrap();
    assert_eq!(e.kind(), Kind::StateCorrupt);
    assert!(e.message().contains("writable"));
    assert!(!sd.join(DB_FILE).exists());
}

#[test]
fn concurrent_writers_both_land() {
    let d = dir();
    drop(Store::open(d.path()).unwrap());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let p = d.path().to_path_buf();
            std::thread::spawn(move || {
                let mut s = Store::open(&p).unwrap();
                s.begin_create("local", &format!("m{i}"), Backend::Lxc, None)
                    .unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        Store::open(d.path()).unwrap().machines(None).unwrap().len(),
        8
    );
}
