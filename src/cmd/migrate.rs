//! `creature migrate MACHINE --to HOST` (#7): every refusal checked before
//! anything is made, the destination made ready, libvirt's migration job,
//! then the record moved and the source cleaned. Until libvirt reports the
//! job done the machine is the source's: any failure (or Ctrl-C) undoes
//! what the destination got and leaves the record as it was.

use serde::Serialize;

use crate::backend::libvirt::machine::{dom_state, LibvirtDriver};
use crate::backend::libvirt::migrate::{self, Options, Stats};
use crate::backend::libvirt::{map_error, migrate_xml, network as lvnet, reserve, ship, storage};
use crate::backend::{firewall, Host, PowerState};
use crate::cli::MigrateArgs;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::output::{self, Table};
use crate::size::Size;
use crate::store::{MachineRecord, Store};
use crate::undo::{fail_point, Undo};

#[derive(Serialize)]
struct View {
    name: String,
    from: String,
    to: String,
    #[serde(flatten)]
    stats: Stats,
}

/// Refusals that need no libvirt: the record's own state.
fn check_record(store: &Store, rec: &MachineRecord, to: &str) -> Result<()> {
    let (from, name) = (rec.host.as_str(), rec.name.as_str());
    store.check_host_takes_machines(to)?;
    let vols = store.volumes_of(from, name)?;
    if !vols.is_empty() {
        return Err(Error::conflict(format!(
            "{name} has volumes attached ({}); they stay on host {from}: detach them first",
            vols.iter()
                .map(|(v, _)| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !store.snapshots(from, name)?.is_empty() {
        return Err(Error::conflict(format!(
            "{name} has snapshots, whose files stay on host {from}: delete them first"
        )));
    }
    store.nics_on(from, name, to).map(|_| ())
}

/// A live machine's memory must fit in what the destination has free.
fn memory_fits(host: &str, name: &str, free: u64, need: u64) -> Result<()> {
    if free < need {
        return Err(Error::conflict(format!(
            "host {host} has {} of free memory; {name} needs {}",
            Size(free).human(),
            Size(need).human()
        )));
    }
    Ok(())
}

pub fn run(ctx: &Ctx, rec: &MachineRecord, a: &MigrateArgs) -> Result<()> {
    let state_dir = &ctx.global.state_dir;
    let name = rec.name.as_str();
    let from = Host::resolve(Some(&rec.host), state_dir)?;
    let to = Host::resolve(Some(&a.to), state_dir)?;
    if from.name() == to.name() {
        return Err(Error::invalid(format!(
            "{name} is already on host {}",
            to.name()
        )));
    }
    let _busy = crate::statedir::lock_machine(state_dir, from.name(), name)?;
    let mut store = Store::open(state_dir)?;
    store.check_host_takes_machines(to.name())?;
    // A host that does not answer is said first: nothing else matters then.
    let dst =
        crate::backend::libvirt::open(&to.uri(rec.backend)?, std::time::Duration::from_secs(30))?;
    check_record(&store, rec, to.name())?;
    let src = LibvirtDriver::open(rec.backend, &from.uri(rec.backend)?, state_dir)?;
    let dom = src.ours(name)?;
    if src.rescue_file(name).exists() {
        return Err(Error::conflict(format!(
            "{name} is in rescue; `creature unrescue {name}` first"
        )));
    }
    let live = match dom_state(&dom)? {
        PowerState::Running | PowerState::Paused => true,
        PowerState::ShutOff | PowerState::Crashed => false,
        st => {
            return Err(Error::conflict(format!(
                "{name} is {}; it migrates running, paused or shut off",
                st.as_str()
            )))
        }
    };
    if a.offline && live {
        return Err(Error::conflict(format!(
            "{name} is running; stop it first, or migrate it live (without --offline)"
        )));
    }
    if dst.lookup_domain_by_name(name).is_ok() {
        return Err(Error::conflict(format!(
            "host {} already has a domain named {name}; nothing was moved",
            to.name()
        )));
    }
    if live {
        let need = dom
            .info()
            .map_err(|e| map_error(format!("cannot read {name}"), e))?
            .memory
            * 1024;
        let free = dst
            .free_memory()
            .map_err(|e| map_error(format!("cannot read host {}'s memory", to.name()), e))?;
        memory_fits(to.name(), name, free, need)?;
    }
    let nics = store.nics(from.name(), name)?;
    for n in &nics {
        let net = crate::net::libvirt_name(&n.network);
        let up = lvnet::lookup(&dst, &net)
            .ok()
            .and_then(|x| x.is_active().ok())
            .unwrap_or(false);
        if !up {
            return Err(Error::conflict(format!(
                "network {} on host {} is not running: `creature --host {} net start {}`",
                n.network,
                to.name(),
                to.name(),
                n.network
            )));
        }
    }
    let flags = virt::sys::VIR_DOMAIN_XML_MIGRATABLE;
    let xml_live = dom
        .xml_desc(flags)
        .map_err(|e| map_error(format!("cannot read the definition of {name}"), e))?;
    let xml_persist = dom
        .xml_desc(flags | virt::sys::VIR_DOMAIN_XML_INACTIVE)
        .map_err(|e| map_error(format!("cannot read the definition of {name}"), e))?;
    let files = migrate_xml::files(&xml_live)?;
    let scope = firewall::scope(state_dir);

    let mut undo = Undo::new();
    let moved = (|| -> Result<(migrate::Prepared, Stats)> {
        let prep = migrate::prepare(
            &src.conn,
            &dst,
            state_dir,
            name,
            &files,
            &crate::seed::store::iso(state_dir, name),
            ctx.global.quiet,
            &mut undo,
        )?;
        if a.copy_storage && prep.shared {
            return Err(Error::invalid(format!(
                "hosts {} and {} see the same disk pool: copying {name}'s disks would write them onto themselves",
                from.name(),
                to.name()
            )));
        }
        fail_point("migrate-storage")?;
        reserve::push(&dst, name, &nics, &mut undo)?;
        if !nics.is_empty() {
            firewall::sync_machine(&dst, &scope, &store, from.name(), name)?;
            let (c, s, m, k) = (dst.clone(), scope.clone(), name.to_string(), nics.len());
            undo.push("its network filters on the destination", move || {
                firewall::remove_machine(&c, &s, &m, k)
            });
        }
        let copy = !prep.copied.is_empty();
        if copy && !live {
            let src_pool = ship::disks_pool(&src.conn, state_dir)?;
            let dst_pool = ship::disks_pool(&dst, state_dir)?;
            for vol in &prep.copied {
                migrate::copy_volume(
                    &src.conn,
                    &src_pool,
                    &dst,
                    &dst_pool,
                    vol,
                    ctx.global.quiet,
                    &mut undo,
                )?;
            }
        }
        fail_point("migrate")?;
        let opts = Options {
            live,
            copy_storage: copy && live,
            shared: prep.shared,
            max_downtime_ms: a.max_downtime,
            bandwidth_mib: a.bandwidth,
            p2p_uri: (!to.is_local()).then(|| to.uri_text()),
            quiet: ctx.global.quiet,
        };
        let dest_xml = if live {
            Some(migrate_xml::relocate(&xml_live, &prep.moved)?)
        } else {
            None
        };
        let persist = migrate_xml::relocate(&xml_persist, &prep.moved)?;
        let mut stats = migrate::run(&dom, &dst, dest_xml, persist, &opts)?;
        stats.copied_storage = copy;
        Ok((prep, stats))
    })();
    let (prep, stats) = match moved {
        Ok(x) => x,
        Err(e) => {
            let left = undo.rollback();
            for l in left {
                eprintln!("warning: could not undo on host {}: {l}", to.name());
            }
            return Err(e);
        }
    };
    undo.commit();
    // The machine runs on the destination now: its record says so first,
    // then the source lets go of what was its.
    store.move_machine(name, from.name(), to.name())?;
    reserve::release(&src.conn, name, &nics);
    if !nics.is_empty() {
        if let Err(e) = firewall::remove_machine(&src.conn, &scope, name, nics.len()) {
            eprintln!(
                "warning: {name}'s network filters stay on host {}: {}",
                from.name(),
                e.message()
            );
        }
    }
    if !prep.shared {
        let pool = ship::disks_pool(&src.conn, state_dir)?;
        let mut gone: Vec<String> = prep.copied.clone();
        if !from.is_local() {
            gone.push(ship::seed_volume(name));
        }
        for v in gone {
            if let Err(e) = storage::delete_volume(&pool, &v) {
                eprintln!(
                    "warning: volume {v} stays on host {}: {}",
                    from.name(),
                    e.message()
                );
            }
        }
    }
    let view = View {
        name: name.to_string(),
        from: from.name().to_string(),
        to: to.name().to_string(),
        stats,
    };
    output::emit(ctx.global.format, &view, || {
        let s = &view.stats;
        let mut t = Table::new(["KEY", "VALUE"]);
        t.row(["machine", &view.name]);
        t.row(["moved".to_string(), format!("{} -> {}", view.from, view.to)]);
        t.row(["mode", if s.live { "live" } else { "offline" }]);
        t.row([
            "disks",
            if s.copied_storage {
                "copied"
            } else {
                "shared, not copied"
            },
        ]);
        t.row([
            "time".to_string(),
            format!("{:.1} s", s.elapsed_ms as f64 / 1000.0),
        ]);
        if let Some(d) = s.downtime_ms {
            t.row(["downtime".to_string(), format!("{d} ms")]);
        }
        if let Some(b) = s.data_total_bytes {
            t.row(["data".to_string(), Size(b).human()]);
        }
        t
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_must_fit_on_the_destination() {
        assert!(super::memory_fits("b", "web", 1 << 30, 256 << 20).is_ok());
        let e = super::memory_fits("b", "web", 128 << 20, 256 << 20).unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::Conflict);
        assert_eq!(
            e.message(),
            "host b has 128.0MiB of free memory; web needs 256.0MiB"
        );
    }
}
