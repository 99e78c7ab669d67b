//! `creature doctor`, the judgments: from facts gathered about the host
//! (`cmd/doctor.rs` does the I/O), one verdict per prerequisite with the
//! fix a sysadmin would type. Pure, so each rule is tested on its own.

use serde::Serialize;

/// A verdict. `Fail` means something creature does will not work; `Warn`
/// that it works worse than it should, or will fail later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One checked prerequisite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable name scripts can match (`libvirtd`, `kvm`, `subuid`...).
    pub check: &'static str,
    pub status: Status,
    /// What was found, in one line.
    pub detail: String,
    /// What to do about it (absent when ok).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            check,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// The line `doctor` prints: `fail  kvm  ...: fix: ...`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{:<4}  {:<12}  {}",
            self.status.as_str(),
            self.check,
            self.detail
        );
        if let Some(f) = &self.fix {
            s.push_str(" (fix: ");
            s.push_str(f);
            s.push(')');
        }
        s
    }
}

/// The worst verdict: doctor exits 0 only when nothing failed.
pub fn worst(checks: &[Check]) -> Status {
    checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok)
}

/// Unix permission bits of a device node and who owns it (with the names
/// of its owner and group, for people).
#[derive(Debug, Clone)]
pub struct NodePerm {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
}

/// Whether a process of `uid` with groups `gids` may read and write the node.
pub fn can_read_write(p: &NodePerm, uid: u32, gids: &[u32]) -> bool {
    if uid == 0 {
        return true;
    }
    let bits = if p.uid == uid {
        p.mode >> 6
    } else if gids.contains(&p.gid) {
        p.mode >> 3
    } else {
        p.mode
    };
    bits & 0o6 == 0o6
}

/// /dev/kvm: present, and open to the user QEMU runs as. A root-only node
/// does not stop root's QEMU, but libvirt then finds KVM "unusable" for its
/// user on every call and re-probes QEMU each time: about a minute a call.
pub fn kvm(node: Option<NodePerm>, qemu_user: &str, qemu_ids: Option<(u32, Vec<u32>)>) -> Check {
    const FIX: &str = "chgrp kvm /dev/kvm && chmod 660 /dev/kvm (udev's rule for kvm does \
                       this at boot: check /lib/udev/rules.d/*kvm*)";
    let Some(p) = node else {
        return Check::warn(
            "kvm",
            "no /dev/kvm: kvm machines cannot start; qemu ones run, emulated and slow",
            "load the kvm module (modprobe kvm_intel or kvm_amd) and enable virtualization in \
             the firmware",
        );
    };
    let perm = format!(
        "/dev/kvm is mode {:03o}, owner {}, group {}",
        p.mode & 0o777,
        p.owner,
        p.group
    );
    let Some((uid, gids)) = qemu_ids else {
        return Check::fail(
            "kvm",
            format!("{perm}; QEMU's user {qemu_user:?} (/etc/libvirt/qemu.conf) does not exist"),
            "set `user` in /etc/libvirt/qemu.conf to an existing user, or reinstall \
             libvirt-daemon-system",
        );
    };
    if !can_read_write(&p, uid, &gids) {
        return Check::fail(
            "kvm",
            format!(
                "{perm}: QEMU's user {qemu_user:?} cannot open it, so libvirt re-probes QEMU on \
                 every call (about a minute each) and kvm machines fail"
            ),
            FIX,
        );
    }
    // libvirt's own probe runs as that user too: a node only root can open
    // makes every call slow even when QEMU itself runs as root.
    if p.mode & 0o066 == 0 && p.uid == 0 {
        return Check::fail(
            "kvm",
            format!("{perm}: only root can open it, so libvirt re-probes QEMU on every call"),
            FIX,
        );
    }
    Check::ok(
        "kvm",
        format!("{perm}; QEMU's user {qemu_user:?} can use it"),
    )
}

/// QEMU's user from qemu.conf's `user = "..."` (libvirt's syntax), if set.
pub fn qemu_conf_user(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix("user")?.trim_start().strip_prefix('=')?;
        let v = rest.trim();
        let v = v.strip_prefix('"')?.split('"').next()?;
        Some(v.to_string())
    })
}

/// Containers are unprivileged by default: root maps 65536 ids from its range.
pub fn subids(check: &'static str, file: &str, text: Option<&str>) -> Check {
    use crate::backend::lxc::idmap;
    let fix = format!("echo root:100000:65536 >> {file}");
    // The range creature will use, else the first one root has.
    let found = text.and_then(|t| {
        idmap::ranges(t, "root", 0)
            .find(|&(_, count)| count >= idmap::COUNT)
            .or_else(|| idmap::ranges(t, "root", 0).next())
    });
    match found {
        Some((start, count)) if count >= idmap::COUNT => Check::ok(
            check,
            format!("{file}: root maps {count} ids from {start} (unprivileged containers)"),
        ),
        Some((start, count)) => Check::fail(
            check,
            format!(
                "{file}: root has only {count} ids from {start}; an unprivileged container needs 65536"
            ),
            fix,
        ),
        None => Check::fail(
            check,
            format!("{file} has no range for root: unprivileged containers cannot start"),
            fix,
        ),
    }
}

/// Controllers a container's limits and libvirt's machines rely on.
pub const CGROUP_CONTROLLERS: [&str; 4] = ["cpu", "memory", "pids", "cpuset"];

/// cgroups: v2's `cgroup.controllers` text, or None for a v1 (or hybrid) host.
pub fn cgroups(v2_controllers: Option<&str>, v1_mounted: bool) -> Check {
    match v2_controllers {
        Some(text) => {
            let have: Vec<&str> = text.split_whitespace().collect();
            let missing: Vec<&str> = CGROUP_CONTROLLERS
                .iter()
                .copied()
                .filter(|c| !have.contains(c))
                .collect();
            if missing.is_empty() {
                Check::ok("cgroups", format!("cgroup v2 with {}", have.join(" ")))
            } else {
                Check::warn(
                    "cgroups",
                    format!(
                        "cgroup v2 lacks the {} controller(s): limits on them are not applied",
                        missing.join(", ")
                    ),
                    "enable them in the kernel command line (e.g. cgroup_enable=memory) and reboot",
                )
            }
        }
        None if v1_mounted => Check::ok("cgroups", "cgroup v1 (legacy hierarchy)"),
        None => Check::fail(
            "cgroups",
            "no cgroup hierarchy under /sys/fs/cgroup: neither libvirt nor LXC can run machines",
            "mount cgroup2 on /sys/fs/cgroup (systemd does at boot)",
        ),
    }
}

/// Below this a create is likely to fail half-way.
pub const SPACE_FAIL: u64 = 256 << 20;
/// Below this a warning: an image or two more will not fit.
pub const SPACE_WARN: u64 = 2 << 30;

pub fn space(what: &str, path: &str, avail: u64, total: u64) -> Check {
    let detail = format!(
        "{what} {path}: {} free of {}",
        crate::size::Size(avail).human(),
        crate::size::Size(total).human()
    );
    let fix = format!(
        "free space there (`creature image prune`, delete machines) or move {what} with --state-dir"
    );
    if avail < SPACE_FAIL {
        Check::fail("space", detail, fix)
    } else if avail < SPACE_WARN {
        Check::warn("space", detail, fix)
    } else {
        Check::ok("space", detail)
    }
}

/// What the installed unit says about stopping: its TimeoutStopSec and the
/// `--budget` its ExecStop gives autostop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitTimes {
    pub timeout_stop_s: Option<u64>,
    pub budget_s: Option<u64>,
}

pub fn unit_times(text: &str) -> UnitTimes {
    let mut t = UnitTimes {
        timeout_stop_s: None,
        budget_s: None,
    };
    for l in text.lines().map(str::trim) {
        if let Some(v) = l.strip_prefix("TimeoutStopSec=") {
            t.timeout_stop_s = v.trim().strip_suffix('s').unwrap_or(v.trim()).parse().ok();
        }
        if let Some(cmd) = l.strip_prefix("ExecStop=") {
            let mut words = cmd.split_whitespace();
            while let Some(w) = words.next() {
                if w == "--budget" {
                    t.budget_s = words.next().and_then(|v| v.parse().ok());
                } else if let Some(v) = w.strip_prefix("--budget=") {
                    t.budget_s = v.parse().ok();
                }
            }
        }
    }
    t
}

/// The unit: installed and enabled when a machine has autostart, and its
/// stop timeout long enough for the autostop plan (`needed_s`, the plan's
/// worst case) so systemd does not kill autostop half-way.
pub fn unit(
    path: Option<&str>,
    text: &str,
    enabled: bool,
    autostart_machines: usize,
    needed_s: u64,
) -> Vec<Check> {
    let regen = "creature autostart unit > /etc/systemd/system/creature.service && \
                 systemctl daemon-reload";
    let Some(path) = path else {
        return vec![if autostart_machines > 0 {
            Check::fail(
                "unit",
                format!(
                    "creature.service is not installed: {autostart_machines} machine(s) with \
                     autostart will not start at boot"
                ),
                format!("{regen} && systemctl enable creature.service"),
            )
        } else {
            Check::ok(
                "unit",
                "creature.service is not installed (no machine has autostart)",
            )
        }];
    };
    let mut out = vec![match (enabled, autostart_machines) {
        (true, _) => Check::ok("unit", format!("{path} is installed and enabled")),
        (false, 0) => Check::ok(
            "unit",
            format!("{path} is installed, not enabled (no machine has autostart)"),
        ),
        (false, n) => Check::fail(
            "unit",
            format!("{path} is not enabled: {n} machine(s) with autostart will not start at boot"),
            "systemctl enable creature.service",
        ),
    }];
    let t = unit_times(text);
    let budget = t.budget_s.unwrap_or(crate::autostart::unit::DEFAULT_STOP_S);
    out.push(match t.timeout_stop_s {
        None => Check::warn(
            "unit-timeout",
            format!(
                "{path} sets no TimeoutStopSec: systemd's default (90 s) may cut autostop short"
            ),
            regen,
        ),
        Some(ts) if ts < budget => Check::fail(
            "unit-timeout",
            format!(
                "TimeoutStopSec={ts} is shorter than autostop's --budget {budget}: systemd kills \
                 autostop before its machines are down"
            ),
            regen,
        ),
        Some(_) if needed_s > budget => Check::fail(
            "unit-timeout",
            format!(
                "the autostop plan needs up to {needed_s} s but the unit gives it {budget} s: the \
                 last machines would be powered off"
            ),
            regen,
        ),
        Some(ts) => Check::ok(
            "unit-timeout",
            format!("TimeoutStopSec={ts} covers autostop's budget {budget} s (plan: {needed_s} s)"),
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(mode: u32) -> NodePerm {
        NodePerm {
            mode,
            uid: 0,
            gid: 994,
            owner: "root".into(),
            group: "kvm".into(),
        }
    }

    #[test]
    fn kvm_open_to_qemus_group_is_ok_and_root_only_fails() {
        let ids = Some((64055, vec![64055, 994]));
        let ok = kvm(Some(node(0o660)), "libvirt-qemu", ids.clone());
        assert_eq!(ok.status, Status::Ok);
        assert!(
            ok.detail.contains("mode 660, owner root, group kvm"),
            "{}",
            ok.detail
        );
        let c = kvm(Some(node(0o600)), "libvirt-qemu", ids);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("cannot open it"), "{c:?}");
        assert!(c.fix.unwrap().contains("chmod 660 /dev/kvm"));
        // QEMU as root opens it, but libvirt's probe still trips.
        assert_eq!(
            kvm(Some(node(0o600)), "root", Some((0, vec![0]))).status,
            Status::Fail
        );
        assert_eq!(kvm(None, "root", Some((0, vec![0]))).status, Status::Warn);
        assert_eq!(
            kvm(Some(node(0o660)), "nobody-here", None).status,
            Status::Fail
        );
    }

    #[test]
    fn qemu_conf_user_is_read_only_when_set() {
        assert_eq!(qemu_conf_user("#user = \"libvirt-qemu\"\n"), None);
        assert_eq!(
            qemu_conf_user("x = 1\nuser = \"root\"\ngroup = \"root\"\n").as_deref(),
            Some("root")
        );
    }

    #[test]
    fn subids_need_a_full_range_for_root() {
        assert_eq!(
            subids("subuid", "/etc/subuid", Some("root:100000:65536\n")).status,
            Status::Ok
        );
        assert_eq!(
            subids("subuid", "/etc/subuid", Some("0:100000:65536\n")).status,
            Status::Ok
        );
        let short = subids("subuid", "/etc/subuid", Some("root:100000:1000\n"));
        assert_eq!(short.status, Status::Fail);
        assert!(short.detail.contains("only 1000"));
        let none = subids("subgid", "/etc/subgid", Some("alice:100000:65536\n"));
        assert_eq!(none.status, Status::Fail);
        assert!(none.fix.unwrap().contains(">> /etc/subgid"));
        assert_eq!(subids("subuid", "/etc/subuid", None).status, Status::Fail);
    }

    #[test]
    fn cgroups_name_what_is_missing() {
        assert_eq!(
            cgroups(Some("cpuset cpu io memory pids"), false).status,
            Status::Ok
        );
        let c = cgroups(Some("cpu io pids"), false);
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.contains("memory, cpuset"), "{}", c.detail);
        assert_eq!(cgroups(None, true).status, Status::Ok);
        assert_eq!(cgroups(None, false).status, Status::Fail);
    }

    #[test]
    fn space_thresholds() {
        assert_eq!(
            space("state directory", "/s", 10 << 30, 20 << 30).status,
            Status::Ok
        );
        assert_eq!(
            space("state directory", "/s", 1 << 30, 20 << 30).status,
            Status::Warn
        );
        let c = space("state directory", "/s", 0, 1 << 20);
        assert_eq!(c.status, Status::Fail);
        assert!(c.detail.contains("/s: 0"), "{}", c.detail);
    }

    #[test]
    fn unit_timeout_must_cover_budget_and_plan() {
        let shipped = crate::autostart::unit::render("/usr/bin/creature", 600).unwrap();
        let t = unit_times(&shipped);
        assert_eq!(t.timeout_stop_s, Some(630));
        assert_eq!(t.budget_s, Some(600));
        let p = Some("/lib/systemd/system/creature.service");
        let ok = unit(p, &shipped, true, 2, 120);
        assert!(ok.iter().all(|c| c.status == Status::Ok), "{ok:?}");
        let short = shipped.replace("TimeoutStopSec=630", "TimeoutStopSec=60");
        assert_eq!(unit(p, &short, true, 2, 120)[1].status, Status::Fail);
        assert_eq!(unit(p, &shipped, true, 2, 900)[1].status, Status::Fail);
        assert_eq!(unit(p, &shipped, false, 2, 10)[0].status, Status::Fail);
        assert_eq!(unit(p, &shipped, false, 0, 10)[0].status, Status::Ok);
        assert_eq!(unit(None, "", false, 1, 10)[0].status, Status::Fail);
        assert_eq!(unit(None, "", false, 0, 10).len(), 1);
    }

    #[test]
    fn worst_decides() {
        let v = vec![Check::ok("a", "x"), Check::warn("b", "y", "z")];
        assert_eq!(worst(&v), Status::Warn);
        assert!(v[1].line().starts_with("warn  b "));
    }
}
