//! The command-line surface, defined once. Completions and man pages are
//! generated from these definitions (`creature generate`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

use crate::backend::Backend;
use crate::complete;
use crate::net::NetMode;
use crate::op::Op;
use crate::output::Format;
use crate::wait::Wait;

const AFTER_HELP: &str = "\
Exit status: 0 ok, 1 other error, 2 invalid input, 3 refused by the support matrix, \
4 not found, 5 conflict, 6 backend unavailable, 7 timed out, 8 resource exhausted, \
9 state corrupt, 130 interrupted. See creature(1).";

/// Manage virtual machines and system containers (KVM, QEMU, Xen, LXC).
///
/// Every operation is checked against the support matrix first: what the
/// machine's backend does not support is refused (exit 3) before anything
/// happens. See `creature matrix`.
#[derive(Debug, Parser)]
#[command(name = "creature", version, about, long_about, after_help = AFTER_HELP)]
#[command(propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Output format of read verbs (markdown only for `matrix`).
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Directory of creature's state database and caches.
    #[arg(
        long,
        global = true,
        env = "CREATURE_STATE_DIR",
        value_name = "DIR",
        default_value = crate::DEFAULT_STATE_DIR
    )]
    pub state_dir: PathBuf,

    /// Host to act on: one added with `creature host add` or named in
    /// /etc/creature/config.toml (default: this host; `list`: every host).
    #[arg(long, global = true, value_name = "NAME", env = "CREATURE_HOST",
          add = ArgValueCandidates::new(complete::hosts))]
    pub host: Option<String>,

    /// Answer yes to confirmations (needed off a terminal for destructive verbs).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,

    /// Print only errors.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more detail (repeat for more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a machine from a template (not started).
    Create(CreateArgs),
    /// Create a machine from a template and start it.
    Launch(LaunchArgs),
    /// Start a machine.
    Start(StartArgs),
    /// Stop a machine: graceful shutdown, then --force after --timeout.
    Stop(StopArgs),
    /// Power a machine off at once, as `virsh destroy` (= stop --force --timeout 0).
    Destroy(Selection),
    /// Reboot a machine.
    #[command(visible_alias = "restart")]
    Reboot(Selection),
    /// Pause a machine's CPUs (containers: freeze).
    Pause(Selection),
    /// Resume a paused machine's CPUs (containers: unfreeze).
    Unpause(Selection),
    /// Save a running machine's memory to disk and stop it.
    Suspend(Selection),
    /// Bring back a suspended machine.
    Restore(Selection),
    /// Delete a machine and everything creature made for it.
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),
    /// List machines on the host, reconciled with creature's records.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one machine in detail.
    Info(MachineArg),
    /// Show a machine's serial console log.
    Log(LogArgs),
    /// Attach to a machine's interactive console (Ctrl-] leaves).
    Console(MachineArg),
    /// Run a command inside a running machine; its exit status is creature's.
    ///
    /// Containers: through liblxc's attach (the container's namespaces, cgroup and
    /// security profile). VMs: through the QEMU guest agent, when the machine's template
    /// enables it (`guest_agent = true`); or over ssh to its reserved address as the image's
    /// default user (`cloud_init.default_user`), with a key creature made for the machine
    /// and its config drive authorized: for a terminal, --user (through sudo) or when there
    /// is no agent. The environment is PATH, HOME, LANG and TERM (with a terminal) plus each
    /// --env; the caller's own is not passed in.
    Exec(ExecArgs),
    /// Open a login shell inside a running machine (exec of the user's shell).
    Shell(ShellArgs),
    /// Show where a running machine's graphical display listens (VNC, SPICE).
    ///
    /// The display comes from the template's [display] (type vnc or spice, listen default
    /// 127.0.0.1) with a password creature made for the machine, printed only with
    /// --show-password; libvirt picks the port at each start.
    Display(DisplayArgs),
    /// Snapshots of a machine's disks (and memory): create, list, revert, delete, export.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Change a machine's vCPUs, memory or disk size: live up to its maximum, and persistent.
    Resize(ResizeArgs),
    /// Boot a machine from a rescue image, keeping its disks attached.
    Rescue(RescueArgs),
    /// Boot a rescued machine from its own disks again.
    Unrescue(MachineArg),
    /// Live-migrate a machine to another host.
    Migrate(MigrateArgs),
    /// Move every machine off a host.
    Evacuate(EvacuateArgs),
    /// Set the admin password inside a machine.
    SetPassword(SetPasswordArgs),
    /// Show or set a machine's disk I/O limits (live and persistent).
    Limits(LimitsArgs),
    /// Show or change what a machine's config drive tells cloud-init.
    ///
    /// A change is written at the machine's next start, with a new instance-id: cloud-init
    /// then runs its first-boot modules again (host name, users and keys, files). Contents
    /// (keys, user-data, files) are never printed.
    ConfigDrive(ConfigDriveArgs),
    /// Block volumes: create, attach, detach, swap.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Networks: bridges with DHCP, MAC and IP reservations.
    #[command(subcommand)]
    Net(NetCommand),
    /// Security groups: stateful firewall rules for the machines in them.
    ///
    /// A machine in a group takes inbound traffic only as a rule of one of its groups
    /// allows and sends outbound only as one allows (a new group allows all outbound);
    /// answers to allowed traffic pass both ways, and DHCP always does. A machine in no
    /// group is not filtered beyond anti-spoofing. Rules are libvirt network filters, one
    /// per group: a change applies to every machine in the group at once, live. IPv4
    /// only; a machine in a group sends and takes no IPv6.
    #[command(subcommand)]
    Secgroup(SecgroupCommand),
    /// Templates machines are created from.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// The image cache machines' disks are made from.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Start machines at host boot, in priority order.
    #[command(subcommand)]
    Autostart(AutostartCommand),
    /// Stop machines at host shutdown, in reverse priority order.
    #[command(subcommand)]
    Autostop(AutostopCommand),
    /// The host: status, maintenance, backend services.
    #[command(subcommand)]
    Host(HostCommand),
    /// Show the support matrix: Nova's cells beside creature's effective ones.
    Matrix(MatrixArgs),
    /// Check what creature needs on this host and say how to fix what is wrong.
    ///
    /// One line per check (ok, warn or fail) with the fix: libvirtd and virtlogd answering,
    /// /dev/kvm usable by QEMU's user, QEMU and libvirt's guest types, liblxc, root's
    /// /etc/subuid and /etc/subgid ranges, cgroup controllers, AppArmor, dnsmasq, free space
    /// in the state directory and pools, the state database's integrity, interrupted
    /// operations in the journal, creature.service (installed, enabled, and a stop timeout
    /// that covers the autostop plan), and whether each other host creature knows answers.
    /// Exit 0 when nothing fails (warnings allowed), else 6. Changes nothing.
    Doctor,
    /// Bring the state database and the backends back into agreement after a crash or a kill.
    ///
    /// Finds records without a machine, machines creature made without a record, interrupted creates and
    /// deletes, volumes no machine owns, DHCP host entries no machine reserves, stale journal rows and
    /// temporary files left by dead processes. It prints the plan and carries it out after a confirmation
    /// (--yes off a terminal). It never touches anything creature did not make with this state directory,
    /// nor a machine another command is creating or deleting right now.
    Repair(RepairArgs),
    /// Write completions, man pages and docs generated from the code.
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args, Clone)]
pub struct MachineArg {
    /// Machine name.
    #[arg(value_name = "MACHINE", add = ArgValueCandidates::new(complete::machines))]
    pub name: String,
}

/// The machines a verb acts on: names, or every machine that matches the
/// filters (`--all` for no filter). Shared by the lifecycle verbs and `list`.
#[derive(Debug, Args, Clone, Default)]
pub struct Selection {
    /// Machine names.
    #[arg(value_name = "MACHINE", add = ArgValueCandidates::new(complete::machines),
          required_unless_present_any = ["all", "state", "backend", "template", "network"],
          conflicts_with_all = ["all", "state", "backend", "template", "network"])]
    pub names: Vec<String>,

    /// Every machine of this state directory on the host that the verb applies to
    /// (start: those not running, stop: those running, ...), narrowed by the filters.
    #[arg(long)]
    pub all: bool,

    #[command(flatten)]
    pub filter: Filter,

    /// Machines worked on at once when several are selected.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = whole::<u16>(1, 256))]
    pub parallel: u16,
}

/// Filters shared by `list` and the verbs that take several machines.
#[derive(Debug, Args, Clone, Default)]
pub struct Filter {
    /// Only machines in this state (running, paused, shut-off, saved, crashed, ...); repeatable.
    #[arg(long, value_name = "STATE", value_parser = state_parser())]
    pub state: Vec<crate::backend::PowerState>,

    /// Only machines of this backend.
    #[arg(long, value_parser = backend_parser())]
    pub backend: Option<Backend>,

    /// Only machines created from this template.
    #[arg(long, value_name = "TEMPLATE",
          add = ArgValueCandidates::new(complete::templates))]
    pub template: Option<String>,

    /// Only machines with a NIC on this network.
    #[arg(long, value_name = "NETWORK",
          add = ArgValueCandidates::new(complete::networks))]
    pub network: Option<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
            && self.backend.is_none()
            && self.template.is_none()
            && self.network.is_none()
    }
}

/// A power state by name; the names come from `PowerState::ALL`.
fn state_parser() -> impl clap::builder::TypedValueParser<Value = crate::backend::PowerState> {
    use crate::backend::PowerState;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(PowerState::ALL.map(PowerState::as_str))
        .map(|s| PowerState::parse(&s).expect("one of the possible values"))
}

#[derive(Debug, Args, Clone)]
pub struct CreateArgs {
    /// Name of the new machine (asked on a terminal when missing).
    #[arg(value_name = "MACHINE")]
    pub name: Option<String>,

    /// Template to create from (asked on a terminal when missing).
    #[arg(long, short = 't', value_name = "TEMPLATE", add = ArgValueCandidates::new(complete::templates))]
    pub template: Option<String>,

    /// Extra directory searched for templates before the standard ones.
    #[arg(long, value_name = "DIR")]
    pub template_dir: Option<PathBuf>,

    /// Override a template key, e.g. --set cpus=2 --set nic.0.network=lan.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Number of vCPUs (overrides the template).
    #[arg(long, value_name = "N", value_parser = whole::<u32>(1, 4096))]
    pub cpus: Option<u32>,

    /// Memory, e.g. 512MiB or 2GiB (overrides the template).
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// Network of the first NIC (overrides the template).
    #[arg(long, value_name = "NETWORK", add = ArgValueCandidates::new(complete::networks))]
    pub network: Option<String>,

    /// Fixed MAC address of the first NIC.
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,

    /// Fixed IP address of the first NIC.
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,

    /// Put a host file into the VM at first boot, through its config drive
    /// (cloud-init write_files); MODE is octal, default the host file's.
    #[arg(long, value_name = "SRC:DEST[:MODE]")]
    pub inject_file: Vec<crate::seed::InjectArg>,

    /// A user-data file (cloud-config, a script, MIME multipart) given to
    /// cloud-init whole, instead of the one made from the template.
    #[arg(long, value_name = "FILE")]
    pub user_data: Option<PathBuf>,

    /// Authorize the public keys of FILE (an authorized_keys file) for the
    /// image's default user. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Vec<PathBuf>,

    /// Boot an installer image (ISO 9660) from a read-only cdrom: a file,
    /// or an image in the cache. The disk boots first once it holds a
    /// system; the machine gets a VNC display unless the template says.
    #[arg(long, value_name = "FILE|IMAGE", value_hint = clap::ValueHint::FilePath)]
    pub iso: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct WaitArgs {
    /// What to wait for after starting: none, running, lease (the machine
    /// holds its DHCP lease) or tcp:PORT (a port of its reserved IP answers).
    #[arg(long, value_name = "WAIT", default_value = "running", value_parser = parse_wait,
          add = ArgValueCandidates::new(complete::waits))]
    pub wait: Wait,

    /// Seconds to wait before giving up (exit 7).
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = whole::<u64>(0, MAX_SECONDS))]
    pub wait_timeout: u64,
}

/// A network mode by name; the names come from `NetMode::ALL`.
fn mode_parser() -> impl clap::builder::TypedValueParser<Value = NetMode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(NetMode::ALL.map(NetMode::as_str))
        .map(|s| s.parse().expect("one of the possible values"))
}

/// A whole number in a range, refused in words (`must be a whole number
/// from 1 to 256, got "lots"`) rather than the parser's.
fn whole<T>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    move |s: &str| {
        s.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| format!("must be a whole number from {min} to {max}, got {s:?}"))
    }
}

/// Seconds a timeout may be: up to a day.
const MAX_SECONDS: u64 = 86_400;

pub use crate::since::Since;

fn parse_since(s: &str) -> Result<Since, String> {
    crate::since::parse(s, crate::time::unix_now())
}

fn parse_wait(s: &str) -> Result<Wait, String> {
    s.parse().map_err(|e: crate::Error| e.message().to_string())
}

/// A backend by name; the names come from `Backend::ALL`.
fn backend_parser() -> impl clap::builder::TypedValueParser<Value = Backend> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Backend::ALL.map(Backend::as_str))
        .map(|s| Backend::parse(&s).expect("one of the possible values"))
}

#[derive(Debug, Args, Clone)]
pub struct LaunchArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args, Clone)]
pub struct StartArgs {
    #[command(flatten)]
    pub machines: Selection,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, Args, Clone)]
pub struct StopArgs {
    #[command(flatten)]
    pub machines: Selection,

    /// Seconds to wait for a graceful shutdown. The request (ACPI power
    /// button, or the container's halt signal) is repeated every 5 s, so a
    /// machine that was still booting when it came is not missed.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = whole::<u64>(0, MAX_SECONDS))]
    pub timeout: u64,

    /// Power off when the graceful shutdown times out (--timeout 0: at once).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub machines: Selection,

    /// Stop a running machine first (power off).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: Filter,
}

/// How a command inside a machine is run: shared by `exec` and `shell`.
#[derive(Debug, Args, Clone)]
pub struct ExecOpts {
    /// Set an environment variable for the command (repeatable).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Run as this user of the machine: a name from its /etc/passwd, or UID[:GID].
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,

    /// Working directory inside the machine.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,

    /// Allocate a terminal even when stdin or stdout is not one.
    #[arg(long, short = 't', conflicts_with = "no_tty")]
    pub tty: bool,

    /// Never allocate a terminal (default: one when stdin and stdout are terminals).
    #[arg(long, short = 'T')]
    pub no_tty: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ExecArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    #[command(flatten)]
    pub opts: ExecOpts,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ShellArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    #[command(flatten)]
    pub opts: ExecOpts,
}

#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    /// Keep printing as the log grows.
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// Print only what the machine logged since WHEN: `start` (its last start by
    /// creature), or a time: `2026-12-04 09:30` (local), RFC 3339 with a zone,
    /// `today`, `yesterday`, `10m`, `2h`, `1d` (ago). A time needs a log with
    /// timestamps: xen machines' (xenconsoled); kvm and qemu serial logs have none.
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<Since>,

    /// Print only the last N lines (then follow, with --follow).
    #[arg(long = "lines", short = 'n', value_name = "N", value_parser = whole::<u64>(0, u32::MAX.into()))]
    pub lines: Option<u64>,
}

#[derive(Debug, Args, Clone)]
pub struct DisplayArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    /// The protocol asked for (default: the machine's own).
    #[arg(long, value_enum)]
    pub protocol: Option<DisplayProtocol>,

    /// Print the display's password too.
    #[arg(long)]
    pub show_password: bool,

    /// Save the guest's screen to FILE as PNG (mode 0600).
    #[arg(long, value_name = "FILE")]
    pub screenshot: Option<PathBuf>,

    /// Give the display a new password: live (clients connected stay) and
    /// from the next start. Printed only with --show-password.
    #[arg(long)]
    pub set_password: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisplayProtocol {
    Vnc,
    Spice,
    Rdp,
}

#[derive(Debug, Subcommand, Clone)]
pub enum SnapshotCommand {
    /// Take a snapshot of a machine's disks, live when it runs.
    ///
    /// Each disk creature made for the machine is frozen as it is now, and the machine
    /// writes to a new qcow2 overlay from then on (libvirt's external snapshots). With
    /// --memory the running machine's memory is saved too, so a revert resumes it where
    /// it was instead of booting it.
    Create {
        #[command(flatten)]
        machine: MachineArg,
        /// Snapshot name (default: snap-YYYYMMDD-HHMMSS).
        #[arg(value_name = "SNAPSHOT")]
        snapshot: Option<String>,
        /// Save the running machine's memory with its disks.
        #[arg(long)]
        memory: bool,
    },
    /// List a machine's snapshots as a tree, with their sizes and dates.
    #[command(visible_alias = "ls")]
    List {
        #[command(flatten)]
        machine: MachineArg,
    },
    /// Put a machine back to a snapshot: what its disks held then (and its memory, if saved).
    ///
    /// What the machine wrote since its last snapshot is lost (asked first; --yes
    /// to confirm off a terminal). A running machine is powered off, reverted and
    /// started again; a snapshot with memory resumes where it was taken.
    Revert {
        #[command(flatten)]
        machine: MachineArg,
        #[arg(value_name = "SNAPSHOT", add = ArgValueCandidates::new(complete::snapshots))]
        snapshot: String,
    },
    /// Delete a snapshot; its data is merged into what depends on it, nothing is lost.
    #[command(visible_alias = "rm")]
    Delete {
        #[command(flatten)]
        machine: MachineArg,
        #[arg(value_name = "SNAPSHOT", add = ArgValueCandidates::new(complete::snapshots))]
        snapshot: String,
    },
    /// Make an image of the cache from a machine's disk (flattened; consistent while it runs).
    Export {
        #[command(flatten)]
        machine: MachineArg,
        /// Name of the new image.
        #[arg(long, value_name = "NAME")]
        image: String,
        /// The disk to export (guest device name; default: the first).
        #[arg(long, value_name = "DEV")]
        disk: Option<String>,
    },
}

impl SnapshotCommand {
    pub fn machine(&self) -> &str {
        match self {
            SnapshotCommand::Create { machine, .. }
            | SnapshotCommand::List { machine }
            | SnapshotCommand::Revert { machine, .. }
            | SnapshotCommand::Delete { machine, .. }
            | SnapshotCommand::Export { machine, .. } => &machine.name,
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct ResizeArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    /// New number of vCPUs (live up to the machine's max_cpus).
    #[arg(long, value_name = "N", value_parser = whole::<u32>(1, 4096))]
    pub cpus: Option<u32>,

    /// New memory, e.g. 2GiB (live up to the machine's max_memory).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,

    /// Grow a disk: SIZE for the first disk, or DEV=SIZE (vdb=20GiB); disks only grow.
    #[arg(long, value_name = "[DEV=]SIZE", value_parser = parse_disk_size)]
    pub disk: Vec<(Option<String>, u64)>,
}

impl ResizeArgs {
    pub fn request(&self) -> crate::resize::Request {
        crate::resize::Request {
            cpus: self.cpus,
            memory: self.memory,
            disks: self.disk.clone(),
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    s.parse::<crate::size::Size>()
        .map(|z| z.0)
        .map_err(|e| format!("must be a size such as 512MiB or 2GiB, got {s:?} ({e})"))
}

fn parse_disk_size(s: &str) -> Result<(Option<String>, u64), String> {
    match s.split_once('=') {
        Some((dev, size)) if !dev.is_empty() && dev.chars().all(|c| c.is_ascii_alphanumeric()) => {
            Ok((Some(dev.to_string()), parse_size(size)?))
        }
        Some((dev, _)) => Err(format!(
            "the disk must be a device name such as vdb, got {dev:?}"
        )),
        None => Ok((None, parse_size(s)?)),
    }
}

#[derive(Debug, Args, Clone)]
pub struct RescueArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    /// Cached image to boot from, with files vmlinuz and initrd.img (default: the
    /// template's `rescue` key, else the image named rescue).
    #[arg(long, value_name = "IMAGE", add = ArgValueCandidates::new(complete::images))]
    pub image: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    /// Destination host (`creature host list`).
    #[arg(long, value_name = "HOST", add = ArgValueCandidates::new(complete::hosts))]
    pub to: String,

    /// Move a shut-off machine's definition and disks (a running one migrates live).
    #[arg(long)]
    pub offline: bool,

    /// Copy the disks even where creature would not (it copies them whenever the
    /// destination does not see the source's disk pool).
    #[arg(long)]
    pub copy_storage: bool,

    /// Longest pause of the guest at the switch-over, in milliseconds.
    #[arg(long, value_name = "MS", value_parser = whole::<u64>(1, 60_000))]
    pub max_downtime: Option<u64>,

    /// Bandwidth limit of the migration, in MiB/s.
    #[arg(long, value_name = "MIB_PER_S", value_parser = whole::<u64>(1, 1_000_000))]
    pub bandwidth: Option<u64>,
}

#[derive(Debug, Args, Clone)]
pub struct EvacuateArgs {
    /// Host that is down, whose VMs are rebuilt elsewhere.
    #[arg(value_name = "HOST", add = ArgValueCandidates::new(complete::hosts))]
    pub from: String,

    /// Destination host.
    #[arg(long, value_name = "HOST", add = ArgValueCandidates::new(complete::hosts))]
    pub to: String,

    /// Rebuild even though the host answers (its old copies must then never
    /// start again; `creature repair` removes them).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone)]
pub struct SetPasswordArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    /// Account whose password is set.
    #[arg(long, default_value = "root")]
    pub user: String,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigDriveArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    /// The guest's host name.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Authorize the keys of FILE for the default user instead of those it has now. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Vec<PathBuf>,

    /// A user-data file used whole from now on.
    #[arg(long, value_name = "FILE", conflicts_with = "no_user_data")]
    pub user_data: Option<PathBuf>,

    /// Go back to the user-data made from the machine's settings.
    #[arg(long)]
    pub no_user_data: bool,
}

#[derive(Debug, Args, Clone)]
pub struct LimitsArgs {
    #[command(flatten)]
    pub machine: MachineArg,

    /// Only this disk (its guest device name, e.g. vda); default: every disk.
    #[arg(long, value_name = "DEV")]
    pub disk: Option<String>,

    /// Bytes per second read and written together, e.g. 10MiB (0: no limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_rate)]
    pub total_bps: Option<u64>,

    /// Bytes per second read (0: no limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_rate)]
    pub read_bps: Option<u64>,

    /// Bytes per second written (0: no limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_rate)]
    pub write_bps: Option<u64>,

    /// Operations per second, reads and writes together (0: no limit).
    #[arg(long, value_name = "N", value_parser = whole::<u64>(0, 1 << 40))]
    pub total_iops: Option<u64>,

    /// Read operations per second (0: no limit).
    #[arg(long, value_name = "N", value_parser = whole::<u64>(0, 1 << 40))]
    pub read_iops: Option<u64>,

    /// Write operations per second (0: no limit).
    #[arg(long, value_name = "N", value_parser = whole::<u64>(0, 1 << 40))]
    pub write_iops: Option<u64>,
}

impl LimitsArgs {
    pub fn limits(&self) -> crate::iotune::Limits {
        crate::iotune::Limits {
            total_bytes_sec: self.total_bps,
            read_bytes_sec: self.read_bps,
            write_bytes_sec: self.write_bps,
            total_iops_sec: self.total_iops,
            read_iops_sec: self.read_iops,
            write_iops_sec: self.write_iops,
        }
    }
}

/// A byte rate: 0, or a size with a unit (10MiB).
fn parse_rate(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    s.parse::<crate::size::Size>()
        .map(|z| z.0)
        .map_err(|e| format!("must be 0 or a size such as 10MiB, got {s:?} ({e})"))
}

#[derive(Debug, Subcommand)]
pub enum SecgroupCommand {
    /// Create a group; it starts with one rule, all outbound traffic.
    Create {
        #[arg(value_name = "GROUP")]
        group: String,
        /// One line saying what the group is for.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List the groups, their rule counts and their machines.
    #[command(visible_alias = "ls")]
    List,
    /// Show a group's rules and the machines in it.
    Show {
        #[arg(value_name = "GROUP", add = ArgValueCandidates::new(complete::secgroups))]
        group: String,
    },
    /// Delete a group no machine is in and no other group's rule names.
    #[command(visible_alias = "rm")]
    Delete {
        #[arg(value_name = "GROUP", add = ArgValueCandidates::new(complete::secgroups))]
        group: String,
    },
    /// Add or remove a group's rules.
    #[command(subcommand)]
    Rule(SecgroupRuleCommand),
    /// Put a machine in a group: live, on every NIC.
    Attach {
        #[command(flatten)]
        machine: MachineArg,
        #[arg(value_name = "GROUP", add = ArgValueCandidates::new(complete::secgroups))]
        group: String,
    },
    /// Take a machine out of a group: live, on every NIC.
    Detach {
        #[command(flatten)]
        machine: MachineArg,
        #[arg(value_name = "GROUP", add = ArgValueCandidates::new(complete::secgroups))]
        group: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecgroupRuleCommand {
    /// Allow some traffic for the group's machines (live).
    Add(RuleArgs),
    /// Remove a rule, given as it was added (live).
    #[command(visible_alias = "rm")]
    Remove(RuleArgs),
}

#[derive(Debug, Args)]
pub struct RuleArgs {
    #[arg(value_name = "GROUP", add = ArgValueCandidates::new(complete::secgroups))]
    pub group: String,
    /// in: traffic to the machines; out: traffic from them.
    #[arg(long, value_enum)]
    pub direction: crate::secgroup::Direction,
    /// The protocol; any is every IPv4 protocol.
    #[arg(long, value_enum)]
    pub proto: crate::secgroup::Proto,
    /// Destination port or range N-M (tcp and udp): the machine's port inbound,
    /// the service's outbound.
    #[arg(long, value_name = "N[-M]")]
    pub port: Option<String>,
    /// The other end, an IPv4 CIDR block (default 0.0.0.0/0: anywhere).
    #[arg(long, value_name = "CIDR", conflicts_with = "remote_group")]
    pub remote: Option<String>,
    /// The other end: the machines in this group, by their reserved addresses.
    #[arg(long, value_name = "GROUP", add = ArgValueCandidates::new(complete::secgroups))]
    pub remote_group: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create an empty block volume in a storage pool (creature's own by default), or
    /// register a remote iSCSI LUN (--iscsi).
    ///
    /// An iSCSI LUN is reached through libvirt's userspace initiator (an iscsi-direct
    /// pool: no kernel initiator needed). With CHAP, the secret is read from a file
    /// (not readable by everyone) and kept only in libvirt's private secret store:
    /// never on a command line, in a child's arguments, in creature's state or output.
    Create {
        /// Volume name.
        volume: String,
        /// Size, e.g. 10GiB.
        #[arg(long, value_name = "SIZE", value_parser = parse_size, required_unless_present_any = ["iscsi", "fc_wwnn"], conflicts_with = "iscsi")]
        size: Option<u64>,
        /// iSCSI portal of a remote LUN: HOST or HOST:PORT.
        #[arg(long, value_name = "PORTAL", requires_all = ["iqn", "lun"], conflicts_with = "fc_wwnn")]
        iscsi: Option<String>,
        /// Fibre Channel: the WWNN of the NPIV vHBA libvirt makes (16 hex digits).
        #[arg(long, value_name = "WWNN", requires_all = ["fc_wwpn", "lun"], conflicts_with = "size")]
        fc_wwnn: Option<String>,
        /// Fibre Channel: the vHBA's WWPN.
        #[arg(long, value_name = "WWPN", requires = "fc_wwnn")]
        fc_wwpn: Option<String>,
        /// Fibre Channel: the parent HBA (scsi_hostN; default: one libvirt finds capable).
        #[arg(long, value_name = "HOST", requires = "fc_wwnn")]
        fc_parent: Option<String>,
        /// The target's iSCSI qualified name (with --iscsi).
        #[arg(long, value_name = "IQN", requires = "iscsi")]
        iqn: Option<String>,
        /// The LUN (with --iscsi or --fc-wwnn).
        #[arg(long, value_name = "N", value_parser = whole::<u32>(0, 16383))]
        lun: Option<u32>,
        /// CHAP user name (with --iscsi).
        #[arg(long, value_name = "USER", requires_all = ["iscsi", "chap_secret_file"])]
        chap_user: Option<String>,
        /// File holding the CHAP secret (with --chap-user); not readable by everyone.
        #[arg(long, value_name = "FILE", requires = "chap_user")]
        chap_secret_file: Option<std::path::PathBuf>,
        /// A libvirt storage pool by name (default: creature's directory pool).
        #[arg(long, value_name = "POOL")]
        pool: Option<String>,
        /// Disk format (`--format` is the output format of every verb); default qcow2, raw on
        /// a Xen host (its disks are raw files).
        #[arg(long = "disk-format", value_enum)]
        disk_format: Option<VolumeFormat>,
    },
    /// List block volumes and the machines they are attached to.
    #[command(visible_alias = "ls")]
    List,
    /// Show one block volume.
    Info {
        #[arg(value_name = "VOLUME", add = ArgValueCandidates::new(complete::volumes))]
        volume: String,
    },
    /// Delete a block volume that no machine uses (asks first; --yes off a terminal).
    #[command(visible_alias = "rm")]
    Delete {
        #[arg(value_name = "VOLUME", add = ArgValueCandidates::new(complete::volumes))]
        volume: String,
    },
    /// Attach a volume to a machine: live when it runs, and persistent.
    Attach {
        #[command(flatten)]
        machine: MachineArg,
        #[arg(value_name = "VOLUME", add = ArgValueCandidates::new(complete::volumes))]
        volume: String,
        /// Guest device name (default: the next free vdX).
        #[arg(long, value_name = "DEV")]
        target: Option<String>,
        /// The guest may only read it.
        #[arg(long)]
        readonly: bool,
        /// Allow it on several machines at once (raw volumes only; the guests must
        /// share it safely, e.g. with a cluster filesystem).
        #[arg(long)]
        shareable: bool,
    },
    /// Detach a volume from a machine: live (the guest lets go of it) and persistent.
    Detach {
        #[command(flatten)]
        machine: MachineArg,
        #[arg(value_name = "VOLUME", add = ArgValueCandidates::new(complete::volumes))]
        volume: String,
    },
    /// Replace an attached volume with another of the same size, its data copied.
    ///
    /// A running VM keeps running: libvirt copies the disk block for block and
    /// switches the guest over (block copy and pivot). A stopped machine's data is
    /// copied with qemu-img, or, on another host, as raw bytes through its libvirt.
    /// Xen machines and containers swap only while stopped (libxl has no block
    /// copy; a container has the volume mounted). The old volume is detached and
    /// kept.
    Swap {
        #[command(flatten)]
        machine: MachineArg,
        old: String,
        new: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VolumeFormat {
    Qcow2,
    Raw,
}

impl VolumeFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeFormat::Qcow2 => "qcow2",
            VolumeFormat::Raw => "raw",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum NetCommand {
    /// Create a network: a bridge with DHCP (libvirt network driver).
    Create(NetCreateArgs),
    /// List networks.
    List,
    /// Show a network.
    Info(NetworkArg),
    /// Start a network.
    Start(NetworkArg),
    /// Stop a network.
    Stop(NetworkArg),
    /// Delete a network no machine uses.
    Delete(NetworkArg),
    /// Show reservations beside the DHCP server's actual leases.
    Leases(NetworkArg),
}

#[derive(Debug, Args, Clone)]
pub struct NetworkArg {
    /// Network name.
    #[arg(value_name = "NETWORK", add = ArgValueCandidates::new(complete::networks))]
    pub name: String,
}

#[derive(Debug, Args, Clone)]
pub struct NetCreateArgs {
    /// Network name.
    #[arg(value_name = "NETWORK")]
    pub name: String,

    /// IPv4 subnet in CIDR form, or `auto` for a free /24 in 10.0.0.0/8.
    #[arg(long, value_name = "CIDR|auto", default_value = "auto")]
    pub subnet: String,

    /// How the network reaches the outside: nat, route, isolated, or bridge
    /// (flat, on an existing host bridge).
    #[arg(long, value_parser = mode_parser(), default_value = "nat")]
    pub mode: NetMode,

    /// DHCP range as FIRST-LAST (default: the upper half of the subnet).
    #[arg(long, value_name = "FIRST-LAST")]
    pub dhcp_range: Option<String>,

    /// Bridge interface name (at most 15 characters).
    #[arg(long, value_name = "IFNAME")]
    pub bridge: Option<String>,

    /// VLAN tag: the network's bridge gets an uplink that is an access port
    /// of this VLAN on an Open vSwitch bridge (the trunk), so its frames
    /// leave on the trunk tagged. On a Xen host, with --mode bridge --bridge
    /// OVSBRIDGE: the machines are ports of this VLAN on that Open vSwitch
    /// bridge of dom0's, tagged by libvirt (no DHCP or filters of creature's).
    #[arg(long, value_name = "ID", value_parser = whole::<u16>(1, 4094))]
    pub vlan: Option<u16>,

    /// The Open vSwitch bridge carrying the VLAN (made, in userspace if the
    /// kernel has no Open vSwitch module, when it does not exist).
    #[arg(long, value_name = "OVSBRIDGE", requires = "vlan", default_value = crate::net::vlan::DEFAULT_TRUNK)]
    pub trunk: String,

    /// No anti-spoofing filter on the VM NICs of this network (for routers
    /// and bridges that send for others); default: every VM NIC is held to
    /// its own MAC and reserved IP.
    #[arg(long)]
    pub no_antispoof: bool,

    /// No DHCP server on the network: machines' addresses are still
    /// reserved from the range and reach VMs through the config drive's
    /// network configuration (cloud-init).
    #[arg(long)]
    pub no_dhcp: bool,

    /// Start the network at host boot.
    #[arg(long)]
    pub autostart: bool,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List templates on the search path.
    List {
        #[arg(long, value_name = "DIR")]
        template_dir: Option<PathBuf>,
    },
    /// Show a template.
    Show {
        #[arg(value_name = "TEMPLATE", add = ArgValueCandidates::new(complete::templates))]
        name: String,
        /// Show the result of extends, variables and --set.
        #[arg(long)]
        resolved: bool,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        #[arg(long, value_name = "DIR")]
        template_dir: Option<PathBuf>,
    },
    /// Check a template file.
    Validate {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Write a new template that extends another (into /etc/creature/templates).
    New {
        #[arg(value_name = "TEMPLATE")]
        name: String,
        /// Template to extend.
        #[arg(long, value_name = "TEMPLATE", add = ArgValueCandidates::new(complete::templates))]
        from: String,
        /// Directory to write it into instead.
        #[arg(long, value_name = "DIR")]
        template_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Download an image into the cache, checking its checksum.
    ///
    /// SOURCE is a URL (then --sha256 or --sha512 is required) or the name of
    /// a template whose disks come from URLs (e.g. debian-12).
    Pull {
        #[arg(value_name = "URL|TEMPLATE")]
        source: String,
        /// Expected SHA-256 of the download.
        #[arg(long, value_name = "HEX", conflicts_with = "sha512")]
        sha256: Option<String>,
        /// Expected SHA-512 of the download.
        #[arg(long, value_name = "HEX")]
        sha512: Option<String>,
        /// Name of the image in the cache (default: the template's name, or the
        /// URL's file name without extension).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// What the file is; without it qemu-img probes it. A file named raw is never probed as
        /// another format.
        #[arg(long, value_name = "FORMAT", value_parser = ["raw", "qcow2"])]
        image_format: Option<String>,
    },
    /// Copy local files into the cache.
    Import {
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// What the files are; without it qemu-img probes them. A file named raw is never probed
        /// as another format.
        #[arg(long, value_name = "FORMAT", value_parser = ["raw", "qcow2"])]
        image_format: Option<String>,
    },
    /// List cached images.
    List,
    /// Remove an image no machine uses.
    Rm {
        #[arg(value_name = "IMAGE", add = ArgValueCandidates::new(complete::images))]
        image: String,
    },
    /// Remove every cached image and root filesystem cache nothing needs.
    ///
    /// An image stays while a machine's record names it or any disk, volume or rescue overlay
    /// still has one of its files as qcow2 backing file; a debootstrap root filesystem cache
    /// stays while a container's overlay root has it as lower layer, or a create is using it.
    /// Prints what it removes and what it keeps, and the space freed; asks first (--yes off a
    /// terminal).
    Prune {
        /// Print the plan and remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AutostartCommand {
    /// Start this machine at host boot.
    Enable(AutostartSettings),
    /// Do not start this machine at host boot.
    Disable(MachineArg),
    /// Start every autostart machine, in priority batches (host boot).
    Run(AutostartRunArgs),
    /// Print the systemd unit with a stop timeout computed from the plan.
    Unit,
    /// Show the autostart settings of a machine.
    Show(MachineArg),
}

#[derive(Debug, Args, Clone)]
pub struct AutostartSettings {
    #[command(flatten)]
    pub machine: MachineArg,
    /// Higher starts earlier and stops later.
    #[arg(long)]
    pub priority: Option<i32>,
    /// Seconds to wait after starting this machine.
    #[arg(long, value_name = "SECONDS", value_parser = whole::<u64>(0, MAX_SECONDS))]
    pub delay: Option<u64>,
    /// What the next batch waits for: none, running, lease or tcp:PORT.
    #[arg(long, value_name = "WAIT")]
    pub wait: Option<String>,
    #[arg(long, value_name = "SECONDS", value_parser = whole::<u64>(0, MAX_SECONDS))]
    pub wait_timeout: Option<u64>,
    #[arg(long, value_name = "SECONDS", value_parser = whole::<u64>(0, MAX_SECONDS))]
    pub stop_timeout: Option<u64>,
    /// shutdown, suspend or force.
    #[arg(long, value_name = "ACTION")]
    pub stop_action: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct AutostartRunArgs {
    /// Print the plan without starting anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Machines started at once within a batch (default: the host's CPUs).
    #[arg(long, value_name = "N", value_parser = whole::<usize>(1, 1024))]
    pub concurrency: Option<usize>,
    /// Start exactly the machines autostop found running since the last autostart run.
    #[arg(long)]
    pub restore_last_state: bool,
}

#[derive(Debug, Subcommand)]
pub enum AutostopCommand {
    /// Stop every running machine, in reverse priority batches (host shutdown).
    Run {
        /// Print the plan without stopping anything.
        #[arg(long)]
        dry_run: bool,
        /// Seconds the whole run may take; what is still running then is
        /// powered off (default: the plan's worst case).
        #[arg(long, value_name = "SECONDS", value_parser = whole::<u64>(1, MAX_SECONDS))]
        budget: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Host facts and whether each backend is usable here; with NAME, what libvirt
    /// on that host says of it.
    Info {
        #[arg(value_name = "NAME", add = ArgValueCandidates::new(complete::hosts))]
        name: Option<String>,
    },
    /// Name another libvirt host (qemu+ssh://root@b/system, qemu+tcp://10.0.0.2/system),
    /// for `--host NAME` on every machine and network verb.
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "URI")]
        uri: String,
    },
    /// Every host: its URI, whether it answers now, its machines (asked in parallel).
    #[command(visible_alias = "ls")]
    List,
    /// Forget a host creature has no machine or network on.
    #[command(visible_alias = "rm")]
    Remove {
        #[arg(value_name = "NAME", add = ArgValueCandidates::new(complete::hosts))]
        name: String,
    },
    /// Put the host in maintenance mode.
    Maintenance,
    /// Take no new machines on a host (create, migrate and evacuate to it are
    /// refused); its machines keep running.
    Disable {
        #[arg(value_name = "NAME", add = ArgValueCandidates::new(complete::hosts))]
        name: String,
        /// Said to whoever tries to place a machine there, and in `host list`.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Let a disabled host take new machines again.
    Enable {
        #[arg(value_name = "NAME", add = ArgValueCandidates::new(complete::hosts))]
        name: String,
    },
}

#[derive(Debug, Args, Clone)]
pub struct RepairArgs {
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct MatrixArgs {
    /// Only this backend.
    #[arg(long, value_parser = backend_parser())]
    pub backend: Option<Backend>,

    /// Only this feature (its id, e.g. suspend, or its row number).
    #[arg(long, value_name = "FEATURE", add = ArgValueCandidates::new(complete::features))]
    pub feature: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct GenerateArgs {
    /// Directory to write completions/, man/ and docs/ into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// The command line with what the support matrix says about each verb:
/// one source for `--help`, completions and man pages.
pub fn command() -> clap::Command {
    annotate(<Cli as clap::CommandFactory>::command())
}

/// Parse the process's arguments against `command()` (exits on usage errors).
pub fn parse() -> Cli {
    use clap::FromArgMatches;
    Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit())
}

/// Where an operation lives on the command line, from its word: the verb
/// path, then the option (with its value) it is, if it is one.
fn location(
    op: Op,
) -> (
    Vec<&'static str>,
    Option<(&'static str, Option<&'static str>)>,
) {
    let mut words = op.word().split(' ');
    let mut path = Vec::new();
    let mut option = None;
    while let Some(w) = words.next() {
        match w.strip_prefix("--") {
            Some(arg) => {
                option = Some((arg, words.next()));
                break;
            }
            None => path.push(w),
        }
    }
    (path, option)
}

/// Append the matrix's word to every verb, option and value it governs.
fn annotate(mut cmd: clap::Command) -> clap::Command {
    use std::collections::BTreeMap;
    let order: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    // Notes by verb path; display's protocols share the verb, so each
    // protocol's note is named.
    let mut verbs: BTreeMap<Vec<&str>, Vec<(Op, String)>> = BTreeMap::new();
    for op in Op::ALL {
        let Some(note) = crate::op::help_note(op.feature()) else {
            continue;
        };
        let (path, option) = location(*op);
        match option {
            None => verbs.entry(path).or_default().push((*op, note)),
            Some((arg, value)) => {
                let label = value.map(|v| format!("{v}: ")).unwrap_or_default();
                // Options of `create` hold for `launch` too.
                let paths = if path.is_empty() {
                    vec![vec!["create"], vec!["launch"]]
                } else {
                    vec![path]
                };
                for p in paths {
                    cmd = edit(cmd, &p, &mut |c: clap::Command| {
                        let id = c
                            .get_arguments()
                            .find(|a| a.get_long() == Some(arg))
                            .map(|a| a.get_id().clone());
                        match id {
                            Some(id) => c.mut_arg(id, |a| {
                                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                                a.help(format!("{help} [{label}{note}]"))
                            }),
                            None => c,
                        }
                    });
                }
            }
        }
    }
    let unavailable = unavailable_verbs(&cmd);
    for (path, notes) in verbs {
        let tag = if notes.iter().all(|(o, _)| o.refused_everywhere()) {
            if notes
                .iter()
                .all(|(o, _)| crate::matrix::missing_everywhere(o.feature()))
            {
                " [refused: Nova marks it missing everywhere]"
            } else {
                " [not implemented yet]"
            }
        } else {
            ""
        };
        let text = if notes.len() == 1 {
            notes[0].1.clone()
        } else {
            notes
                .iter()
                .map(|(o, n)| format!("{}: {n}", o.feature().id()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        cmd = edit(cmd, &path, &mut |c: clap::Command| {
            let about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
            let long = c
                .get_long_about()
                .map(|a| a.to_string())
                .unwrap_or_else(|| about.clone());
            c.about(format!("{about}{tag}"))
                .long_about(format!("{long}\n\nSupport matrix: {text}"))
        });
    }
    let template = help_template(&cmd, &order, &unavailable);
    cmd.help_template(template)
}

/// Top-level verbs every operation of which no backend allows today: a
/// verb with operations all refused, or a group all of whose verbs are.
fn unavailable_verbs(cmd: &clap::Command) -> std::collections::BTreeSet<String> {
    let refused = |path: &[&str]| {
        let ops: Vec<&Op> = Op::ALL
            .iter()
            .filter(|o| {
                let (p, option) = location(**o);
                option.is_none() && p == path
            })
            .collect();
        !ops.is_empty() && ops.iter().all(|o| o.refused_everywhere())
    };
    cmd.get_subcommands()
        .filter(|c| {
            let top = c.get_name();
            if c.has_subcommands() {
                c.get_subcommands().all(|s| refused(&[top, s.get_name()]))
            } else {
                refused(&[top])
            }
        })
        .map(|c| c.get_name().to_string())
        .collect()
}

/// The top-level help: the verbs that work somewhere, then those no backend
/// allows today under their own heading, so `--help` never promises what
/// the matrix refuses.
fn help_template(
    cmd: &clap::Command,
    order: &[String],
    unavailable: &std::collections::BTreeSet<String>,
) -> String {
    // Editing a subcommand moves it to the end: list them as declared.
    let mut subs: Vec<&clap::Command> =
        cmd.get_subcommands().filter(|c| !c.is_hide_set()).collect();
    subs.sort_by_key(|c| order.iter().position(|n| n == c.get_name()));
    let width = subs.iter().map(|c| c.get_name().len()).max().unwrap_or(0);
    let line = |c: &clap::Command, strip_tag: bool| {
        let mut about = c.get_about().map(|a| a.to_string()).unwrap_or_default();
        if strip_tag {
            about = about.replace(" [not implemented yet]", "").replace(
                " [refused: Nova marks it missing everywhere]",
                " (Nova: missing everywhere)",
            );
        }
        let aliases: Vec<&str> = c.get_visible_aliases().collect();
        let alias = match aliases.as_slice() {
            [] => String::new(),
            [one] => format!(" [alias: {one}]"),
            many => format!(" [aliases: {}]", many.join(", ")),
        };
        format!("  {:<width$}  {about}{alias}\n", c.get_name())
    };
    let mut usable = String::new();
    let mut refused = String::new();
    for c in &subs {
        if unavailable.contains(c.get_name()) {
            refused.push_str(&line(c, true));
        } else {
            usable.push_str(&line(c, false));
        }
    }
    usable.push_str(&format!(
        "  {:<width$}  Print this message or the help of the given subcommand(s)\n",
        "help"
    ));
    format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n\
         Commands:\n{usable}\n\
         Not available on any backend yet (refused with exit 3; see `creature matrix`):\n{refused}\n\
         Options:\n{{options}}{{after-help}}"
    )
}

/// Apply `f` to the subcommand at `path` (the root when empty).
fn edit(
    cmd: clap::Command,
    path: &[&str],
    f: &mut dyn FnMut(clap::Command) -> clap::Command,
) -> clap::Command {
    match path.split_first() {
        None => f(cmd),
        // Template keys (`autostart stop_action = "suspend"`) are no verbs.
        Some((first, _)) if cmd.find_subcommand(first).is_none() => cmd,
        Some((first, rest)) => {
            let first = first.to_string();
            cmd.mut_subcommand(first, |c| edit(c, rest, f))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definitions_are_consistent() {
        super::command().debug_assert();
    }

    /// Help says what the matrix says: a verb no backend allows is tagged in
    /// the list of verbs, and its own help has the sentence.
    #[test]
    fn help_is_annotated_from_the_matrix() {
        let cmd = super::command();
        let sub = |p: &[&str]| {
            let mut c = &cmd;
            for w in p {
                c = c.find_subcommand(w).unwrap();
            }
            c.clone()
        };
        let about = |p: &[&str]| sub(p).get_about().unwrap().to_string();
        let long = |p: &[&str]| sub(p).get_long_about().unwrap().to_string();
        assert!(about(&["set-password"]).ends_with("[refused: Nova marks it missing everywhere]"));
        assert!(about(&["host", "maintenance"]).contains("missing everywhere"));
        assert!(!about(&["evacuate"]).contains('['));
        assert!(long(&["migrate"]).contains("Allowed today on: kvm, qemu."));
        assert!(long(&["evacuate"]).contains("Allowed today on: kvm, qemu."));
        assert!(
            long(&["suspend"]).contains("Allowed today on: kvm, qemu, xen."),
            "{}",
            long(&["suspend"])
        );
        assert!(long(&["display"]).contains("rdp: Refused on every backend"));
        assert!(!about(&["start"]).contains('['));
        // The top-level help groups what no backend allows under its own heading.
        let help = cmd.clone().render_help().to_string();
        let (usable, refused) = help
            .split_once("Not available on any backend yet")
            .expect("a heading for refused verbs");
        let listed = |text: &str, verb: &str| {
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{verb} ")))
        };
        for v in ["start", "exec", "list", "volume", "snapshot", "display"] {
            assert!(
                listed(usable, v) != listed(refused, v),
                "{v} in one group:\n{help}"
            );
        }
        assert!(
            listed(refused, "set-password") && !listed(usable, "set-password"),
            "{help}"
        );
        assert!(
            listed(usable, "migrate") && listed(usable, "evacuate"),
            "{help}"
        );
        assert!(listed(usable, "start") && listed(usable, "exec") && listed(usable, "help"));
        assert!(listed(usable, "display"), "{help}");
        assert!(refused.contains("Nova: missing everywhere"), "{help}");
        let inject = sub(&["create"])
            .get_arguments()
            .find(|a| a.get_long() == Some("inject-file"))
            .unwrap()
            .get_help()
            .unwrap()
            .to_string();
        assert!(
            inject.contains("[Allowed today on: kvm, qemu.]"),
            "{inject}"
        );
        let stop_action = sub(&["autostart", "enable"])
            .get_arguments()
            .find(|a| a.get_long() == Some("stop-action"))
            .unwrap()
            .get_help()
            .unwrap()
            .to_string();
        assert!(
            stop_action.contains("suspend: Allowed today on: kvm, qemu, xen."),
            "{stop_action}"
        );
    }
}
