//! `creature volume ...` (#31 block storage, #1 attach, #2 detach): volumes
//! are libvirt storage volumes with a record each; attaching one records
//! which machine holds it, so a second holder is refused unless shared.

use std::time::Duration;

use serde::Serialize;

use crate::backend::libvirt::fc_xml::{self, Fc};
use crate::backend::libvirt::iscsi_xml::Target;
use crate::backend::libvirt::{self, iscsi, volume, volume_xml};
use crate::backend::{Driver, Host, VolumeDisk};
use crate::cli::VolumeCommand;
use crate::cmd::lifecycle::confirm;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::output::{self, Table};
use crate::size::Size;
use crate::store::{Attachment, MachineRecord, Store, VolumeRecord};

fn record(store: &Store, host: &str, name: &str) -> Result<VolumeRecord> {
    names::check(What::Volume, name)?;
    store
        .volume(host, name)?
        .ok_or_else(|| Error::not_found(format!("no volume {name:?} (`creature volume list`)")))
}

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    volume: VolumeRecord,
    /// Bytes it takes in its pool now (null when libvirt cannot say).
    allocation_bytes: Option<u64>,
}

fn holders(v: &VolumeRecord) -> String {
    if v.attachments.is_empty() {
        return "-".into();
    }
    v.attachments
        .iter()
        .map(|a| {
            format!(
                "{}:{}{}",
                a.machine,
                a.target,
                if a.readonly { " (ro)" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The host-wide verbs: create, list, info, delete.
pub fn run(ctx: &Ctx, cmd: &VolumeCommand) -> Result<()> {
    let host = ctx.host_name().to_string();
    let sd = &ctx.global.state_dir;
    match cmd {
        VolumeCommand::Create {
            volume: name,
            size,
            pool,
            disk_format: format,
            iscsi,
            iqn,
            lun,
            chap_user,
            chap_secret_file,
            fc_wwnn,
            fc_wwpn,
            fc_parent,
        } => {
            names::check(What::Volume, name)?;
            let mut store = Store::open(sd)?;
            if store.volume(&host, name)?.is_some() {
                return Err(Error::conflict(format!("volume {name:?} already exists")));
            }
            crate::interrupt::catch();
            if let (Some(portal), Some(iqn), Some(lun)) = (iscsi, iqn, lun) {
                let target = Target {
                    portal: portal.clone(),
                    iqn: iqn.clone(),
                    lun: *lun,
                    chap_user: chap_user.clone(),
                };
                return create_iscsi(ctx, &mut store, name, &target, chap_secret_file.as_deref());
            }
            if let (Some(wwnn), Some(wwpn), Some(lun)) = (fc_wwnn, fc_wwpn, lun) {
                let fc = Fc {
                    wwnn: wwnn.clone(),
                    wwpn: wwpn.clone(),
                    parent: fc_parent.clone(),
                    lun: *lun,
                };
                return create_fc(ctx, &mut store, name, &fc);
            }
            let size = size.ok_or_else(|| Error::invalid("--size is required"))?;
            let format = format.unwrap_or(match ctx.host()?.vm_engine() {
                crate::backend::Backend::Xen => crate::cli::VolumeFormat::Raw,
                _ => crate::cli::VolumeFormat::Qcow2,
            });
            let conn = ctx.network_conn()?;
            let rec = make_file_volume(
                &conn,
                &mut store,
                ctx,
                pool.as_deref(),
                name,
                size,
                format.as_str(),
                None,
            )?;
            ctx.say(&format!(
                "created volume {name}: {} {}, in pool {} ({})",
                Size(size),
                format.as_str(),
                rec.pool,
                rec.path
            ));
            Ok(())
        }
        VolumeCommand::List => {
            let store = Store::open(sd)?;
            let vols = store.volumes(&host)?;
            let conn = if vols.is_empty() {
                None
            } else {
                Some(ctx.network_conn()?)
            };
            let rows: Vec<Row> = vols
                .into_iter()
                .map(|v| Row {
                    allocation_bytes: conn.as_ref().and_then(|c| volume::allocation(c, &v.path)),
                    volume: v,
                })
                .collect();
            output::emit(ctx.global.format, &rows, || {
                let mut t = Table::new(["VOLUME", "POOL", "FORMAT", "SIZE", "USED", "ATTACHED TO"]);
                for r in &rows {
                    let v = &r.volume;
                    t.row([
                        v.name.clone(),
                        v.pool.clone(),
                        v.format.clone(),
                        Size(v.capacity_bytes).to_string(),
                        r.allocation_bytes
                            .map_or("-".into(), |a| Size(a).to_string()),
                        holders(v),
                    ]);
                }
                t
            })
        }
        VolumeCommand::Info { volume: name } => {
            let store = Store::open(sd)?;
            let v = record(&store, &host, name)?;
            let row = Row {
                allocation_bytes: volume::allocation(&ctx.network_conn()?, &v.path),
                volume: v,
            };
            output::emit(ctx.global.format, &row, || {
                let v = &row.volume;
                let mut t = Table::new(["", ""]);
                t.row(["name".into(), v.name.clone()]);
                t.row(["pool".into(), v.pool.clone()]);
                t.row(["path".into(), v.path.clone()]);
                t.row(["format".into(), v.format.clone()]);
                t.row(["size".into(), Size(v.capacity_bytes).to_string()]);
                t.row([
                    "used".into(),
                    row.allocation_bytes
                        .map_or("-".into(), |a| Size(a).to_string()),
                ]);
                t.row(["created".into(), v.created_at.clone()]);
                if let Some(i) = &v.iscsi {
                    t.row([
                        "iSCSI".into(),
                        format!("{} at {}, LUN {}", i.iqn, i.portal, i.lun),
                    ]);
                    t.row([
                        "CHAP".into(),
                        i.chap_user
                            .as_ref()
                            .map_or("no".into(), |u| format!("yes (user {u})")),
                    ]);
                }
                t.row(["attached to".into(), holders(v)]);
                t
            })
        }
        VolumeCommand::Delete { volume: name } => {
            let mut store = Store::open(sd)?;
            let v = record(&store, &host, name)?;
            if !v.attachments.is_empty() {
                return Err(Error::conflict(format!(
                    "volume {name:?} is attached to {}; detach it first",
                    holders(&v)
                )));
            }
            if v.lun().is_some() {
                // A LUN (iSCSI, FC) and its data are the target's: only
                // creature's way to it (pool, vHBA, secret) goes.
                volume::forget(&ctx.network_conn()?, &v.pool)?;
                store.remove_volume(&host, name)?;
                ctx.say(&format!(
                    "deleted volume {name}: its libvirt pool (and CHAP secret); the LUN's data stays on the target"
                ));
                return Ok(());
            }
            confirm(ctx, &format!("delete volume {name} and its data?"))?;
            volume::delete(&ctx.network_conn()?, &v.path)?;
            store.remove_volume(&host, name)?;
            ctx.say(&format!("deleted volume {name}"));
            Ok(())
        }
        VolumeCommand::Attach { .. }
        | VolumeCommand::Detach { .. }
        | VolumeCommand::Swap { .. } => Err(Error::other(
            "internal error: a machine's volume verb reached the host's",
        )),
    }
}

/// A new file volume and its record (`made_for`: the machine whose delete
/// removes it). From file to record it holds `volumes.lock`, so `repair`
/// leaves the pool alone; a record that cannot be written takes the file
/// with it.
#[allow(clippy::too_many_arguments)]
fn make_file_volume(
    conn: &virt::connect::Connect,
    store: &mut Store,
    ctx: &Ctx,
    pool: Option<&str>,
    name: &str,
    size: u64,
    format: &str,
    made_for: Option<&str>,
) -> Result<VolumeRecord> {
    let sd = &ctx.global.state_dir;
    let _creating = crate::statedir::lock_file(&crate::statedir::volumes_lock(sd))?;
    let (pool, path) = volume::create(conn, sd, pool, name, size, format)?;
    let rec = VolumeRecord {
        name: name.to_string(),
        pool,
        path,
        format: format.to_string(),
        capacity_bytes: size,
        created_at: crate::time::rfc3339_now(),
        iscsi: None,
        made_for: made_for.map(str::to_string),
        attachments: Vec::new(),
    };
    if let Err(e) = crate::undo::fail_point("volume-created")
        .and_then(|_| store.add_volume(ctx.host_name(), &rec))
    {
        let _ = volume::delete(conn, &rec.path);
        return Err(e);
    }
    Ok(rec)
}

/// The device a volume takes on `machine`: the one asked for (a valid name
/// no disk of it has: exit 2, exit 5), else the next free vdX (exit 8).
fn choose_target(
    backend: crate::backend::Backend,
    machine: &str,
    asked: Option<&str>,
    used: &[String],
) -> Result<String> {
    // A Xen domain's disks are all xvdX (blkfront): other buses are QEMU's.
    let xen = backend == crate::backend::Backend::Xen;
    match asked {
        Some(t) if volume_xml::bus_of(t).is_none() => Err(Error::invalid(format!(
            "invalid --target {t:?}: a device name such as vdb (virtio), sdb (scsi) or xvdb (xen)"
        ))),
        Some(t) if xen && volume_xml::bus_of(t) != Some("xen") => Err(Error::invalid(format!(
            "invalid --target {t:?}: a Xen machine's disks are xvdX (xvdb, xvdc, ...)"
        ))),
        Some(t) if used.iter().any(|u| u == t) => Err(Error::conflict(format!(
            "machine {machine:?} has a disk {t} already"
        ))),
        Some(t) => Ok(t.to_string()),
        None => {
            // The backend's own disk names (vdX, xvdX), as a create gives them.
            let (_, first) = crate::backend::libvirt::domain_xml::disk_target(backend, 0);
            let prefix = first.trim_end_matches('a');
            volume_xml::next_target(prefix, used).ok_or_else(|| {
                Error::new(
                    crate::error::Kind::Exhausted,
                    format!("machine {machine:?} has no free {prefix}X device name left"),
                )
            })
        }
    }
}

/// A Xen domain's disks are raw files read by blkback in dom0: no qcow2, no
/// LUN (libvirt's libxl driver takes neither as a volume).
fn xen_can_take(backend: crate::backend::Backend, v: &VolumeRecord) -> Result<()> {
    if backend != crate::backend::Backend::Xen {
        return Ok(());
    }
    // A LUN (iSCSI, FC) is a block device of dom0's kernel (its pool on
    // the Xen host says so); any other volume must be a raw file.
    if v.lun().is_none() && v.format != "raw" {
        return Err(Error::invalid(format!(
            "volume {:?} is {}: xen disks are raw files (`creature volume create ... \
             --disk-format raw`)",
            v.name, v.format
        )));
    }
    Ok(())
}

/// The CHAP secret from its file: refused when anyone may read the file,
/// one trailing newline dropped.
fn read_secret(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::not_found(format!("cannot read {}", path.display())).caused_by(e))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Err(Error::invalid(format!(
            "{} is readable by everyone: a CHAP secret's file must not be (chmod 600)",
            path.display()
        )));
    }
    let mut s = std::fs::read(path)
        .map_err(|e| Error::not_found(format!("cannot read {}", path.display())).caused_by(e))?;
    if s.last() == Some(&b'\n') {
        s.pop();
    }
    if s.is_empty() || s.len() > 255 {
        return Err(Error::invalid(format!(
            "{} must hold a CHAP secret of 1 to 255 bytes",
            path.display()
        )));
    }
    Ok(s)
}

fn create_iscsi(
    ctx: &Ctx,
    store: &mut Store,
    name: &str,
    t: &Target,
    secret_file: Option<&std::path::Path>,
) -> Result<()> {
    if t.host_port().is_none() {
        return Err(Error::invalid(format!(
            "invalid --iscsi {:?}: a portal is HOST or HOST:PORT",
            t.portal
        )));
    }
    if !t.iqn_ok() {
        return Err(Error::invalid(format!(
            "invalid --iqn {:?}: an iSCSI name such as iqn.2026-12.org.example:disk1",
            t.iqn
        )));
    }
    let secret = secret_file.map(read_secret).transpose()?;
    let host = ctx.host_name().to_string();
    let conn = ctx.network_conn()?;
    let reg = iscsi::register(&conn, &ctx.global.state_dir, name, t, secret.as_deref())?;
    let capacity = reg.capacity;
    let iscsi = crate::store::Iscsi {
        portal: t.portal.clone(),
        iqn: t.iqn.clone(),
        lun: t.lun,
        chap_user: t.chap_user.clone(),
    };
    record_lun(&conn, store, &host, name, reg, Some(iscsi))?;
    ctx.say(&format!(
        "created volume {name}: LUN {} of {} at {} ({}, CHAP: {})",
        t.lun,
        t.iqn,
        t.portal,
        Size(capacity),
        if t.chap_user.is_some() { "yes" } else { "no" }
    ));
    Ok(())
}

fn create_fc(ctx: &Ctx, store: &mut Store, name: &str, fc: &Fc) -> Result<()> {
    for (flag, w) in [("--fc-wwnn", &fc.wwnn), ("--fc-wwpn", &fc.wwpn)] {
        if !fc_xml::wwn_ok(w) {
            return Err(Error::invalid(format!(
                "invalid {flag} {w:?}: a world wide name is 16 hex digits"
            )));
        }
    }
    let host = ctx.host()?;
    let conn = if host.is_local() {
        crate::backend::libvirt::fc::require_hba()?;
        ctx.network_conn()?
    } else {
        let c = ctx.network_conn()?;
        crate::backend::libvirt::fc::require_hba_on(&c, host.name())?;
        c
    };
    let reg = crate::backend::libvirt::fc::register(&conn, &ctx.global.state_dir, name, fc)?;
    let capacity = reg.capacity;
    record_lun(&conn, store, ctx.host_name(), name, reg, None)?;
    ctx.say(&format!(
        "created volume {name}: LUN {} through the vHBA {} ({})",
        fc.lun,
        fc.wwpn,
        Size(capacity)
    ));
    Ok(())
}

/// The record of a LUN volume just registered; its pool (and secret) go
/// again when the record cannot be written.
fn record_lun(
    conn: &virt::connect::Connect,
    store: &mut Store,
    host: &str,
    name: &str,
    reg: volume::Registered,
    iscsi_target: Option<crate::store::Iscsi>,
) -> Result<()> {
    let rec = VolumeRecord {
        name: name.to_string(),
        pool: reg.pool.clone(),
        path: reg.path,
        format: "raw".into(),
        capacity_bytes: reg.capacity,
        created_at: crate::time::rfc3339_now(),
        iscsi: iscsi_target,
        made_for: None,
        attachments: Vec::new(),
    };
    store.add_volume(host, &rec).inspect_err(|_| {
        let _ = volume::forget(conn, &reg.pool);
    })
}

/// A create's `[[volume]]` tables: each made (`<machine>-vol<N>`, removed
/// with the machine unless `keep`) or an existing one, recorded and
/// attached to the new, stopped machine. Undo removes what was made; the
/// attachments go with the machine's record and definition.
pub fn attach_template_volumes(
    ctx: &Ctx,
    store: &mut Store,
    drv: &dyn Driver,
    name: &str,
    vols: &[crate::template::schema::Volume],
    undo: &mut crate::undo::Undo,
) -> Result<()> {
    if vols.is_empty() {
        return Ok(());
    }
    let h = ctx.host_name().to_string();
    let sd = ctx.global.state_dir.clone();
    let uri = ctx.host()?.network_uri()?;
    let conn = ctx.network_conn()?;
    // A container mounts each volume's filesystem at its path as it starts.
    let container = drv.backend() == crate::backend::Backend::Lxc;
    let mut used = if container {
        Vec::new()
    } else {
        drv.used_targets(name)?
    };
    for (i, v) in vols.iter().enumerate() {
        let rec = match &v.name {
            Some(n) => {
                let r = record(store, &h, n)?;
                if container && (r.format != "raw" || r.lun().is_some()) {
                    return Err(Error::invalid(format!(
                        "template volume.{i}: volume {n:?} is not a raw file volume; a container mounts a raw volume's filesystem"
                    )));
                }
                xen_can_take(drv.backend(), &r)
                    .map_err(|e| Error::invalid(format!("template volume.{i}: {}", e.message())))?;
                r
            }
            None => {
                let vname = format!("{name}-vol{i}");
                let format = match v.format {
                    Some(crate::template::schema::DiskFormat::Raw) => "raw",
                    _ if container || drv.backend() == crate::backend::Backend::Xen => "raw",
                    _ => "qcow2",
                };
                let size = v.size.map(|s| s.0).unwrap_or(0);
                let made_for = (v.keep != Some(true)).then_some(name);
                let rec =
                    make_file_volume(&conn, store, ctx, None, &vname, size, format, made_for)?;
                {
                    let (uri, sd, h, vname, path) = (
                        uri.clone(),
                        sd.clone(),
                        h.clone(),
                        vname.clone(),
                        rec.path.clone(),
                    );
                    undo.push(format!("delete volume {vname}"), move || {
                        let c = libvirt::open(&uri, Duration::from_secs(30))?;
                        volume::delete(&c, &path)?;
                        Store::open(&sd)?.remove_volume(&h, &vname)
                    });
                }
                if container {
                    crate::backend::lxc::volumes::make_filesystem(&rec.path, &vname)?;
                }
                rec
            }
        };
        if container {
            let path = v.path.clone().unwrap_or_default();
            store.attach_volume(
                &h,
                &rec.name,
                &Attachment {
                    machine: name.to_string(),
                    target: path,
                    readonly: v.readonly == Some(true),
                    shareable: false,
                },
            )?;
            continue;
        }
        let target =
            choose_target(drv.backend(), name, v.target.as_deref(), &used).map_err(|e| match e
                .kind()
            {
                // The template asked for a taken device: the template's fault.
                crate::error::Kind::Conflict => {
                    Error::invalid(format!("template volume.{i}: {}", e.message()))
                }
                _ => e,
            })?;
        used.push(target.clone());
        store.attach_volume(
            &h,
            &rec.name,
            &Attachment {
                machine: name.to_string(),
                target: target.clone(),
                readonly: v.readonly == Some(true),
                shareable: false,
            },
        )?;
        drv.attach_volume(
            name,
            &disk_of(&rec, target, v.readonly == Some(true), false),
        )?;
    }
    Ok(())
}

/// The disk of a recorded volume, at `target`: a file, or a pool's LUN
/// (`pool/volume`).
fn disk_of(v: &VolumeRecord, target: String, readonly: bool, shareable: bool) -> VolumeDisk {
    VolumeDisk {
        path: v.path.clone(),
        pool_volume: v.lun().map(|(p, vol)| (p.to_string(), vol.to_string())),
        block: false,
        format: v.format.clone(),
        target,
        readonly,
        shareable,
    }
}

/// attach, detach (and swap) on one machine the gate let through.
pub fn on_machine(
    ctx: &Ctx,
    host: &Host,
    drv: &dyn Driver,
    rec: &MachineRecord,
    cmd: &VolumeCommand,
) -> Result<()> {
    let h = host.name();
    let mut store = Store::open(&ctx.global.state_dir)?;
    match cmd {
        VolumeCommand::Attach {
            volume: name,
            target,
            readonly,
            shareable,
            ..
        } => {
            let v = record(&store, h, name)?;
            xen_can_take(drv.backend(), &v)?;
            if *shareable && v.format != "raw" {
                return Err(Error::invalid(format!(
                    "volume {name:?} is {}: only raw volumes can be shared between machines",
                    v.format
                )));
            }
            if v.attachments.iter().any(|a| a.machine == rec.name) {
                return Err(Error::conflict(format!(
                    "volume {name:?} is attached to {} already",
                    rec.name
                )));
            }
            let shared = *shareable && v.attachments.iter().all(|a| a.shareable);
            if !(v.attachments.is_empty() || shared) {
                return Err(Error::conflict(format!(
                    "volume {name:?} is attached to {}; detach it there first, or attach it \
                     --shareable everywhere (raw volumes only)",
                    holders(&v)
                )));
            }
            let used = drv.used_targets(&rec.name)?;
            let target = choose_target(drv.backend(), &rec.name, target.as_deref(), &used)?;
            let live = drv.state(&rec.name)?.is_active();
            let disk = disk_of(&v, target.clone(), *readonly, *shareable);
            // Recorded first: a second attach racing this one is refused
            // there, before either touches a machine.
            store.attach_volume(
                h,
                name,
                &Attachment {
                    machine: rec.name.clone(),
                    target: target.clone(),
                    readonly: *readonly,
                    shareable: *shareable,
                },
            )?;
            if let Err(e) = crate::undo::fail_point("volume-recorded")
                .and_then(|_| drv.attach_volume(&rec.name, &disk))
            {
                store.detach_volume(h, name, &rec.name)?;
                // A LUN that cannot be reached is the target's state, not ours.
                return Err(match disk.pool_volume {
                    Some(_) if e.kind() == crate::error::Kind::Other => Error::new(
                        crate::error::Kind::Unavailable,
                        format!(
                            "cannot reach the LUN of volume {name:?} (is its target up?): {}",
                            e.message()
                        ),
                    ),
                    _ => e,
                });
            }
            ctx.say(&format!(
                "attached volume {name} to {} as {target} ({})",
                rec.name,
                if live {
                    "live and persistent"
                } else {
                    "persistent; the guest sees it from its next start"
                }
            ));
            Ok(())
        }
        VolumeCommand::Detach { volume: name, .. } => {
            let v = record(&store, h, name)?;
            if !v.attachments.iter().any(|a| a.machine == rec.name) {
                return Err(Error::conflict(format!(
                    "volume {name:?} is not attached to {} (attached to: {})",
                    rec.name,
                    holders(&v)
                )));
            }
            let target = drv.detach_volume(&rec.name, &v.path)?;
            store.detach_volume(h, name, &rec.name)?;
            ctx.say(&format!(
                "detached volume {name} ({target}) from {}",
                rec.name
            ));
            Ok(())
        }
        VolumeCommand::Swap { old, new, .. } => {
            let o = record(&store, h, old)?;
            let n = record(&store, h, new)?;
            xen_can_take(drv.backend(), &n)?;
            if o.lun().is_some() || n.lun().is_some() {
                return Err(Error::conflict(
                    "swap copies between volumes of file pools; a LUN (iSCSI, FC) cannot be swapped yet",
                ));
            }
            if !o.attachments.iter().any(|a| a.machine == rec.name) {
                return Err(Error::conflict(format!(
                    "volume {old:?} is not attached to {} (attached to: {})",
                    rec.name,
                    holders(&o)
                )));
            }
            if !n.attachments.is_empty() {
                return Err(Error::conflict(format!(
                    "volume {new:?} is attached to {}; a swap needs a free volume",
                    holders(&n)
                )));
            }
            if n.capacity_bytes != o.capacity_bytes {
                return Err(Error::invalid(format!(
                    "volume {new:?} is {} and {old:?} is {}: a swap copies block for block, \
                     so both must be the same size",
                    Size(n.capacity_bytes),
                    Size(o.capacity_bytes)
                )));
            }
            drv.swap_volume(&rec.name, &o.path, &n.path, &n.format, ctx.global.quiet)?;
            let target = o
                .attachments
                .iter()
                .find(|a| a.machine == rec.name)
                .map(|a| a.target.clone())
                .unwrap_or_default();
            store.swap_volume(h, &rec.name, old, new)?;
            ctx.say(&format!(
                "swapped volume {old} for {new} on {} ({target}): its data copied, {old} detached",
                rec.name
            ));
            Ok(())
        }
        other => Err(Error::other(format!(
            "internal error: {other:?} is not a verb on a machine"
        ))),
    }
}
