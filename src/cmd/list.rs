//! `creature list`: every machine on the host in one pass per backend,
//! reconciled with creature's records. Each backend gets a deadline, so a
//! hung daemon turns its rows `unknown` instead of hanging the command.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::backend::{self, Backend, Host, Limit, Observed, Owner};
use crate::cli::{Filter, ListArgs};
use crate::cmd::nic_view::{self, NicView};
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::output::{self, Table};
use crate::store::{MachineRecord, RecordState, Store};

/// One row of `creature list --format json` (a stable shape).
#[derive(Debug, Serialize)]
pub struct ListRow {
    pub name: String,
    pub host: String,
    pub backend: Backend,
    /// running, paused, shutting-down, shut-off, saved, crashed, unknown
    /// (backend did not answer) or "-" (no such machine on the backend).
    pub state: String,
    /// ok, incomplete (interrupted create or delete), missing (record
    /// without a machine), untracked (made by creature, record lost) or
    /// foreign (not made by creature).
    pub record: &'static str,
    pub template: Option<String>,
    pub created_at: Option<String>,
    /// Its NICs: network, MAC, reserved IP and (running) leased IP.
    pub nics: Vec<NicView>,
    /// vCPUs, or a container's CPU limit ("host": none); null when unknown.
    pub cpus: Option<Limit>,
    pub memory_bytes: Option<Limit>,
    pub cpu_time_ns: Option<u64>,
}

/// A row for a machine creature has no record of: made by it (untracked)
/// or by someone else (foreign).
fn unrecorded(o: &Observed, backend: Backend, host: &str) -> ListRow {
    ListRow {
        record: if o.owner == Owner::Ours {
            "untracked"
        } else {
            "foreign"
        },
        name: o.name.clone(),
        host: host.to_string(),
        backend,
        state: o.state.as_str().to_string(),
        template: None,
        created_at: None,
        nics: Vec::new(),
        cpus: o.cpus,
        memory_bytes: o.memory_bytes,
        cpu_time_ns: o.cpu_time_ns,
    }
}

fn row(
    rec: &MachineRecord,
    obs: Option<&Observed>,
    state: String,
    record: &'static str,
) -> ListRow {
    ListRow {
        name: rec.name.clone(),
        host: rec.host.clone(),
        backend: rec.backend,
        state,
        record,
        template: rec.template.clone(),
        created_at: Some(rec.created_at.clone()),
        nics: Vec::new(),
        cpus: obs.and_then(|o| o.cpus),
        memory_bytes: obs.and_then(|o| o.memory_bytes),
        cpu_time_ns: obs.and_then(|o| o.cpu_time_ns),
    }
}

/// One host's rows, filtered, with the leases of its running machines.
fn host_rows(ctx: &Ctx, host: &Host, f: &Filter) -> Result<Vec<ListRow>> {
    let mut rows = rows(ctx, host)?;
    rows.retain(|r| matches(r, f));
    let networks = rows
        .iter()
        .filter(|r| active(r))
        .flat_map(|r| r.nics.iter().map(|n| n.network.clone()))
        .collect();
    let leases = nic_view::leases(host, networks);
    for r in rows.iter_mut() {
        let up = active(r);
        nic_view::fill_leases(&mut r.nics, &leases, up);
    }
    Ok(rows)
}

/// `--host NAME` (or CREATURE_HOST) lists that host; otherwise every host
/// creature knows is asked at once, each within its own deadline, so one
/// that does not answer costs one warning line, not the others' rows.
pub fn run(ctx: &Ctx, args: &ListArgs) -> Result<()> {
    let hosts = if ctx.global.host.is_some() {
        vec![ctx.host()?]
    } else {
        crate::backend::Host::all(&ctx.global.state_dir)?
    };
    let several = hosts.len() > 1;
    let mut rows = Vec::new();
    if several {
        let results: Vec<Result<Vec<ListRow>>> = std::thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|h| s.spawn(|| host_rows(ctx, h, &args.filter)))
                .collect();
            handles
                .into_iter()
                .map(|j| {
                    j.join()
                        .unwrap_or_else(|_| Err(Error::other("listing a host panicked")))
                })
                .collect()
        });
        for (h, r) in hosts.iter().zip(results) {
            match r {
                Ok(v) => rows.extend(v),
                Err(e) => eprintln!("warning: host {}: {}", h.name(), e.message()),
            }
        }
    } else {
        rows = host_rows(ctx, &hosts[0], &args.filter)?;
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    output::emit(ctx.global.format, &rows, || {
        let mut head = vec!["NAME"];
        if several {
            head.push("HOST");
        }
        head.extend([
            "BACKEND", "STATE", "RECORD", "CPUS", "MEMORY", "IP", "TEMPLATE",
        ]);
        let mut t = Table::new(head);
        for r in &rows {
            let mut cells = vec![r.name.clone()];
            if several {
                cells.push(r.host.clone());
            }
            cells.extend([
                r.backend.to_string(),
                r.state.clone(),
                r.record.to_string(),
                r.cpus.map_or("-".into(), |c| c.show(false)),
                r.memory_bytes.map_or("-".into(), |m| m.show(true)),
                nic_view::labels(&r.nics),
                r.template.clone().unwrap_or_else(|| "-".into()),
            ]);
            t.row(cells);
        }
        t
    })
}

fn active(r: &ListRow) -> bool {
    crate::backend::PowerState::parse(&r.state).is_some_and(|s| s.is_active())
}

/// Whether a row passes the filters `list` and the verbs on several
/// machines share (every given filter must hold).
pub fn matches(r: &ListRow, f: &Filter) -> bool {
    (f.state.is_empty() || f.state.iter().any(|s| s.as_str() == r.state))
        && f.backend.is_none_or(|b| b == r.backend)
        && f.template
            .as_deref()
            .is_none_or(|t| r.template.as_deref() == Some(t))
        && f.network
            .as_deref()
            .is_none_or(|n| r.nics.iter().any(|x| x.network == n))
}

/// Every machine of the host: creature's records reconciled with what each
/// engine reports (NICs without leases; `run` adds those for display).
pub fn rows(ctx: &Ctx, host: &Host) -> Result<Vec<ListRow>> {
    let hn = host.name();
    let store = Store::open_read_only(&ctx.global.state_dir)?;
    let records = match &store {
        Some(s) => s.machines(Some(hn))?,
        None => Vec::new(),
    };
    // The host's VM driver (qemu with kvm, or a Xen host's) and, on this
    // host, lxc are always asked, so machines creature did not make show
    // up; local xen only when creature has machines there.
    let mut engines: BTreeMap<Backend, BTreeSet<String>> = BTreeMap::new();
    engines.insert(host.vm_engine(), BTreeSet::new());
    if host.is_local() {
        engines.insert(Backend::Lxc, BTreeSet::new());
    }
    for r in &records {
        engines
            .entry(backend::engine(r.backend))
            .or_default()
            .insert(r.name.clone());
    }
    let mut observed: BTreeMap<(Backend, String), Observed> = BTreeMap::new();
    let mut extra: Vec<ListRow> = Vec::new();
    let mut failed: BTreeSet<Backend> = BTreeSet::new();
    for (eng, known) in engines {
        let needed = !known.is_empty();
        match backend::observe_within(host, eng, known.clone()) {
            Ok(list) => {
                for o in list {
                    match &o.owner {
                        Owner::Ours if known.contains(&o.name) => {
                            observed.insert((eng, o.name.clone()), o);
                        }
                        Owner::Ours | Owner::Foreign => extra.push(unrecorded(&o, o.backend, hn)),
                        Owner::OtherState(_) => {} // another state directory's machine
                    }
                }
            }
            Err(e) => {
                if !host.is_local() {
                    // One line per host that does not answer, machines or not.
                    eprintln!("warning: host {hn} is unreachable: {}", e.message());
                } else if needed {
                    ctx.note(&format!("{eng} machines: state unknown: {}", e.message()));
                }
                failed.insert(eng);
            }
        }
    }
    let mut rows: Vec<ListRow> = records
        .iter()
        .map(|r| {
            let eng = backend::engine(r.backend);
            let rec_state = if r.state == RecordState::Ready {
                "ok"
            } else {
                "incomplete"
            };
            match observed.get(&(eng, r.name.clone())) {
                Some(o) => row(r, Some(o), o.state.as_str().into(), rec_state),
                // A host that did not answer is unreachable; on this host
                // an engine that did not is a state unknown.
                None if failed.contains(&eng) && !host.is_local() => {
                    row(r, None, "unreachable".into(), rec_state)
                }
                None if failed.contains(&eng) => row(r, None, "unknown".into(), rec_state),
                None if r.state == RecordState::Ready => row(r, None, "-".into(), "missing"),
                None => row(r, None, "-".into(), rec_state),
            }
        })
        .collect();
    if let Some(s) = &store {
        let mut nics = s.nics_by_machine(hn)?;
        for r in rows.iter_mut() {
            r.nics = nic_view::views(
                &nics.remove(&r.name).unwrap_or_default(),
                &Default::default(),
                false,
            );
        }
    }
    rows.extend(extra);
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}
