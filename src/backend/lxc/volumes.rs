//! Block volumes of containers (#31, #18): a raw volume with an ext4
//! filesystem on a loop device of the host, mounted on the host under
//! `<state>/mounts/<container>/<n>` (an unprivileged container may not
//! mount a block device itself) and bind-mounted by liblxc where the
//! template says as the container starts, its top directory owned by the
//! container's root. Loop device and mount are found again on the next
//! start and released on swap and delete.

use std::path::Path;

use crate::error::Result;

fn run(prog: &str, args: &[&str]) -> Result<String> {
    crate::tool::run("cannot set up a container volume", prog, args)
}

fn is_mountpoint(dir: &str) -> bool {
    crate::tool::succeeds("mountpoint", &["-q", "--", dir])
}

/// A new volume's filesystem (the volume is made for the container: never
/// an existing one's).
pub fn make_filesystem(file: &str, label: &str) -> Result<()> {
    let label: String = label.chars().take(16).collect();
    run("mkfs.ext4", &["-q", "-F", "-L", &label, "--", file]).map(|_| ())
}

/// The loop devices backed by `file` now.
fn loops_of(file: &str) -> Result<Vec<String>> {
    let out = run("losetup", &["-j", file, "-O", "NAME", "-n"])?;
    Ok(out
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// The loop device of `file`: the one it has, else a new one.
pub fn loop_of(file: &str) -> Result<String> {
    if let Some(l) = loops_of(file)?.into_iter().next() {
        return Ok(l);
    }
    run("losetup", &["--find", "--show", "--nooverlap", "--", file])
}

/// Release every loop device of `file`.
pub fn release(file: &str) -> Result<()> {
    for l in loops_of(file)? {
        run("losetup", &["-d", &l])?;
    }
    Ok(())
}

/// Mount `device` (ext4) at `dir` on the host, unless something is there.
pub fn mount(device: &str, dir: &Path) -> Result<()> {
    let d = dir.to_str().unwrap_or_default();
    if is_mountpoint(d) {
        return Ok(());
    }
    run(
        "mount",
        &["-t", "ext4", "-o", "nodev,nosuid", "--", device, d],
    )
    .map(|_| ())
}

/// Unmount every volume mounted for a container, and remove the mount points.
pub fn unmount_all(mounts: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(mounts) else {
        return Ok(());
    };
    for e in rd.flatten() {
        let d = e.path();
        let ds = d.to_str().unwrap_or_default().to_string();
        if is_mountpoint(&ds) {
            run("umount", &["--", &ds])?;
        }
        let _ = std::fs::remove_dir(&d);
    }
    let _ = std::fs::remove_dir(mounts);
    Ok(())
}

/// liblxc's entry binding the host's mount `dir` at `path` in the container.
pub fn mount_entry(dir: &Path, path: &str) -> String {
    format!(
        "{} {} none bind,create=dir 0 0",
        dir.display(),
        path.trim_start_matches('/')
    )
}

/// A mount point a container volume may take: absolute, plain, not `/`.
pub fn path_ok(p: &str) -> bool {
    p.starts_with('/')
        && p.len() > 1
        && Path::new(p).components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        })
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_and_paths() {
        assert_eq!(
            mount_entry(Path::new("/s/mounts/box/0"), "/srv/data"),
            "/s/mounts/box/0 srv/data none bind,create=dir 0 0"
        );
        assert!(path_ok("/srv/data"));
        for bad in ["/", "srv", "/a/../b", "/a b", "/a\n"] {
            assert!(!path_ok(bad), "{bad:?}");
        }
    }
}
