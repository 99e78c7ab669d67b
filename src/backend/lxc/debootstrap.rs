//! Debian root filesystems with debootstrap, cached in two layers under
//! `<state>/images/rootfs/<key>/`, keyed by release, mirror, variant and
//! packages: `debs.tgz` (the downloaded packages, `debootstrap
//! --make-tarball`; needs the network) and `tree/` (the installed system,
//! `--unpack-tarball`; offline). The first create of a key builds the tree;
//! later ones copy it.

use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Context, Error, Kind, Result};
use crate::interrupt;
use crate::template::schema::Rootfs;

pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";
pub const DEFAULT_VARIANT: &str = "minbase";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Key {
    pub release: String,
    pub mirror: String,
    pub variant: String,
    pub packages: Vec<String>,
}

impl Key {
    pub fn of(r: &Rootfs) -> Key {
        let mut packages = r.packages.clone();
        packages.sort();
        packages.dedup();
        Key {
            release: r.release.clone().unwrap_or_default(),
            mirror: r.mirror.clone().unwrap_or_else(|| DEFAULT_MIRROR.into()),
            variant: r.variant.clone().unwrap_or_else(|| DEFAULT_VARIANT.into()),
            packages,
        }
    }

    /// A stable name for the cache directory.
    pub fn id(&self) -> String {
        let canon = toml::to_string(self).expect("a key renders");
        let h = Sha256::digest(canon.as_bytes());
        format!("{}-{}", self.release, &crate::image::cache::hex(&h)[..12])
    }

    fn args(&self) -> Vec<String> {
        let mut a = vec![format!("--variant={}", self.variant)];
        if !self.packages.is_empty() {
            a.push(format!("--include={}", self.packages.join(",")));
        }
        a
    }
}

pub struct Cache {
    pub dir: PathBuf,
    pub key: Key,
    state_dir: PathBuf,
    /// `dir` below the state directory.
    rel: String,
}

/// How a root filesystem was obtained, for the create's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Built,
    Cached,
}

impl Cache {
    pub fn new(state_dir: &Path, key: Key) -> Cache {
        let rel = format!("images/rootfs/{}", key.id());
        Cache {
            dir: state_dir.join(&rel),
            key,
            state_dir: state_dir.to_path_buf(),
            rel,
        }
    }

    pub fn debs(&self) -> PathBuf {
        self.dir.join("debs.tgz")
    }

    pub fn tree(&self) -> PathBuf {
        self.dir.join("tree")
    }

    fn ensure_dir(&self) -> Result<()> {
        crate::statedir::subdir(&self.state_dir, &self.rel, 0o711)?;
        let desc = toml::to_string(&self.key)
            .map_err(|e| Error::other("cannot render the key").caused_by(e))?;
        let path = self.dir.join("key.toml");
        std::io::Write::write_all(
            &mut crate::statedir::rewrite(&path, 0o644)?,
            desc.as_bytes(),
        )
        .context(Kind::Other, || format!("cannot write {}", path.display()))
    }

    /// One builder per key at a time: a second create waits for the first.
    fn lock(&self) -> Result<fs::File> {
        crate::statedir::lock_file(&self.dir.join("lock"))
    }

    /// Download the packages (needs the network). Nothing if already cached.
    pub fn download(&self, quiet: bool) -> Result<PathBuf> {
        self.ensure_dir()?;
        let _lock = self.lock()?;
        if self.debs().exists() {
            return Ok(self.debs());
        }
        let part = self
            .dir
            .join(format!("debs.tgz.{}.part", std::process::id()));
        let work = self.dir.join(format!("download.{}", std::process::id()));
        let mut cmd = Command::new("debootstrap");
        cmd.arg(format!("--make-tarball={}", part.display()))
            .args(self.key.args())
            .arg(&self.key.release)
            .arg(&work)
            .arg(&self.key.mirror);
        let r = run(
            cmd,
            &format!("downloading Debian {} packages", self.key.release),
            &self.dir,
            quiet,
        );
        let _ = fs::remove_dir_all(&work);
        match r {
            Ok(()) => {
                fs::rename(&part, self.debs()).context(Kind::Other, || {
                    "cannot move the packages into the cache".into()
                })?;
                Ok(self.debs())
            }
            Err(e) => {
                let _ = fs::remove_file(&part);
                Err(e)
            }
        }
    }

    /// The installed tree, built from the packages when not cached yet.
    pub fn tree_or_build(&self, quiet: bool) -> Result<(PathBuf, Origin)> {
        if self.tree().is_dir() {
            return Ok((self.tree(), Origin::Cached));
        }
        let debs = self.download(quiet)?;
        let _lock = self.lock()?;
        if self.tree().is_dir() {
            return Ok((self.tree(), Origin::Cached)); // built while we waited
        }
        let tmp = self.dir.join(format!("tree.{}.part", std::process::id()));
        let mut cmd = Command::new("debootstrap");
        cmd.arg(format!("--unpack-tarball={}", debs.display()))
            .args(self.key.args())
            .arg(&self.key.release)
            .arg(&tmp);
        let r = run(
            cmd,
            &format!("installing Debian {}", self.key.release),
            &self.dir,
            quiet,
        );
        if let Err(e) = r {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, self.tree())
            .context(Kind::Other, || "cannot move the tree into the cache".into())?;
        Ok((self.tree(), Origin::Built))
    }
}

impl Cache {
    /// The tree for an id range: the installed tree itself, or a copy of it
    /// owned by the range (cached too, so later unprivileged creates only copy).
    pub fn tree_for(
        &self,
        map: Option<&crate::backend::lxc::config::IdMap>,
        quiet: bool,
    ) -> Result<(PathBuf, Origin)> {
        let (base, origin) = self.tree_or_build(quiet)?;
        let Some(m) = map else {
            return Ok((base, origin));
        };
        let shifted = self
            .dir
            .join(format!("tree-{}-{}", m.uid_start, m.gid_start));
        if shifted.is_dir() {
            return Ok((shifted, origin));
        }
        let _lock = self.lock()?;
        if shifted.is_dir() {
            return Ok((shifted, origin));
        }
        let tmp = self.dir.join(format!("shift.{}.part", std::process::id()));
        let made =
            copy_tree(&base, &tmp).and_then(|_| crate::backend::lxc::idmap::shift_tree(&tmp, m));
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &shifted).context(Kind::Other, || {
            "cannot move the shifted tree into the cache".into()
        })?;
        Ok((shifted, Origin::Built))
    }
}

/// Copy a cached tree to a container's rootfs: reflinks where the
/// filesystem has them, a plain copy otherwise.
pub fn copy_tree(tree: &Path, dest: &Path) -> Result<()> {
    let out = Command::new("cp")
        .args(["-a", "--reflink=auto", "--"])
        .arg(tree)
        .arg(dest)
        .output()
        .context(Kind::Unavailable, || "cannot run cp".into())?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(dest);
        let what = format!(
            "cannot copy the cached root filesystem to {}",
            dest.display()
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let e = if err.contains("No space left") || err.contains("Disk quota exceeded") {
            crate::statedir::full(dest, &what)
        } else {
            Error::other(what)
        };
        return Err(e.caused_by(err.trim()));
    }
    Ok(())
}

/// Run a long program: its output goes to a log in the cache directory; a
/// spinner on a terminal, a line every 10 s otherwise; Ctrl-C stops it.
fn run(mut cmd: Command, what: &str, dir: &Path, quiet: bool) -> Result<()> {
    let log_path = dir.join("debootstrap.log");
    let log = crate::statedir::rewrite(&log_path, 0o600)?;
    let log2 = log
        .try_clone()
        .context(Kind::Other, || "cannot duplicate the log".into())?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2))
        .spawn()
        .map_err(|e| {
            Error::unavailable("cannot run debootstrap (apt-get install debootstrap)").caused_by(e)
        })?;
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_message(what.to_string());
        b.enable_steady_tick(Duration::from_millis(120));
        b
    });
    let start = Instant::now();
    let mut last = Instant::now();
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .context(Kind::Other, || "cannot wait for debootstrap".into())?
        {
            break s;
        }
        if interrupt::requested() {
            let _ = child.kill();
            let _ = child.wait();
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            return Err(interrupt::error(what));
        }
        if bar.is_none() && !quiet && last.elapsed() >= Duration::from_secs(10) {
            last = Instant::now();
            eprintln!("{what}: {} s", start.elapsed().as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if !status.success() {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(4).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        let kind =
            if text.contains("Failed getting release file") || text.contains("Couldn't download") {
                Kind::Unavailable
            } else {
                Kind::Other
            };
        return Err(
            Error::new(kind, format!("{what} failed (log: {})", log_path.display()))
                .caused_by(tail.join(" | ")),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::schema::RootfsKind;

    fn rootfs(pkgs: &[&str]) -> Rootfs {
        Rootfs {
            kind: RootfsKind::Debootstrap,
            release: Some("bookworm".into()),
            mirror: None,
            variant: None,
            packages: pkgs.iter().map(|s| s.to_string()).collect(),
            source: None,
            unprivileged: None,
            overlay: None,
        }
    }

    #[test]
    fn key_ignores_package_order_and_names_the_release() {
        let a = Key::of(&rootfs(&["b", "a"]));
        let b = Key::of(&rootfs(&["a", "b", "a"]));
        assert_eq!(a.id(), b.id());
        assert!(a.id().starts_with("bookworm-"));
        assert_ne!(a.id(), Key::of(&rootfs(&["a"])).id());
        assert_eq!(a.args(), ["--variant=minbase", "--include=a,b"]);
    }
}
