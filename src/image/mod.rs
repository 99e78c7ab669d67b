//! The image cache: named images made of content-addressed files, imported
//! from local files or pulled by URL with a checksum.

pub mod cache;
pub mod fetch;
pub mod format;
pub mod source;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::store::{ImageFile, ImageRecord, Store};

pub use cache::Cache;
pub use fetch::Expected;

/// The file name an image file is known by inside its image.
fn file_name(p: &Path) -> Result<String> {
    p.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.starts_with('.') && n.chars().all(|c| !c.is_control()))
        .map(str::to_string)
        .ok_or_else(|| Error::invalid(format!("{}: unusable file name", p.display())))
}

/// Copy local files into the cache as one image (a disk, or a kernel and
/// its initramfs).
pub fn import(
    store: &mut Store,
    cache: &Cache,
    name: &str,
    files: &[PathBuf],
    declared: Option<&str>,
) -> Result<ImageRecord> {
    names::check(What::Image, name)?;
    if store.image(name)?.is_some() {
        return Err(Error::conflict(format!("image {name:?} already exists")));
    }
    let mut seen = std::collections::BTreeSet::new();
    for f in files {
        if !seen.insert(file_name(f)?) {
            return Err(Error::invalid(format!(
                "two files named {:?} in one image",
                file_name(f)?
            )));
        }
    }
    cache.ensure()?;
    let mut records = Vec::new();
    let mut committed = Vec::new();
    let result = (|| {
        for f in files {
            let tmp = cache.copy_in(f)?;
            let fmt = format::inspect_as(&tmp.path, &f.display().to_string(), declared)?;
            let size = std::fs::metadata(&tmp.path).map(|m| m.len()).unwrap_or(0);
            let (sha256, _) = cache::digests(&tmp.path)?;
            let fresh = !cache.blob(&sha256).exists();
            cache.commit(tmp, &sha256)?;
            if fresh {
                committed.push(sha256.clone());
            }
            records.push(ImageFile {
                file: file_name(f)?,
                sha256,
                size,
                format: fmt.format,
                virtual_size: fmt.virtual_size,
            });
        }
        store.add_image(name, "import", &records)
    })();
    if let Err(e) = result {
        for sha in committed {
            cache.remove_blob(&sha);
        }
        return Err(e);
    }
    store
        .image(name)?
        .ok_or_else(|| Error::other("image vanished after import"))
}

/// Download an image by URL into the cache.
pub fn pull(
    store: &mut Store,
    cache: &Cache,
    name: &str,
    url: &str,
    expected: &Expected,
    declared: Option<&str>,
    quiet: bool,
) -> Result<ImageRecord> {
    names::check(What::Image, name)?;
    if store.image(name)?.is_some() {
        return Err(Error::conflict(format!("image {name:?} already exists")));
    }
    cache.ensure()?;
    let (tmp, sha256) = fetch::download(cache, url, expected, quiet)?;
    let fmt = format::inspect_as(&tmp.path, url, declared)?;
    let size = std::fs::metadata(&tmp.path).map(|m| m.len()).unwrap_or(0);
    let file = url
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && !s.starts_with('.'))
        .unwrap_or("image")
        .to_string();
    let fresh = !cache.blob(&sha256).exists();
    cache.commit(tmp, &sha256)?;
    let rec = ImageFile {
        file,
        sha256: sha256.clone(),
        size,
        format: fmt.format,
        virtual_size: fmt.virtual_size,
    };
    if let Err(e) = store.add_image(name, url, &[rec]) {
        if fresh {
            cache.remove_blob(&sha256);
        }
        return Err(e);
    }
    store
        .image(name)?
        .ok_or_else(|| Error::other("image vanished after pull"))
}

/// Remove an image no machine uses, and the files only it used.
pub fn remove(store: &mut Store, cache: &Cache, name: &str) -> Result<()> {
    names::check(What::Image, name)?;
    for sha in store.remove_image(name)? {
        cache.remove_blob(&sha);
    }
    Ok(())
}
