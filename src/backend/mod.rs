//! Backends: libvirt (kvm, qemu, xen) and liblxc (lxc), behind one
//! interface for the lifecycle verbs, as Incus shares one instance
//! interface between containers and VMs.

pub mod libvirt;
pub mod lxc;

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::matrix::Backend;

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
    pub cpus: Option<u32>,
    pub memory_bytes: Option<u64>,
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
    pub cpus: u32,
    pub memory_bytes: u64,
    pub cpu_time_ns: u64,
    pub disks: Vec<DiskInfo>,
    pub macs: Vec<String>,
    pub pid: Option<i32>,
    pub has_saved_state: bool,
    /// Memory in use now (containers: from the cgroup).
    pub memory_used_bytes: Option<u64>,
    /// Addresses as the backend sees them.
    pub ips: Vec<String>,
}

/// The lifecycle of machines of one backend on one host.
pub trait Driver {
    fn backend(&self) -> Backend;
    fn state(&self, name: &str) -> Result<PowerState>;
    fn start(&self, name: &str) -> Result<()>;
    /// Ask the guest to shut down (ACPI power button, SIGPWR…); returns at once.
    fn request_shutdown(&self, name: &str) -> Result<()>;
    /// Power off now.
    fn force_off(&self, name: &str) -> Result<()>;
    fn reboot(&self, name: &str) -> Result<()>;
    fn pause(&self, name: &str) -> Result<()>;
    fn unpause(&self, name: &str) -> Result<()>;
    fn suspend(&self, name: &str) -> Result<()>;
    fn restore(&self, name: &str) -> Result<()>;
    /// Remove the machine and what creature made for it; says what went.
    fn remove(&self, name: &str) -> Result<Vec<String>>;
    fn details(&self, name: &str) -> Result<Details>;
    /// Every machine of this backend on the host, in as few calls as possible.
    fn observe_all(&self) -> Result<Vec<Observed>>;
    /// File the serial console is logged to.
    fn serial_log(&self, name: &str) -> Result<PathBuf>;
}
