//! `creature create` and `launch`: from a template to a machine. Missing
//! arguments are asked for on a terminal (then the equivalent one-line
//! command is printed); off a terminal they are an error listing them.

use std::io::IsTerminal;

use crate::backend::{self, CreateJob};
use crate::cli::{CreateArgs, WaitArgs};
use crate::cmd::gate::{self, Subject};
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::op::Op;
use crate::size::Size;
use crate::store::{RecordState, Store};
use crate::template::{self, HostLimits, Library, Resolved};
use crate::undo::{fail_point, Undo};

/// `--iso`: a file (any name with a slash, or one that exists here) or
/// else an image of the cache, as the template's `iso` source table.
fn iso_source(arg: &str) -> Result<toml::Value> {
    let mut t = toml::Table::new();
    let p = std::path::Path::new(arg);
    if arg.contains('/') || p.exists() {
        let abs = std::fs::canonicalize(p)
            .map_err(|e| Error::not_found(format!("--iso {arg}: no such file")).caused_by(e))?;
        t.insert("path".into(), abs.display().to_string().into());
    } else {
        if !names::is_valid(arg) {
            return Err(Error::not_found(format!(
                "--iso {arg}: no such file (nor a possible image name)"
            )));
        }
        t.insert("image".into(), arg.into());
    }
    Ok(toml::Value::Table(t))
}

/// The template overrides the create flags stand for, as `--set` assignments
/// (values rendered as TOML, so a path is never reparsed as something else).
fn overrides(a: &CreateArgs) -> Result<Vec<String>> {
    let mut sets = a.set.clone();
    if let Some(iso) = &a.iso {
        sets.push(format!("iso={}", iso_source(iso)?));
    }
    if let Some(n) = a.cpus {
        sets.push(format!("cpus={n}"));
    }
    if let Some(m) = &a.memory {
        sets.push(format!("memory={m}"));
    }
    if let Some(n) = &a.network {
        sets.push(format!("nic.0.network={n}"));
    }
    if let Some(m) = &a.mac {
        sets.push(format!("nic.0.mac={m}"));
    }
    if let Some(ip) = &a.ip {
        sets.push(format!("nic.0.ip={ip}"));
    }
    Ok(sets)
}

fn check_names(a: &CreateArgs) -> Result<()> {
    if let Some(n) = &a.name {
        names::check(What::Machine, n)?;
    }
    if let Some(t) = &a.template {
        names::check(What::Template, t)?;
    }
    if let Some(n) = &a.network {
        names::check(What::Network, n)?;
    }
    if let Some(m) = &a.memory {
        m.parse::<Size>()
            .map_err(|e| Error::invalid(format!("--memory: {e}")))?;
    }
    Ok(())
}

pub fn run(ctx: &Ctx, op: Op, args: &CreateArgs, wait: Option<&WaitArgs>) -> Result<()> {
    check_names(args)?;
    let op_word = op.word();
    let mut missing = Vec::new();
    if args.name.is_none() {
        missing.push("MACHINE");
    }
    if args.template.is_none() {
        missing.push("--template");
    }
    let args = if missing.is_empty() {
        args.clone()
    } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let a = wizard(op_word, args)?;
        eprintln!("equivalent command: {}", one_line(op_word, &a));
        a
    } else {
        return Err(Error::invalid(format!(
            "{op_word}: missing {} (no terminal to ask on; see `creature {op_word} --help`)",
            missing.join(" and ")
        )));
    };
    let name = args.name.as_deref().expect("asked or given");
    let lib = Library::new(args.template_dir.as_deref());
    let resolved = template::resolve(
        &lib,
        args.template.as_deref().expect("asked or given"),
        &overrides(&args)?,
        HostLimits::local(),
    )?;
    // The template's host, when the command line (or CREATURE_HOST) names none.
    if let (None, Some(h)) = (&ctx.global.host, &resolved.template.host) {
        let mut on = ctx.clone();
        on.global.host = Some(h.clone()).filter(|h| h != crate::config::LOCAL);
        return plan(&on, op, name, &args, &resolved, wait);
    }
    plan(ctx, op, name, &args, &resolved, wait)
}

/// The NICs whose networks run DHCP: those get a DHCP host entry. On a
/// `--no-dhcp` network the reservation lives in creature's records only
/// and reaches the guest through its config drive.
fn served_by_dhcp(
    store: &Store,
    host: &str,
    nics: &[crate::store::Nic],
) -> Result<Vec<crate::store::Nic>> {
    let mut out = Vec::new();
    for n in nics {
        if store.network(host, &n.network)?.is_none_or(|net| net.dhcp) {
            out.push(n.clone());
        }
    }
    Ok(out)
}

/// The gate for everything the create will do, then the work: record
/// `creating`, the backend's steps, record `ready`. A failure or Ctrl-C
/// undoes every step taken, newest first. One store, one driver, one
/// network connection, all opened here and handed down.
fn plan(
    ctx: &Ctx,
    op: Op,
    name: &str,
    args: &CreateArgs,
    r: &Resolved,
    wait: Option<&WaitArgs>,
) -> Result<()> {
    crate::template::resolve::check_bootable(r)?;
    let subject = Subject::New {
        name,
        backend: r.backend,
    };
    gate::check(ctx, op, subject)?;
    let extras = crate::seed::build::Extras {
        user_data: args.user_data.clone(),
        ssh_keys: args.ssh_key.clone(),
        injects: args.inject_file.clone(),
    };
    if r.template.disks.iter().any(|d| d.source.is_some()) {
        gate::check(ctx, Op::DiskFromImage, subject)?;
    }
    if crate::seed::build::wanted(r, &extras) {
        gate::check(ctx, Op::ConfigDrive, subject)?;
    }
    if crate::seed::build::injects_files(r, &extras) {
        gate::check(ctx, Op::InjectFile, subject)?;
    }
    // Every file it names is read now: a missing one stops the create
    // before anything exists.
    let seed = crate::seed::build::seed(name, r, &extras)?;
    let display = crate::cmd::display::record_for(r)?;
    if let Some(d) = &display {
        let op = if d.kind == "spice" {
            Op::DisplaySpiceNew
        } else {
            Op::DisplayVncNew
        };
        gate::check(ctx, op, subject)?;
        if !crate::cmd::display::loopback(&d.listen) {
            eprintln!(
                "warning: the {} display of {name} listens on {}: anyone who reaches that address can try its password",
                d.kind, d.listen
            );
        }
    }
    let groups = &r.template.security_groups;
    if !groups.is_empty() {
        gate::check(ctx, Op::SecGroupNew, subject)?;
        if r.template.nics.is_empty() {
            return Err(Error::invalid(format!(
                "security_groups: {name} has no NIC for them to filter"
            )));
        }
        let store = Store::open_read_only(&ctx.global.state_dir)?;
        for g in groups {
            if store
                .as_ref()
                .map(|s| s.secgroup(g))
                .transpose()?
                .flatten()
                .is_none()
            {
                return Err(crate::store::group_not_found(g));
            }
        }
    }
    crate::interrupt::catch();
    let target = ctx.host()?;
    let host = target.name().to_string();
    let requests = nic_requests(r)?;
    let drv = backend::open(r.backend, &target)?;
    drv.ensure_free(name)?;
    let mut store = Store::open(&ctx.global.state_dir)?;
    // A disabled host takes no new VMs (service control: containers are
    // not governed by it).
    if r.backend != crate::backend::Backend::Lxc {
        store.check_host_takes_machines(&host)?;
    }
    // Held until the create is done or undone; `repair` leaves it alone.
    let _busy = crate::statedir::lock_machine(&ctx.global.state_dir, &host, name)?;
    let mut undo = Undo::new();
    // Networks are libvirt networks for every backend.
    let net_conn = if requests.is_empty() {
        None
    } else {
        Some(crate::backend::libvirt::open(
            &target.network_uri()?,
            std::time::Duration::from_secs(30),
        )?)
    };
    let external = match &net_conn {
        None => Default::default(),
        Some(c) => crate::backend::taken::external_macs(Some(c)),
    };
    let host_id = crate::backend::taken::host_id();
    let job_nics = store.begin_create_with_nics(
        &host,
        name,
        r.backend,
        Some(&r.name),
        &requests,
        &host_id,
        &external,
    )?;
    let made = fail_point("record")
        .and_then(|_| served_by_dhcp(&store, &host, &job_nics))
        .and_then(|dhcp_nics| match &net_conn {
            Some(c) => crate::backend::libvirt::reserve::unleased(c, &dhcp_nics).and_then(|_| {
                crate::backend::libvirt::reserve::push(c, name, &dhcp_nics, &mut undo)
            }),
            None => Ok(()),
        })
        .and_then(|_| fail_point("reserve"))
        .and_then(|_| match &net_conn {
            Some(c) => crate::backend::firewall::setup(
                c,
                &crate::backend::firewall::scope(&ctx.global.state_dir),
                &mut store,
                &host,
                name,
                r,
                &job_nics,
                &mut undo,
            ),
            None => Ok(()),
        })
        .and_then(|_| fail_point("filters"))
        .and_then(|_| {
            let job = CreateJob {
                host: &host,
                name,
                resolved: r,
                nics: &job_nics,
                quiet: ctx.global.quiet,
                seed: seed.is_some(),
                display: display.as_ref(),
                reuse_disks: false,
            };
            drv.create(&job, &mut store, &mut undo)
        })
        .and_then(|_| store.set_spec(&host, name, &r.to_record()?))
        .and_then(|_| match &seed {
            Some(s) => crate::seed::drive::install(
                drv.as_ref(),
                &ctx.global.state_dir,
                &store,
                &host,
                name,
                s,
                &mut undo,
            )
            .map(|_| ()),
            None => Ok(()),
        })
        .and_then(|_| fail_point("seed"))
        .and_then(|_| match &display {
            Some(d) => store.set_display(&host, name, d),
            None => Ok(()),
        })
        .and_then(|_| {
            let s =
                crate::autostart::settings::Settings::from_template(r.template.autostart.as_ref())?;
            store.set_autostart(&host, name, &s)
        })
        .and_then(|_| fail_point("autostart"))
        .and_then(|_| {
            crate::cmd::volume::attach_template_volumes(
                ctx,
                &mut store,
                drv.as_ref(),
                name,
                &r.template.volumes,
                &mut undo,
            )
        })
        .and_then(|_| fail_point("volumes"))
        .and_then(|_| store.set_state(&host, name, RecordState::Ready));
    if let Err(e) = made {
        let left = undo.rollback();
        // The machine never ran: its addresses go straight back to the pool.
        let forgot = store.remove_machine(&host, name, crate::store::Leases::None);
        let mut e = e;
        for l in left {
            e = e.caused_by(format!("could not undo: {l}"));
        }
        if let Err(f) = forgot {
            e = e.caused_by(format!("could not remove the record: {}", f.message()));
        }
        // Groups admitting its groups' members listed its address.
        if let (Some(c), false) = (&net_conn, groups.is_empty()) {
            let scope = crate::backend::firewall::scope(&ctx.global.state_dir);
            if let Err(f) = crate::backend::firewall::sync_referencing(c, &scope, &store, groups) {
                e = e.caused_by(format!(
                    "could not update the groups naming its groups: {}",
                    f.message()
                ));
            }
        }
        return Err(e);
    }
    undo.commit();
    ctx.say(&format!(
        "{} {name} ({}, template {})",
        Op::Create.past(),
        r.backend,
        r.name
    ));
    if let Some(w) = wait {
        let rec = store
            .machine(&host, name)?
            .ok_or_else(|| Error::other("the new machine's record vanished"))?;
        drop(store);
        crate::cmd::lifecycle::start(ctx, &target, drv.as_ref(), &rec, w)?;
    }
    Ok(())
}

/// What the template's `[[nic]]` tables ask for.
fn nic_requests(r: &Resolved) -> Result<Vec<crate::store::NicRequest>> {
    r.template
        .nics
        .iter()
        .map(|n| {
            Ok(crate::store::NicRequest {
                network: n.network.clone(),
                mac: match &n.mac {
                    Some(m) => Some(m.parse().map_err(Error::invalid)?),
                    None => None,
                },
                ip: match &n.ip {
                    Some(ip) => {
                        Some(ip.parse().map_err(|_| {
                            Error::invalid(format!("{ip:?} is not an IPv4 address"))
                        })?)
                    }
                    None => None,
                },
            })
        })
        .collect()
}

fn one_line(op: &str, a: &CreateArgs) -> String {
    let mut v = vec![
        "creature".to_string(),
        op.to_string(),
        a.name.clone().unwrap_or_default(),
        "--template".into(),
        a.template.clone().unwrap_or_default(),
    ];
    if let Some(c) = a.cpus {
        v.push(format!("--cpus {c}"));
    }
    if let Some(m) = &a.memory {
        v.push(format!("--memory {m}"));
    }
    if let Some(n) = &a.network {
        v.push(format!("--network {n}"));
    }
    v.join(" ")
}

fn wizard(op: &str, given: &CreateArgs) -> Result<CreateArgs> {
    use dialoguer::{Input, Select};
    let interrupted =
        |e: dialoguer::Error| Error::new(crate::error::Kind::Interrupted, "cancelled").caused_by(e);
    let mut a = given.clone();
    let lib = Library::new(a.template_dir.as_deref());
    if a.template.is_none() {
        let rows: Vec<(String, String)> = lib
            .names()
            .into_iter()
            .filter_map(|(n, _)| {
                let r = template::resolve(&lib, &n, &[], HostLimits::local()).ok()?;
                let d = r.template.description.clone().unwrap_or_default();
                Some((n, format!("{} ({}) {}", r.name, r.backend, d)))
            })
            .collect();
        if rows.is_empty() {
            return Err(Error::not_found("no valid template on the search path"));
        }
        let labels: Vec<&str> = rows.iter().map(|(_, l)| l.as_str()).collect();
        let i = Select::new()
            .with_prompt(format!("{op}: template"))
            .items(&labels)
            .default(0)
            .interact()
            .map_err(interrupted)?;
        a.template = Some(rows[i].0.clone());
    }
    let t = template::resolve(
        &lib,
        a.template.as_deref().unwrap(),
        &a.set,
        HostLimits::local(),
    )?;
    if a.name.is_none() {
        let n: String = Input::new()
            .with_prompt("machine name")
            .validate_with(|s: &String| {
                names::check(What::Machine, s).map_err(|e| e.message().to_string())
            })
            .interact_text()
            .map_err(interrupted)?;
        a.name = Some(n);
    }
    if a.cpus.is_none() {
        let max = HostLimits::local().cpus;
        let c: u32 = Input::new()
            .with_prompt(format!("vCPUs (1-{max})"))
            .default(t.cpus)
            .validate_with(|c: &u32| {
                if (1..=max).contains(c) {
                    Ok(())
                } else {
                    Err(format!("from 1 to {max}"))
                }
            })
            .interact_text()
            .map_err(interrupted)?;
        a.cpus = Some(c);
    }
    if a.memory.is_none() {
        let m: String = Input::new()
            .with_prompt("memory")
            .default(t.memory.to_string())
            .validate_with(|s: &String| s.parse::<Size>().map(|_| ()))
            .interact_text()
            .map_err(interrupted)?;
        a.memory = Some(m);
    }
    if a.network.is_none() && t.template.nics.is_empty() {
        let n: String = Input::new()
            .with_prompt("network (empty for none)")
            .allow_empty(true)
            .validate_with(|s: &String| {
                if s.is_empty() {
                    Ok(())
                } else {
                    names::check(What::Network, s).map_err(|e| e.message().to_string())
                }
            })
            .interact_text()
            .map_err(interrupted)?;
        a.network = (!n.is_empty()).then_some(n);
    }
    Ok(a)
}
