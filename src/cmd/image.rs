//! `creature image pull|import|list|rm`.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::ImageCommand;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::image::prune::{self, CachedImage, RootfsCache};
use crate::image::{self, Cache, Expected};
use crate::names::{self, What};
use crate::output::{self, Table};
use crate::store::{ImageRecord, Store};
use crate::template::{self, HostLimits, Library};

#[derive(Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    image: &'a ImageRecord,
    size: u64,
}

fn human(b: u64) -> String {
    crate::size::Size(b).human()
}

fn expected(sha256: Option<String>, sha512: Option<String>) -> Result<Expected> {
    let hex = |h: &str, n: usize| h.len() == n && h.bytes().all(|b| b.is_ascii_hexdigit());
    match (sha256, sha512) {
        (Some(h), _) if hex(&h, 64) => Ok(Expected::Sha256(h.to_ascii_lowercase())),
        (Some(h), _) => Err(Error::invalid(format!(
            "--sha256 {h:?} is not 64 hex digits"
        ))),
        (None, Some(h)) if hex(&h, 128) => Ok(Expected::Sha512(h.to_ascii_lowercase())),
        (None, Some(h)) => Err(Error::invalid(format!(
            "--sha512 {h:?} is not 128 hex digits"
        ))),
        (None, None) => Err(Error::invalid(
            "a URL needs --sha256 or --sha512: creature never caches an image it cannot check",
        )),
    }
}

fn show(ctx: &Ctx, rec: &ImageRecord) -> Result<()> {
    if ctx.global.quiet {
        return Ok(());
    }
    let files: Vec<String> = rec
        .files
        .iter()
        .map(|f| format!("{} ({}, {})", f.file, f.format, human(f.size)))
        .collect();
    output::emit(ctx.global.format, rec, || {
        let mut t = Table::new(["IMAGE", "FILES", "SOURCE"]);
        t.row([rec.name.clone(), files.join(", "), rec.source.clone()]);
        t
    })
}

pub fn run(ctx: &Ctx, cmd: ImageCommand) -> Result<()> {
    match cmd {
        ImageCommand::Import {
            files,
            name,
            image_format,
        } => import(ctx, &files, name, image_format.as_deref()),
        ImageCommand::Pull {
            source,
            sha256,
            sha512,
            name,
            image_format,
        } => pull(ctx, &source, name, sha256, sha512, image_format.as_deref()),
        ImageCommand::List => list(ctx),
        ImageCommand::Rm { image } => remove(ctx, &image),
        ImageCommand::Prune { dry_run } => prune(ctx, dry_run),
    }
}

fn import(
    ctx: &Ctx,
    files: &[PathBuf],
    name: Option<String>,
    declared: Option<&str>,
) -> Result<()> {
    let name = match name {
        Some(n) => n,
        None => files
            .first()
            .and_then(|f| f.file_stem())
            .and_then(|s| s.to_str())
            .map(str::to_string)
            .filter(|s| names::is_valid(s))
            .ok_or_else(|| {
                Error::invalid("give the image a --name (the file name is not a valid name)")
            })?,
    };
    names::check(What::Image, &name)?;
    crate::interrupt::catch();
    let mut store = Store::open(&ctx.global.state_dir)?;
    let rec = image::import(
        &mut store,
        &Cache::new(&ctx.global.state_dir),
        &name,
        files,
        declared,
    )?;
    show(ctx, &rec)
}

/// One download: (image name, URL, checksum).
type Job = (String, String, Expected);

fn pull(
    ctx: &Ctx,
    source: &str,
    name: Option<String>,
    sha256: Option<String>,
    sha512: Option<String>,
    declared: Option<&str>,
) -> Result<()> {
    if let Some(n) = &name {
        names::check(What::Image, n)?;
    }
    let jobs = if source.starts_with("http://") || source.starts_with("https://") {
        let default = source
            .rsplit('/')
            .next()
            .and_then(|f| f.split('.').next())
            .map(str::to_ascii_lowercase)
            .filter(|s| names::is_valid(s));
        let n = name
            .or(default)
            .ok_or_else(|| Error::invalid("give the image a --name"))?;
        vec![(n, source.to_string(), expected(sha256, sha512)?)]
    } else {
        match template_jobs(ctx, source, name)? {
            Some(jobs) => jobs,
            None => return Ok(()),
        }
    };
    crate::interrupt::catch();
    let mut store = Store::open(&ctx.global.state_dir)?;
    let cache = Cache::new(&ctx.global.state_dir);
    for (n, url, e) in jobs {
        let rec = image::pull(&mut store, &cache, &n, &url, &e, declared, ctx.global.quiet)?;
        show(ctx, &rec)?;
    }
    Ok(())
}

/// What pulling a template means: its one downloadable disk image, or for
/// a container template its packages (fetched here; None is returned).
fn template_jobs(ctx: &Ctx, source: &str, name: Option<String>) -> Result<Option<Vec<Job>>> {
    names::check(What::Template, source)?;
    let r = template::resolve(&Library::new(None), source, &[], HostLimits::local())?;
    if let Some(rootfs) = &r.template.rootfs {
        crate::interrupt::catch();
        if let Some(debs) =
            crate::backend::lxc::prefetch(&ctx.global.state_dir, rootfs, ctx.global.quiet)?
        {
            ctx.say(&format!(
                "cached the packages of {source} in {}",
                debs.display()
            ));
            return Ok(None);
        }
    }
    let urls: Vec<Job> = r
        .disks()
        .iter()
        .filter_map(|d| d.source.as_ref())
        .filter_map(|s| {
            let url = s.url.clone()?;
            let e = s
                .sha256
                .clone()
                .map(Expected::Sha256)
                .or_else(|| s.sha512.clone().map(Expected::Sha512))?;
            Some((name.clone().unwrap_or_else(|| source.to_string()), url, e))
        })
        .collect();
    if urls.len() != 1 {
        return Err(Error::invalid(format!(
            "template {source:?} has {} downloadable disk images; pull by URL instead",
            urls.len()
        )));
    }
    Ok(Some(urls))
}

fn list(ctx: &Ctx) -> Result<()> {
    let images: Vec<ImageRecord> = match Store::open_read_only(&ctx.global.state_dir)? {
        Some(s) => s
            .image_names()?
            .iter()
            .filter_map(|n| s.image(n).transpose())
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let rows: Vec<Row> = images
        .iter()
        .map(|i| Row {
            image: i,
            size: i.files.iter().map(|f| f.size).sum(),
        })
        .collect();
    output::emit(ctx.global.format, &rows, || {
        let mut t = Table::new(["IMAGE", "FILES", "SIZE", "USED BY", "SOURCE"]);
        for r in &rows {
            t.row([
                r.image.name.clone(),
                r.image
                    .files
                    .iter()
                    .map(|f| format!("{} ({})", f.file, f.format))
                    .collect::<Vec<_>>()
                    .join(", "),
                human(r.size),
                if r.image.used_by.is_empty() {
                    "-".into()
                } else {
                    r.image.used_by.join(",")
                },
                r.image.source.clone(),
            ]);
        }
        t
    })
}

fn remove(ctx: &Ctx, name: &str) -> Result<()> {
    names::check(What::Image, name)?;
    let mut store = Store::open(&ctx.global.state_dir)?;
    // The record says who uses it; the disks say what still backs onto it.
    if let Some(rec) = store.image(name)? {
        let backing = backing_refs(&ctx.global.state_dir);
        if let Some(why) = prune::image_needed(&cached(&rec), &backing) {
            return Err(Error::conflict(format!(
                "image {name:?} is still needed: {why}; delete those machines first"
            )));
        }
    }
    image::remove(&mut store, &Cache::new(&ctx.global.state_dir), name)?;
    if !ctx.global.quiet {
        eprintln!("removed image {name}");
    }
    Ok(())
}

fn cached(rec: &ImageRecord) -> CachedImage {
    CachedImage {
        name: rec.name.clone(),
        blobs: rec
            .files
            .iter()
            .map(|f| (f.sha256.clone(), f.size))
            .collect(),
        users: rec.used_by.clone(),
    }
}

/// Directories of the state directory that hold qcow2 files made by
/// creature: machines' disks and snapshots, block volumes, rescue overlays.
const DISK_DIRS: [&str; 3] = ["disks", "volumes", "rescue"];

/// Every cached blob some disk file backs onto, with those files.
fn backing_refs(state_dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for d in DISK_DIRS {
        let Ok(rd) = std::fs::read_dir(state_dir.join(d)) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let mut head = vec![0u8; 64 << 10];
            let n = std::fs::File::open(&path)
                .and_then(|mut f| f.read(&mut head))
                .unwrap_or(0);
            head.truncate(n);
            if let Some(b) = prune::qcow2_backing(&head) {
                if let Some(sha) = prune::blob_of(&b) {
                    out.entry(sha.to_string()).or_default().push(path);
                }
            }
        }
    }
    out
}

/// Bytes a tree takes on disk, each inode once, symlinks not followed.
fn tree_bytes(dir: &Path) -> u64 {
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

/// The debootstrap caches and the containers whose overlay root lies on each.
fn rootfs_caches(state_dir: &Path) -> Vec<RootfsCache> {
    let root = state_dir.join("images/rootfs");
    let Ok(rd) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let lowers = container_lowers();
    let mut out: Vec<RootfsCache> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| {
            let dir = e.path();
            RootfsCache {
                id: e.file_name().to_string_lossy().into_owned(),
                bytes: tree_bytes(&dir),
                users: lower_users(&dir, &lowers),
                busy: crate::statedir::lock_busy(&dir.join("lock")),
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// (container, lower layer) of every overlay-rooted container in lxcpath,
/// read from its config (creature's or not: a foreign container on the
/// tree keeps it too).
fn container_lowers() -> Vec<(String, PathBuf)> {
    use crate::backend::lxc::config::RootfsPath;
    let Ok(rd) = std::fs::read_dir(crate::backend::lxc::sys::lxcpath()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("config")) else {
            continue;
        };
        for l in text.lines() {
            let Some((k, v)) = l.split_once('=') else {
                continue;
            };
            if k.trim() != "lxc.rootfs.path" {
                continue;
            }
            if let RootfsPath::Overlay { lower, .. } = RootfsPath::parse(v.trim()) {
                out.push((e.file_name().to_string_lossy().into_owned(), lower.into()));
            }
        }
    }
    out
}

/// The containers whose lower layer is in the cache directory `dir` (its
/// tree, or a tree shifted for unprivileged containers beside it).
fn lower_users(dir: &Path, lowers: &[(String, PathBuf)]) -> Vec<String> {
    lowers
        .iter()
        .filter(|(_, l)| l.starts_with(dir))
        .map(|(c, _)| c.clone())
        .collect()
}

#[derive(Serialize)]
struct PruneView<'a> {
    dry_run: bool,
    #[serde(flatten)]
    plan: &'a prune::Plan,
    freed_bytes: u64,
}

fn prune(ctx: &Ctx, dry_run: bool) -> Result<()> {
    let state_dir = &ctx.global.state_dir;
    let images: Vec<CachedImage> = match Store::open_read_only(state_dir)? {
        Some(s) => s
            .image_names()?
            .iter()
            .filter_map(|n| s.image(n).transpose())
            .map(|r| r.map(|r| cached(&r)))
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let plan = prune::plan(&images, &backing_refs(state_dir), &rootfs_caches(state_dir));
    let verb = if dry_run { "would remove" } else { "removing" };
    if ctx.global.format != output::Format::Json {
        for k in &plan.keep {
            ctx.say(&format!("keeping {} {}: {}", k.kind, k.name, k.why));
        }
        for r in &plan.remove {
            ctx.say(&format!(
                "{verb} {} {} ({})",
                r.kind,
                r.name,
                human(r.bytes)
            ));
        }
    }
    let json = ctx.global.format == output::Format::Json;
    let emit = |freed_bytes| {
        let view = PruneView {
            dry_run,
            plan: &plan,
            freed_bytes,
        };
        output::emit(output::Format::Json, &view, || Table::new(["-"]))
    };
    if plan.remove.is_empty() || dry_run {
        if json {
            return emit(0);
        }
        ctx.say(&if plan.remove.is_empty() {
            "nothing to prune: every cached image and root filesystem is in use".to_string()
        } else {
            format!("would free {}", human(plan.bytes()))
        });
        return Ok(());
    }
    crate::cmd::lifecycle::confirm(
        ctx,
        &format!(
            "remove {} cached item(s), {}",
            plan.remove.len(),
            human(plan.bytes())
        ),
    )?;
    let cache = Cache::new(state_dir);
    let mut store = Store::open(state_dir)?;
    let mut freed = 0;
    let mut failed = Vec::new();
    for r in &plan.remove {
        let done = match r.kind {
            // Checked again under the database's write lock: a create that
            // started since the plan was made keeps its image.
            "image" => image::remove(&mut store, &cache, &r.name),
            _ => remove_rootfs(state_dir, &r.name),
        };
        match done {
            Ok(()) => freed += r.bytes,
            Err(e) => failed.push(format!("{} {}: {}", r.kind, r.name, e.message())),
        }
    }
    if json {
        emit(freed)?;
    } else {
        ctx.say(&format!("freed {}", human(freed)));
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::conflict(format!(
            "not pruned: {}",
            failed.join("; ")
        )))
    }
}

/// A root filesystem cache goes under its own lock, and only if no
/// container took it as lower layer since the plan was made.
fn remove_rootfs(state_dir: &Path, id: &str) -> Result<()> {
    if id.is_empty() || id.starts_with('.') || id.contains('/') {
        return Err(Error::invalid(format!(
            "{id:?} is not a root filesystem cache"
        )));
    }
    let dir = state_dir.join("images/rootfs").join(id);
    let _lock = crate::statedir::lock_file(&dir.join("lock"))?;
    if let Some(c) = lower_users(&dir, &container_lowers()).first() {
        return Err(Error::conflict(format!("container {c} now uses it")));
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| Error::other(format!("cannot remove {}", dir.display())).caused_by(e))
}
