//! Block volumes (#31) in libvirt storage pools, attached to domains (#1,
//! #2) live and persistently. The default pool is creature's own
//! directory pool `<state>/volumes`; any libvirt pool can be named.

use std::path::Path;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::storage_pool::StoragePool;
use virt::sys;

use crate::backend::libvirt::machine::{dom_state, parse_devices, LibvirtDriver};
use crate::backend::libvirt::volume_xml::{self, VolumeDisk};
use crate::backend::libvirt::{map_error, storage};
use crate::backend::Backend;
use crate::error::{Error, Kind, Result};

/// How long a guest has to let go of a disk asked out of it.
const DETACH_LIMIT: Duration = Duration::from_secs(20);

/// creature's own volume pool for a state directory.
pub fn default_pool(state_dir: &Path) -> String {
    format!("{}-volumes", storage::pool_name(state_dir))
}

fn pool(conn: &Connect, state_dir: &Path, name: Option<&str>) -> Result<StoragePool> {
    match name {
        None => storage::ensure_pool(
            conn,
            &default_pool(state_dir),
            &crate::statedir::subdir(state_dir, "volumes", 0o711)?,
            &state_dir.join("pool.lock"),
        ),
        Some(n) => {
            let p = conn.lookup_storage_pool_by_name(n).map_err(|e| {
                Error::new(
                    Kind::NotFound,
                    format!("no libvirt storage pool {n:?} (`virsh pool-list --all`)"),
                )
                .caused_by(e)
            })?;
            let _ = p.refresh(0);
            Ok(p)
        }
    }
}

/// Make an empty volume; (pool, path).
pub fn create(
    conn: &Connect,
    state_dir: &Path,
    pool_name: Option<&str>,
    name: &str,
    size: u64,
    format: &str,
) -> Result<(String, String)> {
    let p = pool(conn, state_dir, pool_name)?;
    let pname = p
        .name()
        .map_err(|e| map_error("cannot read the pool's name", e))?;
    let info = p
        .info()
        .map_err(|e| map_error(format!("cannot read storage pool {pname}"), e))?;
    // qcow2 grows as it is written; raw is allocated sparse: either may fill
    // the pool later, but a volume larger than the room left cannot be whole.
    if size > info.available {
        return Err(Error::new(
            Kind::Exhausted,
            format!(
                "storage pool {pname} has {} free; volume {name:?} needs {}",
                crate::size::Size(info.available),
                crate::size::Size(size)
            ),
        ));
    }
    let file = format!("{name}.{}", if format == "raw" { "img" } else { "qcow2" });
    if p.lookup_storage_vol_by_name(&file).is_ok() {
        return Err(Error::conflict(format!(
            "storage pool {pname} already holds a volume {file} that creature did not record"
        )));
    }
    let v = storage::create_volume(&p, &storage::empty_xml(&file, size, format), &file)?;
    let path = v
        .path()
        .map_err(|e| map_error(format!("cannot read volume {file}"), e))?;
    Ok((pname, path))
}

/// Delete the volume at `path`; already gone is fine.
pub fn delete(conn: &Connect, path: &str) -> Result<()> {
    match conn.lookup_storage_vol_by_path(path) {
        Ok(v) => v
            .delete(0)
            .map_err(|e| map_error(format!("cannot delete volume {path}"), e)),
        Err(_) => Ok(()),
    }
}

/// Bytes the volume takes in its pool now (a file, or a LUN's `pool/volume`).
pub fn allocation(conn: &Connect, path: &str) -> Option<u64> {
    let vol = match path.split_once('/') {
        Some((pool, v)) if !pool.is_empty() => conn
            .lookup_storage_pool_by_name(pool)
            .and_then(|p| p.lookup_storage_vol_by_name(v)),
        _ => conn.lookup_storage_vol_by_path(path),
    };
    vol.and_then(|v| v.info()).ok().map(|i| i.allocation)
}

/// What a registered LUN (iSCSI, FC) is known by.
pub struct Registered {
    pub pool: String,
    /// `pool/volume`, as creature names a pool volume's disk.
    pub path: String,
    pub capacity: u64,
}

/// Stop and undefine a LUN's pool and its CHAP secret, if it has one; the
/// LUN's data is the target's and is never touched.
pub fn forget(conn: &Connect, pool: &str) -> Result<()> {
    if let Ok(p) = conn.lookup_storage_pool_by_name(pool) {
        if p.is_active().unwrap_or(false) {
            p.destroy()
                .map_err(|e| map_error(format!("cannot stop storage pool {pool}"), e))?;
        }
        p.undefine()
            .map_err(|e| map_error(format!("cannot undefine storage pool {pool}"), e))?;
    }
    if let Ok(s) = conn.lookup_secret_by_usage(
        sys::VIR_SECRET_USAGE_TYPE_ISCSI as i32,
        &crate::backend::libvirt::iscsi::secret_usage(pool),
    ) {
        s.undefine()
            .map_err(|e| map_error("cannot undefine the CHAP secret", e))?;
    }
    Ok(())
}

impl LibvirtDriver {
    /// The block device of a LUN in a kernel-initiator pool of this host.
    fn lun_device(&self, pool: &str, vol: &str) -> Result<String> {
        self.conn
            .lookup_storage_pool_by_name(pool)
            .and_then(|p| p.lookup_storage_vol_by_name(vol))
            .and_then(|v| v.path())
            .map_err(|e| map_error(format!("cannot find LUN {vol} of pool {pool}"), e))
    }

    /// Attach live (when running) and persistently; the target it took.
    pub fn attach_volume_of(&self, name: &str, disk: &VolumeDisk) -> Result<String> {
        let d = self.ours(name)?;
        let active = dom_state(&d)?.is_active();
        let lun;
        let disk = match (&disk.pool_volume, self.backend) {
            (Some((pool, vol)), Backend::Xen) => {
                lun = VolumeDisk {
                    path: self.lun_device(pool, vol)?,
                    pool_volume: None,
                    block: true,
                    ..disk.clone()
                };
                &lun
            }
            _ => disk,
        };
        let x = volume_xml::render(disk);
        crate::trace::text(&format!("disk attached to {name}"), &x);
        // One call: libvirt writes the definition only once the live attach
        // has worked, so a refused hotplug changes neither.
        let flags = if active {
            sys::VIR_DOMAIN_AFFECT_LIVE | sys::VIR_DOMAIN_AFFECT_CONFIG
        } else {
            sys::VIR_DOMAIN_AFFECT_CONFIG
        };
        d.attach_device_flags(&x, flags)
            .map_err(|e| map_error(format!("cannot attach {} to {name:?}", disk.path), e))?;
        Ok(disk.target.clone())
    }

    /// Every device name the machine's disks take, live and persistent.
    pub fn used_targets_of(&self, name: &str) -> Result<Vec<String>> {
        let d = self.ours(name)?;
        let mut out = Vec::new();
        for flags in [0, sys::VIR_DOMAIN_XML_INACTIVE] {
            let x = d
                .xml_desc(flags)
                .map_err(|e| map_error(format!("cannot read {name:?}"), e))?;
            out.extend(parse_devices(&x).0.into_iter().map(|d| d.target));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Detach: from the running guest first (it must let go), then from the
    /// definition; a guest that keeps the disk leaves everything as it was.
    pub fn detach_volume_of(&self, name: &str, path: &str) -> Result<String> {
        let d = self.ours(name)?;
        // A xen domU has a LUN as its block device (see attach).
        let device;
        let path = match path.split_once('/') {
            Some((pool, vol)) if self.backend == Backend::Xen && !pool.is_empty() => {
                device = self.lun_device(pool, vol)?;
                device.as_str()
            }
            _ => path,
        };
        let find = |flags: u32| -> Result<Option<String>> {
            let x = d
                .xml_desc(flags)
                .map_err(|e| map_error(format!("cannot read {name:?}"), e))?;
            Ok(parse_devices(&x)
                .0
                .into_iter()
                .find(|disk| disk.path == path)
                .map(|disk| disk.target))
        };
        let persistent = find(sys::VIR_DOMAIN_XML_INACTIVE)?;
        let live = if dom_state(&d)?.is_active() {
            find(0)?
        } else {
            None
        };
        let Some(target) = live.clone().or(persistent.clone()) else {
            return Err(Error::conflict(format!(
                "machine {name:?} has no disk {path}"
            )));
        };
        let x = crate::xml::El::new("disk")
            .attr("type", "file")
            .attr("device", "disk")
            .child(crate::xml::El::new("source").attr("file", path))
            .child(crate::xml::El::new("target").attr("dev", target.clone()))
            .render();
        if live.is_some() {
            d.detach_device_flags(&x, sys::VIR_DOMAIN_AFFECT_LIVE)
                .map_err(|e| map_error(format!("cannot detach {path} from {name:?}"), e))?;
            let start = Instant::now();
            while find(0)?.is_some() {
                if start.elapsed() > DETACH_LIMIT {
                    return Err(Error::new(
                        Kind::Timeout,
                        format!(
                            "machine {name:?} did not let go of {target} within {} s (the guest must \
                             release a hot-unplugged disk); it stays attached",
                            DETACH_LIMIT.as_secs()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        if persistent.is_some() {
            d.detach_device_flags(&x, sys::VIR_DOMAIN_AFFECT_CONFIG)
                .map_err(|e| {
                    map_error(
                        format!("cannot detach {path} from {name:?}'s definition"),
                        e,
                    )
                })?;
        }
        Ok(target)
    }
}

impl LibvirtDriver {
    /// Nova's swap: the disk reading `old` reads `new` from now on, with
    /// everything `old` held copied into it (a block copy and pivot while
    /// the machine runs, qemu-img while it is stopped); the definition follows.
    /// A xen machine's swap is cold only: libxl has no block copy.
    pub fn swap_volume_of(
        &self,
        name: &str,
        old: &str,
        new: &str,
        new_format: &str,
        quiet: bool,
    ) -> Result<String> {
        let d = self.ours(name)?;
        let persistent = d
            .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE)
            .map_err(|e| map_error(format!("cannot read the definition of {name:?}"), e))?;
        let (disks, _) = parse_devices(&persistent);
        let Some(disk) = disks.into_iter().find(|x| x.path == old) else {
            return Err(Error::conflict(format!(
                "machine {name:?} has no disk {old}"
            )));
        };
        let state = dom_state(&d)?;
        if state.is_active() && self.backend == Backend::Xen {
            return Err(Error::conflict(format!(
                "xen machine {name:?} is {}, and libxl cannot copy a disk under a running \
                 domain; stop it to swap the volume",
                state.as_str()
            )));
        }
        if state.is_active() {
            let dest = crate::xml::El::new("disk")
                .attr("type", "file")
                .child(crate::xml::El::new("source").attr("file", new))
                .child(crate::xml::El::new("driver").attr("type", new_format))
                .render();
            crate::backend::libvirt::blockjob::copy(&d, &disk.target, &dest)?;
        } else if self.remote || self.backend == Backend::Xen {
            self.copy_in_daemon(old, &disk.format, new, new_format, quiet)?;
        } else {
            crate::tool::copy_disk(old, &disk.format, new, new_format)?;
        }
        let x = crate::backend::libvirt::snapshot_xml::move_disks(
            &persistent,
            &[(disk.target.clone(), new.to_string())],
            new_format,
        )?;
        self.conn
            .define_domain_xml(&x)
            .map_err(|e| map_error(format!("cannot update the definition of {name:?}"), e))?;
        Ok(disk.target)
    }

    /// A stopped machine's cold copy where the files are the daemon's
    /// (another host, or dom0): raw bytes through libvirt streams. A format
    /// change needs qemu-img where the files are, which libvirt does not run.
    fn copy_in_daemon(
        &self,
        old: &str,
        old_format: &str,
        new: &str,
        new_format: &str,
        quiet: bool,
    ) -> Result<()> {
        if old_format != "raw" || new_format != "raw" {
            return Err(Error::conflict(format!(
                "a stopped machine's volume on another host is copied as raw bytes, and {old} \
                 is {old_format} and {new} {new_format}; start the machine to swap with a block \
                 copy, or swap raw volumes"
            )));
        }
        let vol = |p: &str| {
            self.conn
                .lookup_storage_vol_by_path(p)
                .map_err(|e| map_error(format!("cannot find volume {p}"), e))
        };
        let (from, to) = (vol(old)?, vol(new)?);
        let len = from
            .info()
            .map_err(|e| map_error(format!("cannot read volume {old}"), e))?
            .capacity;
        storage::copy_bytes(
            &self.conn,
            &from,
            &self.conn,
            &to,
            len,
            &format!("volume {old}"),
            "swap interrupted; the machine keeps its old volume",
            quiet,
        )
    }
}
