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

    /// `host disable`: the reason is said to whoever tries to place a
    /// machine there. Disabling again replaces the reason.
    pub fn disable_host(&mut self, name: &str, reason: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO host_disabled (host, reason, since) VALUES (?1, ?2, ?3)
                 ON CONFLICT (host) DO UPDATE SET reason = excluded.reason",
                params![name, reason, crate::time::rfc3339_now()],
            )
            .context(Kind::Other, || format!("cannot disable host {name:?}"))?;
        Ok(())
    }

    /// Whether it was disabled.
    pub fn enable_host(&mut self, name: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM host_disabled WHERE host = ?1", params![name])
            .context(Kind::Other, || format!("cannot enable host {name:?}"))?;
        Ok(n > 0)
    }

    /// Why the host takes no new machines; None: it does.
    pub fn host_disabled(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT reason FROM host_disabled WHERE host = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.corrupt(e))
    }

    /// Refused (exit 5) when the host is disabled, naming the reason.
    pub fn check_host_takes_machines(&self, name: &str) -> Result<()> {
        match self.host_disabled(name)? {
            None => Ok(()),
            Some(reason) => Err(Error::conflict(format!(
                "host {name} is disabled ({}) and takes no new machines; `creature host enable {name}` when it may",
                if reason.is_empty() { "no reason given" } else { &reason }
            ))),
        }
    }

    /// The machine's NICs moved onto `to`'s networks of the same names:
    /// (NIC index, network id there). Refused (exit 5) when `to` lacks one
    /// of the networks, or its IP is outside that network's subnet or taken
    /// there. Reads only.
    pub fn nics_on(&self, from: &str, name: &str, to: &str) -> Result<Vec<(u32, i64)>> {
        let mut out = Vec::new();
        for n in self.nics(from, name)? {
            let (id, subnet): (i64, Option<String>) = self
                .conn
                .query_row(
                    "SELECT id, subnet FROM networks WHERE host = ?1 AND name = ?2",
                    params![to, n.network],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| self.corrupt(e))?
                .ok_or_else(|| {
                    Error::conflict(format!(
                        "host {to} has no network {net}: make it there first (`creature --host {to} net create {net} ...`, with the subnet of {net} on {from})",
                        net = n.network
                    ))
                })?;
            if let Some(ip) = &n.ip {
                let inside = match (subnet.as_deref(), ip.parse::<std::net::Ipv4Addr>()) {
                    (Some(s), Ok(a)) => s
                        .parse::<crate::net::ipv4::Subnet>()
                        .map(|s| s.contains(a))
                        .unwrap_or(false),
                    _ => false,
                };
                if !inside {
                    return Err(Error::conflict(format!(
                        "{name}'s IP {ip} is outside network {} on host {to} ({}); it would lose its address there",
                        n.network,
                        subnet.as_deref().unwrap_or("no subnet")
                    )));
                }
                let holder: Option<String> = self
                    .conn
                    .query_row(
                        "SELECT m.name FROM nics x JOIN machines m ON m.id = x.machine_id
                         WHERE x.network_id = ?1 AND x.ip = ?2",
                        params![id, ip],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(|e| self.corrupt(e))?;
                if let Some(h) = holder {
                    return Err(Error::conflict(format!(
                        "IP {ip} on network {} of host {to} is {h}'s",
                        n.network
                    )));
                }
            }
            out.push((n.index, id));
        }
        Ok(out)
    }

    /// After a migration or an evacuation: the machine's record says `to`,
    /// its NICs are on `to`'s networks (same MACs, same IPs), and what
    /// autostart remembers of it follows. One transaction.
    pub fn move_machine(&mut self, name: &str, from: &str, to: &str) -> Result<()> {
        let nics = self.nics_on(from, name, to)?;
        let tx = self.write()?;
        let id: i64 = tx
            .query_row(
                "SELECT id FROM machines WHERE host = ?1 AND name = ?2",
                params![from, name],
                |r| r.get(0),
            )
            .context(Kind::NotFound, || {
                format!("machine {name:?} is not on host {from}")
            })?;
        for (idx, net) in nics {
            tx.execute(
                "UPDATE nics SET network_id = ?1 WHERE machine_id = ?2 AND idx = ?3",
                params![net, id, idx],
            )
            .context(Kind::Other, || format!("cannot move {name:?}"))?;
        }
        tx.execute(
            "UPDATE machines SET host = ?1, updated_at = ?2 WHERE id = ?3",
            params![to, crate::time::rfc3339_now(), id],
        )
        .context(Kind::Other, || format!("cannot move {name:?}"))?;
        tx.execute(
            "UPDATE OR REPLACE last_running SET host = ?1 WHERE host = ?2 AND machine = ?3",
            params![to, from, name],
        )
        .context(Kind::Other, || format!("cannot move {name:?}"))?;
        tx.commit()
            .context(Kind::Other, || format!("cannot move {name:?}"))
    }

    /// What a machine was made from (`Recorded`, JSON): evacuate rebuilds
    /// it from this when its host is gone.
    pub fn set_spec(&mut self, host: &str, name: &str, spec: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE machines SET spec = ?3 WHERE host = ?1 AND name = ?2",
                params![host, name, spec],
            )
            .context(Kind::Other, || {
                format!("cannot record what {name:?} is made of")
            })?;
        Ok(())
    }

    pub fn spec(&self, host: &str, name: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT spec FROM machines WHERE host = ?1 AND name = ?2",
                params![host, name],
                |r| r.get(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.corrupt(e))
    }

    /// After an evacuation: `machine` still has a definition on `host`
    /// (down then), which `repair` removes once that host answers.
    pub fn mark_evacuated(&mut self, host: &str, machine: &str, shared: bool) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO evacuated (host, machine, shared, at) VALUES (?1, ?2, ?3, ?4)",
                params![host, machine, shared, crate::time::rfc3339_now()],
            )
            .context(Kind::Other, || format!("cannot record the evacuation of {machine:?}"))?;
        Ok(())
    }

    /// (host, machine, shared disks) left behind by evacuations.
    pub fn evacuated(&self) -> Result<Vec<(String, String, bool)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT host, machine, shared FROM evacuated ORDER BY host, machine")
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.corrupt(e))
    }

    pub fn forget_evacuated(&mut self, host: &str, machine: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM evacuated WHERE host = ?1 AND machine = ?2",
                params![host, machine],
            )
            .context(Kind::Other, || {
                format!("cannot update the evacuation of {machine:?}")
            })?;
        Ok(())
    }
}
