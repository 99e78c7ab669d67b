//! The operations creature can be asked for, typed: each knows its matrix
//! row, the word messages use, what it says when done, and what it acts on.
//! `cmd/gate.rs` checks every one the same way before anything happens.

use crate::backend::Backend;
use crate::error::{Error, Kind, Result};
use crate::matrix::{self, Cell, Effective, Feature, Refusal};

/// What an operation acts on, which decides what the gate looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A machine creature has a record of.
    Machine,
    /// A machine being made (its backend comes from the template).
    NewMachine,
    /// A backend on the host (`host disable`, template settings).
    Backend,
    /// The host or its storage: no machine, no backend.
    Host,
}

macro_rules! ops {
    ($($v:ident => $word:literal, $past:literal, $feature:ident, $target:ident;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Op { $($v,)* }

        impl Op {
            pub const ALL: &'static [Op] = &[$(Op::$v,)*];

            /// The operation's name in messages (`start`, `volume attach`).
            pub fn word(self) -> &'static str { match self { $(Op::$v => $word,)* } }
            /// What `say` prints when it is done (`started web`).
            pub fn past(self) -> &'static str { match self { $(Op::$v => $past,)* } }
            /// The support matrix row that decides it.
            pub fn feature(self) -> Feature { match self { $(Op::$v => Feature::$feature,)* } }
            pub fn target(self) -> Target { match self { $(Op::$v => Target::$target,)* } }
        }
    };
}

ops! {
    Create => "create", "created", Launch, NewMachine;
    Launch => "launch", "launched", Launch, NewMachine;
    InjectFile => "--inject-file", "injected", InjectFiles, NewMachine;
    ConfigDrive => "config drive", "set up", ConfigDrive, NewMachine;
    DiskFromImage => "[[disk]] source", "set up", ImageStorage, NewMachine;
    DisplayVncNew => "[display] type = \"vnc\"", "set up", Vnc, NewMachine;
    DisplaySpiceNew => "[display] type = \"spice\"", "set up", Spice, NewMachine;
    SecGroupNew => "security_groups", "set up", SecurityGroups, NewMachine;
    SecGroupAttach => "secgroup attach", "added", SecurityGroups, Machine;
    SecGroupDetach => "secgroup detach", "removed", SecurityGroups, Machine;
    SecGroupCreate => "secgroup create", "created", SecurityGroups, Host;
    SecGroupDelete => "secgroup delete", "deleted", SecurityGroups, Host;
    SecGroupShow => "secgroup list", "listed", SecurityGroups, Host;
    SecGroupRule => "secgroup rule", "changed", FirewallRules, Host;
    ConfigDriveSet => "config-drive", "changed the config drive of", ConfigDrive, Machine;
    Start => "start", "started", Launch, Machine;
    Stop => "stop", "stopped", Shutdown, Machine;
    Reboot => "reboot", "rebooting", Reboot, Machine;
    Pause => "pause", "paused", Pause, Machine;
    Unpause => "unpause", "unpaused", Unpause, Machine;
    Suspend => "suspend", "suspended", Suspend, Machine;
    Restore => "restore", "restored", Restore, Machine;
    Delete => "delete", "deleted", Shutdown, Machine;
    Info => "info", "shown", GuestStatus, Machine;
    Log => "log", "shown", SerialLog, Machine;
    Console => "console", "left the console of", SerialConsole, Machine;
    DisplayVnc => "display", "shown", Vnc, Machine;
    DisplaySpice => "display", "shown", Spice, Machine;
    DisplayRdp => "display", "shown", Rdp, Machine;
    Snapshot => "snapshot", "snapshotted", Snapshot, Machine;
    Resize => "resize", "resized", Resize, Machine;
    Rescue => "rescue", "rescued", Rescue, Machine;
    Unrescue => "unrescue", "unrescued", Rescue, Machine;
    Migrate => "migrate", "migrated", LiveMigrate, Machine;
    SetPassword => "set-password", "set the password of", SetPassword, Machine;
    Limits => "limits", "limited", DiskIoLimits, Machine;
    VolumeAttach => "volume attach", "attached", AttachVolume, Machine;
    VolumeDetach => "volume detach", "detached", DetachVolume, Machine;
    VolumeSwap => "volume swap", "swapped", SwapVolume, Machine;
    StopActionSuspend => "autostart enable --stop-action suspend", "set", Suspend, Machine;
    TemplateStopActionSuspend => "autostart stop_action = \"suspend\"", "set", Suspend, Backend;
    HostDisable => "host disable", "disabled", ServiceControl, Backend;
    HostEnable => "host enable", "enabled", ServiceControl, Backend;
    NetRoute => "net create --mode route", "created", NetworkRouting, Host;
    NetFlat => "net create --mode bridge", "created", FlatNetworking, Host;
    NetVlan => "net create --vlan", "created", VlanNetworking, Host;
    VolumeCreate => "volume create", "created", BlockStorage, Host;
    VolumeIscsi => "volume create --iscsi", "created", BlockStorageIscsi, Host;
    VolumeChap => "volume create --chap-user", "created", IscsiChap, Host;
    VolumeFc => "volume create --fc-wwnn", "created", BlockStorageFc, Host;
    VolumeList => "volume list", "listed", BlockStorage, Host;
    VolumeDelete => "volume delete", "deleted", BlockStorage, Host;
    Evacuate => "evacuate", "evacuated", Evacuate, Host;
    HostMaintenance => "host maintenance", "done", HostMaintenance, Host;
}

/// Who is named in a refusal.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    Machine(&'a str),
    Backend,
}

impl Op {
    /// No backend allows it today: refused before anything is looked up.
    pub fn refused_everywhere(self) -> bool {
        Backend::ALL
            .iter()
            .all(|b| !self.feature().effective(*b).allowed())
    }

    /// The cell of `backend` for this operation: the partial note to print
    /// when allowed, exit 3 with one line naming everything when refused.
    pub fn require(self, who: Who<'_>, backend: Backend) -> Result<Option<&'static str>> {
        let feature = self.feature();
        let who = match who {
            Who::Machine(m) => format!("machine {m:?} (backend {backend})"),
            Who::Backend => format!("backend {backend}"),
        };
        let why = match feature.effective(backend) {
            Effective::Allowed { note, .. } => return Ok(note),
            Effective::Refused(Refusal::Missing) => format!(
                "the support matrix marks {:?} (#{}) missing for {backend}",
                feature.title(),
                feature.number(),
            ),
            Effective::Refused(Refusal::Unknown) => format!(
                "the support matrix marks {:?} (#{}) unknown for {backend} and creature has not proven it",
                feature.title(),
                feature.number(),
            ),
            Effective::Refused(Refusal::NotImplemented) => {
                let cell = format!(
                    "{:?} (#{}, Nova: {})",
                    feature.title(),
                    feature.number(),
                    feature.nova().get(backend).word(),
                );
                match feature.why_not(backend) {
                    Some(why) => format!("{cell} is not possible for backend {backend} here: {why}"),
                    None => format!("{cell} is not implemented yet for backend {backend}"),
                }
            }
        };
        Err(Error::new(
            Kind::Refused,
            format!(
                "{} refused for {who}: {why} (see `creature matrix --feature {}`)",
                self.word(),
                feature.id()
            ),
        ))
    }

    /// The refusal of an operation no backend allows.
    pub fn refuse_everywhere(self, machine: Option<&str>) -> Error {
        let feature = self.feature();
        let cells: Vec<String> = Backend::ALL
            .iter()
            .map(|b| format!("{b}: {}", feature.effective(*b).word()))
            .collect();
        let who = machine
            .map(|m| format!(" for machine {m:?}"))
            .unwrap_or_default();
        let why = if matrix::missing_everywhere(feature) {
            "marks it missing for every backend"
        } else {
            "allows it on no backend yet"
        };
        Error::new(
            Kind::Refused,
            format!(
                "{} refused{who}: {:?} (#{}): the support matrix {why} ({}) (see `creature matrix --feature {}`)",
                self.word(),
                feature.title(),
                feature.number(),
                cells.join(", "),
                feature.id()
            ),
        )
    }
}

/// One sentence for `--help` and the man page when the matrix lets an
/// operation run nowhere, or only on some backends: generated, so help
/// never promises what the matrix refuses.
pub fn help_note(feature: Feature) -> Option<String> {
    if matrix::missing_everywhere(feature) {
        return Some("Refused on every backend: Nova marks it missing.".into());
    }
    let allowed: Vec<&str> = Backend::ALL
        .iter()
        .filter(|b| feature.effective(**b).allowed())
        .map(|b| b.as_str())
        .collect();
    if allowed.is_empty() {
        let possible: Vec<&str> = Backend::ALL
            .iter()
            .filter(|b| feature.nova().get(**b) != Cell::Missing)
            .map(|b| b.as_str())
            .collect();
        return Some(format!(
            "Not implemented yet on any backend (Nova allows it on {}); refused with exit 3.",
            possible.join(", ")
        ));
    }
    (allowed.len() < Backend::ALL.len())
        .then(|| format!("Allowed today on: {}.", allowed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_names_operation_machine_backend_and_cell() {
        let e = Op::Suspend
            .require(Who::Machine("box1"), Backend::Lxc)
            .unwrap_err();
        assert_eq!(e.kind(), Kind::Refused);
        let m = e.message();
        for part in ["suspend", "\"box1\"", "lxc", "missing", "Suspend instance"] {
            assert!(m.contains(part), "{m} lacks {part}");
        }
    }

    #[test]
    fn not_implemented_is_refused_with_its_own_words() {
        let e = Op::VolumeFc
            .require(Who::Backend, Backend::Lxc)
            .unwrap_err();
        assert!(
            e.message().contains("not implemented yet for backend lxc"),
            "{}",
            e.message()
        );
        // A cell refused for a fact of the hosts says that fact.
        let e = Op::Migrate
            .require(Who::Machine("vm"), Backend::Xen)
            .unwrap_err();
        assert!(e.message().contains("shadow paging"), "{}", e.message());
    }

    #[test]
    fn every_feature_refused_somewhere_has_a_help_note() {
        assert_eq!(
            help_note(Feature::SetPassword).as_deref(),
            Some("Refused on every backend: Nova marks it missing.")
        );
        assert!(help_note(Feature::Launch).is_none(), "allowed everywhere");
        assert!(help_note(Feature::Suspend).unwrap().contains("kvm, qemu"));
        for op in Op::ALL {
            let f = op.feature();
            let everywhere = Backend::ALL.iter().all(|b| f.effective(*b).allowed());
            assert_eq!(help_note(f).is_none(), everywhere, "{op:?}");
        }
    }
}
