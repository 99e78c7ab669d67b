//! `creature autostart enable|disable|show|run|unit` and `autostop run`:
//! the plans of src/autostart carried out through each backend's Driver.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use crate::autostart::plan::{self, Batch, Entry};
use crate::autostart::run::{self, Events, Runner};
use crate::autostart::settings::{self, Settings};
use crate::backend::{self, Backend, Driver};
use crate::cli::{AutostartCommand, AutostartRunArgs, AutostartSettings, AutostopCommand};
use crate::cmd::Ctx;
use crate::error::{Error, Kind, Result};
use crate::interrupt;
use crate::names::{self, What};
use crate::output::Format;
use crate::output::{self, Table};
use crate::store::{RecordState, Store};

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
    let host = ctx.host()?;
    // Networks first: every autostart network comes up before any machine.
    if let Some(store) = Store::open_read_only(&ctx.global.state_dir)? {
        let nets: Vec<_> = store
            .networks(ctx.host_name())?
            .into_iter()
            .filter(|n| n.autostart)
            .collect();
        if !nets.is_empty() {
            let conn =
                crate::backend::libvirt::open(&host.network_uri()?, Duration::from_secs(30))?;
            for n in nets {
                match crate::backend::libvirt::network::start(
                    &conn,
                    &crate::net::libvirt_name(&n.name),
                ) {
                    Ok(()) => ctx.note(&format!("started network {}", n.name)),
                    Err(e) if e.kind() == Kind::Conflict => {}
                    Err(e) => return Err(e),
                }
                // A VLAN network's uplink is a veth, gone with the host's
                // reboot: made again on its bridge.
                crate::backend::ovs::attach(&n)?;
            }
        }
    }
    let total: usize = batches.iter().map(|b| b.machines.len()).sum();
    let ev = Events::new("autostart", total, ctx.global.quiet);
    let failed = run::start(&Runner::new(host), &batches, concurrency, &ev)?;
    // Like libvirt-guests' start, which removes its list after trying every
    // guest: the next autostop records afresh, whether or not all started.
    if Store::open_read_only(&ctx.global.state_dir)?.is_some() {
        Store::open(&ctx.global.state_dir)?.autostart_ran(ctx.host_name())?;
    }
    run::summarize("autostart", failed)
}

fn autostop_run(ctx: &Ctx, dry_run: bool, budget: Option<u64>) -> Result<()> {
    let all = entries(ctx)?;
    let host = ctx.host()?;
    // Only what runs is stopped; what ran is remembered for --restore-last-state.
    // One connection per backend, not per machine.
    let mut drivers: HashMap<Backend, Option<Box<dyn Driver>>> = HashMap::new();
    let mut running = Vec::new();
    for e in all {
        let drv =
            drivers
                .entry(e.backend)
                .or_insert_with(|| match backend::open(e.backend, &host) {
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
    let ev = Events::new("autostop", names.len(), ctx.global.quiet);
    let failed = run::stop(&Runner::new(host), &batches, budget, &ev);
    run::summarize("autostop", failed)
}

fn enable(ctx: &Ctx, a: &AutostartSettings, enabled: bool) -> Result<()> {
    names::check(What::Machine, &a.machine.name)?;
    let missing = || Error::machine_not_found(&a.machine.name, ctx.host_name());
    // Looked up read-only first: an unknown machine leaves nothing behind.
    Store::open_read_only(&ctx.global.state_dir)?.ok_or_else(missing)?;
    let mut store = Store::open(&ctx.global.state_dir)?;
    let rec = store
        .machine(ctx.host_name(), &a.machine.name)?
        .filter(|m| m.state == RecordState::Ready)
        .ok_or_else(missing)?;
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
            let missing = || Error::machine_not_found(&m.name, ctx.host_name());
            let store = Store::open_read_only(&ctx.global.state_dir)?.ok_or_else(missing)?;
            store
                .machine(ctx.host_name(), &m.name)?
                .ok_or_else(missing)?;
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
            // The `creature` the user ran (the front), not this engine.
            let exe = match std::env::var_os(crate::front::FRONT_VAR) {
                Some(p) => std::path::PathBuf::from(p),
                None => std::env::current_exe()
                    .map_err(|e| Error::other("cannot tell where creature is").caused_by(e))?,
            };
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
