//! Who holds the state database's write lock, for the error a blocked
//! writer gives after its busy timeout. SQLite locks with POSIX record locks
//! (on the database file, and in WAL mode on its `-shm` file); the kernel
//! lists them with their owner's pid in /proc/locks.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A process holding a lock: its pid and its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

/// The pids in `proc_locks` (the text of /proc/locks) that hold a lock on
/// the file with device `dev` and inode `ino`, other than `me`. Pure.
pub fn pids_locking(proc_locks: &str, dev: u64, ino: u64, me: u32) -> Vec<u32> {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let mut out = Vec::new();
    for line in proc_locks.lines() {
        // "1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; a blocked
        // waiter's line has "->" after the number and is not a holder.
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f.get(1) == Some(&"->") {
            continue;
        }
        let Ok(pid) = f[4].parse::<u32>() else {
            continue;
        };
        let mut id = f[5].split(':');
        let (Some(ma), Some(mi), Some(i)) = (id.next(), id.next(), id.next()) else {
            continue;
        };
        let same = u32::from_str_radix(ma, 16).ok() == Some(major)
            && u32::from_str_radix(mi, 16).ok() == Some(minor)
            && i.parse::<u64>().ok() == Some(ino);
        if same && pid != me && !out.contains(&pid) {
            out.push(pid);
        }
    }
    out
}

/// The processes locking the database at `db` or its `-shm` file, as far as
/// /proc tells (nothing when it cannot be read).
pub fn holders(db: &Path) -> Vec<Holder> {
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let mut pids = Vec::new();
    for p in [db.to_path_buf(), shm.into()] {
        if let Ok(m) = std::fs::metadata(&p) {
            for pid in pids_locking(&locks, m.dev(), m.ino(), me) {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
    }
    pids.into_iter()
        .map(|pid| Holder {
            pid,
            command: std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    b.split(|&c| c == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .map(|c| one_line(&c))
                .unwrap_or_default(),
        })
        .collect()
}

/// A command line fit for a one-line error: control characters become
/// spaces and a long one is cut.
fn one_line(c: &str) -> String {
    let flat: String = c
        .chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .collect();
    let flat = flat.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// "pid 1234 (creature create web)" for each holder, or a hint.
pub fn describe(holders: &[Holder]) -> String {
    if holders.is_empty() {
        return "another process".to_string();
    }
    holders
        .iter()
        .map(|h| match h.command.as_str() {
            "" => format!("pid {}", h.pid),
            c => format!("pid {} ({c})", h.pid),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_read_from_proc_locks() {
        let dev = libc::makedev(8, 1);
        let text = "\
1: POSIX  ADVISORY  WRITE 4242 08:01:777 1073741824 1073741824
1: -> POSIX  ADVISORY  WRITE 5555 08:01:777 1073741824 1073741824
2: POSIX  ADVISORY  READ 4243 08:01:778 128 128
3: FLOCK  ADVISORY  WRITE 99 fd:00:777 0 EOF
4: POSIX  ADVISORY  READ 4242 08:01:777 120 120
5: POSIX  ADVISORY  READ 10 08:01:777 0 EOF
";
        // The waiter (->), another inode, another device and `me` are not holders.
        assert_eq!(pids_locking(text, dev, 777, 10), vec![4242]);
        assert_eq!(pids_locking(text, dev, 778, 10), vec![4243]);
        assert!(pids_locking("garbage\n\n1: POSIX", dev, 777, 10).is_empty());
    }

    #[test]
    fn command_lines_are_one_short_line() {
        assert_eq!(
            one_line("python3 -c \nimport x;\tgo"),
            "python3 -c import x; go"
        );
        assert_eq!(one_line(&"a".repeat(200)).chars().count(), 81);
    }

    #[test]
    fn description_names_pid_and_command() {
        let h = [
            Holder {
                pid: 7,
                command: "creature create web".into(),
            },
            Holder {
                pid: 8,
                command: String::new(),
            },
        ];
        assert_eq!(describe(&h), "pid 7 (creature create web), pid 8");
        assert_eq!(describe(&[]), "another process");
    }
}
