//! The lifecycle verbs, the same for every backend: they work through the
//! `Driver` of the machine's backend.

use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::time::Duration;

use serde::Serialize;

use crate::backend::{Backend, Details, Driver, Host, PowerState};
use crate::cli::WaitArgs;
use crate::cmd::nic_view::{self, NicView};
use crate::cmd::Ctx;
use crate::error::{Error, Kind, Result};
use crate::interrupt;
use crate::op::Op;
use crate::output::{self, Table};
use crate::shutdown::Shutdown;
use crate::since::{self, Since};
use crate::store::{MachineRecord, RecordState, Store};
use crate::wait::{self, Wait};

/// A machine's NICs from the state database (none when there is none yet).
pub fn machine_nics(ctx: &Ctx, name: &str) -> Result<Vec<crate::store::Nic>> {
    Ok(Store::open_read_only(&ctx.global.state_dir)?
        .map(|s| s.nics(ctx.host_name(), name))
        .transpose()?
        .unwrap_or_default())
}

pub fn start(
    ctx: &Ctx,
    host: &Host,
    drv: &dyn Driver,
    rec: &MachineRecord,
    wait: &WaitArgs,
) -> Result<()> {
    ready(rec)?;
    if crate::seed::drive::refresh(drv, host.state_dir(), host.name(), &rec.name)? {
        ctx.say(&format!(
            "{}: rewrote its config drive (what it says changed: a new instance to cloud-init)",
            rec.name
        ));
    }
    drv.start(&rec.name)?;
    let nics = match wait.wait {
        Wait::Lease | Wait::Tcp(_) => machine_nics(ctx, &rec.name)?,
        Wait::None | Wait::Running => Vec::new(),
    };
    wait::until_started(
        host,
        drv,
        &rec.name,
        &nics,
        wait.wait,
        Duration::from_secs(wait.wait_timeout),
    )?;
    ctx.say(&format!("{} {}", Op::Start.past(), rec.name));
    Ok(())
}

fn ready(rec: &MachineRecord) -> Result<()> {
    if rec.state != RecordState::Ready {
        return Err(Error::conflict(format!(
            "machine {:?} is {} (an interrupted create or delete); delete it and create it again",
            rec.name,
            match rec.state {
                RecordState::Creating => "incomplete",
                _ => "being deleted",
            }
        )));
    }
    Ok(())
}

pub fn stop(
    ctx: &Ctx,
    drv: &dyn Driver,
    rec: &MachineRecord,
    timeout: u64,
    force: bool,
) -> Result<()> {
    ready(rec)?;
    let name = &rec.name;
    if force && timeout == 0 {
        // As the graceful path answers: a machine that is off is not stopped again.
        let st = drv.state(name)?;
        if !st.is_active() {
            return Err(crate::backend::wrong_state(name, "stop", st));
        }
        drv.force_off(name)?;
        ctx.say(&format!("powered off {name}"));
        return Ok(());
    }
    let mut request = Shutdown::request(drv, name)?;
    let graceful = wait::poll(
        &format!("stopping {name}"),
        Duration::from_secs(timeout),
        || request.done(),
    );
    match graceful {
        Ok(()) => {
            ctx.say(&format!("stopped {name}"));
            Ok(())
        }
        Err(e) if e.kind() == Kind::Timeout && force => {
            ctx.note(&format!(
                "{name} did not shut down within {timeout} s; powering it off"
            ));
            drv.force_off(name)?;
            ctx.say(&format!("powered off {name}"));
            Ok(())
        }
        Err(e) if e.kind() == Kind::Timeout => Err(Error::new(
            Kind::Timeout,
            format!("{name} did not shut down within {timeout} s (use --force to power it off)"),
        )),
        Err(e) => Err(e),
    }
}

/// reboot, pause, unpause, suspend, restore: one driver call each.
pub fn simple(ctx: &Ctx, drv: &dyn Driver, rec: &MachineRecord, op: Op) -> Result<()> {
    ready(rec)?;
    let name = &rec.name;
    match op {
        Op::Reboot => drv.reboot(name),
        Op::Pause => drv.pause(name),
        Op::Unpause => drv.unpause(name),
        Op::Suspend => drv.suspend(name),
        Op::Restore => drv.restore(name),
        other => Err(Error::other(format!(
            "internal error: {} is not a one-call lifecycle verb",
            other.word()
        ))),
    }?;
    ctx.say(&format!("{} {name}", op.past()));
    Ok(())
}

pub fn resize(
    ctx: &Ctx,
    drv: &dyn Driver,
    rec: &MachineRecord,
    req: &crate::resize::Request,
) -> Result<()> {
    ready(rec)?;
    if req.is_empty() {
        return Err(Error::invalid(
            "resize needs --cpus, --memory or --disk (see `creature resize --help`)",
        ));
    }
    let (done, later) = drv.resize(&rec.name, req)?;
    if done.is_empty() && later.is_empty() {
        ctx.say(&format!(
            "{} already has that size; nothing changed",
            rec.name
        ));
        return Ok(());
    }
    ctx.say(&format!("resized {}: {}", rec.name, done.join(", ")));
    for l in later {
        ctx.note(&format!("{} needs a restart for {l}", rec.name));
    }
    Ok(())
}

pub fn confirm(ctx: &Ctx, question: &str) -> Result<()> {
    if ctx.global.yes {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Error::invalid(format!(
            "{question}: pass --yes to confirm (no terminal to ask on)"
        )));
    }
    let yes = dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .map_err(|e| Error::new(Kind::Interrupted, "cancelled").caused_by(e))?;
    if yes {
        Ok(())
    } else {
        // A "no" is an answer, not a signal: exit 1, not 130.
        Err(Error::other(format!("{question} no: nothing was done")))
    }
}

/// Asked before anything is opened: a "no" leaves everything as it was.
pub fn confirm_delete(ctx: &Ctx, rec: &MachineRecord) -> Result<()> {
    confirm(
        ctx,
        &format!(
            "delete machine {} ({}) and its disks?",
            rec.name, rec.backend
        ),
    )
}

pub fn delete(
    ctx: &Ctx,
    host: &Host,
    drv: &dyn Driver,
    rec: &MachineRecord,
    force: bool,
) -> Result<()> {
    let name = &rec.name;
    let st = match drv.state(name) {
        Ok(s) => s,
        Err(e) if e.kind() == Kind::NotFound => PowerState::ShutOff,
        Err(e) => return Err(e),
    };
    if st.is_active() && !force {
        return Err(Error::conflict(format!(
            "machine {name:?} is {}; stop it first or delete with --force",
            st.as_str()
        )));
    }
    let mut store = Store::open(&ctx.global.state_dir)?;
    // The caller holds the machine's lock (cmd/machine.rs). The record may
    // have gone while it waited for the gate: then this is not found.
    store.set_state(ctx.host_name(), name, RecordState::Deleting)?;
    crate::undo::fail_point("deleting")?;
    let nics = store.nics(ctx.host_name(), name)?;
    // Volumes its template made for it (not `keep`) go with it, attached
    // or swapped out; the others stay, detached.
    let (made, others): (Vec<_>, Vec<_>) = store
        .volumes(ctx.host_name())?
        .into_iter()
        .partition(|v| v.made_for.as_deref() == Some(name.as_str()));
    let kept: Vec<String> = others
        .iter()
        .flat_map(|v| {
            v.attachments
                .iter()
                .filter(|a| a.machine == *name)
                .map(|a| {
                    format!(
                        "  kept volume {} (was its {}), now detached\n",
                        v.name, a.target
                    )
                })
        })
        .collect();
    let mut removed = drv.remove(name)?;
    if crate::seed::store::dir(&ctx.global.state_dir, name).exists() {
        crate::seed::store::remove(&ctx.global.state_dir, name)?;
        removed.push("config drive".to_string());
    }
    if !made.is_empty() {
        let conn = ctx.network_conn()?;
        for v in made {
            crate::backend::libvirt::volume::delete(&conn, &v.path)?;
            store.remove_volume(ctx.host_name(), &v.name)?;
            removed.push(format!("volume {}", v.name));
        }
    }
    crate::undo::fail_point("removed")?;
    let groups = store.machine_secgroups(ctx.host_name(), name)?;
    let filtered = store
        .nic_filtering(ctx.host_name(), name)?
        .iter()
        .any(|(_, _, own)| *own);
    let scope = crate::backend::firewall::scope(&ctx.global.state_dir);
    let net_conn = if nics.iter().any(|n| n.ip.is_some()) || filtered {
        Some(crate::backend::libvirt::open(
            &host.network_uri()?,
            Duration::from_secs(30),
        )?)
    } else {
        None
    };
    if let Some(conn) = &net_conn {
        for r in crate::backend::libvirt::reserve::release(conn, name, &nics) {
            removed.push(format!("reservation {r}"));
        }
        if filtered {
            if crate::backend::firewall::bound(rec.backend) {
                crate::backend::firewall::unbind_container(conn, &scope, name, nics.len())?;
            }
            crate::backend::firewall::remove_machine(conn, &scope, name, nics.len())?;
            removed.push("its network filters".into());
        }
    }
    let leases = if crate::backend::libvirt::reserve::drop_leases(host.is_local(), &nics) {
        crate::store::Leases::None
    } else {
        crate::store::Leases::MayLive
    };
    store.remove_machine(ctx.host_name(), name, leases)?;
    // Groups admitting its groups' members no longer admit its address.
    if let (Some(conn), false) = (&net_conn, groups.is_empty()) {
        crate::backend::firewall::sync_referencing(conn, &scope, &store, &groups)?;
    }
    if !ctx.global.quiet {
        let mut out = format!("deleted {name}\n");
        for r in removed {
            out.push_str(&format!("  removed {r}\n"));
        }
        out.push_str("  removed its record and journal\n");
        out.extend(kept);
        output::write_stdout(&out)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct InfoView<'a> {
    name: &'a str,
    host: &'a str,
    backend: Backend,
    template: Option<&'a str>,
    created_at: &'a str,
    record: &'static str,
    /// NICs: network, MAC, the reserved IP and (while running) the leased one.
    nics: Vec<NicView>,
    /// Block volumes attached to it (`creature volume`).
    volumes: Vec<VolumeView>,
    /// Its first-boot seed, described (never its content); null: none.
    config_drive: Option<SeedView>,
    /// The security groups it is in (`creature secgroup`).
    security_groups: Vec<String>,
    #[serde(flatten)]
    details: Details,
}

#[derive(Serialize)]
struct SeedView {
    format: &'static str,
    /// What cloud-init was last given as instance-id.
    instance_id: Option<String>,
    users: usize,
    files: usize,
    /// Its addresses are told to the guest (network injection).
    network: bool,
}

fn seed_view(
    state_dir: &std::path::Path,
    backend: Backend,
    name: &str,
) -> Result<Option<SeedView>> {
    Ok(
        crate::seed::store::load(state_dir, name)?.map(|s| SeedView {
            format: s.format.as_str(),
            instance_id: crate::seed::drive::written_id(state_dir, name),
            users: s.users.len(),
            files: s.files.len(),
            network: crate::seed::drive::injects_network(backend),
        }),
    )
}

#[derive(Serialize)]
struct VolumeView {
    name: String,
    /// VMs: the device in its definition; containers: the mount point.
    target: String,
    readonly: bool,
}

pub fn info(ctx: &Ctx, host: &Host, drv: &dyn Driver, rec: &MachineRecord) -> Result<()> {
    let details = drv.details(&rec.name)?;
    let store = Store::open_read_only(&ctx.global.state_dir)?;
    let volumes = match &store {
        Some(s) => s
            .volumes_of(&rec.host, &rec.name)?
            .into_iter()
            .map(|(v, a)| VolumeView {
                name: v.name,
                target: a.target,
                readonly: a.readonly,
            })
            .collect(),
        None => Vec::new(),
    };
    let security_groups = match &store {
        Some(s) => s.machine_secgroups(&rec.host, &rec.name)?,
        None => Vec::new(),
    };
    let nics = machine_nics(ctx, &rec.name)?;
    let active = details.state.is_active();
    let leases = if active {
        nic_view::leases(host, nics.iter().map(|n| n.network.clone()).collect())
    } else {
        Default::default()
    };
    let view = InfoView {
        nics: nic_view::views(&nics, &leases, active),
        volumes,
        config_drive: seed_view(&ctx.global.state_dir, rec.backend, &rec.name)?,
        security_groups,
        name: &rec.name,
        host: &rec.host,
        backend: rec.backend,
        template: rec.template.as_deref(),
        created_at: &rec.created_at,
        record: if rec.state == RecordState::Ready {
            "ok"
        } else {
            "incomplete"
        },
        details,
    };
    output::emit(ctx.global.format, &view, || {
        let d = &view.details;
        let mut t = Table::new(["KEY", "VALUE"]);
        t.row(["name", view.name]);
        t.row(["backend".to_string(), view.backend.to_string()]);
        t.row(["state", d.state.as_str()]);
        t.row(["cpus".to_string(), d.cpus.show(false)]);
        t.row(["memory".to_string(), d.memory_bytes.show(true)]);
        t.row([
            "cpu time".to_string(),
            format!("{:.2} s", d.cpu_time_ns as f64 / 1e9),
        ]);
        for disk in &d.disks {
            t.row([
                format!("disk {}", disk.target),
                match &disk.backing {
                    Some(b) => format!("{} ({}, backed by {b})", disk.path, disk.format),
                    None => format!("{} ({})", disk.path, disk.format),
                },
            ]);
        }
        for n in &view.nics {
            t.row([
                format!("nic {}", n.index),
                format!("{} on {}", n.mac, n.network),
            ]);
            t.row([format!("ip {}", n.index), nic_view::label(n)]);
        }
        for v in &view.volumes {
            t.row([
                format!("volume {}", v.name),
                format!(
                    "{}{}",
                    v.target,
                    if v.readonly { " (read-only)" } else { "" }
                ),
            ]);
        }
        if let Some(s) = &view.config_drive {
            t.row([
                "config drive".to_string(),
                format!(
                    "{} (instance-id {}; {} user(s), {} file(s){})",
                    s.format,
                    s.instance_id.as_deref().unwrap_or("-"),
                    s.users,
                    s.files,
                    if s.network {
                        ", network configuration"
                    } else {
                        ""
                    }
                ),
            ]);
        }
        if !view.security_groups.is_empty() {
            t.row([
                "security groups".to_string(),
                view.security_groups.join(", "),
            ]);
        }
        if let Some(img) = &d.rescued {
            t.row([
                "rescued".to_string(),
                format!("booted from image {img}; its own disks follow a scratch disk (`creature unrescue`)"),
            ]);
        }
        if let Some(pid) = d.pid {
            t.row(["init pid".to_string(), pid.to_string()]);
        }
        if let Some(u) = d.memory_used_bytes {
            t.row(["memory used".to_string(), crate::size::Size(u).human()]);
        }
        t.row(["template", view.template.unwrap_or("-")]);
        t.row(["created", view.created_at]);
        t.row(["record", view.record]);
        t
    })
}

/// Where the last `n` lines of `f` start, read backwards a block at a time
/// so a large log is not read whole.
pub fn tail_start(f: &mut std::fs::File, n: u64) -> std::io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let len = f.seek(SeekFrom::End(0))?;
    let mut pos = len;
    let mut seen = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    // A final newline ends the last line; it does not start another.
    let mut skip_last = true;
    while pos > 0 {
        let take = (pos as usize).min(buf.len());
        pos -= take as u64;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..take])?;
        for i in (0..take).rev() {
            if buf[i] == b'\n' {
                if skip_last && pos + i as u64 == len - 1 {
                    skip_last = false;
                    continue;
                }
                seen += 1;
                if seen == n {
                    return Ok(pos + i as u64 + 1);
                }
            }
            skip_last = false;
        }
    }
    Ok(0)
}

fn file_len(f: &std::fs::File) -> u64 {
    f.metadata().map(|m| m.len()).unwrap_or(0)
}

pub fn log(
    drv: &dyn Driver,
    rec: &MachineRecord,
    follow: bool,
    lines: Option<u64>,
    since: Option<Since>,
    remote: bool,
) -> Result<()> {
    let path = drv.serial_log(&rec.name)?;
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => {
            return Err(Error::not_found(format!(
                "machine {:?} has no serial log yet (it has not run)",
                rec.name
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            wait::poll(
                "waiting for the serial log",
                Duration::from_secs(u64::MAX / 4),
                || Ok(path.exists()),
            )?;
            std::fs::File::open(&path)
                .map_err(|e| Error::other(format!("cannot open {}", path.display())).caused_by(e))?
        }
        Err(e) => return Err(Error::other(format!("cannot open {}", path.display())).caused_by(e)),
    };
    if follow {
        interrupt::catch();
    }
    // Xen's console log stamps each line (xenconsoled's --timestamp); a
    // QEMU serial log carries the guest's bytes only.
    let stamped = rec.backend == Backend::Xen;
    let floor = match since {
        None => 0,
        Some(Since::Start) => {
            let mark =
                crate::backend::libvirt::machine::read_start_mark(&path).ok_or_else(|| {
                    Error::not_found(format!(
                        "machine {:?} has not been started by creature since it logs starts",
                        rec.name
                    ))
                })?;
            match (stamped, mark) {
                (true, (_, Some(at))) => since::offset_of(&f, &since::local(at)),
                // A log rotated since is shorter than the mark: then all of
                // it is this run's.
                (false, (Some(at), _)) => Ok(if at <= file_len(&f) { at } else { 0 }),
                _ => {
                    return Err(Error::not_found(format!(
                        "creature cannot tell where machine {:?}'s last start begins in its \
                         serial log on another host (the log has no timestamps); use --lines N",
                        rec.name
                    )))
                }
            }
            .map_err(|e| Error::other("cannot read the serial log").caused_by(e))?
        }
        Some(Since::Time(t)) if stamped => since::offset_of(&f, &t)
            .map_err(|e| Error::other("cannot read the serial log").caused_by(e))?,
        Some(Since::Time(_)) => {
            return Err(Error::invalid(format!(
                "machine {:?} is a {} machine, whose serial log carries no timestamps, so \
                 --since cannot take a time; use --since start (its last start) or --lines N",
                rec.name, rec.backend
            )))
        }
    };
    f.seek(SeekFrom::Start(floor))
        .map_err(|e| Error::other("cannot read the serial log").caused_by(e))?;
    if let Some(n) = lines {
        let start = if n == 0 {
            f.seek(std::io::SeekFrom::End(0))
        } else {
            tail_start(&mut f, n)
        }
        .map_err(|e| Error::other("cannot read the serial log").caused_by(e))?;
        f.seek(std::io::SeekFrom::Start(start.max(floor)))
            .map_err(|e| Error::other("cannot read the serial log").caused_by(e))?;
    }
    let mut buf = vec![0u8; 64 << 10];
    let mut out = std::io::stdout().lock();
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::other("cannot read the serial log").caused_by(e))?;
        if n > 0 {
            if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                return Ok(()); // reader went away
            }
            continue;
        }
        if !follow {
            return Ok(());
        }
        if interrupt::requested() {
            return Err(interrupt::error("stopped following the log"));
        }
        if remote {
            // Written on the machine's host: read a fresh copy (whole, so
            // only a rotation there makes it shorter).
            std::thread::sleep(Duration::from_millis(800));
            drv.serial_log(&rec.name)?;
        }
        // Truncated (log rotated)? Start over.
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if f.stream_position().unwrap_or(0) > len {
            let _ = f.seek(SeekFrom::Start(0));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    fn tail(text: &[u8], n: u64) -> String {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text).unwrap();
        let at = super::tail_start(&mut f, n).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn the_last_lines_of_a_log() {
        assert_eq!(tail(b"a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 2), "b\nc");
        assert_eq!(tail(b"a\nb\nc\n", 9), "a\nb\nc\n");
        assert_eq!(tail(b"", 3), "");
        assert_eq!(tail(b"\n\n\n", 1), "\n");
        let big: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        assert_eq!(tail(&big, 3), "line 199997\nline 199998\nline 199999\n");
    }
}
