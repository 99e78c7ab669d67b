//! Autostart settings and the machines autostop found running since the last
//! autostart run.

use rusqlite::{params, OptionalExtension};

use crate::autostart::settings::{self, Settings};
use crate::error::{Context, Error, Kind, Result};
use crate::store::{MachineRecord, Store};

impl Store {
    pub fn set_autostart(&mut self, host: &str, machine: &str, s: &Settings) -> Result<()> {
        let n = self
            .conn
            .execute(
                "INSERT OR REPLACE INTO autostart (machine_id, enabled, priority, delay, wait, wait_timeout, stop_timeout, stop_action)
                 SELECT id, ?3, ?4, ?5, ?6, ?7, ?8, ?9 FROM machines WHERE host = ?1 AND name = ?2",
                params![
                    host,
                    machine,
                    s.enabled as i64,
                    s.priority,
                    s.delay as i64,
                    s.wait.to_string(),
                    s.wait_timeout as i64,
                    s.stop_timeout as i64,
                    settings::action_str(s.stop_action)
                ],
            )
            .context(Kind::Other, || format!("cannot save the autostart settings of {machine:?}"))?;
        if n == 0 {
            return Err(Error::machine_not_found(machine, host));
        }
        Ok(())
    }

    pub fn autostart(&self, host: &str, machine: &str) -> Result<Settings> {
        let row: Option<(i64, i64, i64, String, i64, i64, String)> = self
            .conn
            .query_row(
                "SELECT a.enabled, a.priority, a.delay, a.wait, a.wait_timeout, a.stop_timeout, a.stop_action
                 FROM autostart a JOIN machines m ON m.id = a.machine_id WHERE m.host = ?1 AND m.name = ?2",
                params![host, machine],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .optional()
            .map_err(|e| self.corrupt(e))?;
        let Some((en, pr, de, wa, wt, st, sa)) = row else {
            return Ok(Settings::default());
        };
        Ok(Settings {
            enabled: en != 0,
            priority: pr as i32,
            delay: de as u64,
            wait: wa
                .parse()
                .map_err(|_| self.corrupt(format!("bad wait {wa:?}")))?,
            wait_timeout: wt as u64,
            stop_timeout: st as u64,
            stop_action: settings::action_parse(&sa)
                .map_err(|_| self.corrupt(format!("bad stop action {sa:?}")))?,
        })
    }

    /// Every ready machine of the host with its settings.
    pub fn autostart_entries(&self, host: &str) -> Result<Vec<(MachineRecord, Settings)>> {
        self.machines(Some(host))?
            .into_iter()
            .filter(|m| m.state == crate::store::RecordState::Ready)
            .map(|m| {
                let s = self.autostart(host, &m.name)?;
                Ok((m, s))
            })
            .collect()
    }

    /// Record what an autostop found running. The record lasts until an
    /// autostart run uses it: a second autostop before that (run by hand,
    /// then again by the unit at shutdown) adds to it, so the machines the
    /// first one stopped are not forgotten.
    pub fn record_autostop(&mut self, host: &str, names: &[String]) -> Result<()> {
        let failed = || "cannot record the running machines".to_string();
        let tx = self.write()?;
        let now = crate::time::rfc3339_now();
        let pending: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM stop_pending WHERE host = ?1)",
                params![host],
                |r| r.get(0),
            )
            .context(Kind::Other, failed)?;
        if !pending {
            tx.execute("DELETE FROM last_running WHERE host = ?1", params![host])
                .context(Kind::Other, failed)?;
            tx.execute(
                "INSERT INTO stop_pending (host, since) VALUES (?1, ?2)",
                params![host, now],
            )
            .context(Kind::Other, failed)?;
        }
        for n in names {
            tx.execute(
                "INSERT OR REPLACE INTO last_running (host, machine, recorded_at) VALUES (?1, ?2, ?3)",
                params![host, n, now],
            )
            .context(Kind::Other, failed)?;
        }
        tx.commit().context(Kind::Other, failed)
    }

    /// An autostart run has used the record: the next autostop replaces it.
    pub fn autostart_ran(&mut self, host: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM stop_pending WHERE host = ?1", params![host])
            .map(|_| ())
            .context(Kind::Other, || "cannot record the autostart run".into())
    }

    pub fn last_running(&self, host: &str) -> Result<Vec<String>> {
        self.host_strings(
            "SELECT machine FROM last_running WHERE host = ?1 ORDER BY machine",
            host,
        )
    }
}
