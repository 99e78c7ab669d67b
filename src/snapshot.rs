//! Snapshots (#16) as plans over a machine's qcow2 files. Pure: the
//! libvirt driver reads the files and carries the steps out, `cmd/snapshot.rs`
//! keeps the records.
//!
//! The model: taking a snapshot freezes each disk's active file (the
//! snapshot's *point* for that disk) under a new overlay the machine writes
//! to from then on. Files form a tree through their backing files; a
//! snapshot's parent is the nearest point above its own. Reverting puts a
//! fresh overlay on the point. Deleting merges the point's data into what
//! depends on it: into the active file by a live block commit when that is
//! the only thing on top (the common case, no copy of the machine's newer
//! data), otherwise by copying it into each file on top (qemu-img rebase),
//! so no point of another snapshot ever changes.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// One file of the machine's, and its backing file (path, format).
pub type Backing = Option<(String, String)>;

/// What the driver reads: each snapshotted disk's active file, and the
/// backing of every file of the machine's in the pool.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// (target device, active file), in the definition's order.
    pub disks: Vec<(String, String)>,
    pub backing: BTreeMap<String, Backing>,
    /// Bytes each file takes on disk.
    pub sizes: BTreeMap<String, u64>,
    /// A live QEMU holds the active chains open.
    pub running: bool,
}

/// One snapshot's frozen file for one disk (from the records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub snapshot: String,
    pub target: String,
    pub file: String,
}

/// The points of `snapshot` from its (target, frozen file) pairs.
pub fn points(snapshot: &str, disks: &[(String, String)]) -> Vec<Point> {
    disks
        .iter()
        .map(|(t, f)| Point {
            snapshot: snapshot.to_string(),
            target: t.clone(),
            file: f.clone(),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Copy what `file` read through its backing into it, then make it
    /// backed by `onto` (None: no backing). `copy: false` when the contents
    /// are known equal (only the pointer moves).
    Rebase {
        file: String,
        onto: Backing,
        copy: bool,
    },
    /// Live: commit the active file of `disk` into `base` and pivot onto it.
    CommitActive { disk: String, base: String },
    /// Live: commit `top` (in the running chain of `disk`) into `base`.
    Commit {
        disk: String,
        top: String,
        base: String,
    },
    /// The record of `snapshot`'s point on `target` moves to `to`.
    Repoint {
        snapshot: String,
        target: String,
        to: String,
    },
    /// The file is no longer used by anything.
    Remove { file: String },
}

impl Graph {
    fn backing_of(&self, f: &str) -> Backing {
        self.backing.get(f).cloned().flatten()
    }

    /// Files backed by `f`.
    fn kids(&self, f: &str) -> Vec<String> {
        self.backing
            .iter()
            .filter(|(_, b)| b.as_ref().is_some_and(|(p, _)| p == f))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The running chain of a disk, active first (empty when not running).
    fn running_chain(&self, active: &str) -> Vec<String> {
        if !self.running {
            return Vec::new();
        }
        let mut chain = vec![active.to_string()];
        while let Some((b, _)) = self.backing_of(chain.last().expect("not empty")) {
            if chain.contains(&b) || !self.backing.contains_key(&b) {
                break;
            }
            chain.push(b);
        }
        chain
    }

    /// The nearest point above `file` (itself excluded) among `points` of
    /// `target`: the snapshot a file descends from.
    pub fn parent(&self, file: &str, target: &str, points: &[Point]) -> Option<String> {
        let mut seen = vec![file.to_string()];
        let mut cur = self.backing_of(file);
        while let Some((f, _)) = cur {
            if let Some(p) = points.iter().find(|p| p.target == target && p.file == f) {
                return Some(p.snapshot.clone());
            }
            if seen.contains(&f) {
                return None;
            }
            seen.push(f.clone());
            cur = self.backing_of(&f);
        }
        None
    }

    /// The snapshot the machine runs on top of now (its first disk decides).
    pub fn current(&self, points: &[Point]) -> Option<String> {
        let (target, active) = self.disks.first()?;
        self.parent(active, target, points)
    }
}

/// The steps that delete `snapshot` without changing what any other
/// snapshot or the machine reads.
pub fn delete_plan(g: &Graph, points: &[Point], snapshot: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    for p in points.iter().filter(|p| p.snapshot == snapshot) {
        let Some((_, active)) = g.disks.iter().find(|(t, _)| *t == p.target) else {
            // The disk is gone from the machine: its point goes with the snapshot.
            steps.push(Step::Remove {
                file: p.file.clone(),
            });
            continue;
        };
        let f = &p.file;
        if f == active {
            return Err(Error::corrupt(format!(
                "snapshot {snapshot:?} records {f} as its point, but the machine writes to it"
            )));
        }
        let parent = g.backing_of(f);
        let chain = g.running_chain(active);
        let kids = g.kids(f);
        for k in kids.iter().filter(|k| !chain.contains(k)) {
            steps.push(Step::Rebase {
                file: k.clone(),
                onto: parent.clone(),
                copy: true,
            });
        }
        match kids.iter().find(|k| chain.contains(k)) {
            None => steps.push(Step::Remove { file: f.clone() }),
            Some(k) if k == active => {
                steps.push(Step::CommitActive {
                    disk: p.target.clone(),
                    base: f.clone(),
                });
                steps.push(Step::Remove { file: k.clone() });
            }
            Some(k) => {
                // `k` is another snapshot's point on the running chain:
                // commit it into `f`, which then holds exactly what `k`
                // held, and becomes that snapshot's point.
                steps.push(Step::Commit {
                    disk: p.target.clone(),
                    top: k.clone(),
                    base: f.clone(),
                });
                let fmt = "qcow2".to_string();
                for k2 in g.kids(k).iter().filter(|k2| !chain.contains(k2)) {
                    steps.push(Step::Rebase {
                        file: k2.clone(),
                        onto: Some((f.clone(), fmt.clone())),
                        copy: false,
                    });
                }
                for owner in points
                    .iter()
                    .filter(|o| o.target == p.target && &o.file == k)
                {
                    steps.push(Step::Repoint {
                        snapshot: owner.snapshot.clone(),
                        target: owner.target.clone(),
                        to: f.clone(),
                    });
                }
                steps.push(Step::Remove { file: k.clone() });
            }
        }
    }
    Ok(steps)
}

/// Where a machine's memory images (`snapshot create --memory`) live.
pub fn memory_dir(state_dir: &std::path::Path, machine: &str) -> std::path::PathBuf {
    state_dir.join("snapshots").join(machine)
}

/// The file name of a disk's next file: `<machine>-disk<N>-<K>.qcow2` (an
/// overlay) or `.raw` (a xen disk's copy), the active file's kind, K one
/// more than any the machine's files have.
pub fn next_file(active_name: &str, machine: &str, existing: &[String]) -> Option<String> {
    let (disk, ext) = disk_stem(active_name, machine)?;
    let k = existing
        .iter()
        .filter_map(|n| seq_of(n, machine))
        .max()
        .unwrap_or(0)
        + 1;
    Some(format!("{disk}-{k}.{ext}"))
}

/// `<machine>-disk<N>` of one of the machine's file names, and its extension.
fn disk_stem<'a>(file: &'a str, machine: &str) -> Option<(&'a str, &'static str)> {
    let (stem, ext) = split_ext(file)?;
    let rest = stem.strip_prefix(machine)?.strip_prefix("-disk")?;
    let n = rest.split('-').next()?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| (&stem[..machine.len() + "-disk".len() + n.len()], ext))
}

fn split_ext(file: &str) -> Option<(&str, &'static str)> {
    file.strip_suffix(".qcow2")
        .map(|s| (s, "qcow2"))
        .or_else(|| file.strip_suffix(".raw").map(|s| (s, "raw")))
}

fn seq_of(file: &str, machine: &str) -> Option<u64> {
    let (stem, _) = disk_stem(file, machine)?;
    split_ext(file)?
        .0
        .strip_prefix(stem)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// A snapshot name from the time: `snap-YYYYMMDD-HHMMSS`, with `-2`, `-3`
/// ... when taken.
pub fn default_name(rfc3339: &str, taken: &[String]) -> String {
    let digits: String = rfc3339
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit())
        .collect();
    let base = format!(
        "snap-{}-{}",
        &digits[..8.min(digits.len())],
        &digits[8.min(digits.len())..]
    );
    let mut name = base.clone();
    let mut n = 1;
    while taken.contains(&name) {
        n += 1;
        name = format!("{base}-{n}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(p: &str) -> Backing {
        Some((p.to_string(), "qcow2".to_string()))
    }

    fn pt(s: &str, f: &str) -> Point {
        Point {
            snapshot: s.into(),
            target: "vda".into(),
            file: f.into(),
        }
    }

    /// image <- a (s1) <- b (s2) <- c (active)
    fn linear(running: bool) -> (Graph, Vec<Point>) {
        let mut backing = BTreeMap::new();
        backing.insert("a".into(), Some(("image".into(), "raw".into())));
        backing.insert("b".into(), q("a"));
        backing.insert("c".into(), q("b"));
        (
            Graph {
                disks: vec![("vda".into(), "c".into())],
                backing,
                sizes: BTreeMap::new(),
                running,
            },
            vec![pt("s1", "a"), pt("s2", "b")],
        )
    }

    #[test]
    fn parents_and_current_follow_the_files() {
        let (g, points) = linear(true);
        assert_eq!(g.parent("b", "vda", &points).as_deref(), Some("s1"));
        assert_eq!(g.parent("a", "vda", &points), None);
        assert_eq!(g.current(&points).as_deref(), Some("s2"));
    }

    #[test]
    fn deleting_the_newest_of_a_running_machine_commits_the_active_file() {
        let (g, points) = linear(true);
        assert_eq!(
            delete_plan(&g, &points, "s2").unwrap(),
            vec![
                Step::CommitActive {
                    disk: "vda".into(),
                    base: "b".into()
                },
                Step::Remove { file: "c".into() },
            ]
        );
    }

    #[test]
    fn deleting_a_middle_point_commits_the_next_one_and_moves_its_record() {
        let (g, points) = linear(true);
        assert_eq!(
            delete_plan(&g, &points, "s1").unwrap(),
            vec![
                Step::Commit {
                    disk: "vda".into(),
                    top: "b".into(),
                    base: "a".into()
                },
                Step::Repoint {
                    snapshot: "s2".into(),
                    target: "vda".into(),
                    to: "a".into()
                },
                Step::Remove { file: "b".into() },
            ]
        );
    }

    #[test]
    fn a_stopped_machine_copies_into_what_is_on_top() {
        let (g, points) = linear(false);
        assert_eq!(
            delete_plan(&g, &points, "s2").unwrap(),
            vec![
                Step::Rebase {
                    file: "c".into(),
                    onto: q("a"),
                    copy: true
                },
                Step::Remove { file: "b".into() },
            ]
        );
        // The oldest: its data goes into s2's point, over the image.
        assert_eq!(
            delete_plan(&g, &points, "s1").unwrap()[0],
            Step::Rebase {
                file: "b".into(),
                onto: Some(("image".into(), "raw".into())),
                copy: true
            }
        );
    }

    #[test]
    fn other_branches_never_see_a_changed_point() {
        // image <- a (s1) <- b (s2); a <- d (active, after a revert to s1)
        let (mut g, points) = linear(true);
        g.backing.remove("c");
        g.backing.insert("d".into(), q("a"));
        g.disks = vec![("vda".into(), "d".into())];
        let plan = delete_plan(&g, &points, "s1").unwrap();
        assert_eq!(
            plan,
            vec![
                Step::Rebase {
                    file: "b".into(),
                    onto: Some(("image".into(), "raw".into())),
                    copy: true
                },
                Step::CommitActive {
                    disk: "vda".into(),
                    base: "a".into()
                },
                Step::Remove { file: "d".into() },
            ]
        );
        // s2 on its side branch is not on the running chain: copied away.
        g.disks = vec![("vda".into(), "d".into())];
        let plan = delete_plan(&g, &points, "s2").unwrap();
        assert_eq!(plan, vec![Step::Remove { file: "b".into() }]);
        assert_eq!(g.current(&points).as_deref(), Some("s1"));
    }

    #[test]
    fn a_point_the_machine_writes_to_is_refused() {
        let (g, _) = linear(true);
        assert!(delete_plan(&g, &[pt("s9", "c")], "s9").is_err());
    }

    #[test]
    fn next_files_count_up_per_machine() {
        let existing = vec![
            "web-disk0.qcow2".to_string(),
            "web-disk0-3.qcow2".into(),
            "web-disk1-7.qcow2".into(),
            "web-2-disk0-9.qcow2".into(),
        ];
        assert_eq!(
            next_file("web-disk0-3.qcow2", "web", &existing).as_deref(),
            Some("web-disk0-8.qcow2")
        );
        assert_eq!(
            next_file("web-disk1.qcow2", "web", &["web-disk1.qcow2".into()]).as_deref(),
            Some("web-disk1-1.qcow2")
        );
        assert_eq!(next_file("other.qcow2", "web", &existing), None);
        // A xen disk's copies are raw like it, and count with the rest.
        let xen = vec!["xv-disk0.raw".to_string(), "xv-disk0-2.raw".into()];
        assert_eq!(
            next_file("xv-disk0.raw", "xv", &xen).as_deref(),
            Some("xv-disk0-3.raw")
        );
        assert_eq!(next_file("xv-seed.iso", "xv", &xen), None);
    }

    #[test]
    fn default_names_are_times_made_unique() {
        assert_eq!(
            default_name("2026-12-03T04:15:00Z", &[]),
            "snap-20261203-041500"
        );
        assert_eq!(
            default_name("2026-12-03T04:15:00Z", &["snap-20261203-041500".into()]),
            "snap-20261203-041500-2"
        );
    }
}
