//! Per-machine disks as copy-on-write overlays of cached images, made
//! through libvirt's storage volume API so the same code serves a remote
//! host. The pool is a directory pool under the state directory.

use std::path::Path;

use virt::connect::Connect;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use crate::backend::libvirt::map_error;
use crate::error::{Error, Result};
use crate::interrupt;
use crate::progress::Progress;
use crate::xml::El;

/// The pool for a state directory: `creature` for the default one, and a
/// name derived from the path otherwise (tests run many state directories
/// against one libvirtd).
pub fn pool_name(state_dir: &Path) -> String {
    if state_dir == Path::new(crate::DEFAULT_STATE_DIR) {
        return "creature".into();
    }
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(state_dir.as_os_str().as_encoded_bytes());
    format!("creature-{}", crate::image::cache::hex(&h[..4]))
}

pub fn pool_xml(name: &str, path: &Path) -> String {
    El::new("pool")
        .attr("type", "dir")
        .child(El::leaf("name", name))
        .child(
            El::new("target")
                .child(El::leaf("path", path.display().to_string()))
                .child(El::new("permissions").child(El::leaf("mode", "0711"))),
        )
        .render()
}

/// A qcow2 volume whose backing file is a cached image of a known format
/// (always explicit: a raw image is never probed as qcow2).
pub fn overlay_xml(name: &str, capacity: u64, backing: &Path, backing_format: &str) -> String {
    El::new("volume")
        .child(El::leaf("name", name))
        .child(El::leaf("capacity", capacity.to_string()).attr("unit", "bytes"))
        .child(
            El::new("target")
                .child(El::new("format").attr("type", "qcow2"))
                .child(El::new("permissions").child(El::leaf("mode", "0600"))),
        )
        .child(
            El::new("backingStore")
                .child(El::leaf("path", backing.display().to_string()))
                .child(El::new("format").attr("type", backing_format)),
        )
        .render()
}

/// An empty volume of the given format.
pub fn empty_xml(name: &str, capacity: u64, format: &str) -> String {
    El::new("volume")
        .child(El::leaf("name", name))
        .child(El::leaf("capacity", capacity.to_string()).attr("unit", "bytes"))
        .child(El::new("target").child(El::new("format").attr("type", format)))
        .render()
}

/// Find or make the pool, active and refreshed.
/// The pool, defined, built and started if it is not yet. Parallel creates
/// race here: a `lock` file serializes the creatures of this state
/// directory, and each step that loses a race to another client (defined,
/// started meanwhile) accepts the winner's result.
pub fn ensure_pool(conn: &Connect, name: &str, path: &Path, lock: &Path) -> Result<StoragePool> {
    let _serialized = crate::statedir::lock_file(lock)?;
    let pool = match conn.lookup_storage_pool_by_name(name) {
        Ok(p) => p,
        Err(_) => match conn.define_storage_pool_xml(&pool_xml(name, path), 0) {
            Ok(p) => {
                p.build(0)
                    .map_err(|e| map_error(format!("cannot build storage pool {name}"), e))?;
                let _ = p.set_autostart(true);
                p
            }
            Err(e) => conn
                .lookup_storage_pool_by_name(name)
                .map_err(|_| map_error(format!("cannot define storage pool {name}"), e))?,
        },
    };
    if !pool.is_active().unwrap_or(false) {
        if let Err(e) = pool.create(0) {
            if !pool.is_active().unwrap_or(false) {
                return Err(map_error(format!("cannot start storage pool {name}"), e));
            }
        }
    }
    pool.refresh(0)
        .map_err(|e| map_error(format!("cannot refresh storage pool {name}"), e))?;
    Ok(pool)
}

pub fn create_volume(pool: &StoragePool, xml: &str, what: &str) -> Result<StorageVol> {
    StorageVol::create_xml(pool, xml, 0)
        .map_err(|e| map_error(format!("cannot create volume {what}"), e))
}

/// Delete a volume by name; a volume that is already gone is fine.
pub fn delete_volume(pool: &StoragePool, name: &str) -> Result<bool> {
    match pool.lookup_storage_vol_by_name(name) {
        Ok(v) => v
            .delete(0)
            .map(|_| true)
            .map_err(|e| map_error(format!("cannot delete volume {name}"), e)),
        Err(_) => Ok(false),
    }
}

/// Send all of `bytes` into a libvirt stream (it may take fewer at a time).
pub fn send_all(stream: &Stream, bytes: &[u8], broke: &str) -> Result<()> {
    let mut off = 0;
    while off < bytes.len() {
        let s = stream
            .send(&bytes[off..])
            .map_err(|e| map_error(broke, e))?;
        if s <= 0 {
            return Err(Error::other(broke));
        }
        off += s as usize;
    }
    Ok(())
}

/// Copy the first `len` bytes of one volume into another through both
/// hosts' libvirt streams: the daemons read and write the files, so neither
/// volume needs to be on this host (an offline migration, a Xen host's
/// cold swap). Ctrl-C stops it with `interrupted`; the destination then
/// holds part of the bytes, which the caller owns.
#[allow(clippy::too_many_arguments)]
pub fn copy_bytes(
    src: &Connect,
    from: &StorageVol,
    dst: &Connect,
    to: &StorageVol,
    len: u64,
    label: &str,
    interrupted: &str,
    quiet: bool,
) -> Result<()> {
    let down = Stream::new(src, 0).map_err(|e| map_error("cannot open a libvirt stream", e))?;
    let up = Stream::new(dst, 0).map_err(|e| map_error("cannot open a libvirt stream", e))?;
    from.download(&down, 0, len, 0)
        .map_err(|e| map_error(format!("cannot read {label}"), e))?;
    to.upload(&up, 0, len, 0)
        .map_err(|e| map_error(format!("cannot write {label}"), e))?;
    let mut progress = Progress::new(&format!("copying {label}"), quiet);
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let r = (|| -> Result<()> {
        loop {
            interrupt::check(interrupted)?;
            let n = down
                .recv(&mut buf)
                .map_err(|e| map_error("the copy stream broke", e))?;
            if n <= 0 {
                return Ok(());
            }
            let n = n as usize;
            send_all(&up, &buf[..n], "the copy stream broke")?;
            done += n as u64;
            progress.update(done, Some(len));
        }
    })();
    progress.finish();
    match r {
        Ok(()) => {
            down.finish()
                .map_err(|e| map_error(format!("cannot finish reading {label}"), e))?;
            up.finish()
                .map_err(|e| map_error(format!("cannot finish writing {label}"), e))
        }
        Err(e) => {
            let _ = down.abort();
            let _ = up.abort();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_names_its_backing_format() {
        let x = overlay_xml(
            "web-disk0.qcow2",
            1 << 30,
            Path::new("/s/images/sha256/ab"),
            "raw",
        );
        assert_eq!(
            x,
            "<volume>\n  <name>web-disk0.qcow2</name>\n  <capacity unit=\"bytes\">1073741824</capacity>\n  <target>\n    <format type=\"qcow2\"/>\n    <permissions>\n      <mode>0600</mode>\n    </permissions>\n  </target>\n  <backingStore>\n    <path>/s/images/sha256/ab</path>\n    <format type=\"raw\"/>\n  </backingStore>\n</volume>\n"
        );
    }

    #[test]
    fn pool_names_differ_per_state_dir() {
        assert_eq!(pool_name(Path::new("/var/lib/creature")), "creature");
        assert_ne!(
            pool_name(Path::new("/tmp/a")),
            pool_name(Path::new("/tmp/b"))
        );
        assert!(pool_name(Path::new("/tmp/a")).len() <= 17);
    }
}

/// The scratch disk of a rescued machine: qcow2, raw for a xen machine
/// (blkback reads raw files), named for what it is.
pub fn rescue_volume(name: &str, backend: crate::backend::Backend) -> String {
    if backend == crate::backend::Backend::Xen {
        format!("{name}-rescue.raw")
    } else {
        format!("{name}-rescue.qcow2")
    }
}

/// Whether `volume` is machine `name`'s rescue scratch disk, of any backend. Pure.
pub fn is_rescue_volume(volume: &str, name: &str) -> bool {
    volume
        .strip_prefix(name)
        .is_some_and(|r| r == "-rescue.qcow2" || r == "-rescue.raw")
}

/// Whether `volume` is one of machine `name`'s disks by creature's naming
/// (`<name>-disk<N>.qcow2`, a xen disk's `<name>-disk<N>.raw`, a snapshot's `<name>-disk<N>-<K>.qcow2`, its
/// rescue scratch disk, or on another host its config drive and that copy's marker). Pure.
pub fn is_volume_of(volume: &str, name: &str) -> bool {
    is_rescue_volume(volume, name)
        || volume == crate::backend::libvirt::ship::seed_volume(name)
        || volume
            == crate::backend::libvirt::ship::marker(&crate::backend::libvirt::ship::seed_volume(
                name,
            ))
        || volume
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix("-disk"))
            .and_then(|r| r.strip_suffix(".qcow2").or_else(|| r.strip_suffix(".raw")))
            .is_some_and(disk_number)
}

/// `N` or `N-K`, digits.
fn disk_number(n: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match n.split_once('-') {
        Some((a, b)) => digits(a) && digits(b),
        None => digits(n),
    }
}

/// The machine whose disk `volume` is, by creature's naming. Pure.
pub fn machine_of_volume(volume: &str) -> Option<&str> {
    let stem = volume
        .strip_suffix(".qcow2")
        .or_else(|| volume.strip_suffix(".raw"))?;
    if let Some(name) = stem.strip_suffix("-rescue").filter(|n| !n.is_empty()) {
        return Some(name);
    }
    let (name, n) = stem.rsplit_once("-disk")?;
    (!name.is_empty() && disk_number(n)).then_some(name)
}

/// Every volume of the pool (after a refresh).
pub fn volumes(pool: &StoragePool) -> Result<Vec<String>> {
    let _ = pool.refresh(0);
    pool.list_volumes()
        .map_err(|e| map_error("cannot list the storage pool's volumes", e))
}

#[cfg(test)]
mod naming_tests {
    use super::*;

    #[test]
    fn volumes_are_matched_to_their_machine_by_name() {
        assert!(is_volume_of("web-disk0.qcow2", "web"));
        assert!(is_volume_of("web-disk12.qcow2", "web"));
        assert!(!is_volume_of("web-2-disk0.qcow2", "web"));
        assert!(!is_volume_of("web-disk.qcow2", "web"));
        assert!(is_volume_of("web-disk0.raw", "web"));
        assert!(!is_volume_of("web-disk0.img", "web"));
        assert_eq!(machine_of_volume("web-2-disk3.qcow2"), Some("web-2"));
        assert_eq!(machine_of_volume("a-disk-disk0.qcow2"), Some("a-disk"));
        assert_eq!(machine_of_volume("notes.txt"), None);
        assert_eq!(machine_of_volume("-disk0.qcow2"), None);
        assert!(is_volume_of("web-rescue.qcow2", "web"));
        assert!(is_volume_of("web-rescue.raw", "web"));
        assert!(!is_volume_of("web-rescue.img", "web"));
        assert_eq!(
            rescue_volume("web", crate::backend::Backend::Xen),
            "web-rescue.raw"
        );
        assert_eq!(
            rescue_volume("web", crate::backend::Backend::Qemu),
            "web-rescue.qcow2"
        );
        assert!(is_volume_of("web-disk0-12.qcow2", "web"));
        assert!(!is_volume_of("web-disk0-.qcow2", "web"));
        assert!(!is_volume_of("web-disk0-1-2.qcow2", "web"));
        assert_eq!(machine_of_volume("web-2-disk0-4.qcow2"), Some("web-2"));
        assert_eq!(machine_of_volume("web-rescue.qcow2"), Some("web"));
        assert_eq!(machine_of_volume("web-rescue.raw"), Some("web"));
    }
}
