//! A remote host sees none of this host's files. What a VM there needs from
//! them (cached images and boot files, its config drive) is copied into
//! storage pools of that host through libvirt's volume upload stream, and
//! what its QEMU writes (the serial log) is read back the same way: no
//! agent, no ssh of creature's own, only libvirt's remote protocol.
//!
//! Pools on a remote host take the paths they have here (`{scope}-images`
//! at the image cache, `{scope}-logs` at the logs directory, the disk pool
//! at the disks directory), so a machine's paths read the same on every
//! host and a migration needs no path rewritten but its config drive's.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use virt::connect::Connect;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use crate::backend::libvirt::{map_error, storage};
use crate::error::{Error, Result};
use crate::interrupt;
use crate::progress::Progress;
use crate::xml::El;

const CHUNK: usize = 1 << 20;

/// The pool of cached images (and boot files) on a remote host.
pub fn images_pool(conn: &Connect, state_dir: &Path) -> Result<StoragePool> {
    let dir = crate::statedir::subdir(state_dir, "images/sha256", 0o711)?;
    let name = format!("{}-images", storage::pool_name(state_dir));
    storage::ensure_pool(conn, &name, &dir, &state_dir.join("pool.lock"))
}

/// The pool whose directory a remote host's QEMU writes serial logs into.
pub fn logs_pool(conn: &Connect, state_dir: &Path) -> Result<StoragePool> {
    let dir = crate::statedir::subdir(state_dir, "logs", 0o700)?;
    let name = format!("{}-logs", storage::pool_name(state_dir));
    storage::ensure_pool(conn, &name, &dir, &state_dir.join("pool.lock"))
}

/// creature's disk pool on a host (made at first use).
pub fn disks_pool(conn: &Connect, state_dir: &Path) -> Result<StoragePool> {
    storage::ensure_pool(
        conn,
        &storage::pool_name(state_dir),
        &crate::statedir::subdir(state_dir, "disks", 0o711)?,
        &state_dir.join("pool.lock"),
    )
}

/// A complete copy carries a marker volume, made only after the copy read
/// back to the same sha256: a copy cut short by a crash is never taken for
/// a whole one.
pub fn marker(vol: &str) -> String {
    format!("{vol}.shipped")
}

fn raw_volume_xml(name: &str, capacity: u64) -> String {
    El::new("volume")
        .child(El::leaf("name", name))
        .child(El::leaf("capacity", capacity.to_string()).attr("unit", "bytes"))
        .child(El::new("target").child(El::new("format").attr("type", "raw")))
        .render()
}

fn path_of(v: &StorageVol, what: &str) -> Result<String> {
    v.path()
        .map_err(|e| map_error(format!("cannot read the path of {what}"), e))
}

/// A file put on another host.
#[derive(Debug, Clone)]
pub struct Shipped {
    /// Its path there.
    pub path: String,
    /// Copied now (false: a complete copy was there already).
    pub fresh: bool,
    pub pool: String,
    pub volume: String,
}

/// Put `local` into `pool` as volume `vol` and return its path there.
/// A complete copy already there is kept unless `replace`.
pub fn ship(
    conn: &Connect,
    pool: &StoragePool,
    vol: &str,
    local: &Path,
    replace: bool,
    quiet: bool,
) -> Result<String> {
    ship_to(conn, pool, vol, local, replace, quiet).map(|s| s.path)
}

pub fn ship_to(
    conn: &Connect,
    pool: &StoragePool,
    vol: &str,
    local: &Path,
    replace: bool,
    quiet: bool,
) -> Result<Shipped> {
    let _ = pool.refresh(0);
    let have = pool.lookup_storage_vol_by_name(vol).ok();
    let whole = pool.lookup_storage_vol_by_name(&marker(vol)).is_ok();
    let shipped = |path: String, fresh: bool| Shipped {
        path,
        fresh,
        pool: pool.name().unwrap_or_default(),
        volume: vol.to_string(),
    };
    if let (Some(v), true, false) = (&have, whole, replace) {
        return Ok(shipped(path_of(v, vol)?, false));
    }
    for stale in [marker(vol), vol.to_string()] {
        storage::delete_volume(pool, &stale)?;
    }
    let len = std::fs::metadata(local)
        .map_err(|e| Error::not_found(format!("cannot read {}", local.display())).caused_by(e))?
        .len();
    let v = storage::create_volume(pool, &raw_volume_xml(vol, len), vol)?;
    let sent = upload(conn, &v, local, len, quiet).and_then(|sum| {
        let back = download_sum(conn, &v, len)?;
        if back != sum {
            return Err(Error::other(format!(
                "the copy of {} on the remote host reads back differently (sha256 {back}, expected {sum})",
                local.display()
            )));
        }
        storage::create_volume(pool, &raw_volume_xml(&marker(vol), 0), &marker(vol))?;
        Ok(())
    });
    if let Err(e) = sent {
        let _ = storage::delete_volume(pool, vol);
        return Err(e);
    }
    Ok(shipped(path_of(&v, vol)?, true))
}

/// Remove a shipped copy and its marker (undoing a ship).
pub fn unship(conn: &Connect, pool: &str, vol: &str) -> Result<()> {
    let p = conn
        .lookup_storage_pool_by_name(pool)
        .map_err(|e| map_error(format!("cannot find storage pool {pool}"), e))?;
    storage::delete_volume(&p, &marker(vol))?;
    storage::delete_volume(&p, vol).map(|_| ())
}

/// Stream the file into the volume; returns its sha256.
fn upload(conn: &Connect, v: &StorageVol, local: &Path, len: u64, quiet: bool) -> Result<String> {
    let mut f = std::fs::File::open(local)
        .map_err(|e| Error::not_found(format!("cannot open {}", local.display())).caused_by(e))?;
    let stream = Stream::new(conn, 0).map_err(|e| map_error("cannot open a libvirt stream", e))?;
    v.upload(&stream, 0, len, 0)
        .map_err(|e| map_error(format!("cannot upload {}", local.display()), e))?;
    let name = local.file_name().unwrap_or_default().to_string_lossy();
    let mut progress = Progress::new(&format!("uploading {name}"), quiet);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    let result = (|| -> Result<()> {
        loop {
            interrupt::check("interrupted while uploading; the partial copy was removed")?;
            let n = f.read(&mut buf).map_err(|e| {
                Error::other(format!("cannot read {}", local.display())).caused_by(e)
            })?;
            if n == 0 {
                return Ok(());
            }
            hash.update(&buf[..n]);
            super::storage::send_all(&stream, &buf[..n], "the upload stream broke")?;
            done += n as u64;
            progress.update(done, Some(len));
        }
    })();
    progress.finish();
    match result {
        Ok(()) => {
            stream
                .finish()
                .map_err(|e| map_error(format!("cannot finish uploading {name}"), e))?;
            Ok(crate::image::cache::hex(&hash.finalize()))
        }
        Err(e) => {
            let _ = stream.abort();
            Err(e)
        }
    }
}

/// Read a volume back; its sha256.
fn download_sum(conn: &Connect, v: &StorageVol, len: u64) -> Result<String> {
    let mut hash = Sha256::new();
    download_into(conn, v, len, &mut |b| {
        hash.update(b);
        Ok(())
    })?;
    Ok(crate::image::cache::hex(&hash.finalize()))
}

fn download_into(
    conn: &Connect,
    v: &StorageVol,
    len: u64,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let stream = Stream::new(conn, 0).map_err(|e| map_error("cannot open a libvirt stream", e))?;
    v.download(&stream, 0, len, 0)
        .map_err(|e| map_error("cannot read a volume back", e))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match stream.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = stream.abort();
                return Err(map_error("the download stream broke", e));
            }
        };
        if n <= 0 {
            break;
        }
        if let Err(e) = sink(&buf[..n as usize]) {
            let _ = stream.abort();
            return Err(e);
        }
    }
    stream
        .finish()
        .map_err(|e| map_error("cannot finish reading a volume", e))
}

/// Copy a remote volume (all of it) into a local file, replaced whole.
pub fn fetch(conn: &Connect, pool: &StoragePool, vol: &str, local: &Path) -> Result<bool> {
    let _ = pool.refresh(0);
    let Ok(v) = pool.lookup_storage_vol_by_name(vol) else {
        return Ok(false);
    };
    let len = v
        .info()
        .map_err(|e| map_error(format!("cannot read volume {vol}"), e))?
        .capacity;
    let mut out = crate::statedir::rewrite(local, 0o600)?;
    download_into(conn, &v, len, &mut |b| {
        std::io::Write::write_all(&mut out, b)
            .map_err(|e| Error::other(format!("cannot write {}", local.display())).caused_by(e))
    })?;
    Ok(true)
}

/// Ship a file a VM reads (image, kernel, initrd, installer) into the
/// remote host's image pool. A cached one is named by its sha256 and kept
/// there for the next machine; another (an installer given by path) is
/// named for its path and copied again each time, as it may have changed.
pub fn ship_file(conn: &Connect, state_dir: &Path, local: &Path, quiet: bool) -> Result<PathBuf> {
    ship_file_to(conn, state_dir, local, quiet).map(|s| PathBuf::from(s.path))
}

pub fn ship_file_to(
    conn: &Connect,
    state_dir: &Path,
    local: &Path,
    quiet: bool,
) -> Result<Shipped> {
    let pool = images_pool(conn, state_dir)?;
    let cache = state_dir.join("images").join("sha256");
    let (vol, replace) = match local.strip_prefix(&cache) {
        Ok(rel) if rel.components().count() == 1 => (rel.to_string_lossy().to_string(), false),
        _ => {
            let h = Sha256::digest(local.as_os_str().as_encoded_bytes());
            (format!("path-{}", crate::image::cache::hex(&h[..8])), true)
        }
    };
    ship_to(conn, &pool, &vol, local, replace, quiet)
}

/// The volume a remote machine's config drive is in (its disk pool).
pub fn seed_volume(name: &str) -> String {
    format!("{name}-seed.iso")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_seed_volumes_are_named_apart() {
        assert_eq!(marker("ab12"), "ab12.shipped");
        assert_eq!(seed_volume("web"), "web-seed.iso");
        assert!(storage::is_volume_of(&seed_volume("web"), "web"));
        assert!(!storage::is_volume_of(&seed_volume("web"), "we"));
        // Its marker goes with the machine too (it was left behind once).
        assert!(storage::is_volume_of(&marker(&seed_volume("web")), "web"));
        assert!(!storage::is_volume_of(&marker(&seed_volume("web")), "we"));
    }
}
