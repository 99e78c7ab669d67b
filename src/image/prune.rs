//! `creature image prune`, the decision: which cached images and root
//! filesystem caches nothing needs any more. Pure: `cmd/image.rs` gathers
//! the records, the qcow2 backing references of every disk in the pool
//! and the root filesystems of the containers, and carries the plan out.
//!
//! An image is needed while a machine's record names it, and also while
//! any disk file still has one of its files as a backing file (a snapshot
//! chain, a disk whose record was lost): the record alone is not trusted
//! with data a qcow2 overlay cannot live without.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

/// A cached image as the plan sees it.
#[derive(Debug, Clone)]
pub struct CachedImage {
    pub name: String,
    /// (sha256, size) of each of its files.
    pub blobs: Vec<(String, u64)>,
    /// Machines whose records use it.
    pub users: Vec<String>,
}

/// A debootstrap root filesystem cache (`images/rootfs/<id>`).
#[derive(Debug, Clone)]
pub struct RootfsCache {
    pub id: String,
    pub bytes: u64,
    /// Containers whose overlay root has this cache's tree as lower layer.
    pub users: Vec<String>,
    /// A create builds or copies it right now (its lock is held).
    pub busy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// `image` or `rootfs`.
    pub kind: &'static str,
    pub name: String,
    pub bytes: u64,
    /// For images: the blobs no other image shares (those go with it).
    #[serde(skip)]
    pub blobs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    pub kind: &'static str,
    pub name: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub remove: Vec<Removal>,
    pub keep: Vec<Kept>,
}

impl Plan {
    pub fn bytes(&self) -> u64 {
        self.remove.iter().map(|r| r.bytes).sum()
    }
}

/// Why an image must stay, if it must: its users, then the disks that
/// back onto its files (`backing`: blob sha256 → disk files).
pub fn image_needed(
    image: &CachedImage,
    backing: &BTreeMap<String, Vec<PathBuf>>,
) -> Option<String> {
    if !image.users.is_empty() {
        return Some(format!("used by {}", image.users.join(", ")));
    }
    let disks: Vec<String> = image
        .blobs
        .iter()
        .filter_map(|(sha, _)| backing.get(sha))
        .flatten()
        .map(|p| p.display().to_string())
        .collect();
    (!disks.is_empty()).then(|| format!("backing file of {}", disks.join(", ")))
}

pub fn plan(
    images: &[CachedImage],
    backing: &BTreeMap<String, Vec<PathBuf>>,
    rootfs: &[RootfsCache],
) -> Plan {
    let mut p = Plan::default();
    let mut gone: Vec<&CachedImage> = Vec::new();
    for i in images {
        match image_needed(i, backing) {
            Some(why) => p.keep.push(Kept {
                kind: "image",
                name: i.name.clone(),
                why,
            }),
            None => gone.push(i),
        }
    }
    // A blob two images share goes only when both do.
    let kept_blobs: Vec<&str> = images
        .iter()
        .filter(|i| !gone.iter().any(|g| g.name == i.name))
        .flat_map(|i| i.blobs.iter().map(|(s, _)| s.as_str()))
        .collect();
    let mut counted: Vec<&str> = Vec::new();
    for i in gone {
        let mut bytes = 0;
        let mut blobs = Vec::new();
        for (sha, size) in &i.blobs {
            if kept_blobs.contains(&sha.as_str()) || counted.contains(&sha.as_str()) {
                continue;
            }
            counted.push(sha);
            bytes += size;
            blobs.push(sha.clone());
        }
        p.remove.push(Removal {
            kind: "image",
            name: i.name.clone(),
            bytes,
            blobs,
        });
    }
    for r in rootfs {
        if r.busy {
            p.keep.push(Kept {
                kind: "rootfs",
                name: r.id.clone(),
                why: "a create is using it now".into(),
            });
        } else if !r.users.is_empty() {
            p.keep.push(Kept {
                kind: "rootfs",
                name: r.id.clone(),
                why: format!("lower layer of {}", r.users.join(", ")),
            });
        } else {
            p.remove.push(Removal {
                kind: "rootfs",
                name: r.id.clone(),
                bytes: r.bytes,
                blobs: Vec::new(),
            });
        }
    }
    p
}

/// The backing file named in a qcow2 header, if the bytes are one and it
/// has one (header: magic, version, then the backing name's offset as a
/// big-endian u64 at 8 and its length as a u32 at 16).
pub fn qcow2_backing(header: &[u8]) -> Option<String> {
    if header.len() < 20 || &header[..4] != b"QFI\xfb" {
        return None;
    }
    let off = u64::from_be_bytes(header[8..16].try_into().ok()?) as usize;
    let len = u32::from_be_bytes(header[16..20].try_into().ok()?) as usize;
    if off == 0 || len == 0 || len > 1023 {
        return None;
    }
    let name = header.get(off..off + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// The sha256 of a cached blob a backing path points at
/// (`.../images/sha256/<hex>`), if it is one.
pub fn blob_of(path: &str) -> Option<&str> {
    let (dir, file) = path.rsplit_once('/')?;
    (dir.ends_with("images/sha256")
        && file.len() == 64
        && file.bytes().all(|b| b.is_ascii_hexdigit()))
    .then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(name: &str, blobs: &[&str], users: &[&str]) -> CachedImage {
        CachedImage {
            name: name.into(),
            blobs: blobs.iter().map(|b| (b.to_string(), 100)).collect(),
            users: users.iter().map(|u| u.to_string()).collect(),
        }
    }

    #[test]
    fn used_or_backing_images_stay_and_shared_blobs_count_once() {
        let images = [
            img("used", &["a"], &["web"]),
            img("backing", &["b"], &[]),
            img("free", &["c", "a"], &[]),
            img("free2", &["c"], &[]),
        ];
        let backing = BTreeMap::from([("b".to_string(), vec![PathBuf::from("/s/disks/x.qcow2")])]);
        let p = plan(&images, &backing, &[]);
        assert_eq!(
            p.keep
                .iter()
                .map(|k| (k.name.as_str(), k.why.as_str()))
                .collect::<Vec<_>>(),
            [
                ("used", "used by web"),
                ("backing", "backing file of /s/disks/x.qcow2")
            ]
        );
        let names: Vec<_> = p
            .remove
            .iter()
            .map(|r| (r.name.as_str(), r.bytes))
            .collect();
        // "a" stays with "used"; "c" is counted once.
        assert_eq!(names, [("free", 100), ("free2", 0)]);
        assert_eq!(p.remove[0].blobs, ["c"]);
        assert_eq!(p.bytes(), 100);
    }

    #[test]
    fn rootfs_caches_in_use_or_busy_stay() {
        let r = |id: &str, users: &[&str], busy| RootfsCache {
            id: id.into(),
            bytes: 7,
            users: users.iter().map(|u| u.to_string()).collect(),
            busy,
        };
        let p = plan(
            &[],
            &BTreeMap::new(),
            &[
                r("a", &["box"], false),
                r("b", &[], true),
                r("c", &[], false),
            ],
        );
        assert_eq!(p.remove.len(), 1);
        assert_eq!(p.remove[0].name, "c");
        assert_eq!(p.keep[0].why, "lower layer of box");
        assert_eq!(p.keep[1].why, "a create is using it now");
    }

    #[test]
    fn qcow2_header_backing_name() {
        let mut h = vec![0u8; 512];
        h[..4].copy_from_slice(b"QFI\xfb");
        h[4..8].copy_from_slice(&3u32.to_be_bytes());
        let name = b"/var/lib/creature/images/sha256/ab";
        h[8..16].copy_from_slice(&200u64.to_be_bytes());
        h[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
        h[200..200 + name.len()].copy_from_slice(name);
        assert_eq!(
            qcow2_backing(&h).as_deref(),
            Some("/var/lib/creature/images/sha256/ab")
        );
        h[8..16].copy_from_slice(&0u64.to_be_bytes());
        assert_eq!(qcow2_backing(&h), None);
        assert_eq!(qcow2_backing(b"not a qcow2 file at all"), None);
    }

    #[test]
    fn blob_paths() {
        let hex = "0".repeat(64);
        assert_eq!(
            blob_of(&format!("/s/images/sha256/{hex}")),
            Some(hex.as_str())
        );
        assert_eq!(blob_of("/s/disks/web-disk0.qcow2"), None);
        assert_eq!(
            blob_of(&format!("/s/images/sha256/{}", "g".repeat(64))),
            None
        );
    }
}
