//! Verbs on one machine. Each goes through the gate (name, then matrix)
//! before anything else; what passes runs on the machine's backend.

use crate::cli::{Command, DisplayProtocol, VolumeCommand};
use crate::cmd::{gate, Ctx};
use crate::error::{Error, Result};
use crate::matrix::Feature;
use crate::names::{self, What};
use crate::store::MachineRecord;

/// The operation name shown in messages, the machine, and the matrix row.
fn route(cmd: &Command) -> Option<(&'static str, &str, Feature)> {
    use Command as C;
    Some(match cmd {
        C::Start(a) => ("start", &a.machine.name, Feature::Launch),
        C::Stop(a) => ("stop", &a.machine.name, Feature::Shutdown),
        C::Reboot(a) => ("reboot", &a.name, Feature::Reboot),
        C::Pause(a) => ("pause", &a.name, Feature::Pause),
        C::Unpause(a) => ("unpause", &a.name, Feature::Unpause),
        C::Suspend(a) => ("suspend", &a.name, Feature::Suspend),
        C::Restore(a) => ("restore", &a.name, Feature::Restore),
        C::Delete(a) => ("delete", &a.machine.name, Feature::Shutdown),
        C::Info(a) => ("info", &a.name, Feature::GuestStatus),
        C::Log(a) => ("log", &a.machine.name, Feature::SerialLog),
        C::Console(a) => ("console", &a.name, Feature::SerialConsole),
        C::Display(a) => (
            "display",
            &a.machine.name,
            match a.protocol {
                DisplayProtocol::Vnc => Feature::Vnc,
                DisplayProtocol::Spice => Feature::Spice,
                DisplayProtocol::Rdp => Feature::Rdp,
            },
        ),
        C::Snapshot(a) => ("snapshot", &a.machine.name, Feature::Snapshot),
        C::Resize(a) => ("resize", &a.machine.name, Feature::Resize),
        C::Rescue(a) => ("rescue", &a.machine.name, Feature::Rescue),
        C::Unrescue(a) => ("unrescue", &a.name, Feature::Rescue),
        C::Migrate(a) => ("migrate", &a.machine.name, Feature::LiveMigrate),
        C::SetPassword(a) => ("set-password", &a.machine.name, Feature::SetPassword),
        C::Limits(a) => ("limits", &a.machine.name, Feature::DiskIoLimits),
        C::Volume(VolumeCommand::Attach { machine, .. }) => {
            ("volume attach", &machine.name, Feature::AttachVolume)
        }
        C::Volume(VolumeCommand::Detach { machine, .. }) => {
            ("volume detach", &machine.name, Feature::DetachVolume)
        }
        C::Volume(VolumeCommand::Swap { machine, .. }) => {
            ("volume swap", &machine.name, Feature::SwapVolume)
        }
        _ => return None,
    })
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
    if let Some((op, name, feature)) = route(&cmd) {
        let record = gate::machine(ctx, op, name, feature)?;
        return dispatch(ctx, op, &cmd, &record);
    }
    match cmd {
        Command::Create(a) => crate::cmd::create::run(ctx, "create", &a, None),
        Command::Launch(a) => crate::cmd::create::run(ctx, "launch", &a.create, Some(&a.wait)),
        Command::Evacuate(_) => gate::host_feature("evacuate", Feature::Evacuate)
            .and_then(|_| Err(Error::other("evacuate has no implementation"))),
        Command::Volume(VolumeCommand::Create { .. }) => {
            gate::host_feature("volume create", Feature::BlockStorage)
                .and_then(|_| Err(Error::other("volume create has no implementation")))
        }
        Command::Volume(VolumeCommand::List { .. }) => {
            gate::host_feature("volume list", Feature::BlockStorage)
                .and_then(|_| Err(Error::other("volume list has no implementation")))
        }
        Command::Volume(VolumeCommand::Delete { .. }) => {
            gate::host_feature("volume delete", Feature::BlockStorage)
                .and_then(|_| Err(Error::other("volume delete has no implementation")))
        }
        other => Err(Error::other(format!(
            "internal error: no route for {other:?}"
        ))),
    }
}

/// Runs an operation the matrix allowed. Reaching the last arm for a cell
/// creature has not implemented is a bug in `matrix::Feature::implemented`.
fn dispatch(ctx: &Ctx, op: &str, cmd: &Command, rec: &MachineRecord) -> Result<()> {
    use crate::cmd::lifecycle;
    crate::interrupt::catch();
    match cmd {
        Command::Start(a) => lifecycle::start(ctx, rec, &a.wait),
        Command::Stop(a) => lifecycle::stop(ctx, rec, a.timeout, a.force),
        Command::Reboot(_) | Command::Pause(_) | Command::Unpause(_) | Command::Suspend(_)
        | Command::Restore(_) => lifecycle::simple(ctx, rec, op),
        Command::Delete(a) => lifecycle::delete(ctx, rec, a.force),
        Command::Info(_) => lifecycle::info(ctx, rec),
        Command::Log(a) => lifecycle::log(ctx, rec, a.follow),
        Command::Console(_) => crate::cmd::console::run(ctx, rec),
        _ => Err(Error::other(format!(
            "internal error: {op} passed the support matrix for backend {} but has no implementation",
            rec.backend
        ))),
    }
}
