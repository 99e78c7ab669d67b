//! The support matrix creature enforces: the OpenStack Nova hypervisor support
//! matrix cut down to creature's four backends (shared/support-matrix.md), plus
//! what creature itself implements. Every cell is decided in an exhaustive
//! `match` with no wildcard arm, so a new feature or backend does not compile
//! until each of its cells is written down.
//!
//! The effective rule: an operation runs only when the Nova cell is complete or
//! partial AND creature implements it, or when the Nova cell is unknown and a
//! real-backend test proves creature's implementation. Everything else is
//! refused with exit code 3 before any side effect.

pub mod view;

use std::fmt;

use crate::backend::Backend;

/// A Nova cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Complete,
    Partial(&'static str),
    Missing,
    Unknown,
}

impl Cell {
    pub fn word(self) -> &'static str {
        match self {
            Cell::Complete => "complete",
            Cell::Partial(_) => "partial",
            Cell::Missing => "missing",
            Cell::Unknown => "unknown",
        }
    }

    pub fn note(self) -> Option<&'static str> {
        match self {
            Cell::Partial(n) => Some(n),
            _ => None,
        }
    }
}

/// Nova's status column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Mandatory,
    Optional,
    Choice(&'static str),
    Condition(&'static str),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Mandatory => f.write_str("mandatory"),
            Status::Optional => f.write_str("optional"),
            Status::Choice(g) => write!(f, "choice({g})"),
            Status::Condition(c) => write!(f, "condition({c})"),
        }
    }
}

/// What creature has implemented for one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// Not implemented: the operation is refused.
    No,
    /// Implemented and proven by the named real-backend test.
    Yes(&'static str),
    /// kvm only (rule 5): the code path is qemu's, proven by qemu's test;
    /// this names the test that starts a real kvm machine and exercises the
    /// operation's kvm-specific part on it.
    ViaQemu(&'static str),
}

/// One value per backend, read back with an exhaustive match.
#[derive(Debug, Clone, Copy)]
pub struct PerBackend<T> {
    pub kvm: T,
    pub qemu: T,
    pub lxc: T,
    pub xen: T,
}

impl<T: Copy> PerBackend<T> {
    pub fn get(&self, b: Backend) -> T {
        match b {
            Backend::Kvm => self.kvm,
            Backend::Qemu => self.qemu,
            Backend::Lxc => self.lxc,
            Backend::Xen => self.xen,
        }
    }
}

macro_rules! features {
    ($($(#[$m:meta])* $v:ident = $n:literal, $id:literal, $title:literal;)*) => {
        /// The 40 rows of the matrix, in Nova's order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Feature { $($(#[$m])* $v,)* }

        impl Feature {
            pub const ALL: &'static [Feature] = &[$(Feature::$v,)*];

            /// Row number in shared/support-matrix.md.
            pub fn number(self) -> u8 { match self { $(Feature::$v => $n,)* } }
            /// Stable identifier used on the command line and in JSON.
            pub fn id(self) -> &'static str { match self { $(Feature::$v => $id,)* } }
            /// Nova's name for the feature.
            pub fn title(self) -> &'static str { match self { $(Feature::$v => $title,)* } }
        }
    };
}

features! {
    AttachVolume = 1, "attach-volume", "Attach block volume to instance";
    DetachVolume = 2, "detach-volume", "Detach block volume from instance";
    HostMaintenance = 3, "host-maintenance", "Set the host in a maintenance mode";
    Evacuate = 4, "evacuate", "Evacuate instances from a host";
    GuestStatus = 5, "guest-status", "Guest instance status";
    HostStatus = 6, "host-status", "Guest host status";
    LiveMigrate = 7, "live-migrate", "Live migrate instance across hosts";
    Launch = 8, "launch", "Launch instance";
    Pause = 9, "pause", "Stop instance CPUs";
    Reboot = 10, "reboot", "Reboot instance";
    Rescue = 11, "rescue", "Rescue instance";
    Resize = 12, "resize", "Resize instance";
    Restore = 13, "restore", "Restore instance";
    ServiceControl = 14, "service-control", "Service control";
    SetPassword = 15, "set-password", "Set instance admin password";
    Snapshot = 16, "snapshot", "Save snapshot of instance disk";
    Suspend = 17, "suspend", "Suspend instance";
    SwapVolume = 18, "swap-volume", "Swap block volumes";
    Shutdown = 19, "shutdown", "Shutdown instance";
    Unpause = 20, "unpause", "Resume instance CPUs";
    AutoConfigureDisk = 21, "auto-configure-disk", "Auto configure disk";
    DiskIoLimits = 22, "disk-io-limits", "Instance disk I/O limits";
    ConfigDrive = 23, "config-drive", "Config drive support";
    InjectFiles = 24, "inject-files", "Inject files into disk image";
    InjectNetworking = 25, "inject-networking", "Inject guest networking config";
    Rdp = 26, "rdp", "Remote desktop over RDP";
    SerialLog = 27, "serial-log", "View serial console logs";
    SerialConsole = 28, "serial-console", "Remote interactive serial console";
    Spice = 29, "spice", "Remote desktop over SPICE";
    Vnc = 30, "vnc", "Remote desktop over VNC";
    BlockStorage = 31, "block-storage", "Block storage support";
    BlockStorageFc = 32, "block-storage-fc", "Block storage over fibre channel";
    BlockStorageIscsi = 33, "block-storage-iscsi", "Block storage over iSCSI";
    IscsiChap = 34, "iscsi-chap", "CHAP authentication for iSCSI";
    ImageStorage = 35, "image-storage", "Image storage support";
    FirewallRules = 36, "firewall-rules", "Network firewall rules";
    NetworkRouting = 37, "network-routing", "Network routing";
    SecurityGroups = 38, "security-groups", "Network security groups";
    FlatNetworking = 39, "flat-networking", "Flat networking";
    VlanNetworking = 40, "vlan-networking", "VLAN networking";
}

const C: Cell = Cell::Complete;
const M: Cell = Cell::Missing;
const U: Cell = Cell::Unknown;

const fn row(kvm: Cell, qemu: Cell, lxc: Cell, xen: Cell) -> PerBackend<Cell> {
    PerBackend {
        kvm,
        qemu,
        lxc,
        xen,
    }
}

const NO: Impl = Impl::No;

const fn none_implemented() -> PerBackend<Impl> {
    PerBackend {
        kvm: NO,
        qemu: NO,
        lxc: NO,
        xen: NO,
    }
}

const HOST_INFO_TEST: &str = "tests/integration/real/host.rs::host_info_reports_real_backends";
const QEMU_LIFECYCLE: &str = "tests/integration/real/lifecycle.rs::qemu_machine_full_lifecycle";
const QEMU_CONSOLE: &str = "tests/integration/real/console.rs::qemu_console_types_and_reads";
const LXC_LIFECYCLE: &str =
    "tests/integration/real/containers.rs::busybox_container_full_lifecycle";
const LXC_DEBIAN: &str = "tests/integration/real/debian.rs::debian_container_from_the_rootfs_cache";
const NET_ROUTE: &str = "tests/integration/real/network.rs::routed_network";
const NET_FLAT: &str = "tests/integration/real/network.rs::flat_network_on_an_existing_bridge";
const KVM_LIFECYCLE: &str = "tests/integration/real/lifecycle.rs::kvm_machine_defined_and_started";
const QEMU_LIMITS: &str = "tests/integration/real/limits.rs::disk_io_limits_throttle_a_real_guest";
const QEMU_RESIZE: &str =
    "tests/integration/real/resize.rs::resize_a_running_guest_and_a_stopped_one";
const QEMU_RESCUE: &str = "tests/integration/real/rescue.rs::rescue_reads_the_machines_own_disk";
const QEMU_SNAPSHOT: &str = "tests/integration/real/snapshot.rs::snapshots_of_a_running_guest_revert_branch_merge_and_export";
const QEMU_VOLUMES: &str =
    "tests/integration/real/volumes.rs::volumes_hotplug_into_a_running_guest_and_keep_their_data";
const QEMU_ISCSI: &str =
    "tests/integration/real/iscsi.rs::an_iscsi_lun_with_chap_from_a_real_tgt_target";
const FC_REFUSED: &str =
    "tests/integration/volumes.rs::fc_volumes_are_golden_and_refused_without_an_hba";
const LXC_VOLUMES: &str =
    "tests/integration/real/volumes.rs::container_volumes_on_loop_devices_survive_restarts_and_swaps";
const KVM_SMOKE: &str =
    "tests/integration/real/lifecycle.rs::kvm_machine_smoke_test_of_the_shared_path";
const QEMU_CLOUD: &str =
    "tests/integration/real/cloudinit.rs::debian_vms_obey_their_nocloud_and_openstack_drives";
const LXC_CLOUD: &str =
    "tests/integration/real/cloudinit.rs::a_debian_container_obeys_its_nocloud_seed";
/// VLAN networks, proven by real traffic over an Open vSwitch trunk.
const VLAN: &str =
    "tests/integration/real/vlan.rs::vlan_networks_tag_frames_on_the_trunk_and_keep_vlans_apart";
/// Security groups and their rules, proven by real traffic to a VM and a
/// container on one network.
const SECGROUP: &str =
    "tests/integration/real/firewall.rs::security_groups_filter_a_vm_and_a_container_live";
const QEMU_DISPLAY: &str =
    "tests/integration/real/display.rs::vnc_and_spice_consoles_answer_real_clients";
/// Live and offline migration between two libvirt hosts, disks copied.
const MIGRATE: &str =
    "tests/integration/real/migrate.rs::vms_migrate_between_two_hosts_live_and_offline";
/// Named hosts listed at once, and disabled (service control).
const HOSTS: &str = "tests/integration/real/hosts.rs::hosts_are_named_disabled_and_listed_at_once_and_a_dead_one_costs_one_line";
/// The VMs of a host whose libvirtd died, rebuilt on another.
const EVACUATE: &str =
    "tests/integration/real/evacuate.rs::a_dead_hosts_vms_are_rebuilt_elsewhere_with_their_addresses";
/// A PV domU on a real Xen host (nested under QEMU TCG).
const XEN: &str = "tests/integration/real/xen.rs::xen_pv_machines_on_a_real_xen_host";
const KVM_NET: &str = "tests/integration/real/network.rs::kvm_machines_on_routed_and_flat_networks";

impl Feature {
    pub fn parse(s: &str) -> Option<Feature> {
        Feature::ALL.iter().copied().find(|f| f.id() == s)
    }

    pub fn status(self) -> Status {
        use Feature::*;
        match self {
            GuestStatus | Launch | Shutdown | ImageStorage => Status::Mandatory,
            ConfigDrive => Status::Choice("guest.setup"),
            Rdp | SerialLog | SerialConsole | Spice | Vnc => Status::Choice("console"),
            BlockStorageIscsi => Status::Condition("storage.block==complete"),
            FlatNetworking | VlanNetworking => Status::Choice("networking.topology"),
            AttachVolume | DetachVolume | HostMaintenance | Evacuate | HostStatus | LiveMigrate
            | Pause | Reboot | Rescue | Resize | Restore | ServiceControl | SetPassword
            | Snapshot | Suspend | SwapVolume | Unpause | AutoConfigureDisk | DiskIoLimits
            | InjectFiles | InjectNetworking | BlockStorage | BlockStorageFc | IscsiChap
            | FirewallRules | NetworkRouting | SecurityGroups => Status::Optional,
        }
    }

    /// Nova's cells, exactly as in shared/support-matrix.md.
    pub fn nova(self) -> PerBackend<Cell> {
        use Feature::*;
        const DEBIAN_ONLY: Cell = Cell::Partial("only for Debian-derived guests");
        match self {
            AttachVolume | DetachVolume => row(C, C, M, C),
            HostMaintenance => row(M, M, M, M),
            Evacuate => row(C, U, U, U),
            GuestStatus | HostStatus | Launch | Pause | Reboot => row(C, C, C, C),
            LiveMigrate | Rescue | Resize | Restore => row(C, C, M, C),
            ServiceControl => row(C, C, M, M),
            SetPassword => row(M, M, M, M),
            Snapshot => row(
                C,
                C,
                M,
                Cell::Partial("only cold snapshots (pause + snapshot)"),
            ),
            Suspend => row(C, C, M, C),
            SwapVolume | Shutdown | Unpause => row(C, C, C, C),
            AutoConfigureDisk => row(M, M, M, M),
            DiskIoLimits => row(C, C, M, M),
            ConfigDrive => row(C, C, C, C),
            InjectFiles => row(C, C, M, M),
            InjectNetworking => row(DEBIAN_ONLY, DEBIAN_ONLY, M, M),
            Rdp => row(M, M, M, M),
            SerialLog => row(C, C, M, C),
            SerialConsole => row(C, U, U, U),
            Spice => row(C, C, M, M),
            Vnc => row(C, C, M, C),
            BlockStorage | BlockStorageFc | BlockStorageIscsi | IscsiChap | ImageStorage
            | FirewallRules | NetworkRouting | SecurityGroups | FlatNetworking | VlanNetworking => {
                row(C, C, C, C)
            }
        }
    }

    /// What creature implements, each `Yes` naming the real-backend test that
    /// proves it. A cell turns `Yes` only together with that test.
    pub fn implemented(self) -> PerBackend<Impl> {
        use Feature::*;
        const fn all3(
            qemu: &'static str,
            kvm: &'static str,
            lxc: &'static str,
        ) -> PerBackend<Impl> {
            PerBackend {
                kvm: Impl::Yes(kvm),
                qemu: Impl::Yes(qemu),
                lxc: Impl::Yes(lxc),
                xen: NO,
            }
        }
        match self {
            HostStatus => PerBackend {
                kvm: Impl::Yes(HOST_INFO_TEST),
                qemu: Impl::Yes(HOST_INFO_TEST),
                lxc: Impl::Yes(HOST_INFO_TEST),
                xen: Impl::Yes(XEN),
            },
            Launch | Shutdown | Pause | Unpause | GuestStatus => PerBackend {
                xen: Impl::Yes(XEN),
                ..all3(QEMU_LIFECYCLE, KVM_LIFECYCLE, LXC_LIFECYCLE)
            },
            SerialConsole => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_CONSOLE),
                lxc: Impl::Yes(LXC_LIFECYCLE),
                xen: Impl::Yes(XEN),
            },
            Reboot => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_LIFECYCLE),
                lxc: Impl::Yes(LXC_LIFECYCLE),
                xen: Impl::Yes(XEN),
            },
            ImageStorage => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_LIFECYCLE),
                lxc: Impl::Yes(LXC_DEBIAN),
                xen: Impl::Yes(XEN),
            },
            // Networks are shared: the tests attach containers (lxc) to them;
            // qemu machines attach the same way (tested with DHCP reservations).
            NetworkRouting => PerBackend {
                kvm: Impl::ViaQemu(KVM_NET),
                qemu: Impl::Yes(NET_ROUTE),
                lxc: Impl::Yes(NET_ROUTE),
                xen: Impl::Yes(XEN),
            },
            FlatNetworking => PerBackend {
                kvm: Impl::ViaQemu(KVM_NET),
                qemu: Impl::Yes(NET_FLAT),
                lxc: Impl::Yes(NET_FLAT),
                xen: Impl::Yes(XEN),
            },
            Rescue => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_RESCUE),
                xen: Impl::Yes(XEN),
                ..none_implemented()
            },
            Snapshot => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_SNAPSHOT),
                xen: Impl::Yes(XEN),
                ..none_implemented()
            },
            Resize => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_RESIZE),
                xen: Impl::Yes(XEN),
                ..none_implemented()
            },
            DiskIoLimits => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_LIMITS),
                ..none_implemented()
            },
            Suspend | Restore => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_LIFECYCLE),
                xen: Impl::Yes(XEN),
                ..none_implemented()
            },
            SerialLog => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_LIFECYCLE),
                xen: Impl::Yes(XEN),
                ..none_implemented()
            },
            AttachVolume | DetachVolume => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_VOLUMES),
                xen: Impl::Yes(XEN),
                ..none_implemented()
            },
            BlockStorage => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_VOLUMES),
                lxc: Impl::Yes(LXC_VOLUMES),
                xen: Impl::Yes(XEN),
            },
            SwapVolume => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_VOLUMES),
                lxc: Impl::Yes(LXC_VOLUMES),
                xen: Impl::Yes(XEN),
            },
            // A xen domU gets the LUN as dom0's block device, as it gets an
            // iSCSI one (proven there); dom0 without an HBA is refused.
            BlockStorageFc => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(FC_REFUSED),
                xen: Impl::Yes(XEN),
                ..none_implemented()
            },
            BlockStorageIscsi | IscsiChap => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_ISCSI),
                xen: Impl::Yes(XEN),
                ..none_implemented()
            },
            ConfigDrive => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_CLOUD),
                lxc: Impl::Yes(LXC_CLOUD),
                xen: Impl::Yes(XEN),
            },
            InjectFiles | InjectNetworking => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_CLOUD),
                ..none_implemented()
            },
            Vnc | Spice => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(QEMU_DISPLAY),
                ..none_implemented()
            },
            FirewallRules | SecurityGroups => PerBackend {
                kvm: Impl::ViaQemu(KVM_SMOKE),
                qemu: Impl::Yes(SECGROUP),
                lxc: Impl::Yes(SECGROUP),
                xen: Impl::Yes(XEN),
            },
            VlanNetworking => PerBackend {
                kvm: Impl::ViaQemu(VLAN),
                qemu: Impl::Yes(VLAN),
                lxc: Impl::Yes(VLAN),
                xen: Impl::Yes(XEN),
            },
            LiveMigrate => PerBackend {
                kvm: Impl::ViaQemu(MIGRATE),
                qemu: Impl::Yes(MIGRATE),
                ..none_implemented()
            },
            ServiceControl => PerBackend {
                kvm: Impl::ViaQemu(HOSTS),
                qemu: Impl::Yes(HOSTS),
                ..none_implemented()
            },
            Evacuate => PerBackend {
                kvm: Impl::ViaQemu(EVACUATE),
                qemu: Impl::Yes(EVACUATE),
                ..none_implemented()
            },
            HostMaintenance | SetPassword | AutoConfigureDisk | Rdp => none_implemented(),
        }
    }

    /// The effective cell for one backend: Nova's cell combined with creature's.
    /// Why creature refuses a cell Nova allows, where the reason is a fact of
    /// the hosts it runs on rather than work left to do.
    pub fn why_not(self, backend: Backend) -> Option<&'static str> {
        match (self, backend) {
            (Feature::BlockStorageIscsi | Feature::IscsiChap, Backend::Lxc) => Some(
                "a container needs the LUN as a local block device, and these hosts' kernels have \
                 neither an iSCSI initiator (iscsi_tcp) nor the device mapper; VMs reach LUNs \
                 through QEMU's userspace initiator",
            ),
            (Feature::Vnc, Backend::Xen) => Some(
                "a PV domain's screen is served by the device model libxl starts in dom0 \
                 (qemu-system-xen), and Debian's is built without a DES cipher: its VNC server \
                 refuses to start with a password (\"Cipher backend does not support DES \
                 algorithm\", seen on the test's Xen host), and creature serves no display without \
                 one",
            ),
            (Feature::LiveMigrate, Backend::Xen) => Some(
                "creature's xen machines are PV domains, whose live migration needs Xen's shadow \
                 paging to track dirty pages, and Debian's hypervisor is built without it \
                 (CONFIG_SHADOW_PAGING unset in 4.17 and 4.20: \"Failed to enable logdirty\", \
                 EOPNOTSUPP, seen between two nested Xen hosts); HVM and PVH domains track them \
                 with HAP, which needs VT-x or AMD-V, and the nested test host offers neither \
                 with a dom0 that boots",
            ),
            _ => None,
        }
    }

    /// What creature says of a cell it allows, where its proof stops short
    /// of the feature (printed like a partial cell's note).
    fn caveat(self, backend: Backend) -> Option<&'static str> {
        match (self, backend) {
            // Nova's swap runs under the guest; these copy while it is stopped.
            (Feature::SwapVolume, Backend::Xen) => Some(
                "cold only: libxl has no block copy (virDomainBlockCopy), so the machine must be \
                 stopped; dom0's libvirt copies the raw bytes",
            ),
            // creature plumbs a VLAN network's uplink with ovs-vsctl and ip,
            // which reach this host only; dom0 it reaches through libvirt.
            (Feature::VlanNetworking, Backend::Xen) => Some(
                "flat: the machines are ports of the VLAN on an Open vSwitch bridge of dom0's \
                 (`--mode bridge --bridge OVSBRIDGE --vlan ID`), which libvirt tags; creature makes \
                 no bridge or DHCP server there, and libvirt's filters (anti-spoofing, security \
                 groups) do not see Open vSwitch ports",
            ),
            (Feature::SwapVolume, Backend::Lxc) => Some(
                "cold only: a running container has the volume mounted, so it must be stopped",
            ),
            (Feature::InjectNetworking, _) => Some(
                "only guests whose cloud-init reads the drive's network configuration (NoCloud \
                 network-config, OpenStack network_data.json); others keep their own",
            ),
            (Feature::BlockStorageFc, _) => Some(
                "not proven on FC hardware (none where creature is tested): the pool is golden-tested \
                 and schema-valid, and a host without an FC HBA is refused (exit 6)",
            ),
            _ => None,
        }
    }

    pub fn effective(self, backend: Backend) -> Effective {
        let nova = self.nova().get(backend);
        let mut imp = self.implemented().get(backend);
        // A kvm cell rides on qemu's proof only where qemu's cell has one.
        let mut shared = None;
        if let Impl::ViaQemu(kvm_test) = imp {
            imp = match (backend, self.implemented().qemu) {
                (Backend::Kvm, Impl::Yes(q)) => {
                    shared = Some((q, kvm_test));
                    Impl::Yes(kvm_test)
                }
                _ => Impl::No,
            };
        }
        let allowed = |note| Effective::Allowed {
            note,
            proof: None,
            shared,
        };
        match (nova, imp) {
            (Cell::Missing, _) => Effective::Refused(Refusal::Missing),
            (Cell::Unknown, Impl::No | Impl::ViaQemu(_)) => Effective::Refused(Refusal::Unknown),
            (Cell::Unknown, Impl::Yes(test)) => Effective::Allowed {
                note: None,
                proof: Some(test),
                shared,
            },
            (Cell::Complete | Cell::Partial(_), Impl::No | Impl::ViaQemu(_)) => {
                Effective::Refused(Refusal::NotImplemented)
            }
            (Cell::Complete, Impl::Yes(_)) => allowed(self.caveat(backend)),
            (Cell::Partial(n), Impl::Yes(_)) => allowed(Some(self.caveat(backend).unwrap_or(n))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Unknown,
    NotImplemented,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effective {
    Allowed {
        /// A partial cell's note, printed when the operation runs.
        note: Option<&'static str>,
        /// For a Nova `unknown` cell creature proved: the test that proves it.
        proof: Option<&'static str>,
        /// A kvm cell proven on qemu (rule 5): (qemu's test, kvm's smoke test).
        shared: Option<(&'static str, &'static str)>,
    },
    Refused(Refusal),
}

impl Effective {
    pub fn word(self) -> &'static str {
        match self {
            Effective::Allowed { note: Some(_), .. } => "partial",
            Effective::Allowed { .. } => "complete",
            Effective::Refused(Refusal::Missing) => "missing",
            Effective::Refused(Refusal::Unknown) => "unknown",
            Effective::Refused(Refusal::NotImplemented) => "not-implemented",
        }
    }

    pub fn allowed(self) -> bool {
        matches!(self, Effective::Allowed { .. })
    }
}

/// Nova marks the feature missing for every backend: it can never run, so
/// the refusal needs no machine lookup.
pub fn missing_everywhere(feature: Feature) -> bool {
    Backend::ALL
        .iter()
        .all(|b| feature.nova().get(*b) == Cell::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forty_features_numbered_in_order() {
        assert_eq!(Feature::ALL.len(), 40);
        for (i, f) in Feature::ALL.iter().enumerate() {
            assert_eq!(f.number() as usize, i + 1);
            assert_eq!(Feature::parse(f.id()), Some(*f));
        }
    }

    #[test]
    fn missing_is_refused_even_if_implemented_flag_were_set() {
        assert_eq!(
            Feature::SetPassword.effective(Backend::Qemu),
            Effective::Refused(Refusal::Missing)
        );
        assert!(missing_everywhere(Feature::SetPassword));
    }

    #[test]
    fn implemented_cells_name_a_test_and_are_not_missing() {
        for f in Feature::ALL {
            for b in Backend::ALL {
                if let Impl::Yes(test) | Impl::ViaQemu(test) = f.implemented().get(b) {
                    assert!(test.starts_with("tests/"), "{f:?}/{b}: {test}");
                    assert_ne!(f.nova().get(b), Cell::Missing, "{f:?}/{b}");
                }
            }
        }
    }

    /// Rule 5: only kvm rides on qemu's proof, and only where qemu has one;
    /// such a cell names both tests.
    #[test]
    fn kvm_cells_proven_on_qemu_name_both_tests() {
        for f in Feature::ALL {
            for b in Backend::ALL {
                if let Impl::ViaQemu(_) = f.implemented().get(b) {
                    assert_eq!(b, Backend::Kvm, "{f:?}: only kvm shares qemu's path");
                    assert!(
                        matches!(f.implemented().qemu, Impl::Yes(_)),
                        "{f:?}: qemu unproven"
                    );
                    match f.effective(b) {
                        Effective::Allowed {
                            shared: Some((q, k)),
                            ..
                        } => {
                            assert!(q.starts_with("tests/") && k.starts_with("tests/"))
                        }
                        other => panic!("{f:?}: {other:?}"),
                    }
                }
            }
        }
        assert!(Feature::Suspend.effective(Backend::Kvm).allowed());
    }
}
