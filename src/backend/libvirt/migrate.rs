//! Moving a domain to another libvirt host (#7): the destination's storage
//! made ready (disks pre-created in its pool, images and the config drive
//! shipped), then libvirt's own migration job, watched for progress and
//! aborted on Ctrl-C. libvirt keeps the guest running on the source until
//! the destination has it, so a failure at any step leaves it where it was;
//! what this module made on the destination is registered for undo.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::storage_pool::StoragePool;
use virt::sys;

use crate::backend::libvirt::migrate_xml::{self, Files};
use crate::backend::libvirt::{map_error, ship, storage};
use crate::error::{Error, Result};
use crate::interrupt;
use crate::progress::Progress;
use crate::undo::Undo;

/// What the destination got ready.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Paths the destination has elsewhere than the source.
    pub moved: BTreeMap<String, String>,
    /// Disk volumes to copy (the source's names, deleted there afterwards).
    pub copied: Vec<String>,
    /// Both hosts see the disk pool's directory: nothing is copied.
    pub shared: bool,
}

/// Whether the two hosts' disk pools are one directory: a probe volume
/// made on the source appears on the destination.
fn shared_pools(src: &StoragePool, dst: &StoragePool) -> Result<bool> {
    let probe = format!(
        ".probe-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    storage::create_volume(src, &storage::empty_xml(&probe, 0, "raw"), &probe)?;
    let _ = dst.refresh(0);
    let seen = dst.lookup_storage_vol_by_name(&probe).is_ok();
    storage::delete_volume(src, &probe)?;
    let _ = dst.refresh(0);
    Ok(seen)
}

fn delete_on(undo: &mut Undo, conn: &Connect, pool: &StoragePool, vol: &str) {
    let (conn, vol) = (conn.clone(), vol.to_string());
    let pool_name = pool.name().unwrap_or_default();
    undo.push(
        format!("delete volume {vol} on the destination"),
        move || {
            let p = conn
                .lookup_storage_pool_by_name(&pool_name)
                .map_err(|e| map_error("cannot find the pool", e))?;
            storage::delete_volume(&p, &vol).map(|_| ())
        },
    );
}

/// Make the destination ready for `files`: writable disks pre-created (an
/// overlay over the same image, shipped there first), read-only files and
/// boot files shipped, the config drive put into its disk pool, the log
/// directory made. `seed` is this host's copy of the machine's config drive.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    src: &Connect,
    dst: &Connect,
    state_dir: &Path,
    name: &str,
    files: &Files,
    seed: &Path,
    quiet: bool,
    undo: &mut Undo,
) -> Result<Prepared> {
    let src_pool = ship::disks_pool(src, state_dir)?;
    let dst_pool = ship::disks_pool(dst, state_dir)?;
    let mut p = Prepared {
        shared: shared_pools(&src_pool, &dst_pool)?,
        ..Prepared::default()
    };
    ship::logs_pool(dst, state_dir)?;
    let seed_vol = ship::seed_volume(name);
    for d in &files.disks {
        interrupt::check("migration interrupted; the machine stays where it was")?;
        let on_src = src.lookup_storage_vol_by_path(&d.path).ok();
        let is_seed = Path::new(&d.path) == seed
            || on_src.as_ref().and_then(|v| v.name().ok()).as_deref() == Some(&seed_vol);
        if is_seed {
            if !p.shared || Path::new(&d.path) == seed {
                if dst_pool.lookup_storage_vol_by_name(&seed_vol).is_ok() && !p.shared {
                    return Err(exists_there(&seed_vol));
                }
                let to = ship::ship(dst, &dst_pool, &seed_vol, seed, true, true)?;
                if !p.shared {
                    delete_on(undo, dst, &dst_pool, &seed_vol);
                }
                if to != d.path {
                    p.moved.insert(d.path.clone(), to);
                }
            }
            continue;
        }
        if d.readonly {
            let to = ship_undone(dst, state_dir, Path::new(&d.path), quiet, undo)?;
            if to != d.path {
                p.moved.insert(d.path.clone(), to);
            }
            continue;
        }
        let v = on_src.ok_or_else(|| {
            Error::conflict(format!(
                "disk {} of {name} ({}) is not a volume creature made; it cannot be moved",
                d.target, d.path
            ))
        })?;
        let vol = v
            .name()
            .map_err(|e| map_error(format!("cannot read the name of {}", d.path), e))?;
        if p.shared {
            continue;
        }
        if dst_pool.lookup_storage_vol_by_name(&vol).is_ok() {
            return Err(exists_there(&vol));
        }
        let facts = migrate_xml::volume_facts(
            &v.xml_desc(0)
                .map_err(|e| map_error(format!("cannot read volume {vol}"), e))?,
        )?;
        let xml = match &facts.backing {
            Some((backing, format)) => {
                let there = ship_undone(dst, state_dir, Path::new(backing), quiet, undo)?;
                storage::overlay_xml(&vol, facts.capacity, Path::new(&there), format)
            }
            None => storage::empty_xml(&vol, facts.capacity, &facts.format),
        };
        let made = storage::create_volume(&dst_pool, &xml, &vol)?;
        delete_on(undo, dst, &dst_pool, &vol);
        let to = made
            .path()
            .map_err(|e| map_error(format!("cannot read the path of {vol}"), e))?;
        if to != d.path {
            p.moved.insert(d.path.clone(), to);
        }
        p.copied.push(vol);
    }
    for f in [&files.kernel, &files.initrd].into_iter().flatten() {
        let to = ship_undone(dst, state_dir, Path::new(f), quiet, undo)?;
        if &to != f {
            p.moved.insert(f.clone(), to);
        }
    }
    Ok(p)
}

/// Ship a file; a copy made now is removed again if the migration fails.
fn ship_undone(
    dst: &Connect,
    state_dir: &Path,
    local: &Path,
    quiet: bool,
    undo: &mut Undo,
) -> Result<String> {
    let s = ship::ship_file_to(dst, state_dir, local, quiet)?;
    if s.fresh {
        let (conn, pool, vol) = (dst.clone(), s.pool.clone(), s.volume.clone());
        undo.push(
            format!("delete the copy {vol} on the destination"),
            move || ship::unship(&conn, &pool, &vol),
        );
    }
    Ok(s.path)
}

fn exists_there(vol: &str) -> Error {
    Error::conflict(format!(
        "the destination already has a volume {vol} (left by something else); nothing was moved"
    ))
}

/// How the job runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub live: bool,
    pub copy_storage: bool,
    /// Both hosts see the disks: libvirt's check for shared storage is
    /// told so.
    pub shared: bool,
    pub max_downtime_ms: Option<u64>,
    pub bandwidth_mib: Option<u64>,
    /// The destination's URI as the source's libvirtd reaches it
    /// (peer-to-peer); None: creature drives both ends itself.
    pub p2p_uri: Option<String>,
    pub quiet: bool,
}

/// The job's statistics (libvirt's, from the destination when it has them).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub live: bool,
    pub copied_storage: bool,
    /// Wall time of the whole job, as creature saw it.
    pub elapsed_ms: u64,
    /// libvirt's own measure of the job.
    pub job_ms: Option<u64>,
    /// How long the guest was paused at the switch-over.
    pub downtime_ms: Option<u64>,
    pub data_total_bytes: Option<u64>,
    pub data_processed_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
}

/// A job's numbers, read through libvirt's C API: the `virt` crate's
/// `job_stats` builds a Vec from the pointer libvirt returns, which is null
/// when there is no job.
#[derive(Debug, Clone, Copy, Default)]
pub struct Job {
    /// 0: none; libvirt's virDomainJobType otherwise.
    pub kind: i32,
    pub time_elapsed: Option<u64>,
    pub downtime: Option<u64>,
    pub data_total: Option<u64>,
    pub data_processed: Option<u64>,
    pub mem_total: Option<u64>,
    pub disk_total: Option<u64>,
}

pub fn job(d: &Domain, flags: u32) -> Option<Job> {
    let mut kind: std::os::raw::c_int = 0;
    let mut params: sys::virTypedParameterPtr = std::ptr::null_mut();
    let mut n: std::os::raw::c_int = 0;
    // SAFETY: `d` is alive; libvirt allocates `params` (or leaves it null)
    // and it is freed below with libvirt's own function.
    let rc =
        unsafe { sys::virDomainGetJobStats(d.as_ptr(), &mut kind, &mut params, &mut n, flags) };
    if rc < 0 {
        return None;
    }
    let get = |key: &std::ffi::CStr| -> Option<u64> {
        if params.is_null() {
            return None;
        }
        let mut v: std::os::raw::c_ulonglong = 0;
        // SAFETY: `params` holds `n` entries libvirt filled; `key` is a C string.
        let found = unsafe { sys::virTypedParamsGetULLong(params, n, key.as_ptr(), &mut v) };
        (found == 1).then_some(v)
    };
    let j = Job {
        kind,
        time_elapsed: get(sys::VIR_DOMAIN_JOB_TIME_ELAPSED),
        downtime: get(sys::VIR_DOMAIN_JOB_DOWNTIME),
        data_total: get(sys::VIR_DOMAIN_JOB_DATA_TOTAL),
        data_processed: get(sys::VIR_DOMAIN_JOB_DATA_PROCESSED),
        mem_total: get(sys::VIR_DOMAIN_JOB_MEMORY_TOTAL),
        disk_total: get(sys::VIR_DOMAIN_JOB_DISK_TOTAL),
    };
    if !params.is_null() {
        // SAFETY: allocated by libvirt above, freed once.
        unsafe { sys::virTypedParamsFree(params, n) };
    }
    Some(j)
}

fn abort_job(d: &Domain) {
    // SAFETY: `d` is alive for the call; virDomainAbortJob only reads it.
    unsafe {
        sys::virDomainAbortJob(d.as_ptr());
    }
}

/// Run the migration; Ctrl-C aborts it and the guest stays on the source.
pub fn run(
    dom: &Domain,
    dst: &Connect,
    dest_xml: Option<String>,
    persist_xml: String,
    opts: &Options,
) -> Result<Stats> {
    let name = dom.name().unwrap_or_default();
    let mut flags = sys::VIR_MIGRATE_PERSIST_DEST | sys::VIR_MIGRATE_UNDEFINE_SOURCE;
    flags |= if opts.live {
        sys::VIR_MIGRATE_LIVE
    } else {
        sys::VIR_MIGRATE_OFFLINE
    };
    if opts.copy_storage {
        flags |= sys::VIR_MIGRATE_NON_SHARED_INC;
    }
    if opts.shared {
        flags |= sys::VIR_MIGRATE_UNSAFE;
    }
    if opts.p2p_uri.is_some() {
        flags |= sys::VIR_MIGRATE_PEER2PEER;
    }
    let params = virt::domain::MigrateParameters {
        dest_xml,
        persist_xml: Some(persist_xml),
        bandwidth: opts.bandwidth_mib,
        ..Default::default()
    };
    let started = Instant::now();
    let finished = AtomicBool::new(false);
    let mut last = Job::default();
    let result = std::thread::scope(|s| {
        let watcher = s.spawn(|| watch(dom, &finished, opts));
        let r = match &opts.p2p_uri {
            Some(uri) => dom.migrate_to_uri3(Some(uri), params, flags),
            None => dom.migrate3(dst, params, flags).map(|_| ()),
        };
        finished.store(true, Ordering::SeqCst);
        if let Ok(Some(j)) = watcher.join() {
            last = j;
        }
        r
    });
    if let Err(e) = result {
        if interrupt::requested() {
            return Err(interrupt::error(
                "migration; it was aborted and the machine stays where it was",
            ));
        }
        return Err(map_error(format!("cannot migrate {name:?}"), e));
    }
    // The finished job's numbers are the destination's to tell.
    let done = dst
        .lookup_domain_by_name(&name)
        .ok()
        .and_then(|d| job(&d, sys::VIR_DOMAIN_JOB_STATS_COMPLETED))
        .filter(|j| j.time_elapsed.is_some())
        .unwrap_or(last);
    Ok(Stats {
        live: opts.live,
        copied_storage: opts.copy_storage,
        elapsed_ms: started.elapsed().as_millis() as u64,
        job_ms: done.time_elapsed,
        downtime_ms: done.downtime,
        data_total_bytes: done.data_total,
        data_processed_bytes: done.data_processed,
        memory_total_bytes: done.mem_total,
        disk_total_bytes: done.disk_total,
    })
}

/// Show the job's progress, set its downtime limit once it runs, abort it
/// on Ctrl-C. Returns the last statistics seen.
fn watch(dom: &Domain, finished: &AtomicBool, opts: &Options) -> Option<Job> {
    let name = dom.name().unwrap_or_default();
    let mut progress = Progress::new(&format!("migrating {name}"), opts.quiet || !opts.live);
    let mut downtime_set = opts.max_downtime_ms.is_none();
    let mut aborted = false;
    let mut last = None;
    while !finished.load(Ordering::SeqCst) {
        if interrupt::requested() && !aborted {
            abort_job(dom);
            aborted = true;
        }
        if let Some(j) = job(dom, 0) {
            // Kind 0: no job (yet, or already over).
            if j.kind != 0 {
                if !downtime_set {
                    let ms = opts.max_downtime_ms.unwrap_or(0);
                    downtime_set = dom.migrate_set_max_downtime(ms, 0).is_ok();
                }
                if let (Some(done), Some(total)) = (j.data_processed, j.data_total) {
                    progress.update(done, Some(total));
                }
                last = Some(j);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    progress.finish();
    last
}

/// Copy a volume between hosts as its bytes (an offline migration: no
/// guest runs to copy it for us), through both hosts' libvirt streams.
pub fn copy_volume(
    src: &Connect,
    src_pool: &StoragePool,
    dst: &Connect,
    dst_pool: &StoragePool,
    vol: &str,
    quiet: bool,
    undo: &mut Undo,
) -> Result<()> {
    let v = src_pool
        .lookup_storage_vol_by_name(vol)
        .map_err(|e| map_error(format!("cannot find volume {vol}"), e))?;
    // The file's own length: a sparse qcow2 is far below its capacity.
    let len = v
        .info_flags(sys::VIR_STORAGE_VOL_GET_PHYSICAL)
        .map_err(|e| map_error(format!("cannot read volume {vol}"), e))?
        .allocation;
    // `prepare` made it as an overlay for a live copy; here it is the
    // source's file, byte for byte.
    storage::delete_volume(dst_pool, vol)?;
    let to = storage::create_volume(
        dst_pool,
        &storage::empty_xml(vol, len, "raw"),
        &format!("{vol} on the destination"),
    )?;
    delete_on(undo, dst, dst_pool, vol);
    storage::copy_bytes(
        src,
        &v,
        dst,
        &to,
        len,
        &format!("volume {vol}"),
        "migration interrupted; the machine stays where it was",
        quiet,
    )
}
