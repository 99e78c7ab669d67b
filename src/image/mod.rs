//! The image cache: named images made of content-addressed files, imported
//! from local files or pulled by URL with a checksum.

pub mod cache;
pub mod fetch;
pub mod flatten;
pub mod format;
pub mod prune;
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
            let label = f.display().to_string();
            records.push(file_record(
                cache,
                tmp,
                &file_name(f)?,
                &label,
                declared,
                &mut committed,
            )?);
        }
        store.add_image(name, "import", &records)
    })();
    finish(store, cache, name, result, committed)
}

/// A file made in the cache's temporary area (`snapshot export`) as an
/// image of its own, from `source` (what made it).
pub fn adopt(
    store: &mut Store,
    cache: &Cache,
    name: &str,
    tmp: cache::TempFile,
    file: &str,
    source: &str,
) -> Result<ImageRecord> {
    names::check(What::Image, name)?;
    let mut committed = Vec::new();
    let result = file_record(cache, tmp, file, file, None, &mut committed)
        .and_then(|r| store.add_image(name, source, &[r]));
    finish(store, cache, name, result, committed)
}

/// Check a temporary file's format, and move it into place under its
/// digest (`committed` collects what is new, for undoing).
fn file_record(
    cache: &Cache,
    tmp: cache::TempFile,
    file: &str,
    label: &str,
    declared: Option<&str>,
    committed: &mut Vec<String>,
) -> Result<ImageFile> {
    let fmt = format::inspect_as(&tmp.path, label, declared)?;
    let size = std::fs::metadata(&tmp.path).map(|m| m.len()).unwrap_or(0);
    let sha256 = cache::sha256(&tmp.path)?;
    let fresh = !cache.blob(&sha256).exists();
    cache.commit(tmp, &sha256)?;
    if fresh {
        committed.push(sha256.clone());
    }
    Ok(ImageFile {
        file: file.to_string(),
        sha256,
        size,
        format: fmt.format,
        virtual_size: fmt.virtual_size,
    })
}

/// The image's record once made, or its new files removed after a failure.
fn finish(
    store: &mut Store,
    cache: &Cache,
    name: &str,
    result: Result<()>,
    committed: Vec<String>,
) -> Result<ImageRecord> {
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
