//! `creature autostart enable|disable|show|run|unit` and `autostop run`:
//! the plans of src/autostart carried out through each backend's Driver.

use std::collections::{HashMap, VecDeque};
use std::io::IsTerminal;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::autostart::plan::{self, Batch, Entry};
use crate::autostart::settings::{self, Settings, Wait};
use crate::backend::Driver;
use crate::cli::{
    AutostartCommand, AutostartRunArgs, AutostartSettings, AutostopCommand, Format, WaitArgs,
    WaitFor,
};
use crate::cmd::lifecycle::{open_driver, wait_started};
use crate::cmd::shutdown::Shutdown;
use crate::cmd::Ctx;
use crate::error::{Error, Kind, Result};
use crate::interrupt;
use crate::matrix::Backend;
use crate::names::{self, What};
use crate::output::{self, Table};
use crate::store::{RecordState, Store};
use crate::template::schema::StopAction;

/// One line per event (for the journal), or above a progress bar on a terminal.
#[derive(Clone)]
struct Events {
    start: Instant,
    what: &'static str,
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Events {
    fn new(what: &'static str, total: usize, quiet: bool) -> Events {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b.set_prefix(what);
            b
        });
        Events {
            start: Instant::now(),
            what,
            bar,
            quiet,
        }
    }

    fn say(&self, msg: &str) {
        if self.quiet {
            return;
        }
        let line = format!(
            "{}: [+{:.1}s] {msg}",
            self.what,
            self.start.elapsed().as_secs_f64()
        );
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn done_one(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn entries(ctx: &Ctx) -> Result<Vec<Entry>> {
    Ok(match Store::open_read_only(&ctx.global.state_dir)? {
        Some(s) => s
            .autostart_entries(ctx.host_name())?
            .into_iter()
            .map(|(m, settings)| Entry {
                name: m.name,
                backend: m.backend,
                settings,
            })
            .collect(),
        None => Vec::new(),
    })
}

#[derive(Serialize)]
struct PlanView<'a> {
    batches: &'a [Batch],
    worst_case_s: u64,
}

fn show_plan(ctx: &Ctx, what: &str, batches: &[Batch]) -> Result<()> {
    let total = plan::total(batches).as_secs();
    let v = PlanView {
        batches,
        worst_case_s: total,
    };
    match ctx.global.format {
        Format::Json => output::emit(Format::Json, &v, Table::default),
        _ => {
            let mut t = Table::new(["BATCH", "PRIORITY", "MACHINES", "WORST CASE"]);
            for (i, b) in batches.iter().enumerate() {
                let names: Vec<String> = b
                    .machines
                    .iter()
                    .map(|m| match what {
                        "start" => format!("{} (wait {})", m.name, m.settings.wait),
                        _ => format!(
                            "{} ({} {}s)",
                            m.name,
                            settings::action_str(m.settings.stop_action),
                            m.settings.stop_timeout
                        ),
                    })
                    .collect();
                t.row([
                    (i + 1).to_string(),
                    b.priority.to_string(),
                    names.join(", "),
                    format!("{}s", b.worst_case_s),
                ]);
            }
            let mut text = t.render(false);
            text.push_str(&format!("worst case in all: {total}s\n"));
            output::write_stdout(&text)
        }
    }
}

/// Start one machine (up to ATTEMPTS tries), then wait for it as its settings say.
fn start_one(ctx: &Ctx, e: &Entry, ev: &Events) -> Result<()> {
    let drv = open_driver(ctx, e.backend)?;
    let mut last = None;
    for attempt in 1..=plan::ATTEMPTS {
        if drv.state(&e.name)?.is_active() {
            ev.say(&format!("{}: already running", e.name));
            last = None;
            break;
        }
        match drv.start(&e.name) {
            Ok(()) => {
                last = None;
                break;
            }
            Err(err) => {
                ev.say(&format!(
                    "{}: start failed (attempt {attempt} of {}): {}",
                    e.name,
                    plan::ATTEMPTS,
                    err.message()
                ));
                last = Some(err);
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
    if let Some(err) = last {
        return Err(err);
    }
    let t = Instant::now();
    match e.settings.wait {
        Wait::None => {}
        Wait::Running => wait_started(
            ctx,
            drv.as_ref(),
            &e.name,
            &WaitArgs {
                wait: WaitFor::Running,
                wait_timeout: e.settings.wait_timeout,
            },
        )?,
        Wait::Lease => wait_started(
            ctx,
            drv.as_ref(),
            &e.name,
            &WaitArgs {
                wait: WaitFor::Lease,
                wait_timeout: e.settings.wait_timeout,
            },
        )?,
        Wait::Tcp(port) => {
            let ip = crate::cmd::lifecycle::machine_nics(ctx, &e.name)?
                .into_iter()
                .find_map(|n| n.ip)
                .ok_or_else(|| {
                    Error::invalid(format!("{}: wait tcp:{port} needs a reserved IP", e.name))
                })?;
            let addr: SocketAddr = format!("{ip}:{port}")
                .parse()
                .map_err(|_| Error::other("bad address"))?;
            let deadline = Instant::now() + Duration::from_secs(e.settings.wait_timeout);
            while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
                if Instant::now() >= deadline {
                    return Err(Error::new(
                        Kind::Timeout,
                        format!(
                            "{}: {addr} did not answer within {} s",
                            e.name, e.settings.wait_timeout
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
    ev.say(&format!(
        "{}: started ({} after {:.1}s)",
        e.name,
        e.settings.wait,
        t.elapsed().as_secs_f64()
    ));
    if e.settings.delay > 0 {
        std::thread::sleep(Duration::from_secs(e.settings.delay));
    }
    Ok(())
}

/// Announce batch `index` (from 0) and run `work` over its machines,
/// `concurrency` at a time; the names that failed.
fn run_batch(
    ctx: &Ctx,
    index: usize,
    batch: &Batch,
    concurrency: usize,
    ev: &Events,
    work: fn(&Ctx, &Entry, &Events) -> Result<()>,
) -> Vec<(String, Error)> {
    let names: Vec<&str> = batch.machines.iter().map(|m| m.name.as_str()).collect();
    ev.say(&format!(
        "batch {} (priority {}): {}",
        index + 1,
        batch.priority,
        names.join(", ")
    ));
    let queue = Arc::new(Mutex::new(
        batch.machines.iter().cloned().collect::<VecDeque<_>>(),
    ));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..concurrency.max(1).min(batch.machines.len()))
        .map(|_| {
            let (q, f, c, ev) = (queue.clone(), failed.clone(), ctx.clone(), ev.clone());
            std::thread::spawn(move || loop {
                let Some(e) = q.lock().expect("not poisoned").pop_front() else {
                    break;
                };
                if let Err(err) = work(&c, &e, &ev) {
                    ev.say(&format!("{}: FAILED: {}", e.name, err.message()));
                    f.lock().expect("not poisoned").push((e.name.clone(), err));
                }
                ev.done_one();
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Arc::try_unwrap(failed)
        .map(|m| m.into_inner().expect("not poisoned"))
        .unwrap_or_default()
}

fn summarize(what: &str, failed: Vec<(String, Error)>) -> Result<()> {
    if failed.is_empty() {
        return Ok(());
    }
    let all_timeouts = failed.iter().all(|(_, e)| e.kind() == Kind::Timeout);
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    let mut e = Error::new(
        if all_timeouts {
            Kind::Timeout
        } else {
            Kind::Other
        },
        format!(
            "{what}: {} machine(s) failed: {}",
            failed.len(),
            names.join(", ")
        ),
    );
    for (n, err) in &failed {
        e = e.caused_by(format!("{n}: {}", err.message()));
    }
    Err(e)
}

fn autostart_run(ctx: &Ctx, a: &AutostartRunArgs) -> Result<()> {
    let mut all = entries(ctx)?;
    if a.restore_last_state {
        let last = Store::open_read_only(&ctx.global.state_dir)?
            .map(|s| s.last_running(ctx.host_name()))
            .transpose()?
            .unwrap_or_default();
        all.retain(|e| last.contains(&e.name));
        for e in all.iter_mut() {
            e.settings.enabled = true;
        }
    }
    let concurrency = a.concurrency.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let batches = plan::start(all, concurrency);
    if a.dry_run {
        return show_plan(ctx, "start", &batches);
    }
    interrupt::catch();
    // Networks first: every autostart network comes up before any machine.
    if let Some(store) = Store::open_read_only(&ctx.global.state_dir)? {
        let nets: Vec<_> = store
            .networks(ctx.host_name())?
            .into_iter()
            .filter(|n| n.autostart)
            .collect();
        if !nets.is_empty() {
            let conn = crate::backend::libvirt::open(
                &ctx.uri(crate::matrix::Backend::Qemu)?,
                Duration::from_secs(30),
            )?;
            for n in nets {
                match crate::backend::libvirt::network::start(
                    &conn,
                    &crate::net::libvirt_name(&n.name),
                ) {
                    Ok(()) => ctx.note(&format!("started network {}", n.name)),
                    Err(e) if e.kind() == Kind::Conflict => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    let total: usize = batches.iter().map(|b| b.machines.len()).sum();
    let ev = Events::new("autostart", total, ctx.global.quiet);
    let mut failed = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        failed.extend(run_batch(ctx, i, b, concurrency, &ev, start_one));
        if interrupt::requested() {
            ev.finish();
            return Err(interrupt::error("autostart"));
        }
    }
    ev.finish();
    // Like libvirt-guests' start, which removes its list after trying every
    // guest: the next autostop records afresh, whether or not all started.
    if Store::open_read_only(&ctx.global.state_dir)?.is_some() {
        Store::open(&ctx.global.state_dir)?.autostart_ran(ctx.host_name())?;
    }
    summarize("autostart", failed)
}

/// Stop one machine by its action, forced when its timeout (or the run's
/// budget, passed in through `stop_timeout`) runs out.
fn stop_one(ctx: &Ctx, e: &Entry, ev: &Events) -> Result<()> {
    let drv = open_driver(ctx, e.backend)?;
    let t = Instant::now();
    if !drv.state(&e.name)?.is_active() {
        return Ok(());
    }
    match e.settings.stop_action {
        StopAction::Force => {
            drv.force_off(&e.name)?;
            ev.say(&format!("{}: powered off", e.name));
            return Ok(());
        }
        StopAction::Suspend => match drv.suspend(&e.name) {
            Ok(()) => {
                ev.say(&format!(
                    "{}: suspended after {:.1}s",
                    e.name,
                    t.elapsed().as_secs_f64()
                ));
                return Ok(());
            }
            Err(err) => ev.say(&format!(
                "{}: suspend failed ({}); shutting down",
                e.name,
                err.message()
            )),
        },
        StopAction::Shutdown => {}
    }
    let mut request = Shutdown::request(drv.as_ref(), &e.name)?;
    let deadline = t + Duration::from_secs(e.settings.stop_timeout);
    while Instant::now() < deadline {
        if request.done()? {
            ev.say(&format!(
                "{}: stopped after {:.1}s",
                e.name,
                t.elapsed().as_secs_f64()
            ));
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    drv.force_off(&e.name)?;
    ev.say(&format!(
        "{}: did not stop within {}s; powered off",
        e.name, e.settings.stop_timeout
    ));
    Ok(())
}

fn autostop_run(ctx: &Ctx, dry_run: bool, budget: Option<u64>) -> Result<()> {
    let all = entries(ctx)?;
    // Only what runs is stopped; what ran is remembered for --restore-last-state.
    // One connection per backend, not per machine.
    let mut drivers: HashMap<Backend, Option<Box<dyn Driver>>> = HashMap::new();
    let mut running = Vec::new();
    for e in all {
        let drv = drivers
            .entry(e.backend)
            .or_insert_with(|| match open_driver(ctx, e.backend) {
                Ok(d) => Some(d),
                Err(err) => {
                    ctx.note(&format!(
                        "{} machines are not stopped: {}",
                        e.backend,
                        err.message()
                    ));
                    None
                }
            });
        let active = drv
            .as_ref()
            .and_then(|d| d.state(&e.name).ok())
            .is_some_and(|s| s.is_active());
        if active {
            running.push(e);
        }
    }
    drop(drivers); // the stops below open their own, one per worker thread
    let names: Vec<String> = running.iter().map(|e| e.name.clone()).collect();
    let batches = plan::stop(running);
    if dry_run {
        return show_plan(ctx, "stop", &batches);
    }
    interrupt::catch();
    Store::open(&ctx.global.state_dir)?.record_autostop(ctx.host_name(), &names)?;
    let budget = Duration::from_secs(budget.unwrap_or_else(|| plan::total(&batches).as_secs()));
    let deadline = Instant::now() + budget;
    let ev = Events::new("autostop", names.len(), ctx.global.quiet);
    let mut failed = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        // No machine may outlast the run's budget.
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let mut b = b.clone();
        for m in b.machines.iter_mut() {
            m.settings.stop_timeout = m
                .settings
                .stop_timeout
                .min(left.saturating_sub(plan::FORCE_MARGIN_S));
        }
        failed.extend(run_batch(ctx, i, &b, b.machines.len(), &ev, stop_one));
    }
    ev.finish();
    summarize("autostop", failed)
}

fn enable(ctx: &Ctx, a: &AutostartSettings, enabled: bool) -> Result<()> {
    names::check(What::Machine, &a.machine.name)?;
    let mut store = Store::open(&ctx.global.state_dir)?;
    let rec = store
        .machine(ctx.host_name(), &a.machine.name)?
        .filter(|m| m.state == RecordState::Ready)
        .ok_or_else(|| {
            Error::not_found(format!(
                "machine {:?} not found (see `creature list`)",
                a.machine.name
            ))
        })?;
    let mut s = store.autostart(ctx.host_name(), &rec.name)?;
    s.enabled = enabled;
    if let Some(p) = a.priority {
        s.priority = p;
    }
    if let Some(d) = a.delay {
        s.delay = d;
    }
    if let Some(w) = &a.wait {
        s.wait = w.parse()?;
    }
    if let Some(t) = a.wait_timeout {
        s.wait_timeout = t;
    }
    if let Some(t) = a.stop_timeout {
        s.stop_timeout = t;
    }
    if let Some(x) = &a.stop_action {
        s.stop_action = settings::action_parse(x)?;
    }
    s.check(&rec.name, rec.backend)?;
    store.set_autostart(ctx.host_name(), &rec.name, &s)?;
    ctx.say(&format!(
        "{} {}: priority {}, wait {}, stop {} after {}s",
        if enabled {
            "autostart enabled for"
        } else {
            "autostart disabled for"
        },
        rec.name,
        s.priority,
        s.wait,
        settings::action_str(s.stop_action),
        s.stop_timeout
    ));
    Ok(())
}

pub fn run(ctx: &Ctx, cmd: AutostartCommand) -> Result<()> {
    match cmd {
        AutostartCommand::Enable(a) => enable(ctx, &a, true),
        AutostartCommand::Disable(m) => enable(
            ctx,
            &AutostartSettings {
                machine: m,
                priority: None,
                delay: None,
                wait: None,
                wait_timeout: None,
                stop_timeout: None,
                stop_action: None,
            },
            false,
        ),
        AutostartCommand::Show(m) => {
            names::check(What::Machine, &m.name)?;
            let store = Store::open_read_only(&ctx.global.state_dir)?
                .ok_or_else(|| Error::not_found(format!("machine {:?} not found", m.name)))?;
            store
                .machine(ctx.host_name(), &m.name)?
                .ok_or_else(|| Error::not_found(format!("machine {:?} not found", m.name)))?;
            let s: Settings = store.autostart(ctx.host_name(), &m.name)?;
            output::emit(ctx.global.format, &s, || {
                let mut t = Table::new(["KEY", "VALUE"]);
                t.row(["enabled", if s.enabled { "yes" } else { "no" }]);
                t.row(["priority".to_string(), s.priority.to_string()]);
                t.row(["delay".to_string(), format!("{}s", s.delay)]);
                t.row(["wait".to_string(), s.wait.to_string()]);
                t.row(["wait timeout".to_string(), format!("{}s", s.wait_timeout)]);
                t.row(["stop action", settings::action_str(s.stop_action)]);
                t.row(["stop timeout".to_string(), format!("{}s", s.stop_timeout)]);
                t
            })
        }
        AutostartCommand::Run(a) => autostart_run(ctx, &a),
        AutostartCommand::Unit => {
            // At shutdown any machine may be running: the budget covers them all.
            let budget = plan::total(&plan::stop(entries(ctx)?)).as_secs().max(60);
            let exe = std::env::current_exe()
                .map_err(|e| Error::other("cannot tell where creature is").caused_by(e))?;
            output::write_stdout(&crate::autostart::unit::render(
                &exe.display().to_string(),
                budget,
            )?)
        }
    }
}

pub fn run_stop(ctx: &Ctx, cmd: AutostopCommand) -> Result<()> {
    match cmd {
        AutostopCommand::Run { dry_run, budget } => autostop_run(ctx, dry_run, budget),
    }
}
