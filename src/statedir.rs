//! The state directory's own layout, made and checked safely. Everything
//! below it (the image cache, disks, logs, root filesystem caches) is
//! written by root and read by QEMU, so a symlink planted anywhere on the
//! way could redirect a write to any host file. Each directory is made one
//! component at a time and then checked without following links; new files
//! are opened with O_NOFOLLOW | O_EXCL.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Kind, Result};

/// Refuse a state path that is a symlink or that others may write: the
/// state decides what gets deleted and what QEMU opens, so it must be the
/// running user's alone. `None` when it does not exist.
pub fn check_safe(path: &Path, what: &str) -> Result<Option<fs::Metadata>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                Error::unavailable(format!("cannot inspect {what} {}", path.display()))
                    .caused_by(e),
            )
        }
    };
    if meta.file_type().is_symlink() {
        return Err(Error::corrupt(format!(
            "{what} {} is a symlink; refusing to use it",
            path.display()
        )));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Err(Error::corrupt(format!(
            "{what} {} is owned by uid {}, not by the running user (uid {euid}); refusing to use it",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Error::corrupt(format!(
            "{what} {} is writable by group or others (mode {:o}); refusing to use it (chmod go-w)",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    Ok(Some(meta))
}

/// `state_dir/rel`, made where missing (new directories get `mode`) and
/// checked component by component: each must be a real directory of the
/// running user's that nobody else can write (exit 9 otherwise).
pub fn subdir(state_dir: &Path, rel: &str, mode: u32) -> Result<PathBuf> {
    dir_checked(state_dir, "state directory")?;
    let mut path = state_dir.to_path_buf();
    for c in Path::new(rel).components() {
        let Component::Normal(part) = c else {
            return Err(Error::other(format!(
                "internal error: state subdirectory {rel:?} is not a plain relative path"
            )));
        };
        path.push(part);
        match fs::DirBuilder::new().mode(mode).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                let what = format!("cannot create {}", path.display());
                return Err(io_error(Kind::Unavailable, &path, what, e));
            }
        }
        dir_checked(&path, "state subdirectory")?;
    }
    Ok(path)
}

fn dir_checked(path: &Path, what: &str) -> Result<()> {
    match check_safe(path, what)? {
        Some(m) if m.is_dir() => Ok(()),
        Some(_) => Err(Error::corrupt(format!(
            "{what} {} is not a directory; refusing to use it",
            path.display()
        ))),
        None => Err(Error::unavailable(format!(
            "{what} {} does not exist",
            path.display()
        ))),
    }
}

/// How a file below the state directory is opened; never through a symlink.
#[derive(Clone, Copy)]
enum Open {
    /// A new file; one that exists is an error.
    New,
    /// An existing file or a new one, kept as it is (appending, locking).
    Keep,
    /// An existing file or a new one, emptied.
    Truncate,
}

fn open(path: &Path, mode: u32, how: Open) -> Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.write(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    let verb = match how {
        Open::New => {
            o.create_new(true);
            "create"
        }
        Open::Keep => {
            o.create(true).truncate(false);
            "open"
        }
        Open::Truncate => {
            o.create(true).truncate(true);
            "write"
        }
    };
    o.open(path).map_err(|e| {
        io_error(
            Kind::Other,
            path,
            format!("cannot {verb} {}", path.display()),
            e,
        )
    })
}

/// A new file, never one that exists and never through a symlink.
pub fn create_new(path: &Path, mode: u32) -> Result<fs::File> {
    open(path, mode, Open::New)
}

/// An existing file or a new one, for appending or locking, never through a
/// symlink.
pub fn open_nofollow(path: &Path, mode: u32) -> Result<fs::File> {
    open(path, mode, Open::Keep)
}

/// A file written afresh (truncated if it exists), never through a symlink.
pub fn rewrite(path: &Path, mode: u32) -> Result<fs::File> {
    open(path, mode, Open::Truncate)
}

/// flock(2) on `f`: true when taken, false when `wait` is false and
/// another process holds it.
fn flock(f: &fs::File, wait: bool, path: &Path) -> Result<bool> {
    let op = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    // SAFETY: flock on a descriptor we own; released when `f` closes.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(f), op) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(false);
    }
    Err(Error::other(format!("cannot lock {}", path.display())).caused_by(e))
}

/// An exclusive lock file (made if missing), waited for: held until the
/// returned file is dropped.
pub fn lock_file(path: &Path) -> Result<fs::File> {
    let f = open_nofollow(path, 0o600)?;
    flock(&f, true, path)?;
    Ok(f)
}

/// Held by every `volume create` from its file to its record: `repair`
/// leaves the volume pool alone while it is taken.
pub fn volumes_lock(state_dir: &Path) -> PathBuf {
    state_dir.join("volumes.lock")
}

/// Whether another process holds the lock file `path` now (creates nothing).
pub fn lock_busy(path: &Path) -> bool {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .is_ok_and(|f| flock(&f, false, path).is_ok_and(|taken| !taken))
}

fn machine_lock_path(state_dir: &Path, host: &str, name: &str) -> PathBuf {
    state_dir
        .join("locks")
        .join(host)
        .join(format!("{name}.lock"))
}

/// An exclusive lock on one machine for the length of a change (create,
/// start, stop, delete …), so two changes never interleave and `repair`
/// can tell an interrupted change from one in progress. Held by another
/// process: exit 5.
pub fn lock_machine(state_dir: &Path, host: &str, name: &str) -> Result<fs::File> {
    subdir(state_dir, &format!("locks/{host}"), 0o700)?;
    let path = machine_lock_path(state_dir, host, name);
    let f = open_nofollow(&path, 0o600)?;
    if !flock(&f, false, &path)? {
        return Err(Error::conflict(format!(
            "machine {name:?} is being changed by another command; try again when it is done"
        )));
    }
    Ok(f)
}

/// Whether another process holds machine `name`'s lock now. Creates
/// nothing: no lock file means nobody has it.
pub fn machine_busy(state_dir: &Path, host: &str, name: &str) -> bool {
    lock_busy(&machine_lock_path(state_dir, host, name))
}

/// Temporary files in the state directory whose writer is gone: cache
/// downloads and imports (`images/tmp/<stem>.<pid>.part`) and databases
/// being built (`creature.db.new-<pid>`).
pub fn stale_files(state_dir: &Path) -> Vec<PathBuf> {
    let alive = |pid: &str| {
        pid.parse::<u32>()
            .is_ok_and(|p| Path::new("/proc").join(p.to_string()).exists())
    };
    let mut out = Vec::new();
    let tmp = state_dir.join("images/tmp");
    for e in fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let pid = n.strip_suffix(".part").and_then(|s| s.rsplit('.').next());
        if pid.is_some_and(|p| !alive(p)) {
            out.push(e.path());
        }
    }
    for e in fs::read_dir(state_dir).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = n.strip_prefix("creature.db.new-") {
            if !alive(pid) {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A failed file operation on `path`: a full filesystem (ENOSPC, EDQUOT)
/// is exit 8 naming the filesystem and what is left on it; anything else
/// is `kind`.
pub fn io_error(kind: Kind, path: &Path, message: String, e: std::io::Error) -> Error {
    if space_or(kind, &e) != Kind::Exhausted {
        return Error::new(kind, message).caused_by(e);
    }
    full(path, &message).caused_by(e)
}

/// Exit 8: the filesystem holding `path` is full; says which and what is
/// left on it.
pub fn full(path: &Path, message: &str) -> Error {
    let mount = mount_point(path);
    let free = free_bytes(&mount)
        .map(|b| format!(", {} free", crate::size::Size(b).human()))
        .unwrap_or_default();
    Error::new(
        Kind::Exhausted,
        format!(
            "{message}: the filesystem at {} is full{free}",
            mount.display()
        ),
    )
}

/// file operations whose failure may be a full filesystem.
pub trait IoContext<T> {
    fn io_context(self, path: &Path, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context(self, path: &Path, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| io_error(Kind::Other, path, message(), e))
    }
}

/// The mount point holding `path` (the longest mount prefix in
/// /proc/self/mounts of its nearest existing ancestor).
fn mount_point(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() && p.pop() {}
    let p = p.canonicalize().unwrap_or(p);
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| p.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn statvfs(path: &Path) -> Option<libc::statvfs> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain data; the call fills it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a statvfs the call fills.
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0).then_some(st)
}

/// Bytes free for unprivileged writers and bytes in all, of the
/// filesystem holding `path`.
pub fn fs_space(path: &Path) -> Option<(u64, u64)> {
    statvfs(path).map(|st| (st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize))
}

fn free_bytes(mount: &Path) -> Option<u64> {
    statvfs(mount).map(|st| st.f_bavail * st.f_frsize)
}

/// Whether `path` is on a filesystem mounted read-only.
pub fn read_only_fs(path: &Path) -> bool {
    statvfs(path).is_some_and(|st| st.f_flag & libc::ST_RDONLY != 0)
}

/// A full filesystem is a pool that is exhausted (exit 8), whatever the
/// caller's kind for other failures.
fn space_or(kind: Kind, e: &std::io::Error) -> Kind {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => Kind::Exhausted,
        _ => kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn state() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("state");
        fs::create_dir(&s).unwrap();
        fs::set_permissions(&s, fs::Permissions::from_mode(0o711)).unwrap();
        (d, s)
    }

    #[test]
    fn subdirs_are_made_and_checked_at_every_level() {
        let (_d, s) = state();
        let p = subdir(&s, "images/tmp", 0o700).unwrap();
        assert!(p.is_dir());
        assert_eq!(subdir(&s, "images/tmp", 0o700).unwrap(), p);
        assert!(subdir(&s, "../x", 0o700).is_err());
    }

    #[test]
    fn a_planted_symlink_at_any_level_is_refused() {
        for planted in ["images", "images/tmp"] {
            let (d, s) = state();
            let elsewhere = d.path().join("elsewhere");
            fs::create_dir(&elsewhere).unwrap();
            let link = s.join(planted);
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
            let e = subdir(&s, "images/tmp", 0o700).unwrap_err();
            assert_eq!(e.kind(), Kind::StateCorrupt, "{planted}");
            assert!(e.message().contains("symlink"), "{}", e.message());
            assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "{planted}");
        }
    }

    #[test]
    fn new_files_are_never_opened_through_a_symlink() {
        let (d, s) = state();
        let target = d.path().join("victim");
        fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, s.join("x.part")).unwrap();
        assert!(create_new(&s.join("x.part"), 0o600).is_err());
        assert!(open_nofollow(&s.join("x.part"), 0o600).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
        let f = s.join("y.part");
        create_new(&f, 0o600).unwrap();
        assert!(
            create_new(&f, 0o600).is_err(),
            "an existing file is not reused"
        );
    }
}
