//! Where a template's `source` points, as a local file or directory: a
//! cached image (by name), a URL (pulled into the cache on first use, its
//! checksum required) or a path on the host (its checksum checked when the
//! template gives one). VM disks and container root filesystems both use it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::{self, Cache, Expected};
use crate::store::Store;
use crate::template::schema::{DiskFormat, Source};

pub struct Located {
    pub path: PathBuf,
    /// Cached images: the image's name, and the file's format and virtual
    /// size as recorded at import. Paths: none (the caller inspects them).
    pub image: Option<String>,
    pub format: Option<(String, u64)>,
    /// A path's format as the template names it (`source.format`).
    pub declared: Option<&'static str>,
}

impl Located {
    /// The file's format and virtual size, read with qemu-img right before
    /// a disk is made from it: a path on the host is untrusted, and a cached
    /// file must still be what was recorded at import (disks only: a kernel
    /// or a root filesystem directory has no disk format).
    pub fn disk_format(&mut self) -> Result<(String, u64)> {
        let label = self.path.display().to_string();
        // A cached file is read as the format recorded at import.
        let named = match &self.format {
            Some((recorded, _)) => Some(recorded.as_str()),
            None => self.declared,
        };
        let f = image::format::inspect_as(&self.path, &label, named)?;
        if let Some((recorded, _)) = &self.format {
            if *recorded != f.format {
                return Err(Error::corrupt(format!(
                    "{label} was cached as {recorded} but is now {}; remove the image and import it again",
                    f.format
                )));
            }
        }
        self.format = Some((f.format.clone(), f.virtual_size));
        Ok((f.format, f.virtual_size))
    }
}

fn declared(src: &Source) -> Option<&'static str> {
    src.format.map(|f| match f {
        DiskFormat::Raw => "raw",
        DiskFormat::Qcow2 => "qcow2",
    })
}

/// Name for an image pulled on behalf of a template: the template's, or
/// with a suffix from the URL when another image has that name.
fn pull_name(store: &Store, template: &str, url: &str) -> Result<String> {
    if store.image(template)?.is_none() {
        return Ok(template.to_string());
    }
    use sha2::Digest;
    let h = image::cache::hex(&sha2::Sha256::digest(url.as_bytes()));
    Ok(format!("{template}-{}", &h[..8]))
}

pub fn locate(
    store: &mut Store,
    state_dir: &Path,
    template: &str,
    src: &Source,
    quiet: bool,
) -> Result<Located> {
    let cache = Cache::new(state_dir);
    let expected = Expected::of(src);
    let image_name = match (&src.image, &src.url, &src.path) {
        (Some(i), _, _) => i.clone(),
        (None, Some(url), _) => match store.image_by_source(url)? {
            Some(n) => n,
            None => {
                let e = expected.ok_or_else(|| Error::invalid(format!("{url}: no checksum")))?;
                let name = pull_name(store, template, url)?;
                image::pull(store, &cache, &name, url, &e, declared(src), quiet)?.name
            }
        },
        (None, None, Some(p)) => {
            let path = PathBuf::from(p);
            if !path.exists() {
                return Err(Error::not_found(format!("{p} does not exist")));
            }
            if let (Some(e), true) = (&expected, path.is_file()) {
                let (s256, s512) = image::cache::digests(&path)?;
                e.verify(&s256, &s512)
                    .map_err(|m| Error::invalid(format!("checksum mismatch for {p}: {m}")))?;
            }
            return Ok(Located {
                path,
                image: None,
                format: None,
                declared: declared(src),
            });
        }
        (None, None, None) => return Err(Error::invalid("a source names nothing")),
    };
    let rec = store.image(&image_name)?.ok_or_else(|| {
        Error::not_found(format!(
            "image {image_name:?} is not in the cache (add it with `creature image import` or `creature image pull`)"
        ))
    })?;
    let file = match &src.file {
        Some(f) => rec.files.iter().find(|x| &x.file == f).ok_or_else(|| {
            let have: Vec<&str> = rec.files.iter().map(|x| x.file.as_str()).collect();
            Error::not_found(format!(
                "image {image_name:?} has no file {f:?} (it has {})",
                have.join(", ")
            ))
        })?,
        None if rec.files.len() == 1 => &rec.files[0],
        None => {
            return Err(Error::invalid(format!(
                "image {image_name:?} has several files; say which with `file`"
            )))
        }
    };
    Ok(Located {
        path: cache.blob(&file.sha256),
        format: Some((file.format.clone(), file.virtual_size)),
        image: Some(image_name),
        declared: None,
    })
}
