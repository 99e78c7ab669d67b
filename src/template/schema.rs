//! The template format. Every field is optional here so that each file of an
//! `extends` chain can be checked on its own, with positions; `resolve`
//! checks what the final result must have.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::size::Size;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// One line shown by `template list`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Name of the template this one is merged onto.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Size>,
    /// The most vCPUs the machine may be given while it runs (`resize`);
    /// default: `cpus` (no live growth).
    #[serde(skip_serializing_if = "Option::is_none", alias = "max_vcpus")]
    pub max_cpus: Option<u32>,
    /// The most memory it may be given while it runs (a virtio balloon);
    /// default: `memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory: Option<Size>,
    /// Image `creature rescue` boots the machine from (kernel + initramfs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescue: Option<String>,
    /// A channel for the QEMU guest agent (kvm, qemu): `creature exec` on the VM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_agent: Option<bool>,
    /// Defaults for `${name}` references in string values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Disks; the first is the root disk.
    #[serde(default, rename = "disk", skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<Disk>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<Boot>,
    #[serde(default, rename = "nic", skip_serializing_if = "Vec::is_empty")]
    pub nics: Vec<Nic>,
    /// Block volumes made with the machine, or existing ones attached to it.
    #[serde(default, rename = "volume", skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<Rootfs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autostart: Option<Autostart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_init: Option<CloudInit>,
    /// A template to point at when this one's images cannot be downloaded
    /// (one that builds the same system on the host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternative: Option<String>,
    /// How the first-boot settings reach the guest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_drive: Option<ConfigDrive>,
    /// Host files put into the guest at first boot (through the drive).
    #[serde(default, rename = "inject", skip_serializing_if = "Vec::is_empty")]
    pub injects: Vec<Inject>,
    /// A graphical console (VNC or SPICE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<Display>,
    /// An installer image, attached read-only as a cdrom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iso: Option<Source>,
    /// Security groups the machine is put in at create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// The host the machine is made on when `--host` is not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<DisplayKind>,
    /// The address it listens on (default 127.0.0.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DisplayKind {
    Vnc,
    Spice,
    None,
}

impl DisplayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DisplayKind::Vnc => "vnc",
            DisplayKind::Spice => "spice",
            DisplayKind::None => "none",
        }
    }
}

/// Where a file comes from: an image in the cache, a URL with its checksum,
/// or an absolute path on the host.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Name of an image in the cache (`creature image list`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// For a multi-file image (kernel + initramfs): which file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Download address; `sha256` or `sha512` is then required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Debian and others publish SHA512 sums; either digest is checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha512: Option<String>,
    /// Absolute path of a local file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What a `url` or `path` file is (default: probed by qemu-img).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<DiskFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskFormat {
    Qcow2,
    Raw,
}

/// A block volume of the machine (`[[volume]]`, #31): made for it
/// (`size`), or an existing one (`name`), attached at create.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// An existing volume (`creature volume list`); without it one is made,
    /// named `<machine>-vol<N>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size of the volume made for the machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Format of the volume made for the machine (default qcow2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<DiskFormat>,
    /// Guest device name (default: the next free vdX).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Containers: where the volume's filesystem is mounted in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readonly: Option<bool>,
    /// Keep the volume made for the machine when the machine is deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// Image the disk starts from (copy-on-write overlay); none: an empty disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Virtual size; at least the image's own size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// Format of the machine's disk (default qcow2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<DiskFormat>,
    /// Disk bus (default virtio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<DiskBus>,
    /// Allow a size beyond the pool's free space (the disk is sparse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overcommit: Option<bool>,
    /// I/O limits (#22): bytes per second (a size) and operations per second,
    /// total or split into read and write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_bytes_sec: Option<Size>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_bytes_sec: Option<Size>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_bytes_sec: Option<Size>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_iops_sec: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_iops_sec: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_iops_sec: Option<u64>,
}

impl Disk {
    /// The disk's I/O limits as the template gives them.
    pub fn limits(&self) -> crate::iotune::Limits {
        crate::iotune::Limits {
            total_bytes_sec: self.total_bytes_sec.map(|s| s.0),
            read_bytes_sec: self.read_bytes_sec.map(|s| s.0),
            write_bytes_sec: self.write_bytes_sec.map(|s| s.0),
            total_iops_sec: self.total_iops_sec,
            read_iops_sec: self.read_iops_sec,
            write_iops_sec: self.write_iops_sec,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskBus {
    Virtio,
    Sata,
    Scsi,
    Xen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Bios,
    Uefi,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Boot {
    /// Kernel for direct kernel boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initrd: Option<Source>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firmware: Option<Firmware>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NicModel {
    Virtio,
    E1000,
    Rtl8139,
    Netfront,
    Veth,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Nic {
    /// creature network the NIC is plugged into (`creature net list`).
    pub network: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<NicModel>,
    /// Fixed MAC; allocated without collisions when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Fixed IP; reserved from the network's pool when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// VMs: libvirt's clean-traffic filter (no MAC, IP or ARP spoofing; the
    /// NIC keeps its reserved address). Default on; off for routers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub antispoof: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootfsKind {
    Busybox,
    Debootstrap,
    Tarball,
    Dir,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rootfs {
    #[serde(rename = "type")]
    pub kind: RootfsKind,
    /// debootstrap: suite, e.g. bookworm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// debootstrap: minbase, buildd, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// tarball or dir: where it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Map the container's root to an unprivileged host range (/etc/subuid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unprivileged: Option<bool>,
    /// debootstrap: an overlay on the cached tree instead of a copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopAction {
    Shutdown,
    Suspend,
    Force,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Autostart {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Higher starts earlier and stops later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Seconds to wait after starting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    /// none, running, lease or tcp:PORT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_action: Option<StopAction>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudInit {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<CloudUser>,
    /// Keys for the default user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// Commands run once at first boot, each an argument vector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runcmd: Vec<Vec<String>>,
    /// The guest's host name (default: the machine's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Files written at first boot, their content given here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_files: Vec<WriteFile>,
    /// A user-data file used whole instead of the generated cloud-config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// The image's default user (debian on Debian's images): creature's own
    /// key is authorized for it, for `exec` and `shell` over ssh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_user: Option<String>,
    /// The system locale cloud-init sets (its own default: en_US.UTF-8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFile {
    pub path: String,
    #[serde(default)]
    pub content: String,
    /// Octal, as chmod takes it (default "0644").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDrive {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<crate::seed::Format>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    /// Absolute path of the host file.
    pub source: String,
    /// Absolute path in the guest.
    pub dest: String,
    /// Octal (default: the host file's permission bits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CloudUser {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_keys: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sudo: Option<bool>,
}
