//! `creature repair`, the decision: from what the state database says and
//! what the backends and the state directory hold, the steps that bring
//! them into agreement. Pure: `cmd/repair.rs` gathers the facts, prints the
//! plan and carries it out. Nothing foreign is ever planned for removal:
//! only machines made by creature with this state directory, volumes in
//! creature's own pool, host entries in creature's own networks and files
//! in its own directories.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::backend::{engine, Backend, Observed, Owner};
use crate::store::{MachineRecord, RecordState};

/// Everything repair looks at.
#[derive(Debug, Default)]
pub struct Facts {
    pub records: Vec<MachineRecord>,
    /// MACs reserved by each recorded machine.
    pub macs: BTreeMap<String, Vec<String>>,
    /// What each engine that answered reports; an engine that did not
    /// answer is absent, and its machines are left alone.
    pub observed: BTreeMap<Backend, Vec<Observed>>,
    /// Machines whose create or delete is running now (their lock is held).
    pub busy: BTreeSet<String>,
    /// Volumes in creature's pool (None: the pool could not be read).
    pub volumes: Option<Vec<String>>,
    /// Files in creature's block volume pool (None: not read, or a `volume
    /// create` runs now), and the file names its volume records hold.
    pub block_volumes: Option<Vec<String>>,
    pub recorded_block_volumes: BTreeSet<String>,
    /// DHCP host entries of creature's networks.
    pub host_entries: Vec<HostEntry>,
    /// Machines the journal has rows for.
    pub journal: BTreeSet<String>,
    /// Temporary files whose writer is gone.
    pub stale_files: Vec<PathBuf>,
    /// Machines with a seed directory (`<state>/seeds/<name>`).
    pub seeds: Vec<String>,
    /// The scope of this state directory's network filters.
    pub scope: String,
    /// libvirt's filters of this scope (None: libvirt was not asked).
    pub filters: Option<Vec<String>>,
    /// Filter bindings to NIC filters of this scope: (port device, filter).
    pub bindings: Vec<(String, String)>,
    /// Security groups the store has.
    pub groups: BTreeSet<String>,
    /// Machines recorded on other hosts: names are unique across hosts, so
    /// their volumes (a pool may be shared) and seeds are never orphans
    /// here, and a domain of theirs here is a stale copy.
    pub elsewhere: BTreeSet<String>,
    /// Machines an evacuation rebuilt elsewhere from this host, and
    /// whether their disks were shared (then they are the new machine's).
    pub evacuated: BTreeMap<String, bool>,
}

/// A static DHCP host of one of creature's networks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostEntry {
    pub network: String,
    pub mac: String,
    pub ip: String,
    /// The host name in the entry (the machine's, when creature wrote it).
    pub name: String,
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Remove a machine creature made (its domain or container, disks, log).
    RemoveMachine {
        machine: String,
        backend: Backend,
        why: String,
    },
    /// Forget a record (its NICs and reservations go with it).
    ForgetRecord {
        machine: String,
        why: String,
    },
    /// A machine's old definition on this host, now that it runs on
    /// another (an evacuation): undefined, its disks deleted only when the
    /// rebuilt machine does not use them.
    RemoveStaleCopy {
        machine: String,
        backend: Backend,
        keep_disks: bool,
        why: String,
    },
    DeleteVolume {
        volume: String,
        why: String,
    },
    /// A file in creature's block volume pool that no volume record holds.
    DeleteBlockVolume {
        volume: String,
        why: String,
    },
    RemoveHostEntry {
        #[serde(flatten)]
        entry: HostEntry,
        why: String,
    },
    ClearJournal {
        machine: String,
        why: String,
    },
    RemoveFile {
        path: PathBuf,
        why: String,
    },
    /// A config drive and its seed whose machine is gone.
    RemoveSeed {
        machine: String,
        why: String,
    },
    /// A container NIC's filter binding whose machine is gone.
    Unbind {
        portdev: String,
        why: String,
    },
    /// A network filter of this state directory no machine or group owns.
    RemoveFilter {
        filter: String,
        why: String,
    },
}

impl Action {
    /// One line for the table and for what was done.
    pub fn describe(&self) -> String {
        match self {
            Action::RemoveMachine {
                machine,
                backend,
                why,
            } => format!("remove {backend} machine {machine}: {why}"),
            Action::RemoveStaleCopy {
                machine,
                keep_disks,
                why,
                ..
            } => format!(
                "remove the old copy of {machine}{}: {why}",
                if *keep_disks {
                    " (its disks stay)"
                } else {
                    " and its disks"
                }
            ),
            Action::ForgetRecord { machine, why } => {
                format!("forget the record of {machine}: {why}")
            }
            Action::DeleteVolume { volume, why } => format!("delete volume {volume}: {why}"),
            Action::DeleteBlockVolume { volume, why } => {
                format!("delete block volume file {volume}: {why}")
            }
            Action::RemoveHostEntry { entry: e, why } => format!(
                "remove DHCP host {} {} from network {}: {why}",
                e.mac, e.ip, e.network
            ),
            Action::ClearJournal { machine, why } => {
                format!("clear the journal of {machine}: {why}")
            }
            Action::RemoveFile { path, why } => format!("remove {}: {why}", path.display()),
            Action::RemoveSeed { machine, why } => {
                format!("remove the config drive of {machine}: {why}")
            }
            Action::Unbind { portdev, why } => {
                format!("remove the filter binding of {portdev}: {why}")
            }
            Action::RemoveFilter { filter, why } => {
                format!("remove network filter {filter}: {why}")
            }
        }
    }
}

/// The plan, in the order it is carried out: machines first (their disks
/// and host entries go with them), records, then leftovers.
pub fn plan(f: &Facts) -> Vec<Action> {
    let mut out = Vec::new();
    let recorded: BTreeMap<&str, &MachineRecord> =
        f.records.iter().map(|r| (r.name.as_str(), r)).collect();
    let ours = |b: Backend, name: &str| {
        f.observed
            .get(&engine(b))
            .is_some_and(|l| l.iter().any(|o| o.name == name && o.owner == Owner::Ours))
    };
    let mut kept: BTreeSet<&str> = BTreeSet::new();
    for r in &f.records {
        let name = r.name.as_str();
        if f.busy.contains(name) || !f.observed.contains_key(&engine(r.backend)) {
            kept.insert(name);
            continue;
        }
        let exists = ours(r.backend, name);
        match (&r.state, exists) {
            (RecordState::Ready, true) => {
                kept.insert(name);
            }
            (RecordState::Ready, false) => out.push(Action::ForgetRecord {
                machine: name.into(),
                why: format!("its {} machine is gone", r.backend),
            }),
            (state, exists) => {
                let what = match state {
                    RecordState::Creating => "its create was interrupted",
                    _ => "its delete was interrupted",
                };
                if exists {
                    out.push(Action::RemoveMachine {
                        machine: name.into(),
                        backend: r.backend,
                        why: what.into(),
                    });
                }
                out.push(Action::ForgetRecord {
                    machine: name.into(),
                    why: what.into(),
                });
            }
        }
    }
    for (b, list) in &f.observed {
        for o in list {
            if o.owner == Owner::Ours
                && !recorded.contains_key(o.name.as_str())
                && !f.busy.contains(&o.name)
                && f.elsewhere.contains(&o.name)
            {
                let evacuated = f.evacuated.get(&o.name);
                out.push(Action::RemoveStaleCopy {
                    machine: o.name.clone(),
                    backend: *b,
                    // Unknown sharing: the disks may be the other copy's.
                    keep_disks: evacuated.copied().unwrap_or(true),
                    why: if evacuated.is_some() {
                        "an evacuation rebuilt it on another host".into()
                    } else {
                        "its record says another host".into()
                    },
                });
            } else if o.owner == Owner::Ours
                && !recorded.contains_key(o.name.as_str())
                && !f.busy.contains(&o.name)
            {
                out.push(Action::RemoveMachine {
                    machine: o.name.clone(),
                    backend: *b,
                    why: "made by creature, but its record is gone".into(),
                });
            }
        }
    }
    let domains: BTreeSet<&str> = f
        .observed
        .get(&Backend::Qemu)
        .into_iter()
        .chain(f.observed.get(&Backend::Xen))
        .flatten()
        .map(|o| o.name.as_str())
        .collect();
    for v in f.volumes.iter().flatten() {
        let Some(m) = crate::backend::libvirt::storage::machine_of_volume(v) else {
            continue;
        };
        if !kept.contains(m)
            && !domains.contains(m)
            && !f.busy.contains(m)
            && !f.elsewhere.contains(m)
        {
            out.push(Action::DeleteVolume {
                volume: v.clone(),
                why: format!("no machine {m} owns it"),
            });
        }
    }
    for v in f.block_volumes.iter().flatten() {
        if !f.recorded_block_volumes.contains(v) {
            out.push(Action::DeleteBlockVolume {
                volume: v.clone(),
                why: "no volume record holds it (a `volume create` interrupted)".into(),
            });
        }
    }
    let reserved: BTreeSet<String> = kept
        .iter()
        .flat_map(|m| f.macs.get(*m).into_iter().flatten())
        .map(|m| m.to_ascii_lowercase())
        .chain(
            // A busy machine's entries may be in the making.
            f.busy
                .iter()
                .flat_map(|m| f.macs.get(m).into_iter().flatten())
                .map(|m| m.to_ascii_lowercase()),
        )
        .collect();
    for e in &f.host_entries {
        if !reserved.contains(&e.mac.to_ascii_lowercase()) {
            out.push(Action::RemoveHostEntry {
                entry: e.clone(),
                why: "no machine reserves it".into(),
            });
        }
    }
    for m in &f.journal {
        if !recorded.contains_key(m.as_str()) {
            out.push(Action::ClearJournal {
                machine: m.clone(),
                why: "no such machine".into(),
            });
        }
    }
    for p in &f.stale_files {
        out.push(Action::RemoveFile {
            path: p.clone(),
            why: "left by a process that is gone".into(),
        });
    }
    // A machine whose engine did not answer is kept, and so is what it owns.
    let gone = |m: &str| {
        let unanswered = recorded
            .get(m)
            .is_some_and(|r| !f.observed.contains_key(&engine(r.backend)));
        !kept.contains(m) && !f.busy.contains(m) && !unanswered
    };
    for m in &f.seeds {
        if gone(m) && !f.elsewhere.contains(m) {
            out.push(Action::RemoveSeed {
                machine: m.clone(),
                why: format!("no machine {m} owns it"),
            });
        }
    }
    use crate::secgroup::filter::machine_of_nic_filter;
    for (dev, filter) in &f.bindings {
        if let Some(m) = machine_of_nic_filter(&f.scope, filter) {
            if gone(m) {
                out.push(Action::Unbind {
                    portdev: dev.clone(),
                    why: format!("no machine {m} owns it"),
                });
            }
        }
    }
    let group_prefix = format!("{}.sg.", f.scope);
    for filter in f.filters.iter().flatten() {
        if let Some(m) = machine_of_nic_filter(&f.scope, filter) {
            if gone(m) {
                out.push(Action::RemoveFilter {
                    filter: filter.clone(),
                    why: format!("no machine {m} owns it"),
                });
            }
        } else if let Some(g) = filter.strip_prefix(&group_prefix) {
            if !f.groups.contains(g) {
                out.push(Action::RemoveFilter {
                    filter: filter.clone(),
                    why: format!("no security group {g}"),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::PowerState;

    fn rec(name: &str, backend: Backend, state: RecordState) -> MachineRecord {
        MachineRecord {
            host: "local".into(),
            name: name.into(),
            backend,
            template: None,
            state,
            created_at: String::new(),
        }
    }

    fn obs(name: &str, backend: Backend, owner: Owner) -> Observed {
        Observed {
            name: name.into(),
            backend,
            state: PowerState::ShutOff,
            owner,
            cpus: None,
            memory_bytes: None,
            cpu_time_ns: None,
        }
    }

    fn entry(mac: &str, ip: &str) -> HostEntry {
        HostEntry {
            network: "n".into(),
            mac: mac.into(),
            ip: ip.into(),
            name: "x".into(),
        }
    }

    fn facts() -> Facts {
        let mut f = Facts::default();
        f.observed.insert(Backend::Qemu, Vec::new());
        f.observed.insert(Backend::Lxc, Vec::new());
        f.volumes = Some(Vec::new());
        f
    }

    #[test]
    fn unrecorded_block_volume_files_go_unless_a_create_runs() {
        let mut f = facts();
        f.block_volumes = Some(vec!["data.qcow2".into(), "half.img".into()]);
        f.recorded_block_volumes.insert("data.qcow2".into());
        assert_eq!(
            plan(&f),
            vec![Action::DeleteBlockVolume {
                volume: "half.img".into(),
                why: "no volume record holds it (a `volume create` interrupted)".into()
            }]
        );
        f.block_volumes = None;
        assert_eq!(plan(&f), vec![]);
    }

    /// A machine recorded on another host: its domain here is a stale copy
    /// (disks kept unless an evacuation said they were not shared), and
    /// its volumes and seed are never orphans here (a pool may be shared).
    #[test]
    fn copies_of_machines_living_elsewhere_go_but_their_disks_stay() {
        let mut f = facts();
        f.observed.insert(
            Backend::Qemu,
            vec![
                obs("moved", Backend::Qemu, Owner::Ours),
                obs("shared", Backend::Qemu, Owner::Ours),
                obs("lost", Backend::Qemu, Owner::Ours),
            ],
        );
        f.elsewhere = ["moved", "shared", "other"].map(String::from).into();
        f.evacuated.insert("moved".into(), false);
        f.evacuated.insert("shared".into(), true);
        f.volumes = Some(vec!["other-disk0.qcow2".into(), "gone-disk0.qcow2".into()]);
        f.seeds = vec!["other".into(), "gone".into()];
        let p = plan(&f);
        let stale = |m: &str| {
            p.iter().find_map(|a| match a {
                Action::RemoveStaleCopy {
                    machine,
                    keep_disks,
                    ..
                } if machine == m => Some(*keep_disks),
                _ => None,
            })
        };
        assert_eq!(stale("moved"), Some(false));
        assert_eq!(stale("shared"), Some(true));
        assert_eq!(stale("lost"), None, "not elsewhere: an untracked machine");
        assert!(p
            .iter()
            .any(|a| matches!(a, Action::RemoveMachine { machine, .. } if machine == "lost")));
        let volumes: Vec<&str> = p
            .iter()
            .filter_map(|a| match a {
                Action::DeleteVolume { volume, .. } => Some(volume.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(volumes, ["gone-disk0.qcow2"]);
        let seeds: Vec<&str> = p
            .iter()
            .filter_map(|a| match a {
                Action::RemoveSeed { machine, .. } => Some(machine.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(seeds, ["gone"]);
    }

    #[test]
    fn config_drives_of_gone_machines_go() {
        let mut f = facts();
        f.records.push(rec("a", Backend::Qemu, RecordState::Ready));
        f.observed
            .get_mut(&Backend::Qemu)
            .unwrap()
            .push(obs("a", Backend::Qemu, Owner::Ours));
        f.records.push(rec("x", Backend::Xen, RecordState::Ready));
        f.busy.insert("b".into());
        f.seeds = vec!["a".into(), "b".into(), "gone".into(), "x".into()];
        // a: its machine is there; b: being made now; x: xen did not answer.
        assert_eq!(
            plan(&f),
            vec![Action::RemoveSeed {
                machine: "gone".into(),
                why: "no machine gone owns it".into()
            }]
        );
    }

    #[test]
    fn filters_and_bindings_of_gone_machines_and_groups_go() {
        let mut f = facts();
        f.scope = "creature-0a1b2c3d".into();
        f.records.push(rec("a", Backend::Lxc, RecordState::Ready));
        f.observed
            .get_mut(&Backend::Lxc)
            .unwrap()
            .push(obs("a", Backend::Lxc, Owner::Ours));
        f.busy.insert("b".into());
        f.groups.insert("web".into());
        let s = &f.scope;
        f.filters = Some(vec![
            format!("{s}.nic.a.0"),
            format!("{s}.nic.b.0"),
            format!("{s}.nic.gone.1"),
            format!("{s}.sg.web"),
            format!("{s}.sg.old"),
        ]);
        f.bindings = vec![
            ("crva".into(), format!("{s}.nic.a.0")),
            ("crvgone".into(), format!("{s}.nic.gone.1")),
        ];
        let p: Vec<String> = plan(&f).iter().map(Action::describe).collect();
        assert_eq!(
            p,
            vec![
                "remove the filter binding of crvgone: no machine gone owns it",
                "remove network filter creature-0a1b2c3d.nic.gone.1: no machine gone owns it",
                "remove network filter creature-0a1b2c3d.sg.old: no security group old",
            ]
        );
        // libvirt not asked: nothing planned for filters.
        f.filters = None;
        f.bindings.clear();
        assert_eq!(plan(&f), vec![]);
    }

    #[test]
    fn agreement_plans_nothing() {
        let mut f = facts();
        f.records.push(rec("a", Backend::Kvm, RecordState::Ready));
        f.macs.insert("a".into(), vec!["52:54:00:00:00:01".into()]);
        f.observed
            .get_mut(&Backend::Qemu)
            .unwrap()
            .push(obs("a", Backend::Kvm, Owner::Ours));
        f.volumes = Some(vec!["a-disk0.qcow2".into()]);
        f.host_entries.push(entry("52:54:00:00:00:01", "10.0.0.2"));
        f.journal.insert("a".into());
        assert_eq!(plan(&f), vec![]);
    }

    #[test]
    fn interrupted_creates_are_finished_by_removal() {
        let mut f = facts();
        f.records
            .push(rec("half", Backend::Qemu, RecordState::Creating));
        f.records
            .push(rec("gone", Backend::Lxc, RecordState::Deleting));
        f.macs
            .insert("half".into(), vec!["52:54:00:00:00:02".into()]);
        f.observed
            .get_mut(&Backend::Qemu)
            .unwrap()
            .push(obs("half", Backend::Qemu, Owner::Ours));
        f.volumes = Some(vec!["half-disk0.qcow2".into(), "early-disk0.qcow2".into()]);
        f.host_entries.push(entry("52:54:00:00:00:02", "10.0.0.3"));
        let p = plan(&f);
        let kinds: Vec<String> = p.iter().map(Action::describe).collect();
        assert_eq!(
            kinds,
            vec![
                "remove qemu machine half: its create was interrupted",
                "forget the record of half: its create was interrupted",
                "forget the record of gone: its delete was interrupted",
                "delete volume early-disk0.qcow2: no machine early owns it",
                "remove DHCP host 52:54:00:00:00:02 10.0.0.3 from network n: no machine reserves it",
            ]
        );
    }

    #[test]
    fn foreign_busy_and_unanswered_are_left_alone() {
        let mut f = facts();
        f.observed.remove(&Backend::Lxc); // liblxc did not answer
        f.records
            .push(rec("ct", Backend::Lxc, RecordState::Creating));
        f.records
            .push(rec("busy", Backend::Qemu, RecordState::Creating));
        f.busy.insert("busy".into());
        f.macs
            .insert("busy".into(), vec!["52:54:00:00:00:09".into()]);
        let q = f.observed.get_mut(&Backend::Qemu).unwrap();
        q.push(obs("theirs", Backend::Qemu, Owner::Foreign));
        q.push(obs("other", Backend::Qemu, Owner::OtherState("/x".into())));
        q.push(obs("lost", Backend::Qemu, Owner::Ours));
        f.volumes = Some(vec!["busy-disk0.qcow2".into(), "theirs-disk0.qcow2".into()]);
        f.host_entries.push(entry("52:54:00:00:00:09", "10.0.0.9"));
        let p: Vec<String> = plan(&f).iter().map(Action::describe).collect();
        assert_eq!(
            p,
            vec!["remove qemu machine lost: made by creature, but its record is gone"]
        );
    }

    #[test]
    fn stale_journal_and_files_are_cleared() {
        let mut f = facts();
        f.journal.insert("old".into());
        f.stale_files
            .push(PathBuf::from("/s/images/tmp/import.1.part"));
        let p: Vec<String> = plan(&f).iter().map(Action::describe).collect();
        assert_eq!(
            p,
            vec![
                "clear the journal of old: no such machine",
                "remove /s/images/tmp/import.1.part: left by a process that is gone",
            ]
        );
    }
}
