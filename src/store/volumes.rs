//! Volume records: a named block volume in a libvirt pool, and the
//! machines it is attached to (one, unless every attachment is shareable).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::error::{Context, Error, Kind, Result};
use crate::store::Store;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attachment {
    pub machine: String,
    pub target: String,
    pub readonly: bool,
    pub shareable: bool,
}

/// Where an iSCSI volume's LUN is.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Iscsi {
    pub portal: String,
    pub iqn: String,
    pub lun: u32,
    /// The CHAP user, when it logs in with CHAP (the secret is libvirt's).
    pub chap_user: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VolumeRecord {
    pub name: String,
    pub pool: String,
    pub path: String,
    pub format: String,
    pub capacity_bytes: u64,
    pub created_at: String,
    /// An iSCSI LUN's target; null for a volume of a file pool.
    pub iscsi: Option<Iscsi>,
    /// The machine whose template made it and whose delete removes it.
    pub made_for: Option<String>,
    pub attachments: Vec<Attachment>,
}

impl VolumeRecord {
    /// A LUN of a pool that is not file-backed (iSCSI, FC): its path is
    /// `pool/volume`, its data the target's.
    pub fn lun(&self) -> Option<(&str, &str)> {
        if self.path.starts_with('/') {
            return None;
        }
        self.path.split_once('/')
    }
}

const VOLUME_ID: &str = "(SELECT id FROM volumes WHERE host = ?1 AND name = ?2)";

impl Store {
    pub fn add_volume(&mut self, host: &str, v: &VolumeRecord) -> Result<()> {
        let tx = self.write()?;
        let r = tx.execute(
            "INSERT INTO volumes (host, name, pool, path, format, capacity, created_at,
                                  iscsi_portal, iscsi_iqn, iscsi_lun, chap_user, made_for)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                host,
                v.name,
                v.pool,
                v.path,
                v.format,
                v.capacity_bytes as i64,
                v.created_at,
                v.iscsi.as_ref().map(|i| &i.portal),
                v.iscsi.as_ref().map(|i| &i.iqn),
                v.iscsi.as_ref().map(|i| i.lun),
                v.iscsi.as_ref().and_then(|i| i.chap_user.as_ref()),
                v.made_for,
            ],
        );
        match r {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(Error::conflict(format!(
                    "volume {:?} already exists",
                    v.name
                )))
            }
            Err(e) => return Err(Error::other("cannot record the volume").caused_by(e)),
        }
        tx.commit()
            .context(Kind::Other, || "cannot commit the volume".into())
    }

    pub fn volumes(&self, host: &str) -> Result<Vec<VolumeRecord>> {
        let names: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT name FROM volumes WHERE host = ?1 ORDER BY name")
                .map_err(|e| self.corrupt(e))?;
            let rows = stmt
                .query_map(params![host], |r| r.get(0))
                .map_err(|e| self.corrupt(e))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| self.corrupt(e))?
        };
        let mut out = Vec::new();
        for n in names {
            out.extend(self.volume(host, &n)?);
        }
        Ok(out)
    }

    pub fn volume(&self, host: &str, name: &str) -> Result<Option<VolumeRecord>> {
        let row = self
            .conn
            .query_row(
                "SELECT pool, path, format, capacity, created_at,
                        iscsi_portal, iscsi_iqn, iscsi_lun, chap_user, made_for FROM volumes
                 WHERE host = ?1 AND name = ?2",
                params![host, name],
                |r| {
                    let iscsi = match (
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                    ) {
                        (Some(portal), Some(iqn)) => Some(Iscsi {
                            portal,
                            iqn,
                            lun: r.get::<_, Option<u32>>(7)?.unwrap_or(0),
                            chap_user: r.get(8)?,
                        }),
                        _ => None,
                    };
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                        iscsi,
                        r.get::<_, Option<String>>(9)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.corrupt(e))?;
        let Some((pool, path, format, capacity, created_at, iscsi, made_for)) = row else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT m.name, a.target, a.readonly, a.shareable
                 FROM volume_attachments a JOIN machines m ON m.id = a.machine_id
                 WHERE a.volume_id = {VOLUME_ID} ORDER BY m.name"
            ))
            .map_err(|e| self.corrupt(e))?;
        let attachments = stmt
            .query_map(params![host, name], |r| {
                Ok(Attachment {
                    machine: r.get(0)?,
                    target: r.get(1)?,
                    readonly: r.get::<_, i64>(2)? != 0,
                    shareable: r.get::<_, i64>(3)? != 0,
                })
            })
            .map_err(|e| self.corrupt(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.corrupt(e))?;
        Ok(Some(VolumeRecord {
            name: name.to_string(),
            pool,
            path,
            format,
            capacity_bytes: capacity as u64,
            created_at,
            iscsi,
            made_for,
            attachments,
        }))
    }

    pub fn remove_volume(&mut self, host: &str, name: &str) -> Result<()> {
        let tx = self.write()?;
        tx.execute(
            "DELETE FROM volumes WHERE host = ?1 AND name = ?2",
            params![host, name],
        )
        .context(Kind::Other, || format!("cannot remove volume {name:?}"))?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the volume".into())
    }

    /// Record an attachment, refused (exit 5) when another machine holds
    /// the volume and they do not all share it: checked inside the write
    /// transaction, so two attaches racing cannot both win.
    pub fn attach_volume(&mut self, host: &str, volume: &str, a: &Attachment) -> Result<()> {
        let tx = self.write()?;
        let holders: Vec<(String, bool)> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT m.name, a.shareable FROM volume_attachments a
                     JOIN machines m ON m.id = a.machine_id WHERE a.volume_id = {VOLUME_ID}"
                ))
                .context(Kind::Other, || "cannot read the volume's holders".into())?;
            let rows = stmt
                .query_map(params![host, volume], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0))
                })
                .context(Kind::Other, || "cannot read the volume's holders".into())?;
            rows.collect::<rusqlite::Result<_>>()
                .context(Kind::Other, || "cannot read the volume's holders".into())?
        };
        let shared = a.shareable && holders.iter().all(|(_, s)| *s);
        if !(holders.is_empty() || shared) {
            let names: Vec<&str> = holders.iter().map(|(m, _)| m.as_str()).collect();
            return Err(Error::conflict(format!(
                "volume {volume:?} is attached to {}; detach it there first, or attach it \
                 --shareable everywhere (raw volumes only)",
                names.join(", ")
            )));
        }
        tx.execute(
            &format!(
                "INSERT INTO volume_attachments (volume_id, machine_id, target, readonly, shareable)
                 VALUES ({VOLUME_ID}, (SELECT id FROM machines WHERE host = ?1 AND name = ?3), ?4, ?5, ?6)"
            ),
            params![host, volume, a.machine, a.target, a.readonly, a.shareable],
        )
        .context(Kind::Other, || format!("cannot record volume {volume:?} as attached"))?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the attachment".into())
    }

    pub fn detach_volume(&mut self, host: &str, volume: &str, machine: &str) -> Result<()> {
        let tx = self.write()?;
        tx.execute(
            &format!(
                "DELETE FROM volume_attachments WHERE volume_id = {VOLUME_ID}
                 AND machine_id = (SELECT id FROM machines WHERE host = ?1 AND name = ?3)"
            ),
            params![host, volume, machine],
        )
        .context(Kind::Other, || {
            format!("cannot record volume {volume:?} as detached")
        })?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the detach".into())
    }

    /// `old`'s attachment to `machine` becomes `new`'s, in one transaction.
    pub fn swap_volume(&mut self, host: &str, machine: &str, old: &str, new: &str) -> Result<()> {
        let tx = self.write()?;
        tx.execute(
            &format!(
                "UPDATE volume_attachments SET volume_id = (SELECT id FROM volumes WHERE host = ?1 AND name = ?4)
                 WHERE volume_id = {VOLUME_ID}
                 AND machine_id = (SELECT id FROM machines WHERE host = ?1 AND name = ?3)"
            ),
            params![host, old, machine, new],
        )
        .context(Kind::Other, || format!("cannot record the swap of {old:?} for {new:?}"))?;
        tx.commit()
            .context(Kind::Other, || "cannot commit the swap".into())
    }

    /// The volumes attached to a machine, with their attachment.
    pub fn volumes_of(&self, host: &str, machine: &str) -> Result<Vec<(VolumeRecord, Attachment)>> {
        Ok(self
            .volumes(host)?
            .into_iter()
            .filter_map(|v| {
                let a = v.attachments.iter().find(|a| a.machine == machine)?.clone();
                Some((v, a))
            })
            .collect())
    }
}
