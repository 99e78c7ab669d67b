//! `creature list`: every machine on the host in one pass per backend,
//! reconciled with creature's records. Each backend gets a deadline, so a
//! hung daemon turns its rows `unknown` instead of hanging the command.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::backend::libvirt::machine::LibvirtDriver;
use crate::backend::{Driver, Observed, Owner, PowerState};
use crate::cli::ListArgs;
use crate::cmd::Ctx;
use crate::deadline;
use crate::error::{Error, Result};
use crate::matrix::Backend;
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
    /// Reserved IPs of its NICs.
    pub ips: Vec<String>,
    pub cpus: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub cpu_time_ns: Option<u64>,
}

const BACKEND_DEADLINE: Duration = Duration::from_secs(10);

/// What one libvirt connection reports, with ownership resolved for the
/// domains creature has no record of.
fn observe_libvirt(
    ctx: &Ctx,
    backend: Backend,
    known: BTreeSet<String>,
) -> Result<Vec<(Observed, Option<Backend>)>> {
    let uri = ctx.uri(backend)?;
    let state_dir = ctx.global.state_dir.clone();
    deadline::run(
        &format!("libvirt at {}", uri.0),
        BACKEND_DEADLINE,
        move || {
            let drv = LibvirtDriver::open(backend, &uri, &state_dir)?;
            let all = drv.observe_all()?;
            let saved = if all.iter().any(|o| o.state == PowerState::ShutOff) {
                drv.saved_names()?
            } else {
                Default::default()
            };
            let mut out = Vec::with_capacity(all.len());
            for mut o in all {
                let ty = if known.contains(&o.name) {
                    o.owner = Owner::Ours;
                    if o.state == PowerState::ShutOff && saved.contains(&o.name) {
                        o.state = PowerState::Saved;
                    }
                    None
                } else {
                    let (owner, ty) = drv.owner_and_type(&o.name);
                    o.owner = owner;
                    ty
                };
                out.push((o, ty));
            }
            Ok(out)
        },
    )
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
        ips: Vec::new(),
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
        ips: Vec::new(),
        cpus: obs.and_then(|o| o.cpus),
        memory_bytes: obs.and_then(|o| o.memory_bytes),
        cpu_time_ns: obs.and_then(|o| o.cpu_time_ns),
    }
}

pub fn run(ctx: &Ctx, args: &ListArgs) -> Result<()> {
    if args.all_hosts {
        return Err(Error::other(
            "`creature list --all-hosts` is not implemented yet",
        ));
    }
    let store = Store::open_read_only(&ctx.global.state_dir)?;
    let records = match &store {
        Some(s) => s.machines(Some(ctx.host_name()))?,
        None => Vec::new(),
    };
    // kvm and qemu share one connection; xen is asked only when it has machines.
    let mut groups: BTreeMap<&'static str, (Backend, BTreeSet<String>)> = BTreeMap::new();
    groups.insert("qemu", (Backend::Qemu, BTreeSet::new()));
    for r in &records {
        let key = match r.backend {
            Backend::Kvm | Backend::Qemu => "qemu",
            Backend::Xen => "xen",
            Backend::Lxc => continue,
        };
        groups
            .entry(key)
            .or_insert((r.backend, BTreeSet::new()))
            .1
            .insert(r.name.clone());
    }
    let mut observed: BTreeMap<String, Observed> = BTreeMap::new();
    let mut extra: Vec<ListRow> = Vec::new();
    let mut failed: BTreeSet<&'static str> = BTreeSet::new();
    for (key, (backend, known)) in groups {
        let needed = !known.is_empty();
        match observe_libvirt(ctx, backend, known) {
            Ok(list) => {
                for (o, ty) in list {
                    match &o.owner {
                        Owner::Ours if ty.is_none() => {
                            observed.insert(o.name.clone(), o);
                        }
                        Owner::Ours | Owner::Foreign => {
                            extra.push(unrecorded(&o, ty.unwrap_or(o.backend), ctx.host_name()))
                        }
                        Owner::OtherState(_) => {} // another state directory's machine
                    }
                }
            }
            Err(e) => {
                if needed {
                    ctx.note(&format!("{key} machines: state unknown: {}", e.message()));
                }
                failed.insert(key);
            }
        }
    }
    // Containers: one local pass over the lxc path, with its own deadline.
    let mut lxc_failed = false;
    {
        let state_dir = ctx.global.state_dir.clone();
        let seen = deadline::run("liblxc", BACKEND_DEADLINE, move || {
            use crate::backend::Driver;
            crate::backend::lxc::driver::LxcDriver::new(&state_dir).observe_all()
        });
        match seen {
            Ok(list) => {
                for o in list {
                    match &o.owner {
                        Owner::Ours
                            if records
                                .iter()
                                .any(|r| r.name == o.name && r.backend == Backend::Lxc) =>
                        {
                            observed.insert(o.name.clone(), o);
                        }
                        Owner::Ours | Owner::Foreign => {
                            extra.push(unrecorded(&o, Backend::Lxc, ctx.host_name()))
                        }
                        Owner::OtherState(_) => {}
                    }
                }
            }
            Err(e) => {
                if records.iter().any(|r| r.backend == Backend::Lxc) {
                    ctx.note(&format!("lxc machines: state unknown: {}", e.message()));
                }
                lxc_failed = true;
            }
        }
    }
    let mut rows: Vec<ListRow> = records
        .iter()
        .map(|r| {
            let key = if r.backend == Backend::Xen {
                "xen"
            } else {
                "qemu"
            };
            let rec_state = if r.state == RecordState::Ready {
                "ok"
            } else {
                "incomplete"
            };
            match (r.backend, observed.get(&r.name)) {
                (Backend::Lxc, Some(o)) => row(r, Some(o), o.state.as_str().into(), rec_state),
                (Backend::Lxc, None) if lxc_failed => row(r, None, "unknown".into(), rec_state),
                (Backend::Lxc, None) if r.state == RecordState::Ready => {
                    row(r, None, "-".into(), "missing")
                }
                (Backend::Lxc, None) => row(r, None, "-".into(), rec_state),
                (_, Some(o)) => row(r, Some(o), o.state.as_str().into(), rec_state),
                (_, None) if failed.contains(key) => row(r, None, "unknown".into(), rec_state),
                (_, None) if r.state == RecordState::Ready => row(r, None, "-".into(), "missing"),
                (_, None) => row(r, None, "-".into(), rec_state),
            }
        })
        .collect();
    if let Some(s) = &store {
        let mut ips = s.ips_by_machine(ctx.host_name())?;
        for r in rows.iter_mut() {
            r.ips = ips.remove(&r.name).unwrap_or_default();
        }
    }
    rows.extend(extra);
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    output::emit(ctx.global.format, &rows, || {
        let mut t = Table::new(["NAME", "BACKEND", "STATE", "RECORD", "IP", "TEMPLATE"]);
        for r in &rows {
            t.row([
                r.name.clone(),
                r.backend.to_string(),
                r.state.clone(),
                r.record.to_string(),
                if r.ips.is_empty() {
                    "-".into()
                } else {
                    r.ips.join(",")
                },
                r.template.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        t
    })
}
