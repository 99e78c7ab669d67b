//! `creature image pull|import|list|rm`.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::ImageCommand;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
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
    image::remove(&mut store, &Cache::new(&ctx.global.state_dir), name)?;
    if !ctx.global.quiet {
        eprintln!("removed image {name}");
    }
    Ok(())
}
