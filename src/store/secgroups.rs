//! Security groups, their rules and their machines. Group names are one
//! namespace across hosts; a machine is a member by its record.

use std::net::Ipv4Addr;

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use crate::error::{Context, Error, Kind, Result};
use crate::secgroup::{Cidr, Direction, Ports, Proto, Remote, Rule};
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecGroupRecord {
    pub name: String,
    pub description: String,
    pub created_at: String,
    #[serde(skip)]
    pub rules: Vec<Rule>,
    /// Members, as `machine` (local host) or `host/machine`.
    pub machines: Vec<String>,
}

/// A machine in a group, and the NICs its filters are made for.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub host: String,
    pub machine: String,
}

fn bad(tx_or_conn: &str, e: rusqlite::Error) -> Error {
    Error::corrupt(format!("{tx_or_conn}: {e}"))
}

fn rule_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Rule>> {
    let direction: String = r.get(0)?;
    let proto: String = r.get(1)?;
    let min: Option<i64> = r.get(2)?;
    let max: Option<i64> = r.get(3)?;
    let cidr: Option<String> = r.get(4)?;
    let group: Option<String> = r.get(5)?;
    let remote = match (cidr, group) {
        (Some(c), None) => c.parse::<Cidr>().ok().map(Remote::Cidr),
        (None, Some(g)) => Some(Remote::Group(g)),
        _ => None,
    };
    let ports = match (min, max) {
        (Some(a), Some(b)) => Some(Ports {
            min: u16::try_from(a).unwrap_or(0),
            max: u16::try_from(b).unwrap_or(0),
        }),
        _ => None,
    };
    Ok((|| {
        Some(Rule {
            direction: Direction::parse(&direction)?,
            proto: Proto::parse(&proto)?,
            ports,
            remote: remote?,
        })
    })())
}

fn group_id(tx: &Transaction<'_>, name: &str) -> Result<i64> {
    tx.query_row(
        "SELECT id FROM secgroups WHERE name = ?1",
        params![name],
        |r| r.get(0),
    )
    .optional()
    .map_err(|e| bad("cannot read security groups", e))?
    .ok_or_else(|| group_not_found(name))
}

pub fn group_not_found(name: &str) -> Error {
    Error::not_found(format!(
        "security group {name:?} not found (see `creature secgroup list`)"
    ))
}

fn insert_rule(tx: &Transaction<'_>, id: i64, r: &Rule) -> Result<()> {
    let (cidr, group) = match &r.remote {
        Remote::Cidr(c) => (Some(c.to_string()), None),
        Remote::Group(g) => (None, Some(g.clone())),
    };
    tx.execute(
        "INSERT INTO secgroup_rules (group_id, direction, proto, port_min, port_max, remote_cidr, remote_group)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            r.direction.as_str(),
            r.proto.as_str(),
            r.ports.map(|p| p.min),
            r.ports.map(|p| p.max),
            cidr,
            group
        ],
    )
    .context(Kind::Other, || "cannot record the rule".into())?;
    Ok(())
}

impl Store {
    /// A new group, with the rule every group starts with: all outbound.
    pub fn create_secgroup(&mut self, name: &str, description: &str) -> Result<()> {
        let tx = self.write()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT id FROM secgroups WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| bad("cannot read security groups", e))?;
        if exists.is_some() {
            return Err(Error::conflict(format!(
                "security group {name:?} already exists"
            )));
        }
        tx.execute(
            "INSERT INTO secgroups (name, description, created_at) VALUES (?1, ?2, ?3)",
            params![name, description, crate::time::rfc3339_now()],
        )
        .context(Kind::Other, || {
            format!("cannot record security group {name:?}")
        })?;
        let id = tx.last_insert_rowid();
        insert_rule(&tx, id, &Rule::egress_all())?;
        tx.commit().context(Kind::Other, || {
            format!("cannot record security group {name:?}")
        })
    }

    pub fn secgroups(&self) -> Result<Vec<SecGroupRecord>> {
        let names: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT name FROM secgroups ORDER BY name")
                .map_err(|e| self.corrupt(e))?;
            let rows = stmt
                .query_map([], |r| r.get(0))
                .map_err(|e| self.corrupt(e))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| self.corrupt(e))?
        };
        let mut out = Vec::new();
        for n in names {
            out.extend(self.secgroup(&n)?);
        }
        Ok(out)
    }

    pub fn secgroup(&self, name: &str) -> Result<Option<SecGroupRecord>> {
        let row: Option<(i64, String, String)> = self
            .conn
            .query_row(
                "SELECT id, description, created_at FROM secgroups WHERE name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.corrupt(e))?;
        let Some((id, description, created_at)) = row else {
            return Ok(None);
        };
        let rules = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT direction, proto, port_min, port_max, remote_cidr, remote_group
                     FROM secgroup_rules WHERE group_id = ?1 ORDER BY id",
                )
                .map_err(|e| self.corrupt(e))?;
            let rows = stmt
                .query_map(params![id], rule_from_row)
                .map_err(|e| self.corrupt(e))?;
            let mut v = Vec::new();
            for r in rows {
                let r = r.map_err(|e| self.corrupt(e))?;
                v.push(r.ok_or_else(|| {
                    self.corrupt(format!("a rule of group {name:?} is unreadable"))
                })?);
            }
            v
        };
        let machines = self
            .secgroup_members(name)?
            .into_iter()
            .map(|m| {
                if m.host == crate::config::LOCAL {
                    m.machine
                } else {
                    format!("{}/{}", m.host, m.machine)
                }
            })
            .collect();
        Ok(Some(SecGroupRecord {
            name: name.to_string(),
            description,
            created_at,
            rules,
            machines,
        }))
    }

    pub fn secgroup_members(&self, name: &str) -> Result<Vec<Member>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.host, m.name FROM machine_secgroups ms
                 JOIN machines m ON m.id = ms.machine_id JOIN secgroups g ON g.id = ms.group_id
                 WHERE g.name = ?1 ORDER BY m.host, m.name",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![name], |r| {
                Ok(Member {
                    host: r.get(0)?,
                    machine: r.get(1)?,
                })
            })
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.corrupt(e))
    }

    /// The reserved addresses of a group's members (their NICs' IPs).
    pub fn secgroup_member_ips(&self, name: &str) -> Result<Vec<Ipv4Addr>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT n.ip FROM nics n JOIN machine_secgroups ms ON ms.machine_id = n.machine_id
                 JOIN secgroups g ON g.id = ms.group_id WHERE g.name = ?1 AND n.ip IS NOT NULL",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![name], |r| r.get::<_, String>(0))
            .map_err(|e| self.corrupt(e))?;
        let mut v = Vec::new();
        for r in rows {
            if let Ok(ip) = r.map_err(|e| self.corrupt(e))?.parse() {
                v.push(ip);
            }
        }
        Ok(v)
    }

    /// Groups with a rule naming `name` as its remote.
    pub fn secgroups_referencing(&self, name: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT g.name FROM secgroup_rules r JOIN secgroups g ON g.id = r.group_id
                 WHERE r.remote_group = ?1 ORDER BY g.name",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![name], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Refused while a machine is in it or another group's rule names it.
    pub fn delete_secgroup(&mut self, name: &str) -> Result<()> {
        let members = self.secgroup_members(name)?;
        if !members.is_empty() {
            let names: Vec<&str> = members.iter().map(|m| m.machine.as_str()).collect();
            return Err(Error::conflict(format!(
                "security group {name:?} is used by {}; detach it first (`creature secgroup detach MACHINE {name}`)",
                names.join(", ")
            )));
        }
        let refs: Vec<String> = self
            .secgroups_referencing(name)?
            .into_iter()
            .filter(|g| g != name)
            .collect();
        if !refs.is_empty() {
            return Err(Error::conflict(format!(
                "security group {name:?} is named by rules of {}; remove those rules first",
                refs.join(", ")
            )));
        }
        let tx = self.write()?;
        let id = group_id(&tx, name)?;
        tx.execute("DELETE FROM secgroups WHERE id = ?1", params![id])
            .context(Kind::Other, || {
                format!("cannot delete security group {name:?}")
            })?;
        tx.commit().context(Kind::Other, || {
            format!("cannot delete security group {name:?}")
        })
    }

    /// Adds the rule; false if the group already has it.
    pub fn add_secgroup_rule(&mut self, name: &str, rule: &Rule) -> Result<bool> {
        if let Remote::Group(g) = &rule.remote {
            if self.secgroup(g)?.is_none() {
                return Err(group_not_found(g));
            }
        }
        let have = self.secgroup(name)?.ok_or_else(|| group_not_found(name))?;
        if have.rules.contains(rule) {
            return Ok(false);
        }
        let tx = self.write()?;
        let id = group_id(&tx, name)?;
        insert_rule(&tx, id, rule)?;
        tx.commit()
            .context(Kind::Other, || "cannot record the rule".into())?;
        Ok(true)
    }

    pub fn remove_secgroup_rule(&mut self, name: &str, rule: &Rule) -> Result<()> {
        let have = self.secgroup(name)?.ok_or_else(|| group_not_found(name))?;
        if !have.rules.contains(rule) {
            return Err(Error::not_found(format!(
                "security group {name:?} has no rule `{}` (see `creature secgroup show {name}`)",
                rule.describe()
            )));
        }
        let (cidr, group) = match &rule.remote {
            Remote::Cidr(c) => (Some(c.to_string()), None),
            Remote::Group(g) => (None, Some(g.clone())),
        };
        let tx = self.write()?;
        let id = group_id(&tx, name)?;
        tx.execute(
            "DELETE FROM secgroup_rules WHERE group_id = ?1 AND direction = ?2 AND proto = ?3
             AND port_min IS ?4 AND port_max IS ?5 AND remote_cidr IS ?6 AND remote_group IS ?7",
            params![
                id,
                rule.direction.as_str(),
                rule.proto.as_str(),
                rule.ports.map(|p| p.min),
                rule.ports.map(|p| p.max),
                cidr,
                group
            ],
        )
        .context(Kind::Other, || "cannot remove the rule".into())?;
        tx.commit()
            .context(Kind::Other, || "cannot remove the rule".into())
    }

    /// The groups of a machine, by name.
    pub fn machine_secgroups(&self, host: &str, machine: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT g.name FROM machine_secgroups ms JOIN secgroups g ON g.id = ms.group_id
                 JOIN machines m ON m.id = ms.machine_id WHERE m.host = ?1 AND m.name = ?2
                 ORDER BY g.name",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host, machine], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Adds the machine to the group; false if it was in it.
    pub fn attach_secgroup(&mut self, host: &str, machine: &str, group: &str) -> Result<bool> {
        let tx = self.write()?;
        let gid = group_id(&tx, group)?;
        let mid: i64 = tx
            .query_row(
                "SELECT id FROM machines WHERE host = ?1 AND name = ?2",
                params![host, machine],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| bad("cannot read machines", e))?
            .ok_or_else(|| Error::machine_not_found(machine, host))?;
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO machine_secgroups (machine_id, group_id) VALUES (?1, ?2)",
                params![mid, gid],
            )
            .context(Kind::Other, || {
                format!("cannot add {machine:?} to {group:?}")
            })?;
        tx.commit().context(Kind::Other, || {
            format!("cannot add {machine:?} to {group:?}")
        })?;
        Ok(n == 1)
    }

    /// Takes the machine out of the group; false if it was not in it.
    pub fn detach_secgroup(&mut self, host: &str, machine: &str, group: &str) -> Result<bool> {
        let tx = self.write()?;
        let gid = group_id(&tx, group)?;
        let n = tx
            .execute(
                "DELETE FROM machine_secgroups WHERE group_id = ?1 AND machine_id =
                 (SELECT id FROM machines WHERE host = ?2 AND name = ?3)",
                params![gid, host, machine],
            )
            .context(Kind::Other, || {
                format!("cannot take {machine:?} out of {group:?}")
            })?;
        tx.commit().context(Kind::Other, || {
            format!("cannot take {machine:?} out of {group:?}")
        })?;
        Ok(n == 1)
    }

    /// How each NIC of a machine is filtered: (anti-spoofing, references
    /// its own filter), by NIC index.
    pub fn nic_filtering(&self, host: &str, machine: &str) -> Result<Vec<(u32, bool, bool)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT n.idx, n.antispoof, n.own_filter FROM nics n JOIN machines m ON m.id = n.machine_id
                 WHERE m.host = ?1 AND m.name = ?2 ORDER BY n.idx",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host, machine], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u32,
                    r.get::<_, i64>(1)? != 0,
                    r.get::<_, i64>(2)? != 0,
                ))
            })
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.corrupt(e))
    }

    pub fn set_nic_filtering(
        &mut self,
        host: &str,
        machine: &str,
        index: u32,
        antispoof: bool,
        own_filter: bool,
    ) -> Result<()> {
        self.conn
            .execute(
                "UPDATE nics SET antispoof = ?4, own_filter = ?5 WHERE idx = ?3 AND machine_id =
                 (SELECT id FROM machines WHERE host = ?1 AND name = ?2)",
                params![host, machine, index, antispoof, own_filter],
            )
            .context(Kind::Other, || {
                format!("cannot record the filtering of {machine:?}")
            })?;
        Ok(())
    }
}
