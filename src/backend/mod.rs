//! Backends: libvirt (kvm, qemu, xen) and liblxc (lxc), behind one
//! interface, as Incus shares one instance interface between containers and
//! VMs. Verbs get a driver from `open` and never ask which backend it is.

pub mod console;
pub mod firewall;
mod host;
mod kind;
pub mod libvirt;
pub mod lxc;
pub mod ovs;
pub mod taken;
mod traced;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

pub use console::Console;
pub use host::Host;
pub use kind::Backend;
pub use libvirt::volume_xml::VolumeDisk;

use crate::error::{Error, Result};
use crate::store::{Nic, Store};
use crate::template::Resolved;
use crate::undo::Undo;

/// The driver for machines of `backend` on `host` (telling each call at `-v`).
pub fn open(backend: Backend, host: &Host) -> Result<Box<dyn Driver>> {
    let d = open_untraced(backend, host)?;
    Ok(if crate::trace::level() > 0 {
        Box::new(traced::Traced(d))
    } else {
        d
    })
}

fn open_untraced(backend: Backend, host: &Host) -> Result<Box<dyn Driver>> {
    match backend {
        Backend::Kvm | Backend::Qemu | Backend::Xen => Ok(Box::new(
            libvirt::machine::LibvirtDriver::open(backend, &host.uri(backend)?, host.state_dir())?
                .on(host.name()),
        )),
        Backend::Lxc if !host.is_local() => Err(Error::unavailable(format!(
            "containers are this host's only: liblxc runs them where creature runs, and host {} is another (create the container without --host, or run creature on {})",
            host.name(),
            host.name()
        ))),
        Backend::Lxc => {
            // SAFETY: geteuid has no preconditions and cannot fail.
            if unsafe { libc::geteuid() } != 0 {
                // liblxc would quietly switch to ~/.local/share/lxc.
                return Err(Error::unavailable(
                    "lxc machines need root: creature runs system containers from liblxc's system path (/var/lib/lxc)",
                ));
            }
            Ok(Box::new(lxc::driver::LxcDriver::new(host.state_dir())))
        }
    }
}

/// How long one engine may take to say what it has.
const OBSERVE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// kvm and qemu machines are domains of one libvirt driver: one pass
/// serves both.
pub fn engine(b: Backend) -> Backend {
    match b {
        Backend::Kvm => Backend::Qemu,
        other => other,
    }
}

/// What one engine (see `engine`) reports, within a deadline, so a hung
/// daemon cannot hang `list` or `repair`.
pub fn observe_within(
    host: &Host,
    engine: Backend,
    known: BTreeSet<String>,
) -> Result<Vec<Observed>> {
    let label = host.engine(engine)?;
    let host = host.clone();
    crate::deadline::run(&label, OBSERVE_DEADLINE, move || {
        open(engine, &host)?.observe(&known)
    })
}

/// What one create is asked to make. The machine's record exists already
/// (`creating`) with its NICs allocated; the caller marks it ready.
pub struct CreateJob<'a> {
    pub host: &'a str,
    pub name: &'a str,
    pub resolved: &'a Resolved,
    pub nics: &'a [Nic],
    pub quiet: bool,
    /// The machine gets a config drive (written after the create).
    pub seed: bool,
    /// Its graphical console (VMs).
    pub display: Option<&'a crate::store::DisplayRecord>,
    /// Disks already in the pool under the machine's volume names are its
    /// own (an evacuation onto storage the lost host shared): used as they
    /// are, never made anew nor deleted on failure.
    pub reuse_disks: bool,
}

/// `creature exec` and `shell` as asked, before the guest is looked at.
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    /// Empty: the user's login shell.
    pub argv: Vec<String>,
    /// `--env KEY=VALUE`, checked and split.
    pub env: Vec<(String, String)>,
    /// `--user NAME|UID[:GID]`.
    pub user: Option<String>,
    pub cwd: Option<String>,
    pub tty: bool,
    /// TERM of the caller's terminal, for the command's.
    pub term: Option<String>,
}

/// What `rescue` boots: files of a cached image.
#[derive(Debug, Clone)]
pub struct RescueBoot {
    pub image: String,
    pub kernel: String,
    pub initrd: String,
}

/// The answer a driver gives for an operation its matrix column refuses:
/// the gate stops those first, so reaching one is a bug.
fn past_the_matrix(backend: Backend, op: &str) -> Error {
    Error::other(format!(
        "internal error: {op} reached the {backend} driver past the support matrix"
    ))
}

/// A verb asked of a machine in a state it cannot take it in (exit 5).
pub(crate) fn wrong_state(name: &str, op: &str, st: PowerState) -> Error {
    Error::conflict(format!(
        "cannot {op} machine {name:?}: it is {}",
        st.as_str()
    ))
}

/// Power state as the backend reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerState {
    Running,
    Paused,
    ShuttingDown,
    ShutOff,
    /// Shut off with a saved memory image (`creature suspend`).
    Saved,
    Crashed,
    Unknown,
}

impl PowerState {
    pub const ALL: [PowerState; 7] = [
        PowerState::Running,
        PowerState::Paused,
        PowerState::ShuttingDown,
        PowerState::ShutOff,
        PowerState::Saved,
        PowerState::Crashed,
        PowerState::Unknown,
    ];

    pub fn parse(s: &str) -> Option<PowerState> {
        PowerState::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::Running => "running",
            PowerState::Paused => "paused",
            PowerState::ShuttingDown => "shutting-down",
            PowerState::ShutOff => "shut-off",
            PowerState::Saved => "saved",
            PowerState::Crashed => "crashed",
            PowerState::Unknown => "unknown",
        }
    }

    /// Running in the sense of "has a live process" (paused counts).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            PowerState::Running | PowerState::Paused | PowerState::ShuttingDown
        )
    }
}

/// A CPU or memory amount a machine is held to: a number, or `host` for a
/// container without a limit (it may use all of the host's). JSON: the
/// number, or the string "host".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Count(u64),
    Host,
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Limit::Count(n) => s.serialize_u64(*n),
            Limit::Host => s.serialize_str("host"),
        }
    }
}

impl Limit {
    /// As a table shows it; `bytes` formats a memory amount.
    pub fn show(self, bytes: bool) -> String {
        match self {
            Limit::Count(n) if bytes => crate::size::Size(n).to_string(),
            Limit::Count(n) => n.to_string(),
            Limit::Host => "host".into(),
        }
    }
}

/// Whose a machine the backend knows about is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Owner {
    /// Made by creature with this state directory.
    Ours,
    /// Made by creature with another state directory.
    OtherState(String),
    /// Not made by creature: never adopted, changed or deleted.
    Foreign,
}

/// One machine as the backend sees it, for `list`.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub name: String,
    pub backend: Backend,
    pub state: PowerState,
    pub owner: Owner,
    /// None when the backend did not say.
    pub cpus: Option<Limit>,
    pub memory_bytes: Option<Limit>,
    pub cpu_time_ns: Option<u64>,
}

/// A disk of a machine, for `info`.
#[derive(Debug, Clone, Serialize)]
pub struct DiskInfo {
    pub target: String,
    pub path: String,
    pub format: String,
    pub backing: Option<String>,
}

/// `info`'s view of one machine from its backend.
#[derive(Debug, Clone, Serialize)]
pub struct Details {
    pub state: PowerState,
    pub cpus: Limit,
    pub memory_bytes: Limit,
    pub cpu_time_ns: u64,
    pub disks: Vec<DiskInfo>,
    pub pid: Option<i32>,
    pub has_saved_state: bool,
    /// Memory in use now (containers: from the cgroup).
    pub memory_used_bytes: Option<u64>,
    /// The rescue image it boots from now (`creature rescue`), if rescued.
    pub rescued: Option<String>,
}

/// The machines of one backend on one host. An operation the backend's
/// matrix column refuses keeps its default body: the gate never lets a
/// command reach it.
pub trait Driver {
    fn backend(&self) -> Backend;
    fn state(&self, name: &str) -> Result<PowerState>;
    /// Refuse (exit 5) a name the backend already knows, before any record.
    fn ensure_free(&self, name: &str) -> Result<()>;
    /// Make the machine; every step registers its undo.
    fn create(&self, job: &CreateJob<'_>, store: &mut Store, undo: &mut Undo) -> Result<()>;
    fn start(&self, name: &str) -> Result<()>;
    /// Ask the guest to shut down (ACPI power button, SIGPWR…); returns at once.
    fn request_shutdown(&self, name: &str) -> Result<()>;
    /// Power off now.
    fn force_off(&self, name: &str) -> Result<()>;
    fn reboot(&self, name: &str) -> Result<()>;
    fn pause(&self, name: &str) -> Result<()>;
    fn unpause(&self, name: &str) -> Result<()>;
    fn suspend(&self, _name: &str) -> Result<()> {
        Err(past_the_matrix(self.backend(), "suspend"))
    }
    fn restore(&self, _name: &str) -> Result<()> {
        Err(past_the_matrix(self.backend(), "restore"))
    }
    /// Remove the machine and what creature made for it; says what went.
    fn remove(&self, name: &str) -> Result<Vec<String>>;
    /// The guest's screen as the hypervisor dumps it: its MIME type (PPM or
    /// PNG, by QEMU's version) and bytes.
    fn screenshot(&self, _name: &str) -> Result<(String, Vec<u8>)> {
        Err(past_the_matrix(self.backend(), "display --screenshot"))
    }
    /// Give the display a new password, live too when the machine runs
    /// (true then).
    fn set_display_password(
        &self,
        _name: &str,
        _display: &crate::store::DisplayRecord,
    ) -> Result<bool> {
        Err(past_the_matrix(self.backend(), "display --set-password"))
    }
    /// The running machine's live definition (libvirt domain XML).
    fn live_xml(&self, _name: &str) -> Result<String> {
        Err(past_the_matrix(self.backend(), "display"))
    }
    /// Put the machine's first-boot seed where its guest reads it (a VM's
    /// config drive, a container's NoCloud directory).
    fn write_seed(&self, _name: &str, _seed: &crate::seed::Rendered) -> Result<()> {
        Err(past_the_matrix(self.backend(), "config drive"))
    }
    fn details(&self, name: &str) -> Result<Details>;
    /// Every machine of this backend's engine on the host, in as few calls
    /// as possible, with ownership decided (`known`: the names creature has
    /// records of, whose ownership needs no further call).
    fn observe(&self, known: &BTreeSet<String>) -> Result<Vec<Observed>>;
    /// The running machine's interactive console.
    fn console(&self, name: &str) -> Result<Console>;
    /// Run a command in the running machine; its exit status (a shell's:
    /// 128+N for a signal). Machines that cannot run one say what they lack.
    fn exec(&self, name: &str, _spec: &ExecSpec) -> Result<i32> {
        Err(Error::unavailable(format!(
            "machine {name:?} ({}) cannot run commands: creature has no way into it",
            self.backend()
        )))
    }
    /// Resize the machine (see `resize::plan`): what changed, and what waits
    /// for its next start.
    fn resize(
        &self,
        _name: &str,
        _req: &crate::resize::Request,
    ) -> Result<(Vec<String>, Vec<String>)> {
        Err(past_the_matrix(self.backend(), "resize"))
    }
    /// Boot the machine from a rescue kernel and initramfs, its own disks
    /// attached after a scratch disk; its definition is kept to go back to.
    fn rescue(&self, _name: &str, _boot: &RescueBoot) -> Result<()> {
        Err(past_the_matrix(self.backend(), "rescue"))
    }
    /// Boot it from its own disks again.
    fn unrescue(&self, _name: &str) -> Result<()> {
        Err(past_the_matrix(self.backend(), "unrescue"))
    }
    /// Each disk's I/O limits (device name, limits), live when running.
    fn io_limits(&self, _name: &str) -> Result<Vec<(String, crate::iotune::Limits)>> {
        Err(past_the_matrix(self.backend(), "limits"))
    }
    /// Change the limits of one disk or all, live (when running) and
    /// persistent; the disks changed.
    fn set_io_limits(
        &self,
        _name: &str,
        _disk: Option<&str>,
        _limits: &crate::iotune::Limits,
    ) -> Result<Vec<String>> {
        Err(past_the_matrix(self.backend(), "limits"))
    }
    /// Snapshots (#16, see `crate::snapshot`): the machine's disks and the
    /// files under them.
    fn snapshot_graph(&self, _name: &str) -> Result<crate::snapshot::Graph> {
        Err(past_the_matrix(self.backend(), "snapshot"))
    }
    /// Freeze each disk (and the memory, to `memory`) under a new overlay;
    /// (target, frozen file) of each.
    fn snapshot_take(
        &self,
        _name: &str,
        _snap: &str,
        _memory: Option<&std::path::Path>,
    ) -> Result<Vec<(String, String)>> {
        Err(past_the_matrix(self.backend(), "snapshot"))
    }
    /// Carry out a plan of `crate::snapshot::delete_plan`.
    fn snapshot_steps(&self, _name: &str, _steps: &[crate::snapshot::Step]) -> Result<()> {
        Err(past_the_matrix(self.backend(), "snapshot"))
    }
    /// Put the machine back on `points` (target, file): its memory restored
    /// from `memory` (`paused` as it was), else started when `start`.
    fn snapshot_revert(
        &self,
        _name: &str,
        _points: &[(String, String)],
        _memory: Option<&std::path::Path>,
        _paused: bool,
        _start: bool,
    ) -> Result<()> {
        Err(past_the_matrix(self.backend(), "snapshot"))
    }
    /// Block volumes (#1, #2): every device name the machine's disks take.
    fn used_targets(&self, _name: &str) -> Result<Vec<String>> {
        Err(past_the_matrix(self.backend(), "volume attach"))
    }
    /// Attach live (when running) and persistently; the device it took.
    fn attach_volume(&self, _name: &str, _disk: &VolumeDisk) -> Result<String> {
        Err(past_the_matrix(self.backend(), "volume attach"))
    }
    /// Detach the disk at `path`, live (the guest lets go) then persistent.
    fn detach_volume(&self, _name: &str, _path: &str) -> Result<String> {
        Err(past_the_matrix(self.backend(), "volume detach"))
    }
    /// Swap the disk reading `old` onto `new` (of `new_format`), its data
    /// copied (progress unless `quiet`); the device it is.
    fn swap_volume(
        &self,
        _name: &str,
        _old: &str,
        _new: &str,
        _new_format: &str,
        _quiet: bool,
    ) -> Result<String> {
        Err(past_the_matrix(self.backend(), "volume swap"))
    }
    /// File the serial console is logged to.
    fn serial_log(&self, _name: &str) -> Result<PathBuf> {
        Err(past_the_matrix(self.backend(), "log"))
    }
}
