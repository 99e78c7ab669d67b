use super::*;
use std::os::unix::fs::{symlink, MetadataExt};

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

/// One holder per volume unless every attachment shares it; a machine's
/// record gone takes its attachments, and its snapshots, with it.
#[test]
fn volume_holders_and_what_a_machine_takes_with_it() {
    let d = dir();
    let mut s = Store::open(d.path()).unwrap();
    for m in ["a", "b", "c"] {
        s.begin_create("local", m, Backend::Qemu, None).unwrap();
    }
    let vol = VolumeRecord {
        name: "data".into(),
        pool: "p".into(),
        path: "/v/data.img".into(),
        format: "raw".into(),
        capacity_bytes: 1 << 20,
        created_at: "2026-12-03T00:00:00Z".into(),
        iscsi: None,
        made_for: None,
        attachments: vec![],
    };
    s.add_volume("local", &vol).unwrap();
    let at = |m: &str, shareable| Attachment {
        machine: m.into(),
        target: "vdb".into(),
        readonly: false,
        shareable,
    };
    s.attach_volume("local", "data", &at("a", true)).unwrap();
    let e = s
        .attach_volume("local", "data", &at("b", false))
        .unwrap_err();
    assert_eq!(e.kind(), Kind::Conflict);
    assert!(e.message().contains("attached to a"), "{}", e.message());
    s.attach_volume("local", "data", &at("b", true)).unwrap();
    s.add_snapshot(
        "local",
        "a",
        &SnapshotRecord {
            name: "s1".into(),
            created_at: "t".into(),
            state: "running".into(),
            memory: None,
            disks: vec![("vda".into(), "/d/a-disk0.qcow2".into())],
        },
    )
    .unwrap();
    s.remove_machine("local", "a", Leases::None).unwrap();
    let v = s.volume("local", "data").unwrap().unwrap();
    assert_eq!(v.attachments.len(), 1);
    assert_eq!(v.attachments[0].machine, "b");
    s.begin_create("local", "a", Backend::Qemu, None).unwrap();
    assert!(s.snapshots("local", "a").unwrap().is_empty());
}

#[test]
fn remove_clears_journal() {
    let d = dir();
    let mut s = Store::open(d.path()).unwrap();
    s.begin_create("local", "web", Backend::Qemu, None).unwrap();
    s.set_state("local", "web", RecordState::Ready).unwrap();
    assert_eq!(s.journal_rows("local", "web").unwrap().len(), 2);
    assert!(s.remove_machine("local", "web", Leases::MayLive).unwrap());
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

mod nics {
    use super::*;
    use crate::net::Mac;
    use crate::store::{NetworkRecord, NicRequest};
    use std::collections::{HashMap, HashSet};
    use std::net::Ipv4Addr;

    fn net(s: &mut Store, name: &str, subnet: &str) {
        let sub: crate::net::ipv4::Subnet = subnet.parse().unwrap();
        let (a, b) = sub.default_range();
        s.add_network(
            "local",
            &NetworkRecord {
                name: name.into(),
                mode: "nat".into(),
                subnet: Some(subnet.into()),
                bridge: format!("crbr-{name}"),
                dhcp_start: Some(a.to_string()),
                dhcp_end: Some(b.to_string()),
                autostart: false,
                antispoof: true,
                dhcp: true,
                vlan: None,
                trunk: None,
            },
        )
        .unwrap();
    }

    fn req(net: &str) -> NicRequest {
        nic(net, None, None)
    }

    fn nic(net: &str, mac: Option<Mac>, ip: Option<Ipv4Addr>) -> NicRequest {
        NicRequest {
            network: net.into(),
            mac,
            ip,
        }
    }

    /// A create on host "local" with no host NICs to keep clear of.
    fn create(
        s: &mut Store,
        name: &str,
        backend: Backend,
        nics: &[NicRequest],
    ) -> crate::error::Result<Vec<crate::store::Nic>> {
        s.begin_create_with_nics("local", name, backend, None, nics, "h", &HashMap::new())
    }

    #[test]
    fn nics_belong_to_their_machine_whatever_the_journal_holds() {
        let d = dir();
        let mut s = Store::open(d.path()).unwrap();
        net(&mut s, "lan", "10.51.0.0/24");
        s.begin_create("local", "first", Backend::Qemu, None)
            .unwrap();
        s.set_state("local", "first", RecordState::Ready).unwrap();
        create(&mut s, "second", Backend::Lxc, &[req("lan")]).unwrap();
        assert_eq!(s.nics("local", "second").unwrap().len(), 1);
        assert!(s.nics("local", "first").unwrap().is_empty());
    }

    #[test]
    fn nics_by_machine_equals_each_machines_nics() {
        let d = dir();
        let mut s = Store::open(d.path()).unwrap();
        net(&mut s, "lan", "10.52.0.0/24");
        net(&mut s, "dmz", "10.53.0.0/24");
        for (m, nets) in [
            ("two", &["lan", "dmz"][..]),
            ("one", &["dmz"][..]),
            ("none", &[][..]),
        ] {
            let reqs: Vec<_> = nets.iter().map(|n| req(n)).collect();
            create(&mut s, m, Backend::Qemu, &reqs).unwrap();
        }
        let all = s.nics_by_machine("local").unwrap();
        for m in ["two", "one", "none"] {
            let one_by_one = s.nics("local", m).unwrap();
            assert_eq!(all.get(m).cloned().unwrap_or_default(), one_by_one, "{m}");
        }
        assert_eq!(all["two"].len(), 2);
        assert!(
            all["two"][0].ip.as_deref().unwrap().starts_with("10.52."),
            "NIC order: {:?}",
            all["two"]
        );
        assert!(s.nics_by_machine("elsewhere").unwrap().is_empty());
    }

    #[test]
    fn twenty_parallel_creates_get_distinct_macs_and_ips() {
        let d = dir();
        net(&mut Store::open(d.path()).unwrap(), "lan", "10.50.0.0/24");
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let p = d.path().to_path_buf();
                std::thread::spawn(move || {
                    let mut s = Store::open(&p).unwrap();
                    create(&mut s, &format!("m{i}"), Backend::Qemu, &[req("lan")])
                        .unwrap()
                        .remove(0)
                })
            })
            .collect();
        let nics: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let macs: HashSet<_> = nics.iter().map(|n| n.mac.clone()).collect();
        let ips: HashSet<_> = nics.iter().map(|n| n.ip.clone().unwrap()).collect();
        assert_eq!((macs.len(), ips.len()), (20, 20));
    }

    #[test]
    fn a_slash_29_runs_out_with_exit_8_and_creates_nothing() {
        let d = dir();
        let mut s = Store::open(d.path()).unwrap();
        net(&mut s, "tiny", "10.60.0.8/29"); // range .12-.14
        for i in 0..3 {
            create(&mut s, &format!("m{i}"), Backend::Lxc, &[req("tiny")]).unwrap();
        }
        let e = create(&mut s, "m3", Backend::Lxc, &[req("tiny")]).unwrap_err();
        assert_eq!(e.kind(), Kind::Exhausted);
        assert!(s.machine("local", "m3").unwrap().is_none());
        // A released address is held back while its lease may live on.
        s.remove_machine("local", "m0", Leases::MayLive).unwrap();
        let e = create(&mut s, "m4", Backend::Lxc, &[req("tiny")]).unwrap_err();
        assert_eq!(e.kind(), Kind::Exhausted);
    }

    #[test]
    fn explicit_conflicts_name_the_owner() {
        let d = dir();
        let mut s = Store::open(d.path()).unwrap();
        net(&mut s, "lan", "10.70.0.0/24");
        let first = create(
            &mut s,
            "web",
            Backend::Qemu,
            &[nic("lan", None, Some(Ipv4Addr::new(10, 70, 0, 20)))],
        )
        .unwrap()
        .remove(0);
        let mac = Mac::parse_any(&first.mac).unwrap();
        let e = create(&mut s, "db", Backend::Qemu, &[nic("lan", Some(mac), None)]).unwrap_err();
        assert_eq!(e.kind(), Kind::Conflict);
        assert!(e.message().contains("machine web"), "{}", e.message());
        let with_ip = |s: &mut Store, last: u8| {
            let ip = Some(Ipv4Addr::new(10, 70, 0, last));
            create(s, "db", Backend::Qemu, &[nic("lan", None, ip)]).unwrap_err()
        };
        let e = with_ip(&mut s, 20);
        assert_eq!(e.kind(), Kind::Conflict);
        assert!(e.message().contains("machine web"));
        let e = with_ip(&mut s, 1);
        assert_eq!(e.kind(), Kind::Invalid, "the gateway is refused");
        let external: HashMap<Mac, String> =
            [(Mac([0x52, 0x54, 0, 1, 2, 3]), "host NIC eth9".to_string())].into();
        let e = s
            .begin_create_with_nics(
                "local",
                "db",
                Backend::Qemu,
                None,
                &[nic("lan", Some(Mac([0x52, 0x54, 0, 1, 2, 3])), None)],
                "h",
                &external,
            )
            .unwrap_err();
        assert!(e.message().contains("host NIC eth9"));
        assert!(
            s.machine("local", "db").unwrap().is_none(),
            "failed creates leave no record"
        );
        let e = create(&mut s, "x", Backend::Qemu, &[req("nosuch")]).unwrap_err();
        assert_eq!(e.kind(), Kind::NotFound);
    }
}

#[test]
fn a_second_autostop_adds_to_the_record_until_an_autostart_uses_it() {
    let d = dir();
    let mut s = Store::open(d.path()).unwrap();
    let names = |v: &[&str]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    s.record_autostop("local", &names(&["a", "b"])).unwrap();
    // Run by hand, then by the unit at shutdown: nothing runs any more.
    s.record_autostop("local", &[]).unwrap();
    assert_eq!(s.last_running("local").unwrap(), names(&["a", "b"]));
    s.record_autostop("local", &names(&["b", "c"])).unwrap();
    assert_eq!(s.last_running("local").unwrap(), names(&["a", "b", "c"]));
    // Another host's record is its own.
    s.record_autostop("other", &names(&["z"])).unwrap();
    s.autostart_ran("other").unwrap();
    s.record_autostop("other", &[]).unwrap();
    assert!(s.last_running("other").unwrap().is_empty());
    assert_eq!(s.last_running("local").unwrap(), names(&["a", "b", "c"]));
    // Once an autostart ran, the next autostop starts a new record.
    s.autostart_ran("local").unwrap();
    assert_eq!(s.last_running("local").unwrap(), names(&["a", "b", "c"]));
    s.record_autostop("local", &names(&["c"])).unwrap();
    assert_eq!(s.last_running("local").unwrap(), names(&["c"]));
}

/// A database from an older creature is copied beside itself before its
/// schema is upgraded, and the copy is still the old version.
#[test]
fn upgrade_leaves_a_backup_of_the_old_version() {
    let d = dir();
    let sd = d.path().join("state");
    fs::create_dir(&sd).unwrap();
    fs::set_permissions(&sd, fs::Permissions::from_mode(0o711)).unwrap();
    let old = schema::MIGRATIONS.len() - 1;
    {
        let c = Connection::open(sd.join(DB_FILE)).unwrap();
        for m in &schema::MIGRATIONS[..old] {
            c.execute_batch(m).unwrap();
        }
        c.execute_batch(&format!(
            "PRAGMA user_version = {old}; PRAGMA application_id = {APPLICATION_ID};"
        ))
        .unwrap();
    }
    fs::set_permissions(sd.join(DB_FILE), fs::Permissions::from_mode(0o600)).unwrap();
    let s = Store::open(&sd).unwrap();
    assert_eq!(s.schema_version().unwrap(), schema::MIGRATIONS.len() as i64);
    let bak = sd.join(format!("{DB_FILE}.bak-v{old}"));
    let b = Connection::open(&bak).unwrap();
    let v: i64 = b
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, old as i64);
    assert_eq!(fs::metadata(&bak).unwrap().mode() & 0o777, 0o600);
}
