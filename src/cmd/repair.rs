//! `creature repair [--dry-run]`: gathers what the state database, the
//! backends and the state directory hold, prints the plan of
//! `crate::repair`, and carries it out after a confirmation (or `--yes`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::backend::libvirt::{network as lvnet, storage};
use crate::backend::{self, Backend, Host};
use crate::cli::RepairArgs;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::output::{self, Table};
use crate::repair::{plan, Action, Facts, HostEntry};
use crate::store::{Leases, Store};

#[derive(Serialize)]
struct Report<'a> {
    /// Engines whose machines were not checked, and why.
    unchecked: &'a [String],
    actions: &'a [Action],
}

fn gather(ctx: &Ctx, host: &Host, unchecked: &mut Vec<String>) -> Result<Facts> {
    let state_dir = &ctx.global.state_dir;
    let hn = host.name();
    let mut f = Facts::default();
    let store = Store::open_read_only(state_dir)?;
    let mut networks = Vec::new();
    if let Some(s) = &store {
        f.records = s.machines(Some(hn))?;
        for r in &f.records {
            let macs = s.nics(hn, &r.name)?.into_iter().map(|n| n.mac).collect();
            f.macs.insert(r.name.clone(), macs);
        }
        f.journal = s.journal_machines(hn)?.into_iter().collect();
        let pool = crate::backend::libvirt::volume::default_pool(state_dir);
        f.recorded_block_volumes = s
            .volumes(hn)?
            .into_iter()
            .filter(|v| v.pool == pool)
            .filter_map(|v| {
                std::path::Path::new(&v.path)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
            })
            .collect();
        networks = s.networks(hn)?;
        f.elsewhere = s
            .machines(None)?
            .into_iter()
            .filter(|m| m.host != hn)
            .map(|m| m.name)
            .collect();
        f.evacuated = s
            .evacuated()?
            .into_iter()
            .filter(|(h, _, _)| h == hn)
            .map(|(_, m, shared)| (m, shared))
            .collect();
        f.groups = s.secgroups()?.into_iter().map(|g| g.name).collect();
    }
    f.scope = crate::backend::firewall::scope(state_dir);
    let mut engines: BTreeMap<Backend, BTreeSet<String>> = BTreeMap::new();
    engines.insert(host.vm_engine(), BTreeSet::new());
    engines.insert(Backend::Lxc, BTreeSet::new());
    for r in &f.records {
        engines
            .entry(backend::engine(r.backend))
            .or_default()
            .insert(r.name.clone());
    }
    for (eng, known) in engines {
        match backend::observe_within(host, eng, known) {
            Ok(list) => {
                f.observed.insert(eng, list);
            }
            Err(e) => unchecked.push(format!("{eng}: {}", e.message())),
        }
    }
    let names: BTreeSet<String> = f
        .records
        .iter()
        .map(|r| r.name.clone())
        .chain(f.observed.values().flatten().map(|o| o.name.clone()))
        .collect();
    f.busy = names
        .into_iter()
        .filter(|n| crate::statedir::machine_busy(state_dir, hn, n))
        .collect();
    match backend::libvirt::open(&host.network_uri()?, Duration::from_secs(30)) {
        Ok(conn) => {
            f.volumes = match conn.lookup_storage_pool_by_name(&storage::pool_name(state_dir)) {
                Ok(pool) => storage::volumes(&pool).ok(),
                Err(_) => Some(Vec::new()),
            };
            let vpool = crate::backend::libvirt::volume::default_pool(state_dir);
            f.block_volumes =
                if crate::statedir::lock_busy(&crate::statedir::volumes_lock(state_dir)) {
                    unchecked.push("block volumes: a `volume create` is running".into());
                    None
                } else {
                    match conn.lookup_storage_pool_by_name(&vpool) {
                        Ok(pool) => storage::volumes(&pool).ok(),
                        Err(_) => Some(Vec::new()),
                    }
                };
            let nic_prefix = format!("{}.nic.", f.scope);
            match (
                crate::backend::libvirt::nwfilter::of_scope(&conn, &f.scope),
                crate::backend::libvirt::nwfilter::bindings(&conn),
            ) {
                (Ok(filters), Ok(bindings)) => {
                    f.filters = Some(filters);
                    f.bindings = bindings
                        .into_iter()
                        .filter(|(_, filter)| filter.starts_with(&nic_prefix))
                        .collect();
                }
                (Err(e), _) | (_, Err(e)) => {
                    unchecked.push(format!("network filters: {}", e.message()))
                }
            }
            for n in &networks {
                match lvnet::host_entries(&conn, &crate::net::libvirt_name(&n.name)) {
                    Ok(list) => f
                        .host_entries
                        .extend(list.into_iter().map(|(mac, ip, name)| HostEntry {
                            network: n.name.clone(),
                            mac,
                            ip,
                            name,
                        })),
                    Err(e) => unchecked.push(format!("network {}: {}", n.name, e.message())),
                }
            }
        }
        Err(e) => unchecked.push(format!("volumes and DHCP hosts: {}", e.message())),
    }
    f.stale_files = crate::statedir::stale_files(state_dir);
    f.seeds = std::fs::read_dir(state_dir.join("seeds"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| crate::names::is_valid(n))
        .collect();
    Ok(f)
}

/// The network connection, opened on the first step that needs it.
fn network<'a>(
    host: &Host,
    conn: &'a mut Option<virt::connect::Connect>,
) -> Result<&'a virt::connect::Connect> {
    if conn.is_none() {
        *conn = Some(backend::libvirt::open(
            &host.network_uri()?,
            Duration::from_secs(30),
        )?);
    }
    Ok(conn.as_ref().expect("opened above"))
}

fn apply(
    ctx: &Ctx,
    host: &Host,
    conn: &mut Option<virt::connect::Connect>,
    a: &Action,
) -> Result<()> {
    let hn = host.name();
    let state_dir = &ctx.global.state_dir;
    match a {
        Action::RemoveMachine {
            machine, backend, ..
        } => {
            let _busy = crate::statedir::lock_machine(state_dir, hn, machine)?;
            backend::open(*backend, host)?.remove(machine).map(|_| ())
        }
        Action::RemoveStaleCopy {
            machine,
            backend,
            keep_disks,
            ..
        } => {
            let _busy = crate::statedir::lock_machine(state_dir, hn, machine)?;
            if *keep_disks {
                backend::libvirt::machine::undefine_only(host, *backend, machine)?;
            } else {
                backend::open(*backend, host)?.remove(machine)?;
            }
            Store::open(state_dir)?.forget_evacuated(hn, machine)
        }
        Action::ForgetRecord { machine, .. } => {
            let _busy = crate::statedir::lock_machine(state_dir, hn, machine)?;
            Store::open(state_dir)?
                .remove_machine(hn, machine, Leases::MayLive)
                .map(|_| ())
        }
        Action::DeleteVolume { volume, .. } => {
            let pool = network(host, conn)?
                .lookup_storage_pool_by_name(&storage::pool_name(state_dir))
                .map_err(|e| {
                    backend::libvirt::map_error("cannot find creature's storage pool", e)
                })?;
            storage::delete_volume(&pool, volume).map(|_| ())
        }
        Action::DeleteBlockVolume { volume, .. } => {
            let _creating = crate::statedir::lock_file(&crate::statedir::volumes_lock(state_dir))?;
            let pool = network(host, conn)?
                .lookup_storage_pool_by_name(&crate::backend::libvirt::volume::default_pool(
                    state_dir,
                ))
                .map_err(|e| {
                    backend::libvirt::map_error("cannot find creature's volume pool", e)
                })?;
            storage::delete_volume(&pool, volume).map(|_| ())
        }
        Action::RemoveHostEntry { entry, .. } => {
            let conn = network(host, conn)?;
            let ip = entry
                .ip
                .parse()
                .map_err(|_| Error::other(format!("bad IP {:?} in a host entry", entry.ip)))?;
            lvnet::remove_host(
                conn,
                &crate::net::libvirt_name(&entry.network),
                &entry.mac,
                &entry.name,
                ip,
            )
        }
        Action::ClearJournal { machine, .. } => Store::open(state_dir)?.clear_journal(hn, machine),
        Action::RemoveFile { path, .. } => std::fs::remove_file(path)
            .map_err(|e| Error::other(format!("cannot remove {}", path.display())).caused_by(e)),
        Action::RemoveSeed { machine, .. } => crate::seed::store::remove(state_dir, machine),
        Action::Unbind { portdev, .. } => {
            crate::backend::libvirt::nwfilter::unbind(network(host, conn)?, portdev)
        }
        Action::RemoveFilter { filter, .. } => {
            crate::backend::libvirt::nwfilter::undefine(network(host, conn)?, filter)
        }
    }
}

pub fn run(ctx: &Ctx, args: &RepairArgs) -> Result<()> {
    let host = ctx.host()?;
    let mut unchecked = Vec::new();
    let facts = gather(ctx, &host, &mut unchecked)?;
    let actions = plan(&facts);
    let report = Report {
        unchecked: &unchecked,
        actions: &actions,
    };
    if args.dry_run || actions.is_empty() || ctx.global.format == output::Format::Json {
        output::emit(ctx.global.format, &report, || {
            let mut t = Table::new(["PLANNED"]);
            for a in &actions {
                t.row([a.describe()]);
            }
            t
        })?;
    }
    for u in &unchecked {
        ctx.note(&format!("not checked: {u}"));
    }
    if actions.is_empty() {
        ctx.say("nothing to repair: the state database and the backends agree");
        return Ok(());
    }
    if args.dry_run {
        return Ok(());
    }
    if !ctx.global.yes && ctx.global.format != output::Format::Json {
        for a in &actions {
            eprintln!("  {}", a.describe());
        }
    }
    crate::cmd::lifecycle::confirm(ctx, &format!("carry out these {} steps", actions.len()))?;
    let mut failed = 0;
    let mut conn = None;
    for a in &actions {
        match apply(ctx, &host, &mut conn, a) {
            Ok(()) => ctx.say(&format!("done: {}", a.describe())),
            Err(e) => {
                failed += 1;
                eprintln!("failed: {}: {}", a.describe(), e.message());
            }
        }
    }
    if failed > 0 {
        return Err(Error::other(format!(
            "{failed} of {} repair steps failed; run `creature repair` again to see what is left",
            actions.len()
        )));
    }
    Ok(())
}
