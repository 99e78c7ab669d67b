//! The lifecycle verbs, the same for every backend: they work through the
//! `Driver` of the machine's backend.

use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::libvirt::machine::LibvirtDriver;
use crate::backend::{Details, Driver, PowerState};
use crate::cli::{WaitArgs, WaitFor};
use crate::cmd::shutdown::Shutdown;
use crate::cmd::Ctx;
use crate::error::{Error, Kind, Result};
use crate::interrupt;
use crate::matrix::Backend;
use crate::output::{self, Table};
use crate::store::{MachineRecord, RecordState, Store};

pub fn open_driver(ctx: &Ctx, backend: Backend) -> Result<Box<dyn Driver>> {
    match backend {
        Backend::Kvm | Backend::Qemu | Backend::Xen => {
            let uri = ctx.uri(backend)?;
            Ok(Box::new(LibvirtDriver::open(
                backend,
                &uri,
                &ctx.global.state_dir,
            )?))
        }
        Backend::Lxc => Ok(Box::new(crate::backend::lxc::driver::LxcDriver::new(
            &ctx.global.state_dir,
        ))),
    }
}

/// A machine's NICs from the state database (none when there is none yet).
pub fn machine_nics(ctx: &Ctx, name: &str) -> Result<Vec<crate::store::Nic>> {
    Ok(Store::open_read_only(&ctx.global.state_dir)?
        .map(|s| s.nics(ctx.host_name(), name))
        .transpose()?
        .unwrap_or_default())
}

const POLL: Duration = Duration::from_millis(200);

/// Poll until `done` says yes, the deadline passes (exit 7) or Ctrl-C (130).
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if done()? {
            return Ok(());
        }
        if interrupt::requested() {
            return Err(interrupt::error(what));
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                Kind::Timeout,
                format!("{what}: not done after {} s", limit.as_secs()),
            ));
        }
        std::thread::sleep(POLL);
    }
}

pub fn start(ctx: &Ctx, rec: &MachineRecord, wait: &WaitArgs) -> Result<()> {
    ready(rec)?;
    let drv = open_driver(ctx, rec.backend)?;
    drv.start(&rec.name)?;
    wait_started(ctx, drv.as_ref(), &rec.name, wait)?;
    ctx.say(&format!("started {}", rec.name));
    Ok(())
}

pub fn wait_started(ctx: &Ctx, drv: &dyn Driver, name: &str, wait: &WaitArgs) -> Result<()> {
    let limit = Duration::from_secs(wait.wait_timeout);
    match wait.wait {
        WaitFor::None => Ok(()),
        WaitFor::Running => wait_for(&format!("waiting for {name} to run"), limit, || {
            Ok(drv.state(name)? == PowerState::Running)
        }),
        WaitFor::Lease => {
            let nics = machine_nics(ctx, name)?;
            let nic = nics.iter().find(|n| n.ip.is_some()).ok_or_else(|| {
                Error::invalid(format!("--wait lease: machine {name:?} has no NIC with a reserved IP on a creature network"))
            })?;
            let conn =
                crate::backend::libvirt::open(&ctx.uri(Backend::Qemu)?, Duration::from_secs(30))?;
            let net = crate::net::libvirt_name(&nic.network);
            wait_for(
                &format!("waiting for {name} to take its DHCP lease"),
                limit,
                || {
                    Ok(crate::backend::libvirt::network::leases(&conn, &net)?
                        .iter()
                        .any(|l| l.mac.eq_ignore_ascii_case(&nic.mac)))
                },
            )
        }
    }
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

pub fn stop(ctx: &Ctx, rec: &MachineRecord, timeout: u64, force: bool) -> Result<()> {
    ready(rec)?;
    let drv = open_driver(ctx, rec.backend)?;
    let name = &rec.name;
    if force && timeout == 0 {
        drv.force_off(name)?;
        ctx.say(&format!("powered off {name}"));
        return Ok(());
    }
    let mut request = Shutdown::request(drv.as_ref(), name)?;
    let graceful = wait_for(
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
pub fn simple(ctx: &Ctx, rec: &MachineRecord, op: &str) -> Result<()> {
    ready(rec)?;
    let drv = open_driver(ctx, rec.backend)?;
    let name = &rec.name;
    let done = match op {
        "reboot" => drv.reboot(name).map(|_| "rebooting"),
        "pause" => drv.pause(name).map(|_| "paused"),
        "unpause" => drv.unpause(name).map(|_| "unpaused"),
        "suspend" => drv.suspend(name).map(|_| "suspended"),
        "restore" => drv.restore(name).map(|_| "restored"),
        other => Err(Error::other(format!(
            "internal error: no lifecycle verb {other}"
        ))),
    }?;
    ctx.say(&format!("{done} {name}"));
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
        Err(Error::new(
            Kind::Interrupted,
            "cancelled; nothing was deleted",
        ))
    }
}

pub fn delete(ctx: &Ctx, rec: &MachineRecord, force: bool) -> Result<()> {
    let name = &rec.name;
    confirm(
        ctx,
        &format!("delete machine {name} ({}) and its disks?", rec.backend),
    )?;
    let drv = open_driver(ctx, rec.backend)?;
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
    store.set_state(ctx.host_name(), name, RecordState::Deleting)?;
    let nics = store.nics(ctx.host_name(), name)?;
    let mut removed = drv.remove(name)?;
    if nics.iter().any(|n| n.ip.is_some()) {
        let conn =
            crate::backend::libvirt::open(&ctx.uri(Backend::Qemu)?, Duration::from_secs(30))?;
        for r in crate::net::reserve::release(&conn, name, &nics) {
            removed.push(format!("reservation {r}"));
        }
    }
    store.remove_machine(ctx.host_name(), name)?;
    if !ctx.global.quiet {
        let mut out = format!("deleted {name}\n");
        for r in removed {
            out.push_str(&format!("  removed {r}\n"));
        }
        out.push_str("  removed its record and journal\n");
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
    /// NICs as allocated: network, MAC and the reserved IP.
    nics: Vec<crate::store::Nic>,
    #[serde(flatten)]
    details: Details,
}

pub fn info(ctx: &Ctx, rec: &MachineRecord) -> Result<()> {
    let drv = open_driver(ctx, rec.backend)?;
    let mut details = drv.details(&rec.name)?;
    let nics = machine_nics(ctx, &rec.name)?;
    // VMs: the addresses dnsmasq leased to their MACs (containers: liblxc's).
    if details.ips.is_empty() && nics.iter().any(|n| n.ip.is_some()) {
        if let Ok(conn) =
            crate::backend::libvirt::open(&ctx.uri(Backend::Qemu)?, Duration::from_secs(10))
        {
            for n in &nics {
                if let Ok(ls) = crate::backend::libvirt::network::leases(
                    &conn,
                    &crate::net::libvirt_name(&n.network),
                ) {
                    details.ips.extend(
                        ls.into_iter()
                            .filter(|l| l.mac.eq_ignore_ascii_case(&n.mac))
                            .map(|l| l.ip),
                    );
                }
            }
        }
    }
    let view = InfoView {
        nics,
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
        t.row(["vcpus".to_string(), d.cpus.to_string()]);
        t.row([
            "memory".to_string(),
            crate::size::Size(d.memory_bytes).to_string(),
        ]);
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
                format!(
                    "{} on {} (reserved {})",
                    n.mac,
                    n.network,
                    n.ip.as_deref().unwrap_or("-")
                ),
            ]);
        }
        for ip in &d.ips {
            t.row(["ip", ip]);
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

pub fn log(ctx: &Ctx, rec: &MachineRecord, follow: bool) -> Result<()> {
    let drv = open_driver(ctx, rec.backend)?;
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
            wait_for(
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
        // Truncated (log rotated)? Start over.
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if f.stream_position().unwrap_or(0) > len {
            let _ = f.seek(SeekFrom::Start(0));
        }
        std::thread::sleep(POLL);
    }
}
