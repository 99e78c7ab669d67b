//! Named libvirt hosts (`creature host add NAME URI`). `local` is this
//! host and never stored; /etc/creature/config.toml may name more.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::error::{Context, Error, Kind, Result};
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostRecord {
    pub name: String,
    pub uri: String,
    pub added_at: String,
}

impl Store {
    pub fn add_host(&mut self, name: &str, uri: &str) -> Result<()> {
        let r = self.conn.execute(
            "INSERT INTO hosts (name, uri, added_at) VALUES (?1, ?2, ?3)",
            params![name, uri, crate::time::rfc3339_now()],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::conflict(format!("host {name:?} already exists")))
            }
            Err(e) => Err(Error::other("cannot record the host").caused_by(e)),
        }
    }

    pub fn host(&self, name: &str) -> Result<Option<HostRecord>> {
        self.conn
            .query_row(
                "SELECT name, uri, added_at FROM hosts WHERE name = ?1",
                params![name],
                |r| {
                    Ok(HostRecord {
                        name: r.get(0)?,
                        uri: r.get(1)?,
                        added_at: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.corrupt(e))
    }

    pub fn hosts(&self) -> Result<Vec<HostRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, uri, added_at FROM hosts ORDER BY name")
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(HostRecord {
                    name: r.get(0)?,
                    uri: r.get(1)?,
                    added_at: r.get(2)?,
                })
            })
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Refused while creature has machines or networks on it.
    pub fn remove_host(&mut self, name: &str) -> Result<()> {
        let machines: Vec<String> = self
            .machines(Some(name))?
            .into_iter()
            .map(|m| m.name)
            .collect();
        if !machines.is_empty() {
            return Err(Error::conflict(format!(
                "host {name:?} has machines: {}; delete or migrate them first",
                machines.join(", ")
            )));
        }
        let nets: Vec<String> = self.networks(name)?.into_iter().map(|n| n.name).collect();
        if !nets.is_empty() {
            return Err(Error::conflict(format!(
                "host {name:?} has networks: {}; delete them first",
                nets.join(", ")
            )));
        }
        let n = self
            .conn
            .execute("DELETE FROM hosts WHERE name = ?1", params![name])
            .context(Kind::Other, || format!("cannot remove host {name:?}"))?;
        if n == 0 {
            return Err(Error::not_found(format!(
                "host {name:?} not found (see `creature host list`)"
            )));
        }
        Ok(())
    }
}
