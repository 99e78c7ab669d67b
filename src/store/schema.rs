//! Versioned schema. Each migration runs once, in order, inside a transaction;
//! `PRAGMA user_version` records how far a database has come and
//! `PRAGMA application_id` marks the file as creature's.

/// "CREA" in ASCII: tells a creature database from any other SQLite file.
pub const APPLICATION_ID: i32 = 0x4352_4541;

pub const MIGRATIONS: &[&str] = &[
    // 1: machines, networks, NICs, journal.
    r#"
    CREATE TABLE machines (
        id          INTEGER PRIMARY KEY,
        host        TEXT NOT NULL DEFAULT 'local',
        name        TEXT NOT NULL,
        backend     TEXT NOT NULL CHECK (backend IN ('kvm', 'qemu', 'lxc', 'xen')),
        template    TEXT,
        state       TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'deleting')),
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        UNIQUE (host, name)
    );
    CREATE TABLE networks (
        id          INTEGER PRIMARY KEY,
        host        TEXT NOT NULL DEFAULT 'local',
        name        TEXT NOT NULL,
        mode        TEXT NOT NULL,
        subnet      TEXT,
        bridge      TEXT,
        created_at  TEXT NOT NULL,
        UNIQUE (host, name)
    );
    CREATE TABLE nics (
        id          INTEGER PRIMARY KEY,
        machine_id  INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        mac         TEXT NOT NULL UNIQUE,
        network_id  INTEGER REFERENCES networks (id),
        ip          TEXT,
        UNIQUE (machine_id, idx),
        UNIQUE (network_id, ip)
    );
    CREATE TABLE journal (
        id          INTEGER PRIMARY KEY,
        at          TEXT NOT NULL,
        host        TEXT NOT NULL DEFAULT 'local',
        machine     TEXT NOT NULL,
        op          TEXT NOT NULL,
        phase       TEXT NOT NULL,
        detail      TEXT
    );
    CREATE INDEX journal_machine ON journal (host, machine);
    "#,
    // 2: the image cache: named images made of content-addressed files, and
    // which machines use which image (an image in use cannot be removed).
    r#"
    CREATE TABLE images (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        source      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE image_files (
        image_id    INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
        file        TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        size        INTEGER NOT NULL,
        format      TEXT NOT NULL CHECK (format IN ('raw', 'qcow2')),
        virtual_size INTEGER NOT NULL,
        PRIMARY KEY (image_id, file)
    );
    CREATE TABLE machine_images (
        machine_id  INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
        image_id    INTEGER NOT NULL REFERENCES images (id),
        PRIMARY KEY (machine_id, image_id)
    );
    "#,
    // 3: networks carry their DHCP range; released IPs are remembered so an
    // address is not handed out again while its old lease may live on.
    r#"
    ALTER TABLE networks ADD COLUMN dhcp_start TEXT;
    ALTER TABLE networks ADD COLUMN dhcp_end TEXT;
    ALTER TABLE networks ADD COLUMN autostart INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE released_ips (
        network_id  INTEGER NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
        ip          TEXT NOT NULL,
        released_at INTEGER NOT NULL,
        PRIMARY KEY (network_id, ip)
    );
    "#,
    // 4: autostart settings per machine, and which machines the last
    // autostop found running (for `autostart run --restore-last-state`).
    r#"
    CREATE TABLE autostart (
        machine_id   INTEGER PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
        enabled      INTEGER NOT NULL DEFAULT 0,
        priority     INTEGER NOT NULL DEFAULT 0,
        delay        INTEGER NOT NULL DEFAULT 0,
        wait         TEXT NOT NULL DEFAULT 'running',
        wait_timeout INTEGER NOT NULL DEFAULT 120,
        stop_timeout INTEGER NOT NULL DEFAULT 60,
        stop_action  TEXT NOT NULL DEFAULT 'shutdown'
    );
    CREATE TABLE last_running (
        host        TEXT NOT NULL,
        machine     TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (host, machine)
    );
    "#,
    // 5: an autostop whose record no autostart run has used yet: a second
    // autostop adds to that record instead of replacing it with nothing.
    r#"
    CREATE TABLE stop_pending (
        host  TEXT PRIMARY KEY,
        since TEXT NOT NULL
    );
    "#,
    // 6: snapshots of a machine's disks: each disk's frozen file (its
    // point); the tree between them is read from the files' backing.
    r#"
    CREATE TABLE snapshots (
        id          INTEGER PRIMARY KEY,
        machine_id  INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        state       TEXT NOT NULL,
        memory      TEXT,
        UNIQUE (machine_id, name)
    );
    CREATE TABLE snapshot_disks (
        snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
        target      TEXT NOT NULL,
        file        TEXT NOT NULL,
        PRIMARY KEY (snapshot_id, target)
    );
    "#,
    // 7: block volumes (#31) and the machines they are attached to (#1).
    r#"
    CREATE TABLE volumes (
        id          INTEGER PRIMARY KEY,
        host        TEXT NOT NULL DEFAULT 'local',
        name        TEXT NOT NULL,
        pool        TEXT NOT NULL,
        path        TEXT NOT NULL,
        format      TEXT NOT NULL CHECK (format IN ('raw', 'qcow2')),
        capacity    INTEGER NOT NULL,
        created_at  TEXT NOT NULL,
        UNIQUE (host, name)
    );
    CREATE TABLE volume_attachments (
        volume_id   INTEGER NOT NULL REFERENCES volumes (id) ON DELETE CASCADE,
        machine_id  INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
        target      TEXT NOT NULL,
        readonly    INTEGER NOT NULL DEFAULT 0,
        shareable   INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (volume_id, machine_id)
    );
    "#,
    // 8: iSCSI volumes (#33, #34): where the LUN is, and the CHAP user (the
    // secret itself is only ever in libvirt's private secret store).
    r#"
    ALTER TABLE volumes ADD COLUMN iscsi_portal TEXT;
    ALTER TABLE volumes ADD COLUMN iscsi_iqn TEXT;
    ALTER TABLE volumes ADD COLUMN iscsi_lun INTEGER;
    ALTER TABLE volumes ADD COLUMN chap_user TEXT;
    "#,
    // 9: a volume a template made for its machine, removed with it.
    r#"
    ALTER TABLE volumes ADD COLUMN made_for TEXT;
    "#,
    // 10: a network's VM NICs carry the anti-spoofing filter (off for
    // networks of routers).
    r#"
    ALTER TABLE networks ADD COLUMN antispoof INTEGER NOT NULL DEFAULT 1;
    "#,
    // 11: a network without DHCP (`net create --no-dhcp`): its machines'
    // addresses still come from the range, told to them on the config drive.
    r#"
    ALTER TABLE networks ADD COLUMN dhcp INTEGER NOT NULL DEFAULT 1;
    "#,
    // 12: a VM's graphical console and its password (given to libvirt,
    // printed only on request).
    r#"
    CREATE TABLE displays (
        machine_id INTEGER PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
        kind       TEXT NOT NULL,
        listen     TEXT NOT NULL,
        password   TEXT NOT NULL
    );
    "#,
    // 13: security groups (#38), their rules (#36) and their machines.
    // A NIC records whether it carries anti-spoofing, and whether it
    // references its own nwfilter (NICs made before this have libvirt's
    // clean-traffic directly and cannot take a group).
    r#"
    CREATE TABLE secgroups (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        description TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL
    );
    CREATE TABLE secgroup_rules (
        id           INTEGER PRIMARY KEY,
        group_id     INTEGER NOT NULL REFERENCES secgroups (id) ON DELETE CASCADE,
        direction    TEXT NOT NULL,
        proto        TEXT NOT NULL,
        port_min     INTEGER,
        port_max     INTEGER,
        remote_cidr  TEXT,
        remote_group TEXT
    );
    CREATE TABLE machine_secgroups (
        machine_id INTEGER NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
        group_id   INTEGER NOT NULL REFERENCES secgroups (id),
        PRIMARY KEY (machine_id, group_id)
    );
    ALTER TABLE nics ADD COLUMN antispoof INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE nics ADD COLUMN own_filter INTEGER NOT NULL DEFAULT 0;
    "#,
    // 14: a VLAN network (#40): its tag and the Open vSwitch bridge whose
    // access port of that tag is its bridge's uplink.
    r#"
    ALTER TABLE networks ADD COLUMN vlan INTEGER;
    ALTER TABLE networks ADD COLUMN trunk TEXT;
    "#,
    // 15: named libvirt hosts (`creature host add`); `local` is implicit.
    r#"
    CREATE TABLE hosts (
        name     TEXT PRIMARY KEY,
        uri      TEXT NOT NULL,
        added_at TEXT NOT NULL
    );
    "#,
    // 16: a disabled host (`creature host disable`, #14) takes no new
    // machines; `local` can be disabled too, so this is not a column of hosts.
    r#"
    CREATE TABLE host_disabled (
        host   TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        since  TEXT NOT NULL
    );
    "#,
    // 17: what each machine was made from (the resolved template, JSON), so
    // `evacuate` can rebuild it on another host; and the machines an
    // evacuation rebuilt elsewhere, whose old definitions `repair` removes
    // once their host answers again.
    r#"
    ALTER TABLE machines ADD COLUMN spec TEXT;
    CREATE TABLE evacuated (
        host        TEXT NOT NULL,
        machine     TEXT NOT NULL,
        shared      INTEGER NOT NULL,
        at          TEXT NOT NULL,
        PRIMARY KEY (host, machine)
    );
    "#,
];
