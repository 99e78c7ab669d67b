//! creature's state: an embedded SQLite database in the state directory.
//! The backends stay the truth about what runs; this holds what creature
//! made (machines, NICs, networks, reservations) and an operation journal.

mod autostart;
mod displays;
mod hosts;
mod images;
mod lock;
mod networks;
mod schema;
mod secgroups;
mod snapshots;
mod volumes;

pub use displays::DisplayRecord;
pub use hosts::HostRecord;
pub use images::{ImageFile, ImageRecord};
pub use networks::{NetworkRecord, Nic, NicRequest, LEASE_SECONDS};
pub use secgroups::{group_not_found, Member, SecGroupRecord};
pub use snapshots::SnapshotRecord;
pub use volumes::{Attachment, Iscsi, VolumeRecord};

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;

use crate::backend::Backend;
use crate::error::{Context, Error, Kind, Result};

pub use schema::APPLICATION_ID;

pub const DB_FILE: &str = "creature.db";

/// How long a writer waits for another's lock: long enough for 20
/// parallel creates to queue behind each other; CREATURE_LOCK_WAIT (seconds)
/// changes it.
fn busy_timeout() -> Duration {
    std::env::var("CREATURE_LOCK_WAIT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(30))
}

pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    Creating,
    Ready,
    Deleting,
}

impl RecordState {
    fn as_str(&self) -> &'static str {
        match self {
            RecordState::Creating => "creating",
            RecordState::Ready => "ready",
            RecordState::Deleting => "deleting",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "creating" => Some(RecordState::Creating),
            "ready" => Some(RecordState::Ready),
            "deleting" => Some(RecordState::Deleting),
            _ => None,
        }
    }
}

/// Whether a forgotten machine's DHCP leases may still live in dnsmasq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leases {
    /// It ran, and its leases were not dropped: keep its addresses out of
    /// the automatic pool for a lease time.
    MayLive,
    /// It never ran (an undone create) or its leases were dropped.
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct MachineRecord {
    pub host: String,
    pub name: String,
    pub backend: Backend,
    pub template: Option<String>,
    pub state: RecordState,
    pub created_at: String,
}

use crate::statedir::check_safe;

/// A path for an SQLite `file:` URI: characters URIs reserve are escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                out.push(*b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn corrupt_file(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::corrupt(format!(
        "{} is not a valid creature state database: {why}; it was left untouched (move it away to start afresh)",
        path.display()
    ))
}

fn now() -> String {
    crate::time::rfc3339_now()
}

impl Store {
    /// Open for reading and writing: creates the state directory (0711: QEMU must traverse it to reach cached images and disks; nothing in it can be listed) and
    /// the database, and brings the schema up to date.
    pub fn open(state_dir: &Path) -> Result<Store> {
        match check_safe(state_dir, "state directory")? {
            Some(m) if !m.is_dir() => {
                return Err(Error::corrupt(format!(
                    "state directory {} is not a directory",
                    state_dir.display()
                )))
            }
            Some(_) => {}
            None => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o711)
                    .create(state_dir)
                    .context(Kind::Unavailable, || {
                        format!("cannot create state directory {}", state_dir.display())
                    })?;
                // recursive create leaves existing parents alone; the leaf is ours.
                fs::set_permissions(state_dir, fs::Permissions::from_mode(0o711))
                    .context(Kind::Unavailable, || {
                        format!("cannot set mode of {}", state_dir.display())
                    })?;
            }
        }
        if crate::statedir::read_only_fs(state_dir) {
            return Err(Error::unavailable(format!(
                "state directory {} is on a read-only filesystem: creature can read it but change nothing (remount it read-write)",
                state_dir.display()
            )));
        }
        let path = state_dir.join(DB_FILE);
        if check_safe(&path, "state database")?.is_none() {
            Store::create_fresh(&path)?;
        }
        // Never SQLITE_OPEN_CREATE here: a database that vanished between
        // the check and the open is an error, not a reason for a new one.
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .context(Kind::Unavailable, || {
            format!("cannot open state database {}", path.display())
        })?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .context(Kind::Unavailable, || {
                format!("cannot set mode of {}", path.display())
            })?;
        let mut store = Store { conn, path };
        let version = store.identify()?;
        store.configure()?;
        if version < schema::MIGRATIONS.len() as i64 {
            store.back_up(version)?;
        }
        store.migrate()?;
        Ok(store)
    }

    /// A new database is built beside its final name and linked into place
    /// complete, so an existing file without creature's schema is always
    /// damage (a truncated or zeroed file), never a database being born.
    fn create_fresh(path: &Path) -> Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".new-{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let _ = fs::remove_file(&tmp);
        let built = (|| {
            let conn = Connection::open_with_flags(
                &tmp,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .context(Kind::Unavailable, || {
                format!("cannot create state database {}", tmp.display())
            })?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
                .context(Kind::Unavailable, || {
                    format!("cannot set mode of {}", tmp.display())
                })?;
            let mut store = Store {
                conn,
                path: tmp.clone(),
            };
            store.configure()?;
            store.migrate()?;
            drop(store); // checkpoints the WAL into the file
            fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .context(Kind::Unavailable, || {
                    format!("cannot sync {}", tmp.display())
                })?;
            // A link fails when the name exists: a concurrent creature won.
            match fs::hard_link(&tmp, path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(Error::unavailable(
                    format!("cannot create state database {}", path.display()),
                )
                .caused_by(e)),
                _ => Ok(()),
            }
        })();
        let _ = fs::remove_file(&tmp);
        built
    }

    /// Open for reading only, creating nothing. `None` when there is no
    /// database yet (no machines). Used by read verbs and by the matrix gate,
    /// which must not change anything.
    pub fn open_read_only(state_dir: &Path) -> Result<Option<Store>> {
        if check_safe(state_dir, "state directory")?.is_none() {
            return Ok(None);
        }
        let path = state_dir.join(DB_FILE);
        if check_safe(&path, "state database")?.is_none() {
            return Ok(None);
        }
        // Not SQLITE_OPEN_READ_ONLY: a read-only connection to a WAL database
        // leaves -wal and -shm files behind. A read-write connection that only
        // reads (query_only) removes them on close and writes nothing. On a
        // read-only filesystem nothing can change under us: read the file
        // as immutable.
        let conn = if crate::statedir::read_only_fs(state_dir) {
            Connection::open_with_flags(
                format!("file:{}?immutable=1", uri_path(&path)),
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
        } else {
            Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
        }
        .context(Kind::Unavailable, || {
            format!("cannot open state database {}", path.display())
        })?;
        conn.execute_batch("PRAGMA query_only = 1")
            .context(Kind::Other, || {
                "cannot make the connection read-only".into()
            })?;
        let store = Store { conn, path };
        let version = store.identify()?;
        store
            .conn
            .busy_timeout(busy_timeout())
            .context(Kind::Other, || "cannot set busy timeout".into())?;
        if version == 0 {
            return Ok(None);
        }
        if version < schema::MIGRATIONS.len() as i64 {
            // A database from an older creature: migrate it once (a write),
            // then read as asked.
            drop(store);
            drop(Store::open(state_dir)?);
            return Store::open_read_only(state_dir);
        }
        Ok(Some(store))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLite's own check of every page and index: the problems it lists
    /// (empty when the file is sound).
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.corrupt(e))?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.corrupt(e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| self.corrupt(e))?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    /// A write transaction, holding the write lock from its start so that
    /// concurrent writers queue. After the busy timeout: exit 7 naming who
    /// holds the lock.
    pub(crate) fn write(&mut self) -> Result<rusqlite::Transaction<'_>> {
        let path = self.path.clone();
        match self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(tx) => Ok(tx),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                Err(Error::new(
                    Kind::Timeout,
                    format!(
                        "the state database {} is locked by {}; gave up after {} s",
                        path.display(),
                        lock::describe(&lock::holders(&path)),
                        busy_timeout().as_secs()
                    ),
                ))
            }
            Err(e) => Err(corrupt_file(&path, e)),
        }
    }

    pub(crate) fn corrupt(&self, why: impl std::fmt::Display) -> Error {
        corrupt_file(&self.path, why)
    }

    /// Tell a creature database from anything else (a foreign, newer,
    /// empty or damaged file) before writing a single byte. Returns the
    /// schema version.
    fn identify(&self) -> Result<i64> {
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        if check != "ok" {
            return Err(self.corrupt(check));
        }
        let app_id: i32 = self
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        let tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        if app_id == 0 && version == 0 && tables == 0 {
            // New databases are only ever linked into place complete.
            return Err(self.corrupt("it is empty (truncated or zeroed?)"));
        }
        if app_id != APPLICATION_ID {
            return Err(self.corrupt(format!("application id {app_id:#x} is not creature's")));
        }
        if version > schema::MIGRATIONS.len() as i64 {
            return Err(Error::corrupt(format!(
                "state database {} has schema version {version}, newer than this creature understands ({}); upgrade creature",
                self.path.display(),
                schema::MIGRATIONS.len()
            )));
        }
        Ok(version)
    }

    fn configure(&self) -> Result<()> {
        self.conn
            .busy_timeout(busy_timeout())
            .context(Kind::Other, || "cannot set busy timeout".into())?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        if mode != "wal" {
            return Err(self.corrupt(format!("cannot switch to WAL mode (got {mode})")));
        }
        self.conn
            .execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(|e| self.corrupt(e))
    }

    /// A copy of the database beside it before a schema upgrade
    /// (`creature.db.bak-v<N>`, kept if one exists), so a failed or
    /// regretted upgrade can be undone by hand.
    fn back_up(&self, version: i64) -> Result<()> {
        let mut bak = self.path.as_os_str().to_owned();
        bak.push(format!(".bak-v{version}"));
        let bak = PathBuf::from(bak);
        if crate::statedir::check_safe(&bak, "database backup")?.is_some() {
            return Ok(());
        }
        self.conn
            .execute("VACUUM INTO ?1", params![bak.to_string_lossy()])
            .map_err(|e| {
                Error::new(
                    Kind::Unavailable,
                    format!("cannot back up {} before upgrading it", self.path.display()),
                )
                .caused_by(e)
            })?;
        fs::set_permissions(&bak, fs::Permissions::from_mode(0o600))
            .context(Kind::Unavailable, || {
                format!("cannot set mode of {}", bak.display())
            })
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let tx = self.write()?;
        // Re-read inside the write lock: a concurrent creature may have migrated.
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .context(Kind::StateCorrupt, || {
                format!("cannot read {}", path.display())
            })?;
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql).context(Kind::StateCorrupt, || {
                format!("migration {} of {} failed", i + 1, path.display())
            })?;
            tx.execute_batch(&format!(
                "PRAGMA user_version = {}; PRAGMA application_id = {APPLICATION_ID};",
                i + 1
            ))
            .context(Kind::StateCorrupt, || {
                format!("cannot stamp {}", path.display())
            })?;
        }
        tx.commit().context(Kind::Other, || {
            format!("cannot commit to {}", path.display())
        })
    }

    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .context(Kind::StateCorrupt, || "cannot read schema version".into())
    }

    fn machine_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MachineRecord> {
        let backend: String = r.get(2)?;
        let state: String = r.get(4)?;
        let bad = |col: usize, v: &str| {
            rusqlite::Error::FromSqlConversionFailure(
                col,
                rusqlite::types::Type::Text,
                format!("unexpected value {v:?}").into(),
            )
        };
        Ok(MachineRecord {
            host: r.get(0)?,
            name: r.get(1)?,
            backend: Backend::parse(&backend).ok_or_else(|| bad(2, &backend))?,
            template: r.get(3)?,
            state: RecordState::parse(&state).ok_or_else(|| bad(4, &state))?,
            created_at: r.get(5)?,
        })
    }

    pub fn machine(&self, host: &str, name: &str) -> Result<Option<MachineRecord>> {
        self.conn
            .query_row(
                "SELECT host, name, backend, template, state, created_at FROM machines
                 WHERE host = ?1 AND name = ?2",
                params![host, name],
                Self::machine_from_row,
            )
            .optional()
            .map_err(|e| self.corrupt(e))
    }

    /// The host a machine of this name is on (names are unique across hosts).
    pub fn host_of(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT host FROM machines WHERE name = ?1 ORDER BY host = 'local' DESC LIMIT 1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.corrupt(e))
    }

    pub fn machines(&self, host: Option<&str>) -> Result<Vec<MachineRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT host, name, backend, template, state, created_at FROM machines
                 WHERE ?1 IS NULL OR host = ?1 ORDER BY host, name",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host], Self::machine_from_row)
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Record a machine as `creating`, before the first side effect of its
    /// create. A second create of the same name is a conflict (exit 5).
    pub fn begin_create(
        &mut self,
        host: &str,
        name: &str,
        backend: Backend,
        template: Option<&str>,
    ) -> Result<()> {
        self.begin_create_with_nics(host, name, backend, template, &[], "", &Default::default())
            .map(|_| ())
    }

    pub fn set_state(&mut self, host: &str, name: &str, state: RecordState) -> Result<()> {
        let tx = self.write()?;
        let n = tx
            .execute(
                "UPDATE machines SET state = ?3, updated_at = ?4 WHERE host = ?1 AND name = ?2",
                params![host, name, state.as_str(), now()],
            )
            .context(Kind::Other, || format!("cannot update machine {name:?}"))?;
        if n == 0 {
            return Err(Error::machine_not_found(name, host));
        }
        journal(&tx, host, name, "state", state.as_str(), None)?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the state change".into())
    }

    /// Forget a machine and its NICs (the CASCADE releases its reservations).
    pub fn remove_machine(&mut self, host: &str, name: &str, leases: Leases) -> Result<bool> {
        let tx = self.write()?;
        // Its IPs stay out of the automatic pool while old leases may live on.
        if leases == Leases::MayLive {
            tx.execute(
            "INSERT OR REPLACE INTO released_ips (network_id, ip, released_at)
             SELECT n.network_id, n.ip, strftime('%s', 'now') FROM nics n JOIN machines m ON m.id = n.machine_id
             WHERE m.host = ?1 AND m.name = ?2 AND n.ip IS NOT NULL AND n.network_id IS NOT NULL",
            params![host, name],
            )
            .context(Kind::Other, || format!("cannot release the IPs of {name:?}"))?;
        }
        let n = tx
            .execute(
                "DELETE FROM machines WHERE host = ?1 AND name = ?2",
                params![host, name],
            )
            .context(Kind::Other, || format!("cannot remove machine {name:?}"))?;
        // The journal describes live machines; a removed one leaves no rows.
        tx.execute(
            "DELETE FROM journal WHERE host = ?1 AND machine = ?2",
            params![host, name],
        )
        .context(Kind::Other, || {
            format!("cannot clear the journal of {name:?}")
        })?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the removal".into())?;
        Ok(n > 0)
    }

    pub fn journal_rows(&self, host: &str, machine: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT op, phase FROM journal WHERE host = ?1 AND machine = ?2 ORDER BY id",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host, machine], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Machines of `host` the journal has rows for.
    pub fn journal_machines(&self, host: &str) -> Result<Vec<String>> {
        self.host_strings(
            "SELECT DISTINCT machine FROM journal WHERE host = ?1 ORDER BY machine",
            host,
        )
    }

    /// One text column of a query on one host (`?1`).
    pub(crate) fn host_strings(&self, sql: &str, host: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.corrupt(e))
    }

    pub fn clear_journal(&mut self, host: &str, machine: &str) -> Result<()> {
        let tx = self.write()?;
        tx.execute(
            "DELETE FROM journal WHERE host = ?1 AND machine = ?2",
            params![host, machine],
        )
        .context(Kind::Other, || {
            format!("cannot clear the journal of {machine:?}")
        })?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the journal change".into())
    }

    pub fn network_names(&self) -> Result<Vec<String>> {
        self.strings("SELECT name FROM networks ORDER BY name")
    }

    /// One text column of a parameterless query.
    pub(crate) fn strings(&self, sql: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.corrupt(e))
    }
}

/// Insert a machine row as `creating` (and its journal line) inside `tx`.
/// A second machine of the same name is a conflict (exit 5).
pub(crate) fn insert_machine(
    tx: &rusqlite::Transaction<'_>,
    host: &str,
    name: &str,
    backend: Backend,
    template: Option<&str>,
) -> Result<i64> {
    // One name, one machine, whatever host it is on: a verb names it alone.
    let elsewhere: Option<String> = tx
        .query_row(
            "SELECT host FROM machines WHERE name = ?1 AND host != ?2",
            params![name, host],
            |r| r.get(0),
        )
        .optional()
        .context(Kind::StateCorrupt, || {
            "cannot read the machine records".into()
        })?;
    if let Some(h) = elsewhere {
        return Err(Error::conflict(format!(
            "machine {name:?} already exists on host {h}: names are unique across hosts"
        )));
    }
    let at = now();
    let inserted = tx.execute(
        "INSERT INTO machines (host, name, backend, template, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'creating', ?5, ?5)",
        params![host, name, backend.as_str(), template, at],
    );
    match inserted {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(Error::conflict(format!(
                "machine {name:?} already exists on host {host}"
            )))
        }
        Err(e) => return Err(Error::other("cannot record the new machine").caused_by(e)),
    }
    // Before the journal line: last_insert_rowid() would name that row.
    let id = tx.last_insert_rowid();
    journal(tx, host, name, "create", "creating", None)?;
    Ok(id)
}

fn journal(
    tx: &rusqlite::Transaction<'_>,
    host: &str,
    machine: &str,
    op: &str,
    phase: &str,
    detail: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO journal (at, host, machine, op, phase, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now(), host, machine, op, phase, detail],
    )
    .map(|_| ())
    .context(Kind::Other, || "cannot write the operation journal".into())
}

#[cfg(test)]
mod tests;
