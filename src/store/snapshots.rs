//! Snapshot records: a name, when, the machine's state then, the memory
//! image if one was taken, and each disk's point (see `crate::snapshot`).

use rusqlite::params;
use serde::Serialize;

use crate::error::{Context, Error, Kind, Result};
use crate::snapshot::Point;
use crate::store::Store;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub name: String,
    pub created_at: String,
    /// The machine's power state when it was taken.
    pub state: String,
    /// Path of the memory image (`--memory`), if any.
    pub memory: Option<String>,
    /// (target device, point file).
    pub disks: Vec<(String, String)>,
}

impl SnapshotRecord {
    pub fn points(&self) -> Vec<Point> {
        crate::snapshot::points(&self.name, &self.disks)
    }
}

const MACHINE_ID: &str = "(SELECT id FROM machines WHERE host = ?1 AND name = ?2)";

impl Store {
    /// A machine's snapshots, oldest first.
    pub fn snapshots(&self, host: &str, machine: &str) -> Result<Vec<SnapshotRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT s.name, s.created_at, s.state, s.memory, d.target, d.file
                 FROM snapshots s JOIN snapshot_disks d ON d.snapshot_id = s.id
                 WHERE s.machine_id = {MACHINE_ID} ORDER BY s.id, d.target"
            ))
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host, machine], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| self.corrupt(e))?;
        let mut out: Vec<SnapshotRecord> = Vec::new();
        for row in rows {
            let (name, created_at, state, memory, target, file) =
                row.map_err(|e| self.corrupt(e))?;
            match out.last_mut() {
                Some(last) if last.name == name => last.disks.push((target, file)),
                _ => out.push(SnapshotRecord {
                    name,
                    created_at,
                    state,
                    memory,
                    disks: vec![(target, file)],
                }),
            }
        }
        Ok(out)
    }

    pub fn add_snapshot(&mut self, host: &str, machine: &str, s: &SnapshotRecord) -> Result<()> {
        let tx = self.write()?;
        let r = tx.execute(
            &format!(
                "INSERT INTO snapshots (machine_id, name, created_at, state, memory)
                 VALUES ({MACHINE_ID}, ?3, ?4, ?5, ?6)"
            ),
            params![host, machine, s.name, s.created_at, s.state, s.memory],
        );
        match r {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(Error::conflict(format!(
                    "machine {machine:?} already has a snapshot {:?}",
                    s.name
                )))
            }
            Err(e) => return Err(Error::other("cannot record the snapshot").caused_by(e)),
        }
        let id = tx.last_insert_rowid();
        for (target, file) in &s.disks {
            tx.execute(
                "INSERT INTO snapshot_disks (snapshot_id, target, file) VALUES (?1, ?2, ?3)",
                params![id, target, file],
            )
            .context(Kind::Other, || {
                format!("cannot record snapshot {:?}", s.name)
            })?;
        }
        tx.commit()
            .context(Kind::Other, || "cannot commit the snapshot".into())
    }

    /// A point of one snapshot moves to another file (the same data).
    pub fn repoint_snapshot(
        &mut self,
        host: &str,
        machine: &str,
        snapshot: &str,
        target: &str,
        file: &str,
    ) -> Result<()> {
        let tx = self.write()?;
        tx.execute(
            &format!(
                "UPDATE snapshot_disks SET file = ?5 WHERE target = ?4 AND snapshot_id =
                 (SELECT id FROM snapshots WHERE machine_id = {MACHINE_ID} AND name = ?3)"
            ),
            params![host, machine, snapshot, target, file],
        )
        .context(Kind::Other, || {
            format!("cannot update snapshot {snapshot:?}")
        })?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the snapshot".into())
    }

    pub fn remove_snapshot(&mut self, host: &str, machine: &str, snapshot: &str) -> Result<()> {
        let tx = self.write()?;
        tx.execute(
            &format!("DELETE FROM snapshots WHERE machine_id = {MACHINE_ID} AND name = ?3"),
            params![host, machine, snapshot],
        )
        .context(Kind::Other, || {
            format!("cannot remove snapshot {snapshot:?}")
        })?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the snapshot".into())
    }
}
