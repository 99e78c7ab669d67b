//! Verbs on one machine. Each is mapped to its typed `Op` and goes through
//! the gate before anything else; what passes runs on a driver opened once.

use crate::backend::{self, Driver};
use crate::cli::{Command, DisplayProtocol, SecgroupCommand, Selection, VolumeCommand};
use crate::cmd::gate::{self, Subject};
use crate::cmd::{lifecycle, Ctx};
use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::op::Op;
use crate::store::MachineRecord;

/// The operation of a verb that takes several machines, and its selection.
pub fn selection(cmd: &Command) -> Option<(Op, &Selection)> {
    use Command as C;
    Some(match cmd {
        C::Start(a) => (Op::Start, &a.machines),
        C::Stop(a) => (Op::Stop, &a.machines),
        C::Destroy(a) => (Op::Stop, a),
        C::Reboot(a) => (Op::Reboot, a),
        C::Pause(a) => (Op::Pause, a),
        C::Unpause(a) => (Op::Unpause, a),
        C::Suspend(a) => (Op::Suspend, a),
        C::Restore(a) => (Op::Restore, a),
        C::Delete(a) => (Op::Delete, &a.machines),
        _ => return None,
    })
}

/// The operation a command asks for and the one machine it names.
pub fn route(cmd: &Command) -> Option<(Op, &str)> {
    use Command as C;
    if let Some((op, sel)) = selection(cmd) {
        return match sel.names.as_slice() {
            [one] if !sel.all && sel.filter.is_empty() => Some((op, one)),
            _ => None,
        };
    }
    Some(match cmd {
        C::Info(a) => (Op::Info, &a.name),
        C::Log(a) => (Op::Log, &a.machine.name),
        C::Console(a) => (Op::Console, &a.name),
        C::Display(a) => (
            // A machine's own display passed the matrix at its create: VNC's
            // row stands in when none is named (it refuses lxc as SPICE's does).
            match a.protocol {
                None | Some(DisplayProtocol::Vnc) => Op::DisplayVnc,
                Some(DisplayProtocol::Spice) => Op::DisplaySpice,
                Some(DisplayProtocol::Rdp) => Op::DisplayRdp,
            },
            &a.machine.name,
        ),
        C::Snapshot(a) => (Op::Snapshot, a.machine()),
        C::Resize(a) => (Op::Resize, &a.machine.name),
        C::Rescue(a) => (Op::Rescue, &a.machine.name),
        C::Unrescue(a) => (Op::Unrescue, &a.name),
        C::Migrate(a) => (Op::Migrate, &a.machine.name),
        C::SetPassword(a) => (Op::SetPassword, &a.machine.name),
        C::Limits(a) => (Op::Limits, &a.machine.name),
        C::ConfigDrive(a) => (Op::ConfigDriveSet, &a.machine.name),
        C::Secgroup(SecgroupCommand::Attach { machine, .. }) => (Op::SecGroupAttach, &machine.name),
        C::Secgroup(SecgroupCommand::Detach { machine, .. }) => (Op::SecGroupDetach, &machine.name),
        C::Volume(VolumeCommand::Attach { machine, .. }) => (Op::VolumeAttach, &machine.name),
        C::Volume(VolumeCommand::Detach { machine, .. }) => (Op::VolumeDetach, &machine.name),
        C::Volume(VolumeCommand::Swap { machine, .. }) => (Op::VolumeSwap, &machine.name),
        _ => return None,
    })
}

/// Operations on the host that no backend implements yet.
fn host_op(cmd: &Command) -> Option<Op> {
    match cmd {
        Command::Evacuate(_) => Some(Op::Evacuate),
        Command::Volume(VolumeCommand::Create {
            iscsi: Some(_),
            chap_user: Some(_),
            ..
        }) => Some(Op::VolumeChap),
        Command::Volume(VolumeCommand::Create { iscsi: Some(_), .. }) => Some(Op::VolumeIscsi),
        Command::Volume(VolumeCommand::Create {
            fc_wwnn: Some(_), ..
        }) => Some(Op::VolumeFc),
        Command::Volume(VolumeCommand::Create { .. }) => Some(Op::VolumeCreate),
        Command::Volume(VolumeCommand::List | VolumeCommand::Info { .. }) => Some(Op::VolumeList),
        Command::Volume(VolumeCommand::Delete { .. }) => Some(Op::VolumeDelete),
        Command::Secgroup(SecgroupCommand::Create { .. }) => Some(Op::SecGroupCreate),
        Command::Secgroup(SecgroupCommand::Delete { .. }) => Some(Op::SecGroupDelete),
        Command::Secgroup(SecgroupCommand::List | SecgroupCommand::Show { .. }) => {
            Some(Op::SecGroupShow)
        }
        Command::Secgroup(SecgroupCommand::Rule(_)) => Some(Op::SecGroupRule),
        _ => None,
    }
}

/// Names given besides the machine's, checked with it before anything else.
fn other_names(cmd: &Command) -> Result<()> {
    match cmd {
        Command::Migrate(a) => names::check(What::Host, &a.to),
        Command::Evacuate(a) => {
            names::check(What::Host, &a.from)?;
            names::check(What::Host, &a.to)
        }
        _ => Ok(()),
    }
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    other_names(&cmd)?;
    if let Some((op, name)) = route(&cmd) {
        return one(ctx, op, &cmd, name);
    }
    if let Some((op, sel)) = selection(&cmd) {
        return crate::cmd::many::run(ctx, op, &cmd, sel);
    }
    if let Some(op) = host_op(&cmd) {
        gate::check(ctx, op, Subject::Host)?;
        return match cmd {
            Command::Volume(v) => crate::cmd::volume::run(ctx, &v),
            Command::Secgroup(s) => crate::cmd::secgroup::run(ctx, &s),
            Command::Evacuate(a) => crate::cmd::evacuate::run(ctx, &a),
            _ => Err(unreachable_past_the_gate(op, None)),
        };
    }
    match cmd {
        Command::Create(a) => crate::cmd::create::run(ctx, Op::Create, &a, None),
        Command::Launch(a) => crate::cmd::create::run(ctx, Op::Launch, &a.create, Some(&a.wait)),
        other => Err(Error::other(format!(
            "internal error: no route for {other:?}"
        ))),
    }
}

/// One machine through the gate, then its verb.
pub fn one(ctx: &Ctx, op: Op, cmd: &Command, name: &str) -> Result<()> {
    let rec = gate::check(ctx, op, Subject::Machine(name))?.expect("a machine's record");
    dispatch(ctx, op, cmd, &rec)
}

/// An operation the matrix allowed with no code behind it: a bug in
/// `matrix::Feature::implemented`.
fn unreachable_past_the_gate(op: Op, rec: Option<&MachineRecord>) -> Error {
    Error::other(format!(
        "internal error: {} passed the support matrix{} but has no implementation",
        op.word(),
        rec.map(|r| format!(" for backend {}", r.backend))
            .unwrap_or_default()
    ))
}

/// Runs an operation the gate allowed, on one driver of the machine's backend.
fn dispatch(ctx: &Ctx, op: Op, cmd: &Command, rec: &MachineRecord) -> Result<()> {
    crate::interrupt::catch();
    if let Command::Delete(_) = cmd {
        lifecycle::confirm_delete(ctx, rec)?;
    }
    let host = ctx.host()?;
    // Verbs that change a machine hold its lock, so two of them (a delete
    // racing a start) never interleave: the second is refused (exit 5).
    let _busy = match cmd {
        Command::Start(_)
        | Command::Stop(_)
        | Command::Destroy(_)
        | Command::Reboot(_)
        | Command::Pause(_)
        | Command::Unpause(_)
        | Command::Suspend(_)
        | Command::Restore(_)
        | Command::Delete(_)
        | Command::Limits(_)
        | Command::ConfigDrive(_)
        | Command::Resize(_)
        | Command::Rescue(_)
        | Command::Unrescue(_)
        | Command::Volume(_)
        | Command::Secgroup(_)
        | Command::Snapshot(
            crate::cli::SnapshotCommand::Create { .. }
            | crate::cli::SnapshotCommand::Revert { .. }
            | crate::cli::SnapshotCommand::Delete { .. }
            | crate::cli::SnapshotCommand::Export { .. },
        ) => Some(crate::statedir::lock_machine(
            &ctx.global.state_dir,
            host.name(),
            &rec.name,
        )?),
        Command::Display(a) if a.set_password => Some(crate::statedir::lock_machine(
            &ctx.global.state_dir,
            host.name(),
            &rec.name,
        )?),
        _ => None,
    };
    let drv: Box<dyn Driver> = backend::open(rec.backend, &host)?;
    let drv = drv.as_ref();
    match cmd {
        Command::Start(a) => lifecycle::start(ctx, &host, drv, rec, &a.wait),
        Command::Stop(a) => lifecycle::stop(ctx, drv, rec, a.timeout, a.force),
        Command::Destroy(_) => lifecycle::stop(ctx, drv, rec, 0, true),
        Command::Reboot(_)
        | Command::Pause(_)
        | Command::Unpause(_)
        | Command::Suspend(_)
        | Command::Restore(_) => lifecycle::simple(ctx, drv, rec, op),
        Command::Delete(a) => lifecycle::delete(ctx, &host, drv, rec, a.force),
        Command::Info(_) => lifecycle::info(ctx, &host, drv, rec),
        Command::Log(a) => {
            if ctx.global.format == crate::output::Format::Json {
                return Err(Error::invalid(
                    "log prints the console's text as it came; --format json is not supported for log",
                ));
            }
            lifecycle::log(
                drv,
                rec,
                a.follow,
                a.lines,
                a.since.clone(),
                !host.is_local(),
            )
        }
        Command::Console(_) => crate::cmd::console::run(ctx, drv, rec),
        Command::Limits(a) => crate::cmd::limits::run(ctx, drv, rec, a),
        Command::ConfigDrive(a) => crate::cmd::config_drive::run(ctx, rec, a),
        Command::Display(a) => crate::cmd::display::run(ctx, drv, rec, a),
        Command::Resize(a) => lifecycle::resize(ctx, drv, rec, &a.request()),
        Command::Rescue(a) => crate::cmd::rescue::rescue(ctx, drv, rec, a.image.as_deref()),
        Command::Unrescue(_) => crate::cmd::rescue::unrescue(ctx, drv, rec),
        Command::Snapshot(s) => crate::cmd::snapshot::run(ctx, &host, drv, rec, s),
        Command::Volume(v) => crate::cmd::volume::on_machine(ctx, &host, drv, rec, v),
        Command::Secgroup(s) => crate::cmd::secgroup::on_machine(ctx, &host, rec, s),
        Command::Migrate(a) => crate::cmd::migrate::run(ctx, rec, a),
        _ => Err(unreachable_past_the_gate(op, Some(rec))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Every operation on a machine has a command that routes to it.
    #[test]
    fn every_machine_op_has_a_command() {
        let cases: &[(&[&str], Op)] = &[
            (&["start", "m"], Op::Start),
            (&["stop", "m"], Op::Stop),
            (&["destroy", "m"], Op::Stop),
            (&["restart", "m"], Op::Reboot),
            (&["rm", "m"], Op::Delete),
            (&["reboot", "m"], Op::Reboot),
            (&["pause", "m"], Op::Pause),
            (&["unpause", "m"], Op::Unpause),
            (&["suspend", "m"], Op::Suspend),
            (&["restore", "m"], Op::Restore),
            (&["delete", "m"], Op::Delete),
            (&["info", "m"], Op::Info),
            (&["log", "m"], Op::Log),
            (&["console", "m"], Op::Console),
            (&["display", "m"], Op::DisplayVnc),
            (&["display", "m", "--protocol", "spice"], Op::DisplaySpice),
            (&["display", "m", "--protocol", "rdp"], Op::DisplayRdp),
            (&["snapshot", "create", "m"], Op::Snapshot),
            (&["snapshot", "list", "m"], Op::Snapshot),
            (&["snapshot", "revert", "m", "s"], Op::Snapshot),
            (&["snapshot", "delete", "m", "s"], Op::Snapshot),
            (&["snapshot", "export", "m", "--image", "i"], Op::Snapshot),
            (&["resize", "m", "--cpus", "2"], Op::Resize),
            (&["rescue", "m"], Op::Rescue),
            (&["unrescue", "m"], Op::Unrescue),
            (&["migrate", "m", "--to", "b"], Op::Migrate),
            (&["set-password", "m"], Op::SetPassword),
            (&["limits", "m"], Op::Limits),
            (&["config-drive", "m"], Op::ConfigDriveSet),
            (&["volume", "attach", "m", "v"], Op::VolumeAttach),
            (&["volume", "detach", "m", "v"], Op::VolumeDetach),
            (&["volume", "swap", "m", "a", "b"], Op::VolumeSwap),
            (&["secgroup", "attach", "m", "g"], Op::SecGroupAttach),
            (&["secgroup", "detach", "m", "g"], Op::SecGroupDetach),
        ];
        for (args, want) in cases {
            let cli = crate::cli::Cli::parse_from(std::iter::once(&"creature").chain(*args));
            assert_eq!(route(&cli.command), Some((*want, "m")), "{args:?}");
        }
        // Machine ops without a verb of their own are options of other verbs.
        let options = [Op::StopActionSuspend];
        for op in Op::ALL
            .iter()
            .filter(|o| o.target() == crate::op::Target::Machine)
        {
            assert!(
                cases.iter().any(|(_, o)| o == op) || options.contains(op),
                "{op:?} has no command"
            );
        }
    }
}
