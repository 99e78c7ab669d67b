//! `creature doctor`: gathers the facts about this host that creature's
//! code depends on and prints `crate::doctor`'s verdicts, one line each.
//! Read-only: it creates nothing, not even the state directory.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::Ctx;
use crate::backend::libvirt::Uri;
use crate::backend::Backend;
use crate::doctor::{self, Check, NodePerm, Status};
use crate::error::{Error, Result};
use crate::output::{self, Format};

/// libvirt answers a local connect in milliseconds; a minute means the
/// /dev/kvm trap or a hung daemon, both worth saying rather than waiting.
const CONNECT_LIMIT: Duration = Duration::from_secs(20);
const VIRTLOGD_SOCK: &str = "/run/libvirt/virtlogd-sock";
const UNIT_PATHS: [&str; 3] = [
    "/etc/systemd/system/creature.service",
    "/lib/systemd/system/creature.service",
    "/usr/lib/systemd/system/creature.service",
];
const UNIT_WANTS: &str = "/etc/systemd/system/multi-user.target.wants/creature.service";

#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    checks: &'a [Check],
}

pub fn run(ctx: &Ctx) -> Result<()> {
    let checks = gather(ctx);
    let worst = doctor::worst(&checks);
    match ctx.global.format {
        Format::Json => {
            let report = Report {
                ok: worst != Status::Fail,
                checks: &checks,
            };
            let mut s = serde_json::to_string_pretty(&report)
                .map_err(|e| Error::other("cannot render JSON").caused_by(e))?;
            s.push('\n');
            output::write_stdout(&s)?;
        }
        _ => {
            let mut text = String::new();
            for c in &checks {
                text.push_str(&c.line());
                text.push('\n');
            }
            output::write_stdout(&text)?;
        }
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.check)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::unavailable(format!(
            "{} check(s) failed: {}",
            failed.len(),
            failed.join(", ")
        )))
    }
}

fn gather(ctx: &Ctx) -> Vec<Check> {
    let state_dir = &ctx.global.state_dir;
    let mut out = Vec::new();
    let conn = libvirtd(&mut out);
    out.push(virtlogd());
    out.push(qemu(conn.as_ref()));
    out.push(kvm());
    out.push(liblxc());
    out.push(doctor::subids(
        "subuid",
        "/etc/subuid",
        read("/etc/subuid").as_deref(),
    ));
    out.push(doctor::subids(
        "subgid",
        "/etc/subgid",
        read("/etc/subgid").as_deref(),
    ));
    out.push(doctor::cgroups(
        read("/sys/fs/cgroup/cgroup.controllers").as_deref(),
        Path::new("/sys/fs/cgroup/memory").is_dir() || Path::new("/sys/fs/cgroup/cpu").is_dir(),
    ));
    out.push(apparmor());
    out.push(dnsmasq());
    out.extend(space(state_dir));
    out.extend(database(ctx, state_dir));
    out.extend(hosts(state_dir));
    if let Some(c) = conn {
        drop(c);
    }
    out
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The socket a local libvirt client talks to: the monolithic daemon's, or
/// the modular QEMU daemon's on hosts that run those.
fn libvirt_socket() -> &'static str {
    if Path::new("/run/libvirt/virtqemud-sock").exists() {
        "/run/libvirt/virtqemud-sock"
    } else {
        "/run/libvirt/libvirt-sock"
    }
}

fn libvirtd(out: &mut Vec<Check>) -> Option<virt::connect::Connect> {
    let uri = Uri::local(Backend::Kvm).expect("kvm has a local URI");
    let sock = libvirt_socket();
    match crate::backend::libvirt::open(&uri, CONNECT_LIMIT) {
        Ok(c) => {
            let v = c
                .lib_version()
                .map(|v| format!("{}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000))
                .unwrap_or_else(|_| "?".into());
            out.push(Check::ok(
                "libvirtd",
                format!("libvirt {v} answers at {} ({sock})", uri.0),
            ));
            Some(c)
        }
        Err(e) => {
            out.push(Check::fail(
                "libvirtd",
                format!("{} (socket {sock})", e.message()),
                "start it: systemctl start libvirtd (or `libvirtd -d`); apt install \
                 libvirt-daemon-system if it is missing",
            ));
            None
        }
    }
}

fn virtlogd() -> Check {
    match std::os::unix::net::UnixStream::connect(VIRTLOGD_SOCK) {
        Ok(_) => Check::ok("virtlogd", format!("answers at {VIRTLOGD_SOCK}")),
        Err(e) => Check::fail(
            "virtlogd",
            format!(
                "nothing answers at {VIRTLOGD_SOCK} ({e}): VMs cannot start, their console log \
                 goes through virtlogd"
            ),
            "systemctl start virtlogd (or `virtlogd -d`)",
        ),
    }
}

fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(prog))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn qemu(conn: Option<&virt::connect::Connect>) -> Check {
    let Some(bin) = which("qemu-system-x86_64") else {
        return Check::fail(
            "qemu",
            "qemu-system-x86_64 is not installed: kvm and qemu machines cannot run",
            "apt install qemu-system-x86",
        );
    };
    let Some(caps) = conn.and_then(|c| c.capabilities().ok()) else {
        return Check::ok("qemu", format!("{} (libvirt not asked)", bin.display()));
    };
    let kvm = caps.contains("<domain type='kvm'");
    let tcg = caps.contains("<domain type='qemu'");
    match (kvm, tcg) {
        (_, false) => Check::fail(
            "qemu",
            format!(
                "{} is installed but libvirt offers no QEMU guests",
                bin.display()
            ),
            "restart libvirtd so it probes QEMU again, and see its log",
        ),
        (true, true) => Check::ok(
            "qemu",
            format!(
                "{}: libvirt offers kvm and qemu (TCG) guests",
                bin.display()
            ),
        ),
        (false, true) => Check::warn(
            "qemu",
            format!(
                "{}: libvirt offers qemu (TCG) guests only; kvm machines cannot start",
                bin.display()
            ),
            "see the kvm check",
        ),
    }
}

/// The user libvirt runs QEMU as: qemu.conf's `user`, else Debian's
/// build default libvirt-qemu when it exists, else root.
fn qemu_user() -> String {
    read("/etc/libvirt/qemu.conf")
        .and_then(|t| doctor::qemu_conf_user(&t))
        .unwrap_or_else(|| {
            if user_ids("libvirt-qemu").is_some() {
                "libvirt-qemu".into()
            } else {
                "root".into()
            }
        })
}

/// A user's uid and every group it is in (`+N` names a uid, as qemu.conf allows).
fn user_ids(user: &str) -> Option<(u32, Vec<u32>)> {
    if let Some(n) = user.strip_prefix('+') {
        let uid = n.parse().ok()?;
        return Some((uid, vec![uid]));
    }
    let c = std::ffi::CString::new(user).ok()?;
    // SAFETY: c is a valid C string; getpwnam returns NULL or a pointer to
    // static storage that stays valid until the next getpw* call, and we
    // copy out of it at once.
    let (uid, gid) = unsafe {
        let pw = libc::getpwnam(c.as_ptr());
        if pw.is_null() {
            return None;
        }
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut n = groups.len() as libc::c_int;
    // SAFETY: the buffer holds n entries; getgrouplist writes at most n and
    // sets n to the count.
    let r = unsafe { libc::getgrouplist(c.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
    groups.truncate(if r < 0 { 0 } else { n as usize });
    if groups.is_empty() {
        groups.push(gid);
    }
    Some((uid, groups))
}

fn user_name(uid: u32) -> String {
    // SAFETY: getpwuid returns NULL or a pointer to static storage, copied
    // out at once.
    unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() {
            return uid.to_string();
        }
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

fn group_name(gid: u32) -> String {
    // SAFETY: as for getpwuid.
    unsafe {
        let gr = libc::getgrgid(gid);
        if gr.is_null() {
            return gid.to_string();
        }
        std::ffi::CStr::from_ptr((*gr).gr_name)
            .to_string_lossy()
            .into_owned()
    }
}

fn kvm() -> Check {
    let node = std::fs::metadata("/dev/kvm")
        .ok()
        .filter(|m| m.file_type().is_char_device())
        .map(|m| NodePerm {
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            owner: user_name(m.uid()),
            group: group_name(m.gid()),
        });
    let user = qemu_user();
    let ids = user_ids(&user);
    doctor::kvm(node, &user, ids)
}

fn liblxc() -> Check {
    let v = crate::backend::lxc::sys::version();
    let path = crate::backend::lxc::sys::lxcpath();
    if Path::new(&path).is_dir() {
        Check::ok("liblxc", format!("liblxc {v}; containers in {path}"))
    } else {
        Check::warn(
            "liblxc",
            format!("liblxc {v}, but its container directory {path} does not exist"),
            "apt install lxc (or create the lxc.lxcpath directory)",
        )
    }
}

fn apparmor() -> Check {
    let enabled = read("/sys/module/apparmor/parameters/enabled").is_some_and(|s| s.trim() == "Y");
    if !enabled {
        return Check::ok("apparmor", "AppArmor is not enabled (nothing to load)");
    }
    match which("apparmor_parser") {
        Some(p) => Check::ok(
            "apparmor",
            format!(
                "AppArmor is enabled; {} loads LXC's container profiles",
                p.display()
            ),
        ),
        None => Check::fail(
            "apparmor",
            "AppArmor is enabled but apparmor_parser is missing: LXC cannot load a container's \
             profile, so containers do not start",
            "apt install apparmor",
        ),
    }
}

fn dnsmasq() -> Check {
    match which("dnsmasq") {
        Some(p) => Check::ok(
            "dnsmasq",
            format!("{} (DHCP of creature's networks)", p.display()),
        ),
        None => Check::fail(
            "dnsmasq",
            "dnsmasq is not installed: libvirt cannot start a network with DHCP",
            "apt install dnsmasq-base",
        ),
    }
}

/// The filesystem a path is on, through its nearest existing ancestor (the
/// state directory may not exist yet).
fn statvfs(path: &Path) -> Option<(u64, u64, u64)> {
    let mut p = path.to_path_buf();
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let (avail, total) = crate::statedir::fs_space(&p)?;
    Some((avail, total, std::fs::metadata(&p).ok()?.dev()))
}

/// The state directory, and the image cache and disk pool when another
/// filesystem holds them.
fn space(state_dir: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for (what, p) in [
        ("state directory", state_dir.to_path_buf()),
        ("image cache", state_dir.join("images")),
        ("disk pool", state_dir.join("disks")),
    ] {
        if !p.exists() && what != "state directory" {
            continue;
        }
        match statvfs(&p) {
            Some((avail, total, dev)) => {
                if seen.contains(&dev) {
                    continue;
                }
                seen.push(dev);
                out.push(doctor::space(what, &p.display().to_string(), avail, total));
            }
            None => out.push(Check::warn(
                "space",
                format!("cannot tell the free space of {}", p.display()),
                "check the path and its permissions",
            )),
        }
    }
    out
}

fn database(ctx: &Ctx, state_dir: &Path) -> Vec<Check> {
    let fix = "restore the state directory from a backup; `creature repair` then reconciles it \
               with the backends";
    let store = match crate::store::Store::open_read_only(state_dir) {
        Ok(Some(s)) => s,
        Ok(None) => {
            let mut v = vec![Check::ok(
                "database",
                format!("no state database yet in {}", state_dir.display()),
            )];
            v.extend(unit_checks(0, 0));
            return v;
        }
        Err(e) => return vec![Check::fail("database", e.message().to_string(), fix)],
    };
    let mut out = Vec::new();
    match store.integrity_check() {
        Ok(problems) if problems.is_empty() => out.push(Check::ok(
            "database",
            format!("{} passes SQLite's integrity check", store.path().display()),
        )),
        Ok(problems) => out.push(Check::fail(
            "database",
            format!(
                "{} is damaged: {}",
                store.path().display(),
                problems.into_iter().take(3).collect::<Vec<_>>().join("; ")
            ),
            fix,
        )),
        Err(e) => out.push(Check::fail("database", e.message().to_string(), fix)),
    }
    let host = ctx.host_name();
    match store.journal_machines(host) {
        Ok(names) => {
            let stale: Vec<String> = names
                .into_iter()
                .filter(|n| !crate::statedir::machine_busy(state_dir, host, n))
                .collect();
            out.push(if stale.is_empty() {
                Check::ok("journal", "no interrupted operation left in the journal")
            } else {
                Check::warn(
                    "journal",
                    format!(
                        "{} interrupted operation(s) left half-done: {}",
                        stale.len(),
                        stale.join(", ")
                    ),
                    "creature repair",
                )
            });
        }
        Err(e) => out.push(Check::fail("journal", e.message().to_string(), fix)),
    }
    match store.autostart_entries(host) {
        Ok(entries) => {
            let on = entries.iter().filter(|(_, s)| s.enabled).count();
            let plan = crate::autostart::plan::stop(
                entries
                    .into_iter()
                    .map(|(m, settings)| crate::autostart::plan::Entry {
                        name: m.name,
                        backend: m.backend,
                        settings,
                    })
                    .collect(),
            );
            out.extend(unit_checks(
                on,
                crate::autostart::plan::total(&plan).as_secs(),
            ));
        }
        Err(e) => out.push(Check::fail("unit", e.message().to_string(), fix)),
    }
    out
}

/// Other hosts creature knows (`host add`, the configuration): each is
/// asked at once, with a short deadline. One that does not answer is a
/// warning: this host's own prerequisites are the rest of the list.
fn hosts(state_dir: &Path) -> Vec<Check> {
    let Ok(all) = crate::backend::Host::all(state_dir) else {
        return Vec::new();
    };
    let probes: Vec<_> = all
        .into_iter()
        .filter(|h| !h.is_local())
        .map(|h| {
            std::thread::spawn(move || {
                let uri = Uri(h.uri_text());
                let r = crate::backend::libvirt::open(&uri, Duration::from_secs(10))
                    .map(|c| c.hostname().unwrap_or_default());
                (h.name().to_string(), uri.0, r)
            })
        })
        .collect();
    probes
        .into_iter()
        .filter_map(|p| p.join().ok())
        .map(|(name, uri, r)| match r {
            Ok(hostname) => Check::ok("host", format!("{name}: {uri} answers ({hostname})")),
            Err(e) => Check::warn(
                "host",
                format!("{name}: {uri} does not answer: {}", e.message()),
                format!(
                    "start libvirtd there and check the network, or `creature host remove {name}`"
                ),
            ),
        })
        .collect()
}

fn unit_checks(autostart_machines: usize, needed_s: u64) -> Vec<Check> {
    let found = UNIT_PATHS
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|t| (*p, t)));
    let enabled = std::fs::symlink_metadata(UNIT_WANTS).is_ok();
    match found {
        Some((p, text)) => doctor::unit(Some(p), &text, enabled, autostart_machines, needed_s),
        None => doctor::unit(None, "", enabled, autostart_machines, needed_s),
    }
}
