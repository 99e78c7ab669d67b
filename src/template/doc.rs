//! The reference of every template key. docs/templates.md and
//! creature-template(5) are generated from this table, and a test proves the
//! table names exactly the keys the schema has.

pub struct Key {
    pub key: &'static str,
    pub kind: &'static str,
    pub default: &'static str,
    pub text: &'static str,
}

const fn k(
    key: &'static str,
    kind: &'static str,
    default: &'static str,
    text: &'static str,
) -> Key {
    Key {
        key,
        kind,
        default,
        text,
    }
}

pub const KEYS: &[Key] = &[
    k("description", "string", "\"\"", "One line shown by `creature template list`."),
    k("extends", "template name", "none", "Template this one is merged onto: tables merge key by key, other values (lists included) are replaced. Cycles are refused."),
    k("backend", "kvm | qemu | lxc | xen", "required", "What runs the machine."),
    k("cpus", "integer", "1", "Virtual CPUs, from 1 to the host's CPU count."),
    k("memory", "size", "\"512MiB\"", "Memory with a unit: B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB); at least 16MiB."),
    k("max_cpus", "integer", "cpus", "VMs (kvm, qemu, xen): the most vCPUs `creature resize` may give the running machine (hotplug); more needs a restart. Alias: max_vcpus."),
    k("max_memory", "size", "memory", "VMs (kvm, qemu, xen): the most memory `creature resize` may give the running machine (a balloon: virtio_balloon in a kvm or qemu guest, Xen's own in a xen guest); more needs a restart."),
    k("rescue", "image name", "\"rescue\"", "kvm and qemu: the cached image (with files vmlinuz and initrd.img) `creature rescue` boots the machine from, its own disks attached after a scratch disk."),
    k("guest_agent", "boolean", "false", "kvm and qemu: a virtio channel for the QEMU guest agent, through which `creature exec` runs commands in the VM (the guest must run qemu-ga)."),
    k("variables", "table of strings", "{}", "Defaults for `${name}` references in string values; `${name:-default}` gives an inline default. Override with `--set variables.NAME=VALUE`."),
    k("disk", "list of tables", "[]", "Virtual machine disks (`[[disk]]`); the first is the root disk. Not for lxc."),
    k("disk.source", "source", "none", "Image the disk starts from, as a copy-on-write overlay (xen: a raw copy of it, made in dom0); none: an empty disk."),
    k("disk.size", "size", "the image's size", "Virtual size; not below the image's own size. Required for an empty disk."),
    k("disk.format", "qcow2 | raw", "qcow2 (xen: raw)", "Format of the machine's disk. Xen's blkback reads raw files only: qcow2 is refused for xen."),
    k("disk.bus", "virtio | sata | scsi | xen", "virtio (xen: xen)", "Bus the disk is attached to."),
    k("disk.overcommit", "bool", "false", "Allow a size beyond the free space of the pool: the disk is sparse and fills as the guest writes, so the pool can run full later. Without it such a disk is refused (exit 2)."),
    k("disk.total_bytes_sec", "size", "none", "I/O limit (#22): bytes per second read and written together, e.g. \"10MiB\"; not beside read_bytes_sec or write_bytes_sec. Changed later with `creature limits`."),
    k("disk.read_bytes_sec", "size", "none", "I/O limit: bytes per second read."),
    k("disk.write_bytes_sec", "size", "none", "I/O limit: bytes per second written."),
    k("disk.total_iops_sec", "integer", "none", "I/O limit: operations per second, reads and writes together; not beside read_iops_sec or write_iops_sec."),
    k("disk.read_iops_sec", "integer", "none", "I/O limit: read operations per second."),
    k("disk.write_iops_sec", "integer", "none", "I/O limit: write operations per second."),
    k("boot", "table", "none", "How a virtual machine boots. Not for lxc."),
    k("boot.kernel", "source", "none", "Kernel for direct kernel boot."),
    k("boot.initrd", "source", "none", "Initramfs for direct kernel boot; needs boot.kernel."),
    k("boot.cmdline", "string", "none", "Kernel command line; needs boot.kernel."),
    k("boot.firmware", "bios | uefi", "bios", "Firmware when booting from disk."),
    k("nic", "list of tables", "[]", "Network interfaces (`[[nic]]`)."),
    k("volume", "list of tables", "[]", "Block volumes (`[[volume]]`): made with the machine, or existing ones. VMs (kvm, qemu) get them as disks at create; containers (lxc) get each one's ext4 filesystem mounted at `path`, from a loop device of the host, at each start."),
    k("volume.name", "volume name", "none", "An existing volume to attach (held by no other machine); without it a volume `<machine>-vol<N>` is made."),
    k("volume.size", "size", "none", "Size of the volume made for the machine; required without name."),
    k("volume.format", "qcow2 | raw", "qcow2", "Format of the volume made for the machine."),
    k("volume.target", "device name", "the next free vdX", "VMs: device name in the machine's definition (the guest names virtio disks in slot order)."),
    k("volume.path", "absolute path", "none", "Containers (required there): where the volume's filesystem is mounted. A volume made for a container is raw with an ext4 filesystem; an existing one must be raw and hold one."),
    k("volume.readonly", "bool", "false", "The guest may only read it."),
    k("volume.keep", "bool", "false", "Keep the volume made for the machine when the machine is deleted (it is detached and listed by `creature volume list`); an existing volume (name) is always kept."),
    k("nic.network", "network name", "required", "creature network the NIC is plugged into."),
    k("nic.model", "virtio | e1000 | rtl8139 | netfront | veth", "virtio (xen: netfront, lxc: veth)", "Device model."),
    k("nic.mac", "MAC address", "allocated", "Fixed MAC: unicast, not all zeros, free on the host."),
    k("nic.ip", "IPv4 address", "reserved", "Fixed IP inside the network's subnet; reserved from its pool when absent."),
    k("nic.antispoof", "bool", "true", "kvm and qemu: libvirt's clean-traffic filter on the NIC: the guest cannot send with another MAC or IP than its own (the reserved one), nor spoof ARP. Turn it off for a machine that routes or bridges for others."),
    k("rootfs", "table", "required for lxc", "Root filesystem of a container. Not for virtual machines."),
    k("rootfs.type", "busybox | debootstrap | tarball | dir", "required", "How the root filesystem is made."),
    k("rootfs.release", "string", "none", "debootstrap: the suite, e.g. bookworm."),
    k("rootfs.mirror", "URL", "http://deb.debian.org/debian", "debootstrap: the mirror."),
    k("rootfs.variant", "string", "minbase", "debootstrap: the variant."),
    k("rootfs.packages", "list of strings", "[]", "debootstrap: extra packages."),
    k("rootfs.source", "source", "none", "tarball or dir: where it is."),
    k("rootfs.unprivileged", "boolean", "false", "Map the container's root to an unprivileged host range from /etc/subuid and /etc/subgid."),
    k("rootfs.overlay", "boolean", "false", "debootstrap: an overlay (overlayfs) on the cached tree instead of a copy: created in well under a second whatever the tree's size, and only changes use disk. The cached tree must stay, as a VM's base image must. Unprivileged, it needs Linux 5.11 or later (overlayfs in a user namespace)."),
    k("autostart", "table", "none", "Start at host boot and stop at shutdown."),
    k("autostart.enabled", "boolean", "false", "Whether the machine starts at host boot."),
    k("autostart.priority", "integer", "0", "Higher starts earlier and stops later."),
    k("autostart.delay", "seconds", "0", "Wait after starting this machine."),
    k("autostart.wait", "none | running | lease | tcp:PORT", "running", "What the next batch waits for."),
    k("autostart.wait_timeout", "seconds", "120", "How long to wait for it."),
    k("autostart.stop_timeout", "seconds", "60", "Graceful stop time before the machine is forced off."),
    k("autostart.stop_action", "shutdown | suspend | force", "shutdown", "What host shutdown does to the machine; suspend is checked against the support matrix."),
    k("cloud_init", "table", "none", "First-boot setup read by cloud-init in the guest: on a VM a config drive (an ISO 9660 volume attached read-only), in a container a NoCloud seed in /var/lib/cloud/seed/nocloud-net. The drive is rebuilt at start when what it says changed (a new instance-id: cloud-init's first-boot modules run again). Its files are readable by root only; `info` shows its format and instance-id, never its content."),
    k("cloud_init.users", "list of tables", "[]", "Users to create."),
    k("cloud_init.users.name", "user name", "required", "Login name."),
    k("cloud_init.users.ssh_keys", "list of strings", "[]", "Authorized SSH keys of this user."),
    k("cloud_init.users.sudo", "boolean", "false", "Passwordless sudo."),
    k("cloud_init.ssh_keys", "list of strings", "[]", "Authorized SSH keys of the default user."),
    k("cloud_init.packages", "list of strings", "[]", "Packages to install at first boot."),
    k("cloud_init.runcmd", "list of argument lists", "[]", "Commands run once at first boot, each a list of arguments (no shell)."),
    k("cloud_init.hostname", "host name", "the machine's name", "The guest's host name."),
    k("cloud_init.default_user", "user name", "none", "The image's default user (debian on Debian's images). On a VM, creature makes a key of its own for the machine (kept with its drive, 0600) and authorizes it for this user, so `exec` and `shell` reach the guest over ssh at its reserved address: the way in without a guest agent, and the only one with a terminal."),
    k("cloud_init.locale", "locale name", "cloud-init's (en_US.UTF-8)", "The system locale cloud-init sets. C.UTF-8 needs nothing generated: right for minimal images without that locale. A user-data file given with `create --user-data` replaces it too."),
    k("cloud_init.write_files", "list of tables", "[]", "Files written at first boot (cloud-init write_files), content given here."),
    k("cloud_init.write_files.path", "absolute path", "required", "Where in the guest."),
    k("cloud_init.write_files.content", "string", "\"\"", "The file's content (carried base64-encoded: any text is safe)."),
    k("cloud_init.write_files.mode", "octal string", "\"0644\"", "Its permission bits."),
    k("cloud_init.write_files.owner", "USER[:GROUP]", "root:root", "Its owner; a user this section creates is waited for."),
    k("cloud_init.user_data", "absolute path", "none", "A user-data file (cloud-config, a script, MIME multipart) used whole instead of the generated one; then users, packages, runcmd, write_files and inject have nowhere to go and are refused. `create --user-data FILE` does the same."),
    k("alternative", "template name", "none", "A template that makes the same system without downloading (built on the host): named in the one-line error when this template's image cannot be downloaded."),
    k("display", "table", "none", "A graphical console for a VM (`creature display`), with a password made for the machine at create (8 characters, VNC's limit), kept in the state database and given to libvirt, never printed unless asked (`display --show-password`)."),
    k("display.type", "vnc | spice | none", "none", "The protocol. The support matrix refuses both for lxc and SPICE for xen (exit 3)."),
    k("iso", "source", "none", "kvm and qemu: an installer image (ISO 9660) attached read-only as a SATA cdrom (`create --iso FILE` sets it). The machine boots its disk first and the cdrom when the disk has nothing to boot: an empty disk starts the installer, and the installed system boots from then on. With it, `display.type` defaults to vnc. Not with `boot.kernel`."),
    k("host", "host name", "local", "kvm, qemu and xen: the host the machine is made on (`creature host add`) when neither `--host` nor CREATURE_HOST says one. Containers are this host's only."),
    k("security_groups", "list of group names", "[]", "kvm, qemu and lxc: the security groups (`creature secgroup`) the machine is put in at create; each must exist. In a group, a machine takes inbound traffic only as a rule allows and sends outbound only as a rule allows (a new group allows all outbound); answers to allowed traffic pass. Not in any group: no filtering but anti-spoofing."),
    k("display.listen", "IP address", "127.0.0.1", "Where it listens. Anything but a loopback address reaches beyond this host: creature says so at create."),
    k("config_drive", "table", "none", "How first-boot settings reach a VM; present alone, it gives the guest its host name and network configuration."),
    k("config_drive.format", "nocloud | openstack", "nocloud", "nocloud: meta-data, user-data and network-config on a volume labelled cidata; openstack: openstack/latest/meta_data.json, user_data and network_data.json on one labelled config-2 (VMs only)."),
    k("inject", "list of tables", "[]", "Host files put into a VM at first boot (`[[inject]]`; `create --inject-file SRC:DEST[:MODE]` adds more), carried by the config drive (cloud-init write_files). kvm and qemu only: the support matrix marks file injection missing for lxc and xen, which refuse it (exit 3)."),
    k("inject.source", "absolute path", "required", "The host file, read when the machine is created (16 MiB in all at most)."),
    k("inject.dest", "absolute path", "required", "Where in the guest."),
    k("inject.mode", "octal string", "the host file's", "Its permission bits."),
    k("inject.owner", "USER[:GROUP]", "root:root", "Its owner."),
    k("source.image", "image name", "-", "A source: an image in the cache (`creature image list`)."),
    k("source.file", "file name", "-", "A source: which file of a multi-file image (kernel + initramfs)."),
    k("source.url", "http(s) URL", "-", "A source: download address, pulled into the cache on first use."),
    k("source.sha256", "64 hex digits", "-", "A source: checksum of the download."),
    k("source.sha512", "128 hex digits", "-", "A source: checksum of the download (as Debian publishes)."),
    k("source.path", "absolute path", "-", "A source: a local file."),
    k("source.format", "raw | qcow2", "probed", "A source: what a `url` or `path` file is. A file named raw is never probed as another format, whatever its first bytes; a file named qcow2 must be one."),
];

pub fn markdown() -> String {
    let mut s = String::from(
        "# Templates\n\n<!-- Generated by `creature generate` from src/template/doc.rs. Do not edit. -->\n\n\
A template is a TOML file that describes a machine. `creature create NAME -t TEMPLATE` finds it on the search path: \
`--template-dir`, then `/etc/creature/templates`, then `/usr/share/creature/templates` (where the Debian package \
puts the shipped templates), then the same templates built into creature. A template name follows \
the machine name rule, and only regular files directly in those directories are read (no symlinks, FIFOs or \
devices; at most 1 MiB).\n\n\
Unknown keys, wrong types and out-of-range values are errors (exit 2) with the file, line and column, and a \
suggestion where a key looks like a typo. Keys that make no sense for the backend (`[boot]` on lxc, `[rootfs]` \
on a virtual machine) are errors too. `creature template show NAME --resolved` prints the result of `extends`, \
variables and `--set KEY.PATH=VALUE` (numeric segments index lists: `--set nic.0.network=lan`).\n\n\
A *source* is a table with exactly one of `image`, `url` (with `sha256` or `sha512`) or `path`.\n\n\
| key | type | default | meaning |\n|---|---|---|---|\n",
    );
    for key in KEYS {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            key.key,
            key.kind.replace('|', "\\|"),
            key.default.replace('|', "\\|"),
            key.text
        ));
    }
    s.push_str("\n## Shipped templates\n\n");
    for (name, text) in crate::template::load::SHIPPED {
        s.push_str(&format!("### {name}\n\n```toml\n{text}```\n\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::KEYS;
    use crate::backend::Backend;
    use crate::size::Size;
    use crate::template::schema::*;

    fn paths(prefix: &str, v: &toml::Value, out: &mut BTreeSet<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, x) in t {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    // Sources are documented once, as source.*.
                    let p = if [
                        "disk.source",
                        "boot.kernel",
                        "boot.initrd",
                        "rootfs.source",
                        "iso",
                    ]
                    .contains(&p.as_str())
                    {
                        out.insert(p);
                        paths("source", x, out);
                        continue;
                    } else {
                        p
                    };
                    out.insert(p.clone());
                    if k != "variables" {
                        paths(&p, x, out);
                    }
                }
            }
            toml::Value::Array(a) => {
                for x in a {
                    if x.is_table() {
                        paths(prefix, x, out);
                    }
                }
            }
            _ => {}
        }
    }

    /// Built without `..Default::default()`: a new schema field does not
    /// compile until it is added here, and then this test wants its doc.
    #[test]
    fn every_schema_key_is_documented_and_nothing_else() {
        let src = || Source {
            image: Some("i".into()),
            file: Some("f".into()),
            url: Some("u".into()),
            sha256: Some("s".into()),
            sha512: Some("s".into()),
            path: Some("/p".into()),
            format: Some(DiskFormat::Raw),
        };
        let full = Template {
            description: Some("d".into()),
            extends: Some("e".into()),
            backend: Some(Backend::Qemu),
            cpus: Some(1),
            memory: Some(Size(1 << 30)),
            guest_agent: Some(true),
            rescue: Some("r".into()),
            max_cpus: Some(2),
            max_memory: Some(Size(2 << 30)),
            variables: [("a".to_string(), "b".to_string())].into(),
            disks: vec![Disk {
                source: Some(src()),
                size: Some(Size(1 << 30)),
                format: Some(DiskFormat::Qcow2),
                bus: Some(DiskBus::Virtio),
                overcommit: Some(true),
                total_bytes_sec: Some(Size(1 << 20)),
                read_bytes_sec: Some(Size(1 << 20)),
                write_bytes_sec: Some(Size(1 << 20)),
                total_iops_sec: Some(1),
                read_iops_sec: Some(1),
                write_iops_sec: Some(1),
            }],
            boot: Some(Boot {
                kernel: Some(src()),
                initrd: Some(src()),
                cmdline: Some("c".into()),
                firmware: Some(Firmware::Bios),
            }),
            nics: vec![Nic {
                network: "n".into(),
                model: Some(NicModel::Virtio),
                mac: Some("m".into()),
                ip: Some("i".into()),
                antispoof: Some(true),
            }],
            volumes: vec![Volume {
                name: Some("v".into()),
                size: Some(Size(1 << 20)),
                format: Some(DiskFormat::Raw),
                target: Some("vdb".into()),
                path: Some("/p".into()),
                readonly: Some(true),
                keep: Some(true),
            }],
            rootfs: Some(Rootfs {
                kind: RootfsKind::Busybox,
                release: Some("r".into()),
                mirror: Some("m".into()),
                variant: Some("v".into()),
                packages: vec!["p".into()],
                source: Some(src()),
                unprivileged: Some(true),
                overlay: Some(true),
            }),
            autostart: Some(Autostart {
                enabled: Some(true),
                priority: Some(1),
                delay: Some(1),
                wait: Some("w".into()),
                wait_timeout: Some(1),
                stop_timeout: Some(1),
                stop_action: Some(StopAction::Force),
            }),
            cloud_init: Some(CloudInit {
                users: vec![CloudUser {
                    name: "u".into(),
                    ssh_keys: vec!["k".into()],
                    sudo: Some(true),
                }],
                ssh_keys: vec!["k".into()],
                packages: vec!["p".into()],
                runcmd: vec![vec!["c".into()]],
                hostname: Some("h".into()),
                write_files: vec![WriteFile {
                    path: "/p".into(),
                    content: "c".into(),
                    mode: Some("0644".into()),
                    owner: Some("o".into()),
                }],
                user_data: Some("/u".into()),
                locale: Some("C.UTF-8".into()),
                default_user: Some("d".into()),
            }),
            alternative: Some("a".into()),
            config_drive: Some(ConfigDrive {
                format: Some(crate::seed::Format::Openstack),
            }),
            display: Some(Display {
                kind: Some(DisplayKind::Vnc),
                listen: Some("127.0.0.1".into()),
            }),
            iso: Some(src()),
            security_groups: vec!["g".into()],
            host: Some("b".into()),
            injects: vec![Inject {
                source: "/s".into(),
                dest: "/d".into(),
                mode: Some("0644".into()),
                owner: Some("o".into()),
            }],
        };
        let v = toml::Value::try_from(&full).unwrap();
        let mut got = BTreeSet::new();
        paths("", &v, &mut got);
        let documented: BTreeSet<String> = KEYS.iter().map(|k| k.key.to_string()).collect();
        assert_eq!(got, documented);
    }
}
