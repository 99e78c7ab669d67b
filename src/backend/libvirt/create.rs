//! Creating a kvm, qemu or xen machine: disk overlays from the image cache,
//! then the domain. Every step registers its undo, so a failure or Ctrl-C
//! leaves nothing behind.

use std::path::Path;

use crate::backend::libvirt::domain_xml::{self, DiskSpec, DomainSpec, Meta};
use crate::backend::libvirt::machine::LibvirtDriver;
use crate::backend::libvirt::{map_error, storage};
use crate::backend::Backend;
use crate::backend::CreateJob;
use crate::error::{Error, Result};
use crate::image::source::Located;
use crate::interrupt;
use crate::size::Size;
use crate::store::Store;
use crate::template::schema::{Disk, DiskBus, DiskFormat, Firmware, NicModel, Source};
use crate::template::Resolved;
use crate::undo::{fail_point, Undo};

fn locate(
    store: &mut Store,
    state_dir: &Path,
    r: &Resolved,
    src: &Source,
    quiet: bool,
) -> Result<Located> {
    crate::image::source::locate(store, state_dir, &r.name, src, quiet).map_err(|e| {
        match (&src.url, &r.template.alternative, e.kind()) {
            (Some(url), Some(alt), crate::error::Kind::Unavailable) => {
                // One line a sysadmin can act on: what failed, why, what instead.
                let why = e.causes().first().map_or("", |c| c.rsplit(": ").next().unwrap_or(c));
                Error::unavailable(format!(
                    "cannot download {url} ({why}); with no route to it, template {alt} builds the same system on this host: `creature create NAME -t {alt}` (docs/images.md)"
                ))
            }
            _ => e,
        }
    })
}

/// Where the machine's host reads a file of this host: the file itself
/// here, its shipped copy on another host.
pub(crate) fn there(drv: &LibvirtDriver, local: &Path, quiet: bool) -> Result<std::path::PathBuf> {
    if drv.remote {
        crate::backend::libvirt::ship::ship_file(&drv.conn, &drv.state_dir, local, quiet)
    } else {
        Ok(local.to_path_buf())
    }
}

/// The installer image, checked before anything is made.
fn installer(
    store: &mut Store,
    drv: &LibvirtDriver,
    r: &Resolved,
    src: &Source,
    quiet: bool,
) -> Result<Located> {
    let l = locate(store, &drv.state_dir, r, src, quiet)?;
    let label = match (&src.image, &src.path) {
        (Some(i), _) => format!("image {i:?}"),
        (_, Some(p)) => p.clone(),
        _ => "the downloaded installer".into(),
    };
    crate::image::format::check_iso9660(&l.path, &label)?;
    Ok(l)
}

/// Make the machine's disks and define its domain.
pub fn create(
    drv: &LibvirtDriver,
    store: &mut Store,
    job: &CreateJob<'_>,
    undo: &mut Undo,
) -> Result<()> {
    let (host, name, r, quiet) = (job.host, job.name, job.resolved, job.quiet);
    if r.backend == Backend::Lxc {
        return Err(Error::other(
            "internal error: an lxc machine reached the libvirt driver",
        ));
    }
    let t = &r.template;
    let mut images = Vec::new();
    let boot = t.boot.clone().unwrap_or(crate::template::schema::Boot {
        kernel: None,
        initrd: None,
        cmdline: None,
        firmware: None,
    });
    let mut boot_file = |src: &Option<Source>| -> Result<Option<String>> {
        let Some(s) = src else { return Ok(None) };
        let l = locate(store, &drv.state_dir, r, s, quiet)?;
        images.extend(l.image.clone());
        Ok(Some(there(drv, &l.path, quiet)?.display().to_string()))
    };
    let kernel = boot_file(&boot.kernel)?;
    let initrd = boot_file(&boot.initrd)?;
    let iso = t
        .iso
        .as_ref()
        .map(|src| installer(store, drv, r, src, quiet))
        .transpose()?;
    images.extend(iso.as_ref().and_then(|l| l.image.clone()));
    let iso_path = iso
        .as_ref()
        .map(|l| there(drv, &l.path, quiet))
        .transpose()?;
    interrupt::check(crate::undo::CREATE_INTERRUPTED)?;

    let pool_name = storage::pool_name(&drv.state_dir);
    let lv_pool = storage::ensure_pool(
        &drv.conn,
        &pool_name,
        &crate::statedir::subdir(&drv.state_dir, "disks", 0o711)?,
        &drv.state_dir.join("pool.lock"),
    )?;
    let mut pool = Pool {
        room: Room {
            available: lv_pool
                .info()
                .map_err(|e| map_error(format!("cannot read storage pool {pool_name}"), e))?
                .available,
            promised: 0,
        },
        pool: lv_pool,
        name: pool_name,
        quiet,
    };
    let mut disks = Vec::new();
    let mut volumes = Vec::new();
    for (i, d) in t.disks.iter().enumerate() {
        interrupt::check(crate::undo::CREATE_INTERRUPTED)?;
        // Xen's dom0 serves disks through blkback, which reads raw files
        // only (qcow2 would need a QEMU in dom0): a xen disk is a raw copy.
        let raw = r.backend == Backend::Xen;
        let vol = format!("{name}-disk{i}.{}", if raw { "raw" } else { "qcow2" });
        let mut from = d
            .source
            .as_ref()
            .map(|src| locate(store, &drv.state_dir, r, src, quiet))
            .transpose()?;
        images.extend(from.as_ref().and_then(|l| l.image.clone()));
        let kept = job
            .reuse_disks
            .then(|| pool.pool.lookup_storage_vol_by_name(&vol).ok())
            .flatten();
        let path = match kept {
            Some(v) => v
                .path()
                .map_err(|e| map_error(format!("cannot read the path of {vol}"), e))?,
            None => volume(drv, &mut pool, &vol, i, d, from.as_mut(), undo)?,
        };
        let (default_bus, dev) = domain_xml::disk_target(r.backend, i);
        let bus = match d.bus {
            Some(DiskBus::Virtio) => "virtio",
            Some(DiskBus::Sata) => "sata",
            Some(DiskBus::Scsi) => "scsi",
            Some(DiskBus::Xen) => "xen",
            None => default_bus,
        };
        let format = match (&d.source, d.format) {
            _ if raw => "raw",
            (None, Some(DiskFormat::Raw)) => "raw",
            _ => "qcow2",
        };
        disks.push(DiskSpec {
            path,
            format: format.into(),
            bus,
            dev,
            iotune: d.limits(),
            readonly: false,
            cdrom: false,
        });
        volumes.push(vol);
    }
    if job.seed {
        // Read-only, after the machine's own disks: the guest's root disk
        // keeps its name, and cloud-init finds the drive by its label.
        let (bus, dev) = domain_xml::disk_target(r.backend, disks.len());
        // On another host the drive is a volume of the disk pool, shipped
        // there when it is written (`write_seed`).
        let seed_path = if drv.remote {
            crate::statedir::subdir(&drv.state_dir, "disks", 0o711)?
                .join(crate::backend::libvirt::ship::seed_volume(name))
        } else {
            crate::seed::store::iso(&drv.state_dir, name)
        };
        disks.push(DiskSpec {
            path: seed_path.display().to_string(),
            format: "raw".into(),
            bus,
            dev,
            iotune: Default::default(),
            readonly: true,
            cdrom: false,
        });
    }
    if let Some(iso) = iso_path {
        // SATA: virtio has no cdrom, and every firmware boots from AHCI.
        disks.push(DiskSpec {
            path: iso.display().to_string(),
            format: "raw".into(),
            bus: "sata",
            dev: "sda".into(),
            iotune: Default::default(),
            readonly: true,
            cdrom: true,
        });
    }
    images.sort();
    images.dedup();
    for img in &images {
        store.use_image(host, name, img)?;
    }
    interrupt::check(crate::undo::CREATE_INTERRUPTED)?;

    // Made and checked (no symlink) before QEMU writes the serial log there;
    // on another host, made there as the directory of a pool.
    crate::statedir::subdir(&drv.state_dir, "logs", 0o700)?;
    if drv.remote {
        crate::backend::libvirt::ship::logs_pool(&drv.conn, &drv.state_dir)?;
    }
    let spec = DomainSpec {
        name: name.to_string(),
        backend: r.backend,
        cpus: r.cpus,
        memory_bytes: r.memory.0,
        max_cpus: t.max_cpus.unwrap_or(r.cpus),
        max_memory_bytes: t.max_memory.map_or(r.memory.0, |m| m.0),
        disks,
        kernel,
        initrd,
        cmdline: boot.cmdline.clone(),
        firmware: boot.firmware.unwrap_or(Firmware::Bios),
        nics: job
            .nics
            .iter()
            .zip(t.nics.iter())
            .map(|(n, want)| domain_xml::NicSpec {
                network: crate::net::libvirt_name(&n.network),
                mac: n.mac.clone(),
                model: nic_model(want.model, r.backend),
                // Defined by the create before this (backend::firewall).
                filter: (!crate::backend::firewall::bound(r.backend)).then(|| {
                    domain_xml::NicFilter {
                        name: crate::secgroup::filter::nic_filter_name(
                            &pool.name,
                            name,
                            n.index as usize,
                        ),
                        ip: n.ip.clone(),
                    }
                }),
                ifname: crate::backend::firewall::bound(r.backend).then(|| {
                    crate::secgroup::filter::veth_name(&pool.name, name, n.index as usize)
                }),
            })
            .collect(),
        serial_log: LibvirtDriver::serial_log_path(&drv.state_dir, name)
            .display()
            .to_string(),
        guest_agent: t.guest_agent.unwrap_or(false),
        display: job.display.map(domain_xml::GraphicsSpec::of),
        meta: Meta {
            template: r.name.clone(),
            created: crate::time::rfc3339_now(),
            state_dir: drv.state_dir.display().to_string(),
            volumes,
            pool: pool.name,
        },
    };
    define(drv, &spec, undo)?;
    interrupt::check(crate::undo::CREATE_INTERRUPTED)?;
    fail_point("ready")?;
    Ok(())
}

struct Pool {
    name: String,
    /// No progress bars (shipping images to another host).
    quiet: bool,
    pool: virt::storage_pool::StoragePool,
    room: Room,
}

/// The pool's free space, and what this create's disks may grow to.
struct Room {
    available: u64,
    promised: u64,
}

impl Room {
    /// Disk `i` of `cap` bytes fits, or the template says it may overcommit.
    fn take(&mut self, i: usize, cap: u64, overcommit: bool) -> Result<()> {
        self.promised = self.promised.saturating_add(cap);
        if self.promised > self.available && !overcommit {
            return Err(Error::invalid(format!(
                "disk.{i}.size {} does not fit in the pool's free space ({}); free space, make it smaller, or set disk.{i}.overcommit = true for a sparse disk that may fill the pool later",
                Size(cap).human(),
                Size(self.available.saturating_sub(self.promised - cap)).human()
            )));
        }
        Ok(())
    }
}

/// Disk `i` as a volume of the pool: an overlay of its source image, or
/// empty. Returns the volume's path; its deletion is registered in `undo`.
fn volume(
    drv: &LibvirtDriver,
    pool: &mut Pool,
    vol: &str,
    i: usize,
    d: &Disk,
    from: Option<&mut Located>,
    undo: &mut Undo,
) -> Result<String> {
    if drv.backend == Backend::Xen {
        return raw_volume(drv, pool, vol, i, d, from, undo);
    }
    let xml = match from {
        Some(l) => {
            let (format, virtual_size) = l.disk_format()?;
            let cap = d.size.map(|s| s.0).unwrap_or(virtual_size);
            if cap < virtual_size {
                return Err(Error::invalid(format!(
                    "disk.{i}.size {} is below the image's own size {}",
                    Size(cap),
                    Size(virtual_size).human()
                )));
            }
            pool.room.take(i, cap, d.overcommit == Some(true))?;
            let backing = there(drv, &l.path, pool.quiet)?;
            storage::overlay_xml(vol, cap, &backing, &format)
        }
        None => {
            let fmt = match d.format.unwrap_or(DiskFormat::Qcow2) {
                DiskFormat::Qcow2 => "qcow2",
                DiskFormat::Raw => "raw",
            };
            let cap = d.size.expect("validated: empty disks have a size").0;
            pool.room.take(i, cap, d.overcommit == Some(true))?;
            storage::empty_xml(vol, cap, fmt)
        }
    };
    fail_point("overlay")?;
    let v = storage::create_volume(&pool.pool, &xml, vol)?;
    made(drv, pool, vol, &v, undo)
}

/// A volume just made: its deletion registered in `undo`, its path.
fn made(
    drv: &LibvirtDriver,
    pool: &Pool,
    vol: &str,
    v: &virt::storage_vol::StorageVol,
    undo: &mut Undo,
) -> Result<String> {
    let registered = {
        let conn = drv.conn.clone();
        let (pool_name, vol) = (pool.name.clone(), vol.to_string());
        move || -> Result<()> {
            let p = conn
                .lookup_storage_pool_by_name(&pool_name)
                .map_err(|e| map_error("cannot find the pool", e))?;
            storage::delete_volume(&p, &vol).map(|_| ())
        }
    };
    undo.push(format!("delete volume {vol}"), registered);
    fail_point("disk")?;
    v.path()
        .map_err(|e| map_error(format!("cannot read the path of {vol}"), e))
}

/// A xen disk: raw, empty or a whole copy of its image that libvirt makes
/// on the image's host (qemu-img there converts a qcow2 image).
fn raw_volume(
    drv: &LibvirtDriver,
    pool: &mut Pool,
    vol: &str,
    i: usize,
    d: &Disk,
    from: Option<&mut Located>,
    undo: &mut Undo,
) -> Result<String> {
    if d.format == Some(DiskFormat::Qcow2) {
        return Err(Error::invalid(format!(
            "disk.{i}.format qcow2: xen disks are raw (Xen's blkback reads raw files only); remove the format or set it to raw"
        )));
    }
    let Some(l) = from else {
        let cap = d.size.expect("validated: empty disks have a size").0;
        pool.room.take(i, cap, d.overcommit == Some(true))?;
        fail_point("overlay")?;
        let v = storage::create_volume(&pool.pool, &storage::empty_xml(vol, cap, "raw"), vol)?;
        return made(drv, pool, vol, &v, undo);
    };
    let (format, virtual_size) = l.disk_format()?;
    let cap = d.size.map(|s| s.0).unwrap_or(virtual_size);
    if cap < virtual_size {
        return Err(Error::invalid(format!(
            "disk.{i}.size {} is below the image's own size {}",
            Size(cap),
            Size(virtual_size).human()
        )));
    }
    // A full copy: it takes its whole size at once.
    pool.room.take(i, cap, false)?;
    let path = there(drv, &l.path, pool.quiet)?;
    let images = crate::backend::libvirt::ship::images_pool(&drv.conn, &drv.state_dir)?;
    let _ = images.refresh(0);
    let src = drv
        .conn
        .lookup_storage_vol_by_path(&path.display().to_string())
        .map_err(|e| {
            map_error(
                format!("cannot find {} in the image pool", path.display()),
                e,
            )
        })?;
    // libvirt probes a pool's files for their format: a raw image that
    // looks like qcow2 must not be converted as one (its "backing file"
    // could be any file of that host).
    let seen = crate::backend::libvirt::migrate_xml::volume_facts(
        &src.xml_desc(0)
            .map_err(|e| map_error(format!("cannot read volume {}", path.display()), e))?,
    )?;
    if seen.format != format || seen.backing.is_some() {
        return Err(Error::corrupt(format!(
            "libvirt reads {} as {} but creature knows it as {format}; remove the image and import it again",
            path.display(),
            seen.format
        )));
    }
    fail_point("overlay")?;
    if !pool.quiet {
        eprintln!("copying {} into the raw disk {vol}", path.display());
    }
    let v = virt::storage_vol::StorageVol::create_xml_from(
        &pool.pool,
        &storage::empty_xml(vol, virtual_size, "raw"),
        &src,
        0,
    )
    .map_err(|e| map_error(format!("cannot create volume {vol}"), e))?;
    let p = made(drv, pool, vol, &v, undo)?;
    if cap > virtual_size {
        v.resize(cap, 0)
            .map_err(|e| map_error(format!("cannot grow volume {vol}"), e))?;
    }
    Ok(p)
}

fn nic_model(want: Option<NicModel>, backend: Backend) -> &'static str {
    match (want, backend) {
        (Some(NicModel::E1000), _) => "e1000",
        (Some(NicModel::Rtl8139), _) => "rtl8139",
        (Some(NicModel::Netfront), _) | (None, Backend::Xen) => "netfront",
        _ => "virtio",
    }
}

/// Define the domain; its undefinition is registered in `undo`.
fn define(drv: &LibvirtDriver, spec: &DomainSpec, undo: &mut Undo) -> Result<()> {
    let name = spec.name.clone();
    fail_point("define")?;
    let xml = domain_xml::render(spec);
    crate::trace::text(&format!("domain XML of {name}"), &xml);
    drv.conn
        .define_domain_xml(&xml)
        .map_err(|e| map_error(format!("cannot define domain {name:?}"), e))?;
    let conn = drv.conn.clone();
    let flags = crate::backend::libvirt::machine::undefine_flags(drv.backend);
    undo.push(format!("undefine domain {name}"), move || {
        match conn.lookup_domain_by_name(&name) {
            Ok(d) => {
                let _ = d.destroy();
                d.undefine_flags(flags)
                    .map_err(|e| map_error("cannot undefine", e))
            }
            Err(_) => Ok(()),
        }
    });
    Ok(())
}
