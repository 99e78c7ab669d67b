//! A container's NoCloud seed, written into its root filesystem at
//! `/var/lib/cloud/seed/nocloud-net/` as LXD does. The tree belongs to the
//! container's root, who may have put symlinks anywhere in it: every
//! directory is opened with O_NOFOLLOW from the root down, and each file is
//! made new beside its target and renamed over it, so host root never
//! follows a link the guest planted.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::seed::Rendered;

pub const SEED_DIR: &str = "var/lib/cloud/seed/nocloud-net";

fn err(what: String, e: std::io::Error) -> Error {
    Error::other(what).caused_by(e)
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in a seed path")
}

/// Open (making it, owned by the container's root, if missing) the
/// directory `name` under `parent`, refusing a symlink.
fn subdir(parent: &OwnedFd, name: &str, owner: (u32, u32), shown: &str) -> Result<OwnedFd> {
    let c = cstr(name);
    // SAFETY: plain syscalls on a descriptor we own and a NUL-terminated name.
    unsafe {
        if libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o755) == 0 {
            libc::fchownat(
                parent.as_raw_fd(),
                c.as_ptr(),
                owner.0,
                owner.1,
                libc::AT_SYMLINK_NOFOLLOW,
            );
        }
        let fd = libc::openat(
            parent.as_raw_fd(),
            c.as_ptr(),
            libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_RDONLY,
        );
        if fd < 0 {
            return Err(err(
                format!("cannot open {shown} in the container (a symlink there is refused)"),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

fn put(dir: &OwnedFd, name: &str, bytes: &[u8], owner: (u32, u32)) -> Result<()> {
    let tmp = cstr(&format!(".{name}.creature-{}", std::process::id()));
    let fin = cstr(name);
    // SAFETY: as above; the new file's descriptor is owned by `f` at once.
    let f = unsafe {
        libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0);
        let fd = libc::openat(
            dir.as_raw_fd(),
            tmp.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        );
        if fd < 0 {
            return Err(err(
                format!("cannot write the seed's {name}"),
                std::io::Error::last_os_error(),
            ));
        }
        std::fs::File::from_raw_fd(fd)
    };
    let written = (|| {
        use std::io::Write;
        let mut f = f;
        f.write_all(bytes)?;
        std::os::unix::fs::fchown(&f, Some(owner.0), Some(owner.1))?;
        f.sync_all()
    })();
    // SAFETY: renameat/unlinkat on names in a directory we hold open.
    unsafe {
        if let Err(e) = written {
            libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0);
            return Err(err(format!("cannot write the seed's {name}"), e));
        }
        if libc::renameat(dir.as_raw_fd(), tmp.as_ptr(), dir.as_raw_fd(), fin.as_ptr()) != 0 {
            let e = std::io::Error::last_os_error();
            libc::unlinkat(dir.as_raw_fd(), tmp.as_ptr(), 0);
            return Err(err(format!("cannot write the seed's {name}"), e));
        }
    }
    Ok(())
}

/// Write the seed under `root` (the container's root filesystem, or its
/// overlay's upper layer), owned by `owner` (the container's root on the
/// host). Files of an earlier seed this one lacks are removed.
pub fn write(root: &Path, owner: (u32, u32), r: &Rendered) -> Result<()> {
    let c = CString::new(root.as_os_str().as_bytes())
        .map_err(|_| Error::invalid("a root filesystem path with a NUL"))?;
    // SAFETY: open(2) of a path creature made; owned at once.
    let top = unsafe {
        let fd = libc::open(
            c.as_ptr(),
            libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_RDONLY,
        );
        if fd < 0 {
            return Err(err(
                format!("cannot open {}", root.display()),
                std::io::Error::last_os_error(),
            ));
        }
        OwnedFd::from_raw_fd(fd)
    };
    let mut dir = top;
    let mut shown = String::new();
    for part in SEED_DIR.split('/') {
        shown.push('/');
        shown.push_str(part);
        dir = subdir(&dir, part, owner, &shown)?;
    }
    for (name, bytes) in &r.files {
        put(&dir, name, bytes, owner)?;
    }
    for old in ["meta-data", "user-data", "network-config", "vendor-data"] {
        if !r.files.iter().any(|(n, _)| n == old) {
            // SAFETY: unlinkat of a plain name in a directory we hold open.
            unsafe { libc::unlinkat(dir.as_raw_fd(), cstr(old).as_ptr(), 0) };
        }
    }
    Ok(())
}
