//! Network records and the NICs (MAC, IP) allocated on them.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use crate::error::{Context, Error, Kind, Result};
use crate::matrix::Backend;
use crate::net::alloc::{self, Mac};
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
}

/// What a create asks for one NIC.
#[derive(Debug, Clone)]
pub struct NicRequest {
    pub network: String,
    pub mac: Option<Mac>,
    pub ip: Option<Ipv4Addr>,
}

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
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn net_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetworkRecord> {
    Ok(NetworkRecord {
        name: r.get(0)?,
        mode: r.get(1)?,
        subnet: r.get(2)?,
        bridge: r.get(3)?,
        dhcp_start: r.get(4)?,
        dhcp_end: r.get(5)?,
        autostart: r.get::<_, i64>(6)? != 0,
    })
}

const NET_COLS: &str = "name, mode, subnet, bridge, dhcp_start, dhcp_end, autostart";

impl Store {
    pub fn add_network(&mut self, host: &str, n: &NetworkRecord) -> Result<()> {
        let r = self.conn.execute(
            "INSERT INTO networks (host, name, mode, subnet, bridge, dhcp_start, dhcp_end, autostart, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![host, n.name, n.mode, n.subnet, n.bridge, n.dhcp_start, n.dhcp_end, n.autostart as i64, crate::time::rfc3339_now()],
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

    /// Every machine's reserved IPs on this host, in NIC order, in one query
    /// (for `list`, which would otherwise ask once per machine).
    pub fn ips_by_machine(
        &self,
        host: &str,
    ) -> Result<std::collections::HashMap<String, Vec<String>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT m.name, n.ip FROM nics n JOIN machines m ON m.id = n.machine_id
                 WHERE m.host = ?1 AND n.ip IS NOT NULL ORDER BY m.name, n.idx",
            )
            .map_err(|e| self.corrupt(e))?;
        let rows = stmt
            .query_map(params![host], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.corrupt(e))?;
        let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
        for row in rows {
            let (m, ip) = row.map_err(|e| self.corrupt(e))?;
            out.entry(m).or_default().push(ip);
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
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .context(Kind::Other, || "cannot lock the state database".into())?;
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
    let net: Option<(i64, NetworkRecord)> = tx
        .query_row(
            &format!("SELECT id, {NET_COLS} FROM networks WHERE host = ?1 AND name = ?2"),
            params![host, req.network],
            |r| {
                Ok((
                    r.get(0)?,
                    NetworkRecord {
                        name: r.get(1)?,
                        mode: r.get(2)?,
                        subnet: r.get(3)?,
                        bridge: r.get(4)?,
                        dhcp_start: r.get(5)?,
                        dhcp_end: r.get(6)?,
                        autostart: r.get::<_, i64>(7)? != 0,
                    },
                ))
            },
        )
        .optional()
        .map_err(db)?;
    let (net_id, net) = net.ok_or_else(|| {
        Error::not_found(format!(
            "network {:?} not found (see `creature net list`)",
            req.network
        ))
    })?;

    // MACs: creature's own, then everything else on the host.
    let mut owners: HashMap<Mac, String> = external.clone();
    {
        let mut stmt = tx
            .prepare("SELECT n.mac, m.name FROM nics n JOIN machines m ON m.id = n.machine_id")
            .map_err(db)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(db)?;
        for row in rows {
            let (mac, owner) = row.map_err(db)?;
            if let Some(m) = alloc::parse(&mac) {
                owners.insert(m, format!("machine {owner}"));
            }
        }
    }
    let mac = match req.mac {
        Some(m) => {
            if let Some(owner) = owners.get(&m) {
                return Err(Error::conflict(format!(
                    "MAC {} is already used by {owner}",
                    alloc::format(&m)
                )));
            }
            m
        }
        None => {
            let taken: HashSet<Mac> = owners.keys().copied().collect();
            alloc::choose_mac(backend, host_id, machine, idx, &taken)
                .ok_or_else(|| Error::new(Kind::Exhausted, "no free MAC address found"))?
        }
    };

    let ip = match (&net.subnet, &net.dhcp_start, &net.dhcp_end) {
        (Some(sub), Some(a), Some(b)) => {
            let sub: crate::net::ipv4::Subnet =
                sub.parse().map_err(|e: String| Error::corrupt(e))?;
            let range: (Ipv4Addr, Ipv4Addr) = (
                a.parse()
                    .map_err(|_| Error::corrupt("bad DHCP range in the state database"))?,
                b.parse()
                    .map_err(|_| Error::corrupt("bad DHCP range in the state database"))?,
            );
            let mut in_use: HashMap<Ipv4Addr, String> = HashMap::new();
            {
                let mut stmt = tx
                    .prepare("SELECT n.ip, m.name FROM nics n JOIN machines m ON m.id = n.machine_id WHERE n.network_id = ?1 AND n.ip IS NOT NULL")
                    .map_err(db)?;
                let rows = stmt
                    .query_map(params![net_id], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                    })
                    .map_err(db)?;
                for row in rows {
                    let (ip, owner) = row.map_err(db)?;
                    if let Ok(ip) = ip.parse() {
                        in_use.insert(ip, owner);
                    }
                }
            }
            let (mut recent, mut ever) = (HashSet::new(), HashSet::new());
            {
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
                        ever.insert(ip);
                        if now() - at < LEASE_SECONDS {
                            recent.insert(ip);
                        }
                    }
                }
            }
            Some(match req.ip {
                Some(ip) => {
                    if !sub.host_usable(ip) {
                        return Err(Error::invalid(format!(
                            "IP {ip} is not a machine address of {sub} (not the network, gateway or broadcast address, and inside the subnet)"
                        )));
                    }
                    if let Some(owner) = in_use.get(&ip) {
                        return Err(Error::conflict(format!(
                            "IP {ip} on network {:?} is already reserved for machine {owner}",
                            net.name
                        )));
                    }
                    ip
                }
                None => {
                    let used: HashSet<Ipv4Addr> = in_use.keys().copied().collect();
                    alloc::choose_ip(range, &used, &recent, &ever).ok_or_else(|| {
                        Error::new(
                            Kind::Exhausted,
                            format!(
                                "network {:?} has no free address left in {}-{}",
                                net.name, range.0, range.1
                            ),
                        )
                    })?
                }
            })
        }
        _ => {
            if let Some(ip) = req.ip {
                return Err(Error::invalid(format!(
                    "network {:?} ({}) has no DHCP here; a fixed IP ({ip}) cannot be reserved on it",
                    net.name, net.mode
                )));
            }
            None
        }
    };
    let ip_s = ip.map(|i| i.to_string());
    let mac_s = alloc::format(&mac);
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
