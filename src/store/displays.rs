//! A VM's graphical console: its protocol, address and password. The
//! password lives here and in libvirt's own definition, nowhere else.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::error::{Context, Error, Kind, Result};
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisplayRecord {
    pub kind: String,
    pub listen: String,
    #[serde(skip)]
    pub password: String,
}

impl Store {
    pub fn set_display(&mut self, host: &str, machine: &str, d: &DisplayRecord) -> Result<()> {
        let n = self
            .conn
            .execute(
                "INSERT OR REPLACE INTO displays (machine_id, kind, listen, password)
                 SELECT id, ?3, ?4, ?5 FROM machines WHERE host = ?1 AND name = ?2",
                params![host, machine, d.kind, d.listen, d.password],
            )
            .context(Kind::Other, || {
                format!("cannot record the display of {machine:?}")
            })?;
        if n == 0 {
            return Err(Error::machine_not_found(machine, host));
        }
        Ok(())
    }

    pub fn display(&self, host: &str, machine: &str) -> Result<Option<DisplayRecord>> {
        self.conn
            .query_row(
                "SELECT d.kind, d.listen, d.password FROM displays d JOIN machines m ON m.id = d.machine_id
                 WHERE m.host = ?1 AND m.name = ?2",
                params![host, machine],
                |r| {
                    Ok(DisplayRecord {
                        kind: r.get(0)?,
                        listen: r.get(1)?,
                        password: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.corrupt(e))
    }
}
