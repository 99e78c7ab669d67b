//! Carrying out autostart and autostop plans: batches in order, a pool of
//! workers within a batch, retries, waits and forced stops, and one line
//! per event (above a progress bar on a terminal). Drivers come from the
//! runner's factory, so no verb code is involved.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::autostart::plan::{self, Batch, Entry};
use crate::autostart::settings::Wait;
use crate::backend::{Backend, Driver, Host};
use crate::error::{Error, Kind, Result};
use crate::interrupt;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::template::schema::StopAction;
use crate::wait;

/// What the workers share: the host, and how to open a backend's driver.
#[derive(Clone)]
pub struct Runner {
    pub host: Host,
    pub open: fn(Backend, &Host) -> Result<Box<dyn Driver>>,
}

impl Runner {
    pub fn new(host: Host) -> Runner {
        Runner {
            host,
            open: crate::backend::open,
        }
    }
}

/// Start the batches in order, each `concurrency` machines at a time;
/// the machines that failed. Ctrl-C stops after the running batch.
pub fn start(
    runner: &Runner,
    batches: &[Batch],
    concurrency: usize,
    ev: &Events,
) -> Result<Vec<(String, Error)>> {
    let mut failed = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        failed.extend(run_batch(runner, i, b, concurrency, ev, start_one));
        if interrupt::requested() {
            ev.finish();
            return Err(interrupt::error("autostart"));
        }
    }
    ev.finish();
    Ok(failed)
}

/// Stop the batches in order, all of a batch at once, within `budget`:
/// no machine may outlast it.
pub fn stop(
    runner: &Runner,
    batches: &[Batch],
    budget: Duration,
    ev: &Events,
) -> Vec<(String, Error)> {
    let deadline = Instant::now() + budget;
    let mut failed = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now()).as_secs();
        let mut b = b.clone();
        for m in b.machines.iter_mut() {
            m.settings.stop_timeout = m
                .settings
                .stop_timeout
                .min(left.saturating_sub(plan::FORCE_MARGIN_S));
        }
        failed.extend(run_batch(runner, i, &b, b.machines.len(), ev, stop_one));
    }
    ev.finish();
    failed
}

/// One line per event (for the journal), or above a progress bar on a terminal.
#[derive(Clone)]
pub struct Events {
    start: Instant,
    what: &'static str,
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
}

impl Events {
    pub fn new(what: &'static str, total: usize, quiet: bool) -> Events {
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

    pub fn say(&self, msg: &str) {
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

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Start one machine (up to ATTEMPTS tries), then wait for it as its settings say.
fn start_one(r: &Runner, e: &Entry, ev: &Events) -> Result<()> {
    let drv = (r.open)(e.backend, &r.host)?;
    let mut last = None;
    for attempt in 1..=plan::ATTEMPTS {
        if drv.state(&e.name)?.is_active() {
            ev.say(&format!("{}: already running", e.name));
            last = None;
            break;
        }
        let started =
            crate::seed::drive::refresh(drv.as_ref(), r.host.state_dir(), r.host.name(), &e.name)
                .and_then(|_| drv.start(&e.name));
        match started {
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
    let nics = match e.settings.wait {
        Wait::Lease | Wait::Tcp(_) => Store::open_read_only(r.host.state_dir())?
            .map(|s| s.nics(r.host.name(), &e.name))
            .transpose()?
            .unwrap_or_default(),
        Wait::None | Wait::Running => Vec::new(),
    };
    wait::until_started(
        &r.host,
        drv.as_ref(),
        &e.name,
        &nics,
        e.settings.wait,
        Duration::from_secs(e.settings.wait_timeout),
    )?;
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
    runner: &Runner,
    index: usize,
    batch: &Batch,
    concurrency: usize,
    ev: &Events,
    work: fn(&Runner, &Entry, &Events) -> Result<()>,
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
            let (q, f, c, ev) = (queue.clone(), failed.clone(), runner.clone(), ev.clone());
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

pub fn summarize(what: &str, failed: Vec<(String, Error)>) -> Result<()> {
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

/// Stop one machine by its action, forced when its timeout (or the run's
/// budget, passed in through `stop_timeout`) runs out.
fn stop_one(r: &Runner, e: &Entry, ev: &Events) -> Result<()> {
    let drv = (r.open)(e.backend, &r.host)?;
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
