//! `creature snapshot create|list|revert|delete|export` (#16): the records
//! here, the plans in `crate::snapshot`, the files through the driver.

use serde::Serialize;

use crate::backend::{Backend, Driver, Host};
use crate::cli::SnapshotCommand;
use crate::cmd::lifecycle::confirm;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::output::{self, Table};
use crate::snapshot::{self, Graph, Point, Step};
use crate::store::{MachineRecord, SnapshotRecord, Store};

pub fn run(
    ctx: &Ctx,
    host: &Host,
    drv: &dyn Driver,
    rec: &MachineRecord,
    cmd: &SnapshotCommand,
) -> Result<()> {
    let mut store = Store::open(&ctx.global.state_dir)?;
    let h = host.name();
    match cmd {
        SnapshotCommand::Create {
            snapshot, memory, ..
        } => create(ctx, &mut store, h, drv, rec, snapshot.as_deref(), *memory),
        SnapshotCommand::List { .. } => list(ctx, &store, h, drv, rec),
        SnapshotCommand::Revert { snapshot, .. } => revert(ctx, &store, h, drv, rec, snapshot),
        SnapshotCommand::Delete { snapshot, .. } => {
            let s = find(&store, h, rec, snapshot)?;
            delete(&mut store, h, drv, rec, &s)?;
            ctx.say(&format!(
                "deleted snapshot {snapshot} of {}: its data is merged into what depended on it",
                rec.name
            ));
            Ok(())
        }
        SnapshotCommand::Export { image, disk, .. } => {
            export(ctx, &mut store, h, drv, rec, image, disk.as_deref())
        }
    }
}

fn find(store: &Store, host: &str, rec: &MachineRecord, snap: &str) -> Result<SnapshotRecord> {
    names::check(What::Snapshot, snap)?;
    let all = store.snapshots(host, &rec.name)?;
    all.iter().find(|s| s.name == snap).cloned().ok_or_else(|| {
        let have: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        Error::not_found(format!(
            "machine {:?} has no snapshot {snap:?} (it has: {})",
            rec.name,
            if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            }
        ))
    })
}

fn all_points(records: &[SnapshotRecord]) -> Vec<Point> {
    records.iter().flat_map(|s| s.points()).collect()
}

fn create(
    ctx: &Ctx,
    store: &mut Store,
    host: &str,
    drv: &dyn Driver,
    rec: &MachineRecord,
    given: Option<&str>,
    memory: bool,
) -> Result<()> {
    let existing: Vec<String> = store
        .snapshots(host, &rec.name)?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let now = crate::time::rfc3339_now();
    let snap = match given {
        Some(s) => {
            names::check(What::Snapshot, s)?;
            if existing.iter().any(|e| e == s) {
                return Err(Error::conflict(format!(
                    "machine {:?} already has a snapshot {s:?}",
                    rec.name
                )));
            }
            s.to_string()
        }
        None => snapshot::default_name(&now, &existing),
    };
    let state = drv.state(&rec.name)?;
    let mem = if memory {
        let dir = crate::statedir::subdir(
            &ctx.global.state_dir,
            &format!("snapshots/{}", rec.name),
            0o700,
        )?;
        Some(dir.join(format!("{snap}.mem")))
    } else {
        None
    };
    let began = std::time::Instant::now();
    let disks = drv.snapshot_take(&rec.name, &snap, mem.as_deref())?;
    if rec.backend == Backend::Xen && state == crate::backend::PowerState::Running {
        ctx.say(&format!(
            "note: {} was paused for {:.1} s while its disks were copied (a xen snapshot is cold)",
            rec.name,
            began.elapsed().as_secs_f64()
        ));
    }
    let record = SnapshotRecord {
        name: snap.clone(),
        created_at: now,
        state: state.as_str().to_string(),
        memory: mem.as_ref().map(|m| m.display().to_string()),
        disks,
    };
    let recorded = crate::undo::fail_point("snapshot-taken")
        .and_then(|_| store.add_snapshot(host, &rec.name, &record));
    if let Err(e) = recorded {
        // Unrecorded, the snapshot would be a file nobody knows: merge it back.
        let undone = drv.snapshot_graph(&rec.name).and_then(|g| {
            let steps = snapshot::delete_plan(&g, &record.points(), &snap)?;
            drv.snapshot_steps(&rec.name, &steps)
        });
        if let Some(m) = &mem {
            let _ = std::fs::remove_file(m);
        }
        return Err(match undone {
            Ok(()) => e,
            Err(u) => Error::new(
                e.kind(),
                format!(
                    "{}; merging the unrecorded snapshot back failed too: {}",
                    e.message(),
                    u.message()
                ),
            ),
        });
    }
    let what: Vec<&str> = record.disks.iter().map(|(t, _)| t.as_str()).collect();
    ctx.say(&format!(
        "snapshotted {}: {snap} ({}{})",
        rec.name,
        what.join(", "),
        if memory { " and its memory" } else { "" }
    ));
    Ok(())
}

#[derive(Serialize)]
struct Row {
    name: String,
    parent: Option<String>,
    created_at: String,
    /// The machine's state when it was taken.
    state: String,
    memory: bool,
    /// Bytes its frozen files (and memory image) take.
    size_bytes: u64,
    /// The machine runs on top of it now.
    current: bool,
    disks: Vec<DiskRow>,
}

#[derive(Serialize)]
struct DiskRow {
    target: String,
    file: String,
}

fn rows(records: &[SnapshotRecord], g: &Graph) -> Vec<Row> {
    let points = all_points(records);
    let current = g.current(&points);
    records
        .iter()
        .map(|s| {
            let parent = s.disks.first().and_then(|(t, f)| g.parent(f, t, &points));
            let mem = s
                .memory
                .as_ref()
                .and_then(|m| std::fs::metadata(m).ok())
                .map_or(0, |m| m.len());
            Row {
                name: s.name.clone(),
                parent,
                created_at: s.created_at.clone(),
                state: s.state.clone(),
                memory: s.memory.is_some(),
                size_bytes: mem
                    + s.disks
                        .iter()
                        .filter_map(|(_, f)| g.sizes.get(f))
                        .sum::<u64>(),
                current: current.as_deref() == Some(s.name.as_str()),
                disks: s
                    .disks
                    .iter()
                    .map(|(t, f)| DiskRow {
                        target: t.clone(),
                        file: f.clone(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Depth-first, oldest child first: each row with its depth in the tree.
fn tree(rows: &[Row]) -> Vec<(usize, &Row)> {
    fn walk<'a>(
        rows: &'a [Row],
        parent: Option<&str>,
        depth: usize,
        out: &mut Vec<(usize, &'a Row)>,
    ) {
        for r in rows.iter().filter(|r| r.parent.as_deref() == parent) {
            out.push((depth, r));
            walk(rows, Some(&r.name), depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(rows, None, 0, &mut out);
    // A parent that is not a snapshot any more (cannot happen by the
    // plans, but a row must never vanish from the list).
    for r in rows {
        if !out.iter().any(|(_, o)| o.name == r.name) {
            out.push((0, r));
        }
    }
    out
}

fn list(ctx: &Ctx, store: &Store, host: &str, drv: &dyn Driver, rec: &MachineRecord) -> Result<()> {
    let records = store.snapshots(host, &rec.name)?;
    let g = drv.snapshot_graph(&rec.name)?;
    let rows = rows(&records, &g);
    output::emit(ctx.global.format, &rows, || {
        let mut t = Table::new(["SNAPSHOT", "CREATED", "STATE", "MEMORY", "SIZE", "CURRENT"]);
        for (depth, r) in tree(&rows) {
            t.row([
                format!("{}{}", "  ".repeat(depth), r.name),
                r.created_at.clone(),
                r.state.clone(),
                if r.memory { "yes" } else { "no" }.to_string(),
                crate::size::Size(r.size_bytes).to_string(),
                if r.current { "*" } else { "" }.to_string(),
            ]);
        }
        t
    })
}

fn revert(
    ctx: &Ctx,
    store: &Store,
    host: &str,
    drv: &dyn Driver,
    rec: &MachineRecord,
    snap: &str,
) -> Result<()> {
    let s = find(store, host, rec, snap)?;
    let records = store.snapshots(host, &rec.name)?;
    let g = drv.snapshot_graph(&rec.name)?;
    let points = all_points(&records);
    // The files a revert throws away must be nobody's point.
    if let Some((_, f)) = g
        .disks
        .iter()
        .find(|(_, f)| points.iter().any(|p| &p.file == f))
    {
        return Err(Error::corrupt(format!(
            "machine {:?} writes to {f}, which a snapshot records as frozen; not reverting",
            rec.name
        )));
    }
    let state = drv.state(&rec.name)?;
    confirm(
        ctx,
        &format!(
            "revert {} to snapshot {snap}? what it wrote since its last snapshot is lost{}",
            rec.name,
            if state.is_active() {
                " and it is powered off now"
            } else {
                ""
            }
        ),
    )?;
    if let Some(m) = &s.memory {
        if !std::path::Path::new(m).is_file() {
            return Err(Error::corrupt(format!(
                "snapshot {snap}'s memory image {m} is missing; nothing was changed"
            )));
        }
    }
    drv.snapshot_revert(
        &rec.name,
        &s.disks,
        s.memory.as_deref().map(std::path::Path::new),
        s.state == "paused",
        state.is_active(),
    )?;
    let now = match (&s.memory, state.is_active()) {
        (Some(_), _) => format!("resumed as it was ({})", s.state),
        (None, true) => "started again".to_string(),
        (None, false) => "shut off".to_string(),
    };
    ctx.say(&format!("reverted {} to {snap}: {now}", rec.name));
    Ok(())
}

/// Delete one snapshot: its record first (a merge cut short must never
/// leave a record whose file holds other data), then the plan, step by
/// step, each record that moves moved as its step comes.
fn delete(
    store: &mut Store,
    host: &str,
    drv: &dyn Driver,
    rec: &MachineRecord,
    s: &SnapshotRecord,
) -> Result<()> {
    let records = store.snapshots(host, &rec.name)?;
    let g = drv.snapshot_graph(&rec.name)?;
    let steps = snapshot::delete_plan(&g, &all_points(&records), &s.name)?;
    store.remove_snapshot(host, &rec.name, &s.name)?;
    if let Some(m) = &s.memory {
        let _ = std::fs::remove_file(m);
    }
    for step in &steps {
        match step {
            Step::Repoint {
                snapshot,
                target,
                to,
            } => store.repoint_snapshot(host, &rec.name, snapshot, target, to)?,
            other => drv
                .snapshot_steps(&rec.name, std::slice::from_ref(other))
                .map_err(|e| {
                    Error::new(
                        e.kind(),
                        format!(
                            "snapshot {} of {:?} is deleted, but merging its files stopped: {} \
                             (the machine's data is whole; its chain keeps the file)",
                            s.name,
                            rec.name,
                            e.message()
                        ),
                    )
                })?,
        }
    }
    Ok(())
}

fn export(
    ctx: &Ctx,
    store: &mut Store,
    host: &str,
    drv: &dyn Driver,
    rec: &MachineRecord,
    image: &str,
    disk: Option<&str>,
) -> Result<()> {
    names::check(What::Image, image)?;
    if rec.backend == Backend::Xen {
        return Err(Error::invalid(format!(
            "{:?} is a xen machine: its disks are raw files in dom0, which creature cannot \
             export as an image yet",
            rec.name
        )));
    }
    if store.image(image)?.is_some() {
        return Err(Error::conflict(format!("image {image:?} already exists")));
    }
    let g = drv.snapshot_graph(&rec.name)?;
    let target = match disk {
        Some(d) => g
            .disks
            .iter()
            .find(|(t, _)| t == d)
            .map(|(t, _)| t.clone())
            .ok_or_else(|| {
                Error::not_found(format!(
                    "machine {:?} has no disk {d} creature made",
                    rec.name
                ))
            })?,
        None => g.disks.first().map(|(t, _)| t.clone()).ok_or_else(|| {
            Error::conflict(format!("machine {:?} has no disk to export", rec.name))
        })?,
    };
    let cache = crate::image::Cache::new(&ctx.global.state_dir);
    cache.ensure()?;
    let tmp = cache.temp("export");
    let made = if g.running {
        // A running machine writes to its active file: freeze it for the copy.
        let temp = format!("export-{}", std::process::id());
        let disks = drv.snapshot_take(&rec.name, &temp, None)?;
        let frozen = disks
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, f)| f.clone())
            .expect("every disk is snapshotted");
        let copied = crate::image::flatten::flatten(&frozen, &tmp.path, ctx.global.quiet);
        let points = snapshot::points(&temp, &disks);
        let merged = drv.snapshot_graph(&rec.name).and_then(|g| {
            let steps = snapshot::delete_plan(&g, &points, &temp)?;
            drv.snapshot_steps(&rec.name, &steps)
        });
        copied.and(merged)
    } else {
        let active = &g.disks.iter().find(|(t, _)| *t == target).expect("found").1;
        crate::image::flatten::flatten(active, &tmp.path, ctx.global.quiet)
    };
    made?;
    let img = crate::image::adopt(
        store,
        &cache,
        image,
        tmp,
        "disk.qcow2",
        &format!("export:{host}/{}:{target}", rec.name),
    )?;
    let f = img.files.first().expect("one file");
    ctx.say(&format!(
        "exported {} ({target}) as image {image}: {} (sha256 {})",
        rec.name,
        crate::size::Size(f.size),
        f.sha256
    ));
    Ok(())
}
