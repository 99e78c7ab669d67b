//! The image cache on disk: content-addressed files under
//! `<state>/images/sha256/<hex>`, written through `<state>/images/tmp` and
//! renamed into place only once complete and checked.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256, Sha512};

use crate::error::{Context, Error, Kind, Result};
use crate::interrupt;

pub struct Cache {
    root: PathBuf,
}

/// A file in `tmp/` that is deleted unless it was committed: every failure
/// and Ctrl-C path leaves nothing behind.
pub struct TempFile {
    pub path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Cache {
    pub fn new(state_dir: &Path) -> Cache {
        Cache {
            root: state_dir.join("images"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob(&self, sha256: &str) -> PathBuf {
        self.root.join("sha256").join(sha256)
    }

    /// Make (or check) the cache's directories: QEMU traverses `sha256/`
    /// to reach backing files; `tmp/` is creature's alone.
    pub fn ensure(&self) -> Result<()> {
        let state = self
            .root
            .parent()
            .expect("the cache is below the state directory");
        crate::statedir::subdir(state, "images/sha256", 0o711)?;
        crate::statedir::subdir(state, "images/tmp", 0o700)?;
        Ok(())
    }

    /// A temporary file in the cache's own filesystem (so the final rename is atomic).
    pub fn temp(&self, stem: &str) -> TempFile {
        TempFile {
            path: self
                .root
                .join("tmp")
                .join(format!("{stem}.{}.part", std::process::id())),
            keep: false,
        }
    }

    /// Copy a local file into a temporary file, checking for Ctrl-C.
    pub fn copy_in(&self, src: &Path) -> Result<TempFile> {
        let meta = fs::metadata(src)
            .context(Kind::NotFound, || format!("cannot read {}", src.display()))?;
        if !meta.is_file() {
            return Err(Error::invalid(format!(
                "{} is not a regular file",
                src.display()
            )));
        }
        let tmp = self.temp("import");
        let mut from = fs::File::open(src)
            .context(Kind::NotFound, || format!("cannot open {}", src.display()))?;
        let mut to = crate::statedir::create_new(&tmp.path, 0o600)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            if interrupt::requested() {
                return Err(interrupt::error("import"));
            }
            let n = from
                .read(&mut buf)
                .context(Kind::Other, || format!("cannot read {}", src.display()))?;
            if n == 0 {
                break;
            }
            to.write_all(&buf[..n])
                .map_err(|e| write_error(&tmp.path, e))?;
        }
        to.sync_all().map_err(|e| write_error(&tmp.path, e))?;
        Ok(tmp)
    }

    /// Move a checked temporary file into place under its digest.
    pub fn commit(&self, mut tmp: TempFile, sha256: &str) -> Result<PathBuf> {
        let dest = self.blob(sha256);
        if dest.exists() {
            return Ok(dest); // same content already cached; tmp is dropped
        }
        fs::rename(&tmp.path, &dest).context(Kind::Other, || {
            format!("cannot move {} into the cache", tmp.path.display())
        })?;
        tmp.keep = true;
        Ok(dest)
    }

    pub fn remove_blob(&self, sha256: &str) {
        let _ = fs::remove_file(self.blob(sha256));
    }
}

fn write_error(path: &Path, e: std::io::Error) -> Error {
    crate::statedir::io_error(
        Kind::Other,
        path,
        format!("cannot write {}", path.display()),
        e,
    )
}

/// sha256 and sha512 of a file, in one read (a download is checked
/// against whichever its source names).
pub fn digests(path: &Path) -> Result<(String, String)> {
    let (mut a, mut b) = (Sha256::new(), Sha512::new());
    read_through(path, |chunk| {
        a.update(chunk);
        b.update(chunk);
    })?;
    Ok((hex(&a.finalize()), hex(&b.finalize())))
}

/// sha256 alone, the cache's address: sha512 costs three times as much
/// where the CPU hashes sha256 in hardware.
pub fn sha256(path: &Path) -> Result<String> {
    let mut a = Sha256::new();
    read_through(path, |chunk| a.update(chunk))?;
    Ok(hex(&a.finalize()))
}

fn read_through(path: &Path, mut each: impl FnMut(&[u8])) -> Result<()> {
    let mut f =
        fs::File::open(path).context(Kind::Other, || format!("cannot open {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if interrupt::requested() {
            return Err(interrupt::error("checksum"));
        }
        let n = f
            .read(&mut buf)
            .context(Kind::Other, || format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        each(&buf[..n]);
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
