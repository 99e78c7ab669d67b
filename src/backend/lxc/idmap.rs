//! Unprivileged containers: the container's root is a host id range read
//! from /etc/subuid and /etc/subgid, and its root filesystem is owned by
//! that range.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::backend::lxc::config::IdMap;
use crate::error::{Error, Result};

/// A container needs at least this many ids (uid 0 to 65535 inside).
pub const COUNT: u32 = 65536;

/// Every (start, count) of a user in a subuid/subgid file, in file order;
/// subuid(5) names the user by login name or by uid.
pub fn ranges<'a>(
    file_text: &'a str,
    user: &'a str,
    uid: u32,
) -> impl Iterator<Item = (u32, u32)> + 'a {
    file_text.lines().filter_map(move |l| {
        let mut f = l.trim().split(':');
        let (u, start, count) = (f.next()?, f.next()?, f.next()?);
        (u == user || u.parse() == Ok(uid)).then_some(())?;
        Some((start.parse().ok()?, count.parse().ok()?))
    })
}

/// The first range of `user` (uid `uid`) in a subuid/subgid file with
/// enough ids.
pub fn range(file_text: &str, user: &str, uid: u32) -> Option<u32> {
    ranges(file_text, user, uid)
        .find(|&(_, count)| count >= COUNT)
        .map(|(start, _)| start)
}

/// The idmap for containers created by root.
pub fn for_root() -> Result<IdMap> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let missing = |p: &str| {
        Error::unavailable(format!(
            "unprivileged containers need a range of {COUNT} ids for root in {p} \
             (add one: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 root)"
        ))
    };
    let uid_start = range(&read("/etc/subuid"), "root", 0).ok_or_else(|| missing("/etc/subuid"))?;
    let gid_start = range(&read("/etc/subgid"), "root", 0).ok_or_else(|| missing("/etc/subgid"))?;
    Ok(IdMap {
        uid_start,
        gid_start,
        count: COUNT,
    })
}

/// Shift the ownership of every file under `root` into the map's range
/// (without following symlinks; each hard-linked inode once).
pub fn shift_tree(root: &Path, map: &IdMap) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p)
            .map_err(|e| Error::other(format!("cannot read {}", p.display())).caused_by(e))?;
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        if meta.uid() >= map.count || meta.gid() >= map.count {
            return Err(Error::other(format!(
                "{} has ids outside 0-{}",
                p.display(),
                map.count - 1
            )));
        }
        std::os::unix::fs::lchown(
            &p,
            Some(map.uid_start + meta.uid()),
            Some(map.gid_start + meta.gid()),
        )
        .map_err(|e| {
            Error::other(format!("cannot change the owner of {}", p.display())).caused_by(e)
        })?;
        if meta.is_dir() {
            for e in std::fs::read_dir(&p)
                .map_err(|e| Error::other(format!("cannot list {}", p.display())).caused_by(e))?
            {
                stack.push(
                    e.map_err(|e| Error::other("cannot list a directory").caused_by(e))?
                        .path(),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn picks_the_users_first_big_enough_range() {
        let text = "alice:100000:65536\nroot:200000:1000\nroot:300000:65536\n";
        assert_eq!(range(text, "root", 0), Some(300000));
        assert_eq!(range(text, "alice", 1000), Some(100000));
        assert_eq!(range(text, "bob", 1001), None);
        assert_eq!(range("root:x:y\n", "root", 0), None);
    }
}
