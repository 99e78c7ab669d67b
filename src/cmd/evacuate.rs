//! `creature evacuate HOST --to HOST2` (#4): the VMs of a host that is down
//! rebuilt on another from their records (what each was made from, its
//! name, MACs and IPs), with the disks the destination shares with the lost
//! host, or fresh ones from the image. A plan first, then machine by
//! machine: one that fails is reported and undone, the others go on.

use crate::backend::libvirt::machine::LibvirtDriver;
use crate::backend::libvirt::{reserve, ship};
use crate::backend::{firewall, Backend, CreateJob, Driver, Host};
use crate::cli::EvacuateArgs;
use crate::cmd::Ctx;
use crate::error::{Error, Kind, Result};
use crate::op::{Op, Who};
use crate::store::{MachineRecord, Store};
use crate::template::Resolved;
use crate::undo::Undo;

/// One machine of the lost host, as the plan has it.
struct Planned {
    rec: MachineRecord,
    /// Why it cannot be rebuilt; None: it can.
    refused: Option<Error>,
    resolved: Option<Resolved>,
    /// The destination has its disks already (storage shared with the
    /// lost host): they are reused.
    shared: bool,
}

fn plan_one(
    store: &Store,
    pool: &virt::storage_pool::StoragePool,
    dst: &virt::connect::Connect,
    rec: &MachineRecord,
    to: &str,
) -> Planned {
    let mut p = Planned {
        rec: rec.clone(),
        refused: None,
        resolved: None,
        shared: false,
    };
    let name = rec.name.as_str();
    let checked = (|| -> Result<(Resolved, bool)> {
        Op::Evacuate.require(Who::Machine(name), rec.backend)?;
        let spec = store.spec(&rec.host, name)?.ok_or_else(|| {
            Error::conflict(format!(
                "{name} was made before creature kept what machines are made from; rebuild it by hand (`creature create {name} -t {}`)",
                rec.template.as_deref().unwrap_or("TEMPLATE")
            ))
        })?;
        let r = Resolved::from_record(&spec)?;
        store.nics_on(&rec.host, name, to)?;
        if dst.lookup_domain_by_name(name).is_ok() {
            return Err(Error::conflict(format!(
                "host {to} already has a domain named {name}"
            )));
        }
        let _ = pool.refresh(0);
        let n = r.template.disks.len();
        let found = (0..n)
            .filter(|i| {
                pool.lookup_storage_vol_by_name(&format!("{name}-disk{i}.qcow2"))
                    .is_ok()
            })
            .count();
        if found != 0 && found != n {
            return Err(Error::conflict(format!(
                "host {to} sees {found} of {name}'s {n} disks; shared storage must hold all of them or none"
            )));
        }
        Ok((r, n > 0 && found == n))
    })();
    match checked {
        Ok((r, shared)) => {
            p.resolved = Some(r);
            p.shared = shared;
        }
        Err(e) => p.refused = Some(e),
    }
    p
}

fn describe(p: &Planned, store: &Store) -> String {
    let name = &p.rec.name;
    if let Some(e) = &p.refused {
        return format!("  {name} ({}): not rebuilt: {}", p.rec.backend, e.message());
    }
    let addrs = store
        .nics(&p.rec.host, name)
        .unwrap_or_default()
        .iter()
        .map(|n| match &n.ip {
            Some(ip) => format!("{} {} {ip}", n.network, n.mac),
            None => format!("{} {}", n.network, n.mac),
        })
        .collect::<Vec<_>>();
    let disks = match (&p.resolved, p.shared) {
        (Some(r), _) if r.template.disks.is_empty() => "no disks".to_string(),
        (_, true) => "its disks, which the destination shares with the lost host".to_string(),
        _ => "FRESH disks from the image: what was on the lost host's disks is lost".to_string(),
    };
    format!(
        "  {name} ({}, template {}): same name and addresses ({}); {disks}",
        p.rec.backend,
        p.resolved.as_ref().map(|r| r.name.as_str()).unwrap_or("?"),
        if addrs.is_empty() {
            "no NICs".to_string()
        } else {
            addrs.join(", ")
        }
    )
}

pub fn run(ctx: &Ctx, a: &EvacuateArgs) -> Result<()> {
    crate::interrupt::catch();
    let state_dir = &ctx.global.state_dir;
    let from = Host::resolve(Some(&a.from), state_dir)?;
    let to = Host::resolve(Some(&a.to), state_dir)?;
    if from.name() == to.name() {
        return Err(Error::invalid(
            "evacuate: the destination is the host to empty",
        ));
    }
    let mut store = Store::open(state_dir)?;
    store.check_host_takes_machines(to.name())?;
    let machines = store.machines(Some(from.name()))?;
    if machines.is_empty() {
        ctx.say(&format!(
            "host {} has no machines: nothing to do",
            from.name()
        ));
        return Ok(());
    }
    // A host that still answers has machines that can migrate instead; two
    // copies of one machine must never run.
    let answers =
        crate::backend::libvirt::open(&from.uri(Backend::Qemu)?, std::time::Duration::from_secs(5))
            .is_ok();
    if answers && !a.force {
        return Err(Error::conflict(format!(
            "host {} answers: migrate its machines (`creature migrate NAME --to {}`); --force rebuilds them anyway, and the old copies must then never start again",
            from.name(),
            to.name()
        )));
    }
    let dst_drv = LibvirtDriver::open(Backend::Qemu, &to.uri(Backend::Qemu)?, state_dir)?;
    let pool = ship::disks_pool(&dst_drv.conn, state_dir)?;
    let plan: Vec<Planned> = machines
        .iter()
        .map(|m| plan_one(&store, &pool, &dst_drv.conn, m, to.name()))
        .collect();
    println!("evacuate host {} to host {}:", from.name(), to.name());
    for p in &plan {
        println!("{}", describe(p, &store));
    }
    let doable = plan.iter().filter(|p| p.refused.is_none()).count();
    let (mut failed, plan): (Vec<(String, Error)>, Vec<Planned>) =
        plan.into_iter()
            .fold((Vec::new(), Vec::new()), |(mut f, mut ok), mut p| {
                match p.refused.take() {
                    Some(e) => f.push((p.rec.name.clone(), e)),
                    None => ok.push(p),
                }
                (f, ok)
            });
    if doable > 0 {
        crate::cmd::lifecycle::confirm(
            ctx,
            &format!(
                "rebuild {doable} machine{} of host {} on host {}?",
                if doable == 1 { "" } else { "s" },
                from.name(),
                to.name()
            ),
        )?;
    }
    for p in plan {
        let name = p.rec.name.clone();
        if crate::interrupt::requested() {
            failed.push((name, crate::interrupt::error("evacuation; not begun")));
            continue;
        }
        match rebuild(ctx, &mut store, &from, &to, &p) {
            Ok(()) => ctx.say(&format!("rebuilt {name} on host {}", to.name())),
            Err(e) => {
                eprintln!("error: {name}: {}", e.message());
                failed.push((name, e));
            }
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let worst = failed
        .iter()
        .map(|(_, e)| e.kind())
        .max_by_key(|k| k.exit_code())
        .unwrap_or(Kind::Other);
    Err(Error::new(
        worst,
        format!(
            "{} of {} machines were not rebuilt: {}",
            failed.len(),
            machines.len(),
            failed
                .iter()
                .map(|(n, e)| format!("{n} (exit {})", e.kind().exit_code()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

/// One machine: its record moved, its addresses reserved and filtered on
/// the destination, its domain made there (disks reused or fresh), its
/// config drive written again, started. Undone whole on failure.
fn rebuild(ctx: &Ctx, store: &mut Store, from: &Host, to: &Host, p: &Planned) -> Result<()> {
    let state_dir = &ctx.global.state_dir;
    let name = p.rec.name.as_str();
    let r = p.resolved.as_ref().expect("planned");
    let _busy = crate::statedir::lock_machine(state_dir, from.name(), name)?;
    let drv = LibvirtDriver::open(r.backend, &to.uri(r.backend)?, state_dir)?;
    let mut undo = Undo::new();
    let made = (|| -> Result<()> {
        store.move_machine(name, from.name(), to.name())?;
        {
            let (dir, n, f, t) = (
                state_dir.clone(),
                name.to_string(),
                from.name().to_string(),
                to.name().to_string(),
            );
            undo.push(format!("{name}'s record back on host {f}"), move || {
                Store::open(&dir)?.move_machine(&n, &t, &f)
            });
        }
        let nics = store.nics(to.name(), name)?;
        reserve::push(&drv.conn, name, &nics, &mut undo)?;
        if !nics.is_empty() {
            let scope = firewall::scope(state_dir);
            firewall::sync_machine(&drv.conn, &scope, store, to.name(), name)?;
            let (c, k) = (drv.conn.clone(), nics.len());
            let m = name.to_string();
            undo.push("its network filters", move || {
                firewall::remove_machine(&c, &scope, &m, k)
            });
        }
        let display = store.display(to.name(), name)?;
        let job = CreateJob {
            host: to.name(),
            name,
            resolved: r,
            nics: &nics,
            quiet: ctx.global.quiet,
            seed: crate::seed::store::load(state_dir, name)?.is_some(),
            display: display.as_ref(),
            reuse_disks: p.shared,
        };
        // Its own undo undefines the domain and deletes only the disks it
        // made (reused ones are the machine's).
        drv.create(&job, store, &mut undo)?;
        if crate::seed::drive::rewrite(&drv, state_dir, store, to.name(), name)? && drv.remote {
            let (c, dir, vol) = (drv.conn.clone(), state_dir.clone(), ship::seed_volume(name));
            undo.push(format!("the config drive {vol}"), move || {
                crate::backend::libvirt::storage::delete_volume(&ship::disks_pool(&c, &dir)?, &vol)
                    .map(|_| ())
            });
        }
        crate::undo::fail_point("evacuate")?;
        drv.start(name)?;
        store.mark_evacuated(from.name(), name, p.shared)
    })();
    match made {
        Ok(()) => {
            undo.commit();
            Ok(())
        }
        Err(e) => {
            for l in undo.rollback() {
                eprintln!("warning: could not undo for {name}: {l}");
            }
            Err(e)
        }
    }
}
