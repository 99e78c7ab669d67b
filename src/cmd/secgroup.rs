//! `creature secgroup ...` (#38 security groups, #36 firewall rules): the
//! store holds groups, rules and members; backend::firewall makes libvirt's
//! filters say the same. A change is recorded, then applied; when libvirt
//! refuses it, the record is put back.

use serde::Serialize;

use crate::backend::firewall;
use crate::backend::Host;
use crate::cli::{RuleArgs, SecgroupCommand, SecgroupRuleCommand};
use crate::cmd::lifecycle::confirm;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::output::{self, Table};
use crate::secgroup::{Cidr, Remote, Rule};
use crate::store::{MachineRecord, SecGroupRecord, Store};

#[derive(Serialize)]
struct RuleView {
    direction: &'static str,
    proto: &'static str,
    /// "22" or "8000-8080"; null: every port (or none, for icmp and any).
    port: Option<String>,
    /// A CIDR block; null when the remote is a group.
    remote: Option<String>,
    remote_group: Option<String>,
    /// The rule in words, as `rule remove` takes it back.
    rule: String,
}

impl RuleView {
    fn of(r: &Rule) -> RuleView {
        let (remote, remote_group) = match &r.remote {
            Remote::Cidr(c) => (Some(c.to_string()), None),
            Remote::Group(g) => (None, Some(g.clone())),
        };
        RuleView {
            direction: r.direction.as_str(),
            proto: r.proto.as_str(),
            port: r.ports.map(|p| p.to_string()),
            remote,
            remote_group,
            rule: r.describe(),
        }
    }
}

#[derive(Serialize)]
struct View {
    #[serde(flatten)]
    group: SecGroupRecord,
    rules: Vec<RuleView>,
}

impl View {
    fn of(g: SecGroupRecord) -> View {
        View {
            rules: g.rules.iter().map(RuleView::of).collect(),
            group: g,
        }
    }
}

fn group(store: &Store, name: &str) -> Result<SecGroupRecord> {
    names::check(What::SecGroup, name)?;
    store
        .secgroup(name)?
        .ok_or_else(|| crate::store::group_not_found(name))
}

fn rule_of(a: &RuleArgs) -> Result<Rule> {
    let remote = match (&a.remote, &a.remote_group) {
        (_, Some(g)) => Remote::Group(g.clone()),
        (Some(c), None) => Remote::Cidr(c.parse::<Cidr>()?),
        (None, None) => Remote::Cidr(Cidr::ANY),
    };
    let r = Rule {
        direction: a.direction,
        proto: a.proto,
        ports: a.port.as_deref().map(str::parse).transpose()?,
        remote,
    };
    r.check()?;
    Ok(r)
}

/// libvirt on each host where `group`'s filter must be current: this
/// command's host and every host with a member (filters are defined on the
/// host whose libvirt enforces them).
fn conns_for(ctx: &Ctx, store: &Store, group: &str) -> Result<Vec<virt::connect::Connect>> {
    let mut hosts = vec![ctx.host_name().to_string()];
    for m in store
        .secgroup(group)?
        .map(|g| g.machines)
        .unwrap_or_default()
    {
        let h = m
            .split_once('/')
            .map_or(crate::config::LOCAL, |(h, _)| h)
            .to_string();
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts
        .iter()
        .map(|h| {
            let host = Host::resolve(Some(h.as_str()), &ctx.global.state_dir)?;
            crate::backend::libvirt::open(&host.network_uri()?, std::time::Duration::from_secs(30))
        })
        .collect()
}

fn machines_phrase(n: usize) -> String {
    match n {
        0 => "no machine in it yet".into(),
        1 => "1 machine, live".into(),
        n => format!("{n} machines, live"),
    }
}

/// The host-wide verbs: create, list, show, delete, rule.
pub fn run(ctx: &Ctx, cmd: &SecgroupCommand) -> Result<()> {
    let sd = &ctx.global.state_dir;
    let scope = firewall::scope(sd);
    match cmd {
        SecgroupCommand::Create { group, description } => {
            names::check(What::SecGroup, group)?;
            let d = description.clone().unwrap_or_default();
            if d.contains('\n') {
                return Err(Error::invalid("--description must be one line"));
            }
            let mut store = Store::open(sd)?;
            store.create_secgroup(group, &d)?;
            let made = ctx
                .network_conn()
                .and_then(|c| firewall::sync_group(&c, &scope, &store, group));
            if let Err(e) = made {
                let _ = store.delete_secgroup(group);
                return Err(e);
            }
            ctx.say(&format!(
                "created security group {group} (it allows all outbound traffic; add inbound rules with `creature secgroup rule add {group} --direction in ...`)"
            ));
            Ok(())
        }
        SecgroupCommand::List => {
            let groups: Vec<View> = match Store::open_read_only(sd)? {
                Some(s) => s.secgroups()?.into_iter().map(View::of).collect(),
                None => Vec::new(),
            };
            output::emit(ctx.global.format, &groups, || {
                let mut t = Table::new(["NAME", "RULES", "MACHINES", "DESCRIPTION"]);
                for g in &groups {
                    t.row([
                        g.group.name.clone(),
                        g.rules.len().to_string(),
                        if g.group.machines.is_empty() {
                            "-".into()
                        } else {
                            g.group.machines.join(", ")
                        },
                        g.group.description.clone(),
                    ]);
                }
                t
            })
        }
        SecgroupCommand::Show { group: name } => {
            let store =
                Store::open_read_only(sd)?.ok_or_else(|| crate::store::group_not_found(name))?;
            let v = View::of(group(&store, name)?);
            output::emit(ctx.global.format, &v, || {
                let mut t = Table::new(["DIRECTION", "PROTO", "PORT", "REMOTE"]);
                for r in &v.rules {
                    t.row([
                        r.direction.to_string(),
                        r.proto.to_string(),
                        r.port.clone().unwrap_or_else(|| "-".into()),
                        r.remote
                            .clone()
                            .or_else(|| r.remote_group.as_ref().map(|g| format!("group {g}")))
                            .unwrap_or_default(),
                    ]);
                }
                t.row([
                    format!(
                        "machines: {}",
                        if v.group.machines.is_empty() {
                            "-".into()
                        } else {
                            v.group.machines.join(", ")
                        }
                    ),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                t
            })
        }
        SecgroupCommand::Delete { group: name } => {
            let mut store = Store::open(sd)?;
            group(&store, name)?;
            confirm(ctx, &format!("delete security group {name}?"))?;
            let conns = conns_for(ctx, &store, name)?;
            store.delete_secgroup(name)?;
            for conn in &conns {
                crate::backend::libvirt::nwfilter::undefine(
                    conn,
                    &crate::secgroup::filter::group_filter_name(&scope, name),
                )?;
            }
            ctx.say(&format!("deleted security group {name}"));
            Ok(())
        }
        SecgroupCommand::Rule(r) => {
            let (a, add) = match r {
                SecgroupRuleCommand::Add(a) => (a, true),
                SecgroupRuleCommand::Remove(a) => (a, false),
            };
            let rule = rule_of(a)?;
            let mut store = Store::open(sd)?;
            let g = group(&store, &a.group)?;
            if add {
                if !store.add_secgroup_rule(&a.group, &rule)? {
                    ctx.say(&format!(
                        "security group {} has that rule already: {}",
                        a.group,
                        rule.describe()
                    ));
                    return Ok(());
                }
            } else {
                store.remove_secgroup_rule(&a.group, &rule)?;
            }
            let applied = conns_for(ctx, &store, &a.group).and_then(|conns| {
                conns
                    .iter()
                    .try_for_each(|c| firewall::sync_group(c, &scope, &store, &a.group))
            });
            if let Err(e) = applied {
                // Put the record back as libvirt still has it.
                let _ = if add {
                    store.remove_secgroup_rule(&a.group, &rule)
                } else {
                    store.add_secgroup_rule(&a.group, &rule).map(|_| ())
                };
                return Err(e);
            }
            ctx.say(&format!(
                "{} rule `{}` {} security group {} ({})",
                if add { "added" } else { "removed" },
                rule.describe(),
                if add { "to" } else { "from" },
                a.group,
                machines_phrase(g.machines.len())
            ));
            Ok(())
        }
        SecgroupCommand::Attach { .. } | SecgroupCommand::Detach { .. } => Err(Error::other(
            "internal error: secgroup attach/detach reached the host-wide verbs",
        )),
    }
}

/// attach and detach: the machine's NIC filters, redefined live.
pub fn on_machine(
    ctx: &Ctx,
    host: &Host,
    rec: &MachineRecord,
    cmd: &SecgroupCommand,
) -> Result<()> {
    let (name, attach) = match cmd {
        SecgroupCommand::Attach { group, .. } => (group, true),
        SecgroupCommand::Detach { group, .. } => (group, false),
        _ => {
            return Err(Error::other(
                "internal error: a host-wide secgroup verb reached a machine",
            ))
        }
    };
    let h = host.name();
    let m = &rec.name;
    let mut store = Store::open(&ctx.global.state_dir)?;
    group(&store, name)?;
    let nics = store.nic_filtering(h, m)?;
    if nics.is_empty() {
        return Err(Error::invalid(format!(
            "machine {m:?} has no NIC for a security group to filter"
        )));
    }
    if attach {
        firewall::require_filterable(&store, h, m, &store.nics(h, m)?)?;
    }
    if attach && nics.iter().any(|(_, _, own)| !own) {
        return Err(Error::conflict(format!(
            "machine {m:?} was made before security groups: its NICs reference libvirt's clean-traffic filter directly; recreate it to put it in a group"
        )));
    }
    let changed = if attach {
        store.attach_secgroup(h, m, name)?
    } else {
        store.detach_secgroup(h, m, name)?
    };
    if !changed {
        ctx.say(&format!(
            "{m} is {} security group {name} already",
            if attach { "in" } else { "not in" }
        ));
        return Ok(());
    }
    let scope = firewall::scope(&ctx.global.state_dir);
    let groups = [name.clone()];
    // On the machine's host, whose libvirt enforces its filters.
    let applied = host
        .network_uri()
        .and_then(|u| crate::backend::libvirt::open(&u, std::time::Duration::from_secs(30)))
        .and_then(|c| {
            firewall::sync_machine(&c, &scope, &store, h, m)?;
            firewall::sync_referencing(&c, &scope, &store, &groups)
        });
    if let Err(e) = applied {
        let _ = if attach {
            store.detach_secgroup(h, m, name)
        } else {
            store.attach_secgroup(h, m, name)
        };
        return Err(e);
    }
    ctx.say(&format!(
        "{} {m} {} security group {name} (live, on {} NIC{})",
        if attach { "added" } else { "removed" },
        if attach { "to" } else { "from" },
        nics.len(),
        if nics.len() == 1 { "" } else { "s" }
    ));
    Ok(())
}
