//! Snapshots (#16) of libvirt machines: external qcow2 overlays made with
//! libvirt's snapshot API (no libvirt metadata: creature keeps the records
//! and reverts and merges itself, which libvirt 9.0 cannot do for external
//! snapshots), live block commits, and qemu-img for files no QEMU holds.
//!
//! A xen machine's disks are raw files blkback reads in dom0, which have no
//! overlays and libxl no external snapshots: its snapshot is a copy of each
//! disk made through libvirt's storage API (so dom0 may be another host),
//! with the machine paused for the copy: Nova's "cold snapshot". A copy
//! backs nothing, so the same plans apply: deleting one removes its file,
//! reverting copies it back as the machine's new disk.

use std::collections::BTreeMap;
use std::path::Path;

use virt::domain::Domain;
use virt::storage_pool::StoragePool;
use virt::sys;

use crate::backend::libvirt::machine::{dom_state, parse_devices, LibvirtDriver};
use crate::backend::libvirt::{blockjob, map_error, rescue_xml, snapshot_xml, storage};
use crate::backend::{Backend, PowerState};
use crate::error::{Error, Result};
use crate::snapshot::{Backing, Graph, Step};

impl LibvirtDriver {
    /// The machine's definition: live while it runs, else persistent.
    fn current_xml(&self, d: &Domain, name: &str) -> Result<String> {
        d.xml_desc(0)
            .map_err(|e| map_error(format!("cannot read the definition of {name:?}"), e))
    }

    fn persistent_xml(&self, d: &Domain, name: &str) -> Result<String> {
        d.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE)
            .map_err(|e| map_error(format!("cannot read the definition of {name:?}"), e))
    }

    /// The domain, refused while it is rescued or suspended (its disks are
    /// not its own then, or belong to a saved memory image).
    /// Its definition (live while it runs) comes with it.
    fn snapshottable(&self, name: &str) -> Result<(Domain, PowerState, String)> {
        let d = self.ours(name)?;
        let st = dom_state(&d)?;
        let xml = self.current_xml(&d, name)?;
        if let Some(img) = rescue_xml::rescued(&xml) {
            return Err(Error::conflict(format!(
                "machine {name:?} is rescued (from image {img}); `creature unrescue {name}` first"
            )));
        }
        if st == PowerState::Saved {
            return Err(Error::conflict(format!(
                "machine {name:?} is suspended: its disks belong to its saved memory; \
                 `creature restore {name}` or `creature destroy {name}` first"
            )));
        }
        Ok((d, st, xml))
    }

    /// (target, active file) of each disk creature made for the machine,
    /// and every disk's target.
    fn disks_of(&self, xml: &str, name: &str) -> (Vec<(String, String)>, Vec<String>) {
        let (disks, _) = parse_devices(xml);
        let all = disks.iter().map(|d| d.target.clone()).collect();
        let ours = disks
            .into_iter()
            .filter(|d| d.format == self.snapshot_format())
            .filter(|d| {
                Path::new(&d.path)
                    .file_name()
                    .and_then(|f| f.to_str())
                    .is_some_and(|f| snapshotted(f, name))
            })
            .map(|d| (d.target, d.path))
            .collect();
        (ours, all)
    }

    /// The format of the disks the machine's snapshots are made of.
    fn snapshot_format(&self) -> &'static str {
        match self.backend {
            Backend::Xen => "raw",
            _ => "qcow2",
        }
    }

    pub fn snapshot_graph_of(&self, name: &str) -> Result<Graph> {
        let (_, st, xml) = self.snapshottable(name)?;
        let (disks, _) = self.disks_of(&xml, name);
        let pool = self.pool()?;
        let mut backing = BTreeMap::new();
        let mut sizes = BTreeMap::new();
        for v in storage::volumes(&pool)? {
            if !snapshotted(&v, name) {
                continue;
            }
            let Ok(vol) = pool.lookup_storage_vol_by_name(&v) else {
                continue;
            };
            let path = vol
                .path()
                .map_err(|e| map_error(format!("cannot read volume {v}"), e))?;
            let vx = vol
                .xml_desc(0)
                .map_err(|e| map_error(format!("cannot read volume {v}"), e))?;
            backing.insert(path.clone(), backing_in(&vx));
            if let Ok(info) = vol.info() {
                sizes.insert(path, info.allocation);
            }
        }
        Ok(Graph {
            disks,
            backing,
            sizes,
            running: st.is_active(),
        })
    }

    /// Freeze each disk under a new overlay; (target, frozen file) each.
    pub fn snapshot_take_of(
        &self,
        name: &str,
        snap: &str,
        memory: Option<&Path>,
    ) -> Result<Vec<(String, String)>> {
        let (d, st, xml) = self.snapshottable(name)?;
        if memory.is_some() && !st.is_active() {
            return Err(Error::conflict(format!(
                "machine {name:?} is {}: --memory needs a running machine",
                st.as_str()
            )));
        }
        let (disks, all) = self.disks_of(&xml, name);
        if disks.is_empty() {
            return Err(Error::conflict(format!(
                "machine {name:?} has no disk creature made: nothing to snapshot"
            )));
        }
        if self.backend == Backend::Xen {
            return self.copy_take(&d, st, name, &disks, memory);
        }
        // The names taken, read from the disks' directory itself: files
        // libvirt made since the pool's last refresh count too.
        let mut made: Vec<String> = Vec::new();
        for (_, active) in &disks {
            let dir = Path::new(active).parent().unwrap_or(Path::new("/"));
            if let Ok(rd) = std::fs::read_dir(dir) {
                made.extend(
                    rd.flatten()
                        .filter_map(|e| e.file_name().into_string().ok()),
                );
            }
        }
        let mut overlays = Vec::new();
        for (target, active) in &disks {
            let active_name = Path::new(active)
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            let file = crate::snapshot::next_file(active_name, name, &made).ok_or_else(|| {
                Error::other(format!(
                    "cannot name a new file for {name:?}'s disk {active}"
                ))
            })?;
            let dir = Path::new(active).parent().unwrap_or(Path::new("/"));
            let path = dir.join(&file);
            // libvirt refuses to reuse a file; say which one is in the way.
            if path.exists() {
                return Err(Error::conflict(format!(
                    "cannot snapshot {name:?}: {} exists already (not made by this snapshot; \
                     `creature repair` lists leftovers)",
                    path.display()
                )));
            }
            made.push(file);
            overlays.push((target.clone(), path.display().to_string()));
        }
        let sx = snapshot_xml::snapshot(
            snap,
            &overlays,
            &all,
            memory.map(|m| m.to_str().unwrap_or_default()),
        );
        crate::trace::text(&format!("snapshot XML of {name}"), &sx);
        let mut flags =
            sys::VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA | sys::VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
        if memory.is_none() {
            flags |= sys::VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY;
        }
        crate::undo::fail_point("snapshot-before")?;
        d.create_snapshot_xml(&sx, flags).map_err(|e| {
            // ATOMIC: libvirt removed what it made; a memory file it began is ours to remove.
            if let Some(m) = memory {
                let _ = std::fs::remove_file(m);
            }
            map_error(format!("cannot snapshot {name:?}"), e)
        })?;
        Ok(disks)
    }

    /// A xen machine's snapshot: each disk copied in its pool, the machine
    /// paused meanwhile when it runs (so the disks agree with each other);
    /// (target, copy) each. A failure removes the copies made.
    fn copy_take(
        &self,
        d: &Domain,
        st: PowerState,
        name: &str,
        disks: &[(String, String)],
        memory: Option<&Path>,
    ) -> Result<Vec<(String, String)>> {
        if memory.is_some() {
            return Err(Error::invalid(format!(
                "{name:?} is a xen machine: its snapshots are copies of its disks, without \
                 its memory (drop --memory)"
            )));
        }
        let pool = self.pool()?;
        let mut made = storage::volumes(&pool)?;
        let pause = st == PowerState::Running;
        if pause {
            d.suspend()
                .map_err(|e| map_error(format!("cannot pause {name:?} for its snapshot"), e))?;
        }
        let mut copies: Vec<virt::storage_vol::StorageVol> = Vec::new();
        let mut points = Vec::new();
        let copied = (|| {
            for (target, active) in disks {
                let active_name = Path::new(active)
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or_default();
                let file =
                    crate::snapshot::next_file(active_name, name, &made).ok_or_else(|| {
                        Error::other(format!("cannot name a copy of {name:?}'s disk {active}"))
                    })?;
                made.push(file.clone());
                let (v, path) = self.copy_volume(&pool, active, &file)?;
                copies.push(v);
                points.push((target.clone(), path));
                crate::undo::fail_point("snapshot-before")?;
            }
            Ok(points)
        })();
        let resumed = if pause {
            d.resume()
                .map_err(|e| map_error(format!("cannot unpause {name:?} after its snapshot"), e))
        } else {
            Ok(())
        };
        if copied.is_err() {
            for v in &copies {
                let _ = v.delete(0);
            }
        }
        let points = copied?;
        resumed.map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "{} (the snapshot is taken; `creature unpause {name}`)",
                    e.message()
                ),
            )
        })?;
        Ok(points)
    }

    /// A raw copy `file` of the volume at `from`, in `pool`: the volume and
    /// its path.
    fn copy_volume(
        &self,
        pool: &StoragePool,
        from: &str,
        file: &str,
    ) -> Result<(virt::storage_vol::StorageVol, String)> {
        let src = self
            .conn
            .lookup_storage_vol_by_path(from)
            .map_err(|e| map_error(format!("cannot find volume {from}"), e))?;
        let capacity = src
            .info()
            .map_err(|e| map_error(format!("cannot read volume {from}"), e))?
            .capacity;
        let v = virt::storage_vol::StorageVol::create_xml_from(
            pool,
            &storage::empty_xml(file, capacity, "raw"),
            &src,
            0,
        )
        .map_err(|e| map_error(format!("cannot copy {from} into {file}"), e))?;
        match v.path() {
            Ok(p) => Ok((v, p)),
            Err(e) => {
                let _ = v.delete(0);
                Err(map_error(format!("cannot read volume {file}"), e))
            }
        }
    }

    pub fn snapshot_steps_of(&self, name: &str, steps: &[Step]) -> Result<()> {
        let d = self.ours(name)?;
        let pool = self.pool()?;
        for step in steps {
            crate::trace::call(
                || format!("snapshot step {step:?}"),
                || self.step(&d, &pool, name, step),
            )?;
        }
        let _ = pool.refresh(0);
        Ok(())
    }

    fn step(&self, d: &Domain, pool: &StoragePool, name: &str, step: &Step) -> Result<()> {
        match step {
            Step::Rebase { file, onto, copy } => rebase(file, onto, *copy),
            Step::CommitActive { disk, base } => {
                blockjob::commit(d, disk, base, None)?;
                self.persist_live_sources(d, name)
            }
            Step::Commit { disk, top, base } => blockjob::commit(d, disk, base, Some(top)),
            Step::Remove { file } => {
                // libvirt made the file outside the pool's API: look again.
                let _ = pool.refresh(0);
                match self.conn.lookup_storage_vol_by_path(file) {
                    Ok(v) => v
                        .delete(0)
                        .map_err(|e| map_error(format!("cannot delete {file}"), e)),
                    Err(_) => Ok(()),
                }
            }
            Step::Repoint { .. } => Ok(()),
        }
    }

    /// After a pivot: the persistent definition reads what the live one does.
    fn persist_live_sources(&self, d: &Domain, name: &str) -> Result<()> {
        let live = self.current_xml(d, name)?;
        let (disks, _) = self.disks_of(&live, name);
        let persistent = self.persistent_xml(d, name)?;
        let (old, _) = self.disks_of(&persistent, name);
        let moves: Vec<(String, String)> = disks
            .into_iter()
            .filter(|(t, f)| old.iter().any(|(ot, of)| ot == t && of != f))
            .collect();
        if moves.is_empty() {
            return Ok(());
        }
        let x = snapshot_xml::move_disks(&persistent, &moves, "qcow2")?;
        self.conn
            .define_domain_xml(&x)
            .map(|_| ())
            .map_err(|e| map_error(format!("cannot update the definition of {name:?}"), e))
    }

    /// Fresh overlays on `points`, the machine's disks moved onto them, its
    /// old active files removed; then its memory restored, or it started
    /// when `start`.
    pub fn snapshot_revert_of(
        &self,
        name: &str,
        points: &[(String, String)],
        memory: Option<&Path>,
        paused: bool,
        start: bool,
    ) -> Result<()> {
        let (d, st, _) = self.snapshottable(name)?;
        let persistent = self.persistent_xml(&d, name)?;
        let (disks, _) = self.disks_of(&persistent, name);
        let pool = self.pool()?;
        let mut made: Vec<String> = storage::volumes(&pool)?;
        let mut moves = Vec::new();
        let mut created = Vec::new();
        let undo = |created: &[virt::storage_vol::StorageVol]| {
            for v in created {
                let _ = v.delete(0);
            }
        };
        for (target, point) in points {
            let Some((_, active)) = disks.iter().find(|(t, _)| t == target) else {
                continue;
            };
            let active_name = Path::new(active)
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            let file = crate::snapshot::next_file(active_name, name, &made)
                .ok_or_else(|| Error::other(format!("cannot name a new file for {active}")))?;
            made.push(file.clone());
            let (vol, path) = if self.backend == Backend::Xen {
                // A copy of the snapshot's copy: that one stays the snapshot.
                self.copy_volume(&pool, point, &file)
                    .inspect_err(|_| undo(&created))?
            } else {
                let capacity = self
                    .conn
                    .lookup_storage_vol_by_path(point)
                    .and_then(|v| v.info())
                    .map_err(|e| {
                        undo(&created);
                        map_error(format!("cannot read the snapshot's file {point}"), e)
                    })?
                    .capacity;
                let vol = storage::create_volume(
                    &pool,
                    &storage::overlay_xml(&file, capacity, Path::new(point), "qcow2"),
                    &file,
                )
                .inspect_err(|_| undo(&created))?;
                let path = vol.path().map_err(|e| {
                    undo(&created);
                    map_error(format!("cannot read volume {file}"), e)
                })?;
                (vol, path)
            };
            created.push(vol);
            moves.push((target.clone(), path, active.clone()));
        }
        let to: Vec<(String, String)> = moves
            .iter()
            .map(|(t, p, _)| (t.clone(), p.clone()))
            .collect();
        let x = snapshot_xml::move_disks(&persistent, &to, self.snapshot_format())
            .inspect_err(|_| undo(&created))?;
        if st.is_active() {
            d.destroy().map_err(|e| {
                undo(&created);
                map_error(format!("cannot power off {name:?}"), e)
            })?;
        }
        // Until the definition moves, a failure puts everything back: the
        // new files go and a machine that ran runs again on its own disks.
        let back = |e: Error| {
            undo(&created);
            if st.is_active() {
                let _ = d.create();
            }
            e
        };
        crate::undo::fail_point("revert-before-define").map_err(back)?;
        self.conn.define_domain_xml(&x).map_err(|e| {
            back(map_error(
                format!("cannot update the definition of {name:?}"),
                e,
            ))
        })?;
        // From here the machine reads the snapshot: its old files go.
        for (_, _, old) in &moves {
            if let Ok(v) = self.conn.lookup_storage_vol_by_path(old) {
                v.delete(0)
                    .map_err(|e| map_error(format!("cannot delete {old}"), e))?;
            }
        }
        if let Some(mem) = memory {
            let m = mem.to_str().unwrap_or_default();
            let saved = self
                .conn
                .save_image_xml_desc(m, sys::VIR_DOMAIN_SAVE_IMAGE_XML_SECURE)
                .map_err(|e| map_error(format!("cannot read the memory image {m}"), e))?;
            let dxml = snapshot_xml::move_disks(&saved, &to, "qcow2")?;
            let flags = if paused {
                sys::VIR_DOMAIN_SAVE_PAUSED
            } else {
                sys::VIR_DOMAIN_SAVE_RUNNING
            };
            self.conn
                .restore_domain_flags(m, Some(&dxml), flags)
                .map_err(|e| map_error(format!("cannot restore {name:?}'s memory from {m}"), e))?;
        } else if start {
            self.boot(&d, name, &format!("cannot start {name:?}"))?;
        }
        Ok(())
    }
}

/// A file of the machine's own disks (its rescue scratch disk and config
/// drive are not).
fn snapshotted(file: &str, name: &str) -> bool {
    storage::machine_of_volume(file) == Some(name) && !storage::is_rescue_volume(file, name)
}

/// `<backingStore>`'s path and format in a volume's XML.
fn backing_in(vol_xml: &str) -> Backing {
    let mut r = quick_xml::Reader::from_str(vol_xml);
    let (mut inside, mut field, mut path, mut format) = (false, None::<&str>, None, None);
    loop {
        use quick_xml::events::Event;
        match r.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == b"backingStore" => inside = true,
            Ok(Event::End(e)) if e.local_name().as_ref() == b"backingStore" => inside = false,
            Ok(Event::Start(e)) if inside && e.local_name().as_ref() == b"path" => {
                field = Some("path")
            }
            Ok(Event::Empty(e)) | Ok(Event::Start(e))
                if inside && e.local_name().as_ref() == b"format" =>
            {
                format = e
                    .try_get_attribute("type")
                    .ok()
                    .flatten()
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
            }
            Ok(Event::Text(t)) if field == Some("path") => {
                path = t.unescape().ok().map(|v| v.into_owned());
                field = None;
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    path.map(|p| (p, format.unwrap_or_else(|| "raw".into())))
}

/// `qemu-img rebase` of a file no QEMU has open.
fn rebase(file: &str, onto: &Backing, copy: bool) -> Result<()> {
    let mut args: Vec<&str> = vec!["rebase", "-q", "-f", "qcow2"];
    if !copy {
        args.push("-u");
    }
    match onto {
        Some((b, fmt)) => args.extend(["-b", b, "-F", fmt]),
        None => args.extend(["-b", ""]),
    }
    args.extend(["--", file]);
    crate::tool::run(
        &format!("cannot merge a snapshot into {file}"),
        "qemu-img",
        &args,
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_volume_names_its_backing_and_format() {
        let x = "<volume><name>a</name><target><path>/p/a</path><format type='qcow2'/></target>\
                 <backingStore><path>/c/img</path><format type='raw'/></backingStore></volume>";
        assert_eq!(
            super::backing_in(x),
            Some(("/c/img".to_string(), "raw".to_string()))
        );
        assert_eq!(
            super::backing_in("<volume><target><path>/p/a</path></target></volume>"),
            None
        );
    }
}
