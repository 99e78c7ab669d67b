//! Network records and the NICs (MAC, IP) allocated on them.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use crate::backend::Backend;
use crate::error::{Context, Error, Kind, Result};
use crate::net::{alloc, Mac};
use crate::store::Store;

/// How long a released IP stays out of the pool: dnsmasq's default lease.
pub const LEASE_SECONDS: i64 = 3600;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetworkRecord {
    pub name: String,
    pub mode: String,
    pub subnet: Option<String>,
    pub bridge: String,
    pub dhcp_start: Option<String>,
    pub dhcp_end: Option<String>,
    pub autostart: bool,
    /// VM NICs on it carry libvirt's clean-traffic filter (`net create
    /// --no-antispoof` turns it off for the network).
    pub antispoof: bool,
    /// libvirt's dnsmasq serves DHCP on it (`net create --no-dhcp`: no).
    pub dhcp: bool,
    /// Its VLAN tag (`net create --vlan`); null: not a VLAN network.
    pub vlan: Option<u16>,
    /// The Open vSwitch bridge carrying its VLAN (null: not a VLAN network).
    pub trunk: Option<String>,
}

impl NetworkRecord {
    /// A VLAN of an Open vSwitch bridge of its host's (`--mode bridge
    /// --vlan`): libvirt tags each machine's port; creature made no bridge,
    /// uplink or DHCP server for it, and libvirt's filters do not see the
    /// ports.
    pub fn on_ovs(&self) -> bool {
        self.vlan.is_some() && self.mode == crate::net::NetMode::Bridge.as_str()
    }
}

pub use crate::net::alloc::Request as NicRequest;

/// A NIC as allocated and recorded.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Nic {
    pub index: u32,
    pub network: String,
    pub bridge: String,
    pub mac: String,
    pub ip: Option<String>,
}

fn now() -> i64 {
    crate::time::unix_now() as i64
}

fn net_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkRecord> {
    net_from_columns(r, 0)
}

/// A record from `NET_COLS`, starting at column `at`.
fn net_from_columns(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<NetworkRecord> {
    Ok(NetworkRecord {
        name: r.get(at)?,
        mode: r.get(at + 1)?,
        subnet: r.get(at + 2)?,
        bridge: r.get(at + 3)?,
        dhcp_start: r.get(at + 4)?,
        dhcp_end: r.get(at + 5)?,
        autostart: r.get::<_, i64>(at + 6)? != 0,
        antispoof: r.get::<_, i64>(at + 7)? != 0,
        dhcp: r.get::<_, i64>(at + 8)? != 0,
        vlan: r
            .get::<_, Option<i64>>(at + 9)?
            .and_then(|v| u16::try_from(v).ok()),
        trunk: r.get(at + 10)?,
    })
}

const NET_COLS: &str =
    "name, mode, subnet, bridge, dhcp_start, dhcp_end, autostart, antispoof, dhcp, vlan, trunk";

impl Store {
    pub fn add_network(&mut self, host: &str, n: &NetworkRecord) -> Result<()> {
        let r = self.conn.execute(
            "INSERT INTO networks (host, name, mode, subnet, bridge, dhcp_start, dhcp_end, autostart, created_at, antispoof, dhcp, vlan, trunk)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![host, n.name, n.mode, n.subnet, n.bridge, n.dhcp_start, n.dhcp_end, n.autostart as i64, crate::time::rfc3339_now(), n.antispoof as i64, n.dhcp as i64, n.vlan, n.trunk],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::conflict(format!(
                    "network {:?} already exists",
                    n.name
                )))
            }
            Err(e) => Err(Error::other("cannot record the network").caused_by(e)),
        }
    }

    pub fn network(&self, host: &str, name: &str) -> Result<Option<NetworkRecord>> {
        self.conn
            .query_row(
                &format!("SELECT {NET_COLS} FROM networks WHERE host = ?1 AND name = ?2"),
                params![host, name],
                net_from_row,
            )
            .optional()
            .map_err(|e| self.corrupt(e))
    }

    pub fn networks(&self, host: &str) -> Result<Vec<NetworkRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {NET_COLS} FROM networks WHERE host = ?1 ORDER BY name"
            ))
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host], net_from_row)
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Machines with a NIC on the network.
    pub fn network_users(&self, host: &str, name: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT m.name FROM nics n JOIN machines m ON m.id = n.machine_id
                 JOIN networks w ON w.id = n.network_id WHERE w.host = ?1 AND w.name = ?2 ORDER BY m.name",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host, name], |r| r.get(0))
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Forget a network no machine uses.
    pub fn remove_network(&mut self, host: &str, name: &str) -> Result<()> {
        let users = self.network_users(host, name)?;
        if !users.is_empty() {
            return Err(Error::conflict(format!(
                "network {name:?} is used by {}; delete those machines first",
                users.join(", ")
            )));
        }
        self.conn
            .execute(
                "DELETE FROM networks WHERE host = ?1 AND name = ?2",
                params![host, name],
            )
            .map(|_| ())
            .context(Kind::Other, || format!("cannot remove network {name:?}"))
    }

    /// The NICs of a machine, in order.
    pub fn nics(&self, host: &str, machine: &str) -> Result<Vec<Nic>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT n.idx, w.name, w.bridge, n.mac, n.ip FROM nics n
                 JOIN machines m ON m.id = n.machine_id JOIN networks w ON w.id = n.network_id
                 WHERE m.host = ?1 AND m.name = ?2 ORDER BY n.idx",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host, machine], |r| {
                Ok(Nic {
                    index: r.get::<_, i64>(0)? as u32,
                    network: r.get(1)?,
                    bridge: r.get(2)?,
                    mac: r.get(3)?,
                    ip: r.get(4)?,
                })
            })
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Every machine's NICs on this host, in NIC order, in one query (for
    /// `list`, which would otherwise ask once per machine).
    pub fn nics_by_machine(
        &self,
        host: &str,
    ) -> Result<std::collections::HashMap<String, Vec<Nic>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.name, n.idx, w.name, w.bridge, n.mac, n.ip FROM nics n
                 JOIN machines m ON m.id = n.machine_id JOIN networks w ON w.id = n.network_id
                 WHERE m.host = ?1 ORDER BY m.name, n.idx",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Nic {
                        index: r.get::<_, i64>(1)? as u32,
                        network: r.get(2)?,
                        bridge: r.get(3)?,
                        mac: r.get(4)?,
                        ip: r.get(5)?,
                    },
                ))
            })
            .map_err(|e| self.corrupt(e))?;
        let mut out: std::collections::HashMap<String, Vec<Nic>> = Default::default();
        for row in rows {
            let (m, nic) = row.map_err(|e| self.corrupt(e))?;
            out.entry(m).or_default().push(nic);
        }
        Ok(out)
    }

    /// Every reservation on a network: (machine, MAC, IP).
    pub fn reservations(
        &self,
        host: &str,
        network: &str,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.name, n.mac, n.ip FROM nics n JOIN machines m ON m.id = n.machine_id
                 JOIN networks w ON w.id = n.network_id WHERE w.host = ?1 AND w.name = ?2 ORDER BY n.ip, m.name",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host, network], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| self.corrupt(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.corrupt(e))
    }

    /// Record a machine as `creating` and allocate its NICs, in one
    /// transaction: N parallel creates get N distinct MACs and IPs, and a
    /// failure leaves neither. `external` are MACs in use outside creature's
    /// records (libvirt domains, containers, host NICs), with their owners.
    #[allow(clippy::too_many_arguments)]
    pub fn begin_create_with_nics(
        &mut self,
        host: &str,
        name: &str,
        backend: Backend,
        template: Option<&str>,
        nics: &[NicRequest],
        host_id: &str,
        external: &HashMap<Mac, String>,
    ) -> Result<Vec<Nic>> {
        let tx = self.write()?;
        let machine_id = super::insert_machine(&tx, host, name, backend, template)?;
        let mut out = Vec::new();
        for (idx, req) in nics.iter().enumerate() {
            out.push(allocate(
                &tx, host, name, machine_id, idx, backend, req, host_id, external,
            )?);
        }
        tx.commit()
            .context(Kind::Other, || "cannot commit the new machine".into())?;
        Ok(out)
    }
}

/// Read what is taken inside the transaction, let the pure allocator
/// choose, record its choice.
#[allow(clippy::too_many_arguments)]
fn allocate(
    tx: &Transaction<'_>,
    host: &str,
    machine: &str,
    machine_id: i64,
    idx: usize,
    backend: Backend,
    req: &NicRequest,
    host_id: &str,
    external: &HashMap<Mac, String>,
) -> Result<Nic> {
    let db = |e: rusqlite::Error| {
        Error::new(Kind::StateCorrupt, "cannot read the NIC records").caused_by(e)
    };
    let (net_id, net) = tx
        .query_row(
            &format!("SELECT id, {NET_COLS} FROM networks WHERE host = ?1 AND name = ?2"),
            params![host, req.network],
            |r| Ok((r.get::<_, i64>(0)?, net_from_columns(r, 1)?)),
        )
        .optional()
        .map_err(db)?
        .ok_or_else(|| {
            Error::not_found(format!(
                "network {:?} not found (see `creature net list`)",
                req.network
            ))
        })?;
    let pool = pool_of(&net)?;
    let pairs = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Vec<(String, String)>> {
        let mut stmt = tx.prepare(sql).map_err(db)?;
        let rows = stmt
            .query_map(p, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
    };
    // MACs: everything else on the host, then creature's own.
    let mut taken = alloc::Taken {
        macs: external.clone(),
        ..Default::default()
    };
    for (mac, owner) in pairs(
        "SELECT n.mac, m.name FROM nics n JOIN machines m ON m.id = n.machine_id",
        &[],
    )? {
        if let Some(m) = Mac::parse_any(&mac) {
            taken.macs.insert(m, format!("machine {owner}"));
        }
    }
    if pool.range.is_some() {
        for (ip, owner) in pairs(
            "SELECT n.ip, m.name FROM nics n JOIN machines m ON m.id = n.machine_id WHERE n.network_id = ?1 AND n.ip IS NOT NULL",
            &[&net_id],
        )? {
            if let Ok(ip) = ip.parse() {
                taken.ips.insert(ip, owner);
            }
        }
        let mut stmt = tx
            .prepare("SELECT ip, released_at FROM released_ips WHERE network_id = ?1")
            .map_err(db)?;
        let rows = stmt
            .query_map(params![net_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(db)?;
        for row in rows {
            let (ip, at) = row.map_err(db)?;
            if let Ok(ip) = ip.parse::<Ipv4Addr>() {
                taken.ever_used.insert(ip);
                if now() - at < LEASE_SECONDS {
                    taken.recently_released.insert(ip);
                }
            }
        }
    }
    let who = alloc::For {
        backend,
        host_id,
        machine,
        nic: idx,
    };
    let (mac, ip) = alloc::allocate(who, req, &pool, &taken)?;
    let ip_s = ip.map(|i| i.to_string());
    let mac_s = mac.to_string();
    tx.execute(
        "INSERT INTO nics (machine_id, idx, mac, network_id, ip) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![machine_id, idx as i64, mac_s, net_id, ip_s],
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Error::conflict(format!(
                "MAC {mac_s} or IP {ip_s:?} was just taken by another create; try again"
            ))
        }
        e => Error::other("cannot record the NIC").caused_by(e),
    })?;
    tx.execute(
        "DELETE FROM released_ips WHERE network_id = ?1 AND ip = ?2",
        params![net_id, ip_s],
    )
    .map_err(db)?;
    Ok(Nic {
        index: idx as u32,
        network: net.name,
        bridge: net.bridge,
        mac: mac_s,
        ip: ip_s,
    })
}

/// A network record's DHCP pool (a record that does not parse is corrupt).
fn pool_of(net: &NetworkRecord) -> Result<alloc::Pool> {
    let (subnet, range) = match (&net.subnet, &net.dhcp_start, &net.dhcp_end) {
        (Some(sub), Some(a), Some(b)) => {
            let bad = || Error::corrupt("bad DHCP range in the state database");
            let sub: crate::net::ipv4::Subnet =
                sub.parse().map_err(|e: String| Error::corrupt(e))?;
            let range = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            (Some(sub), Some(range))
        }
        _ => (None, None),
    };
    Ok(alloc::Pool {
        network: net.name.clone(),
        mode: net.mode.clone(),
        subnet,
        range,
    })
}
