//! Domain XML for kvm, qemu and xen machines: a pure function of a spec,
//! golden-tested per backend and checked with virt-xml-validate.

use crate::backend::Backend;
use crate::template::schema::Firmware;
use crate::xml::El;

/// creature's metadata namespace: marks the domains it made. The URI is a
/// name, never fetched.
pub const META_NS: &str = "http://creature.invalid/xmlns/machine/1";
pub const META_PREFIX: &str = "creature";

#[derive(Debug, Clone, PartialEq)]
pub struct DiskSpec {
    pub path: String,
    /// Format of the file, always explicit ("qcow2" or "raw").
    pub format: String,
    pub bus: &'static str,
    pub dev: String,
    /// `<iotune>`: only the limits that are set.
    pub iotune: crate::iotune::Limits,
    /// The guest may not write it (the config drive).
    pub readonly: bool,
    /// An installer image: a read-only cdrom the firmware boots when the
    /// disks have nothing to boot.
    pub cdrom: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NicSpec {
    /// libvirt network name.
    pub network: String,
    pub mac: String,
    pub model: &'static str,
    /// The NIC's own nwfilter (anti-spoofing and security groups, changed
    /// live without touching the domain), if libvirt applies it (qemu).
    pub filter: Option<NicFilter>,
    /// The host-side device's name, when creature binds the NIC's filter
    /// to it by that name (a xen vif; libxl applies no filter).
    pub ifname: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NicFilter {
    pub name: String,
    /// Its reserved address; None: libvirt learns it from DHCP.
    pub ip: Option<String>,
}

/// A VNC or SPICE console: libvirt picks the port at start.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphicsSpec {
    /// "vnc" or "spice".
    pub kind: &'static str,
    pub listen: String,
    pub password: String,
}

/// What creature records in each domain it makes.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub template: String,
    pub created: String,
    /// The state directory that owns the machine (several may share a libvirtd).
    pub state_dir: String,
    /// Overlay volumes creature made for the machine, to delete with it.
    pub volumes: Vec<String>,
    pub pool: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DomainSpec {
    pub name: String,
    pub backend: Backend,
    pub cpus: u32,
    pub memory_bytes: u64,
    /// Live growth room (`resize`): vCPUs and memory the definition allows.
    pub max_cpus: u32,
    pub max_memory_bytes: u64,
    pub disks: Vec<DiskSpec>,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    pub firmware: Firmware,
    pub nics: Vec<NicSpec>,
    /// Where the serial console is logged (`creature log`).
    pub serial_log: String,
    /// A virtio channel for the QEMU guest agent (`creature exec` on a VM).
    pub guest_agent: bool,
    /// A graphical console.
    pub display: Option<GraphicsSpec>,
    pub meta: Meta,
}

/// The channel name qemu-ga listens on, and libvirt knows as the agent's.
pub const GUEST_AGENT_CHANNEL: &str = "org.qemu.guest_agent.0";

fn domain_type(b: Backend) -> &'static str {
    match b {
        Backend::Kvm => "kvm",
        Backend::Qemu => "qemu",
        Backend::Xen => "xen",
        Backend::Lxc => unreachable!("lxc machines are not libvirt domains"),
    }
}

pub fn metadata(m: &Meta) -> El {
    let q = |n: &'static str| n; // element names carry the prefix below
    El::new("creature:machine")
        .attr("xmlns:creature", META_NS)
        .child(El::leaf(q("creature:owner"), "creature"))
        .child(El::leaf(q("creature:template"), m.template.clone()))
        .child(El::leaf(q("creature:created"), m.created.clone()))
        .child(El::leaf(q("creature:state-dir"), m.state_dir.clone()))
        .child(El::leaf(q("creature:pool"), m.pool.clone()))
        .children(
            m.volumes
                .iter()
                .map(|v| El::leaf("creature:volume", v.clone())),
        )
}

pub fn render(s: &DomainSpec) -> String {
    let xen = s.backend == Backend::Xen;
    // Xen boots a kernel it is given as a paravirtualized guest: no
    // emulated hardware, which a Xen host without HVM (a nested one) lacks.
    let pv = xen && s.kernel.is_some();
    let mut os = El::new("os");
    if s.firmware == Firmware::Uefi && !pv {
        os = os.attr("firmware", "efi");
    }
    let ty = if pv {
        El::leaf("type", "linux")
            .attr("arch", "x86_64")
            .attr("machine", "xenpv")
    } else if xen {
        El::leaf("type", "hvm")
            .attr("arch", "x86_64")
            .attr("machine", "xenfv")
    } else {
        El::leaf("type", "hvm").attr("arch", "x86_64")
    };
    os = os.child(ty);
    if let Some(k) = &s.kernel {
        os = os.child(El::leaf("kernel", k.clone()));
        if let Some(i) = &s.initrd {
            os = os.child(El::leaf("initrd", i.clone()));
        }
        if let Some(c) = &s.cmdline {
            os = os.child(El::leaf("cmdline", c.clone()));
        }
    } else {
        // Disk first: an installed system boots from then on, and an empty
        // disk falls through to the installer.
        os = os
            .child(El::new("boot").attr("dev", "hd"))
            .child_if(s.disks.iter().any(|d| d.cdrom), || {
                El::new("boot").attr("dev", "cdrom")
            });
    }

    let mut features = El::new("features")
        .child(El::new("acpi"))
        .child(El::new("apic"));
    if xen {
        features = features.child(El::new("pae"));
    }

    let disks = s.disks.iter().map(|d| {
        El::new("disk")
            .attr("type", "file")
            .attr("device", if d.cdrom { "cdrom" } else { "disk" })
            .child(
                El::new("driver")
                    // Xen's dom0 has no QEMU for disks: blkback reads raw files.
                    .attr("name", if xen { "phy" } else { "qemu" })
                    .attr("type", d.format.clone()),
            )
            .child(El::new("source").attr("file", d.path.clone()))
            .child(
                El::new("target")
                    .attr("dev", d.dev.clone())
                    .attr("bus", d.bus),
            )
            .child_if(!d.iotune.active().is_empty(), || {
                El::new("iotune").children(
                    d.iotune
                        .active()
                        .into_iter()
                        .map(|(f, v)| El::leaf(f, v.to_string())),
                )
            })
            .child_if(d.readonly || d.cdrom, || El::new("readonly"))
    });
    let nics = s.nics.iter().map(|n| {
        El::new("interface")
            .attr("type", "network")
            .child(El::new("mac").attr("address", n.mac.clone()))
            .child(El::new("source").attr("network", n.network.clone()))
            .children(
                n.ifname
                    .as_ref()
                    .map(|d| El::new("target").attr("dev", d.clone())),
            )
            .child(El::new("model").attr("type", n.model))
            .children(
                n.filter
                    .as_ref()
                    .map(|f| crate::secgroup::filter::filterref(&f.name, f.ip.as_deref())),
            )
    });
    // A PV guest's console is Xen's own (hvc0); xenconsoled logs it in dom0.
    let console = if pv {
        El::new("console")
            .attr("type", "pty")
            .child(El::new("target").attr("type", "xen").attr("port", "0"))
    } else {
        El::new("console")
            .attr("type", "pty")
            .child(El::new("target").attr("type", "serial").attr("port", "0"))
    };
    let devices = El::new("devices")
        .children(disks)
        .children(nics)
        .child_if(!pv, || {
            El::new("serial")
                .attr("type", "pty")
                .child(
                    El::new("log")
                        .attr("file", s.serial_log.clone())
                        .attr("append", "on"),
                )
                .child(El::new("target").attr("port", "0"))
        })
        .child(console)
        .children(s.display.as_ref().map(graphics))
        .children(s.display.as_ref().map(|_| {
            El::new("video").child(El::new("model").attr("type", if pv { "xen" } else { "vga" }))
        }))
        // libvirt picks the socket path for the agent's channel itself.
        .child_if(s.guest_agent, || {
            El::new("channel")
                .attr("type", "unix")
                .child(El::new("source").attr("mode", "bind"))
                .child(
                    El::new("target")
                        .attr("type", "virtio")
                        .attr("name", GUEST_AGENT_CHANNEL),
                )
        })
        // A balloon only where memory may change while the machine runs.
        .child_if(!xen, || {
            El::new("memballoon").attr(
                "model",
                if s.max_memory_bytes > s.memory_bytes {
                    "virtio"
                } else {
                    "none"
                },
            )
        });

    El::new("domain")
        .attr("type", domain_type(s.backend))
        .child(El::leaf("name", s.name.clone()))
        .child(El::leaf("title", format!("creature machine {}", s.name)))
        .child(El::new("metadata").child(metadata(&s.meta)))
        .child(
            El::leaf(
                "memory",
                (s.max_memory_bytes.max(s.memory_bytes) / 1024).to_string(),
            )
            .attr("unit", "KiB"),
        )
        .child(El::leaf("currentMemory", (s.memory_bytes / 1024).to_string()).attr("unit", "KiB"))
        .child(
            El::leaf("vcpu", s.max_cpus.max(s.cpus).to_string())
                .attr("placement", "static")
                .attr("current", s.cpus.to_string()),
        )
        .child(os)
        .child_if(!pv, || features)
        .child(El::new("clock").attr("offset", "utc"))
        .child(El::leaf("on_poweroff", "destroy"))
        .child(El::leaf("on_reboot", "restart"))
        .child(El::leaf("on_crash", "destroy"))
        .child(devices)
        .render()
}

impl GraphicsSpec {
    pub fn of(d: &crate::store::DisplayRecord) -> GraphicsSpec {
        GraphicsSpec {
            kind: if d.kind == "spice" { "spice" } else { "vnc" },
            listen: d.listen.clone(),
            password: d.password.clone(),
        }
    }
}

/// A `<graphics>` element: in the definition, and alone for a live
/// password change (virDomainUpdateDeviceFlags).
pub fn graphics(g: &GraphicsSpec) -> El {
    El::new("graphics")
        .attr("type", g.kind)
        .attr("autoport", "yes")
        .attr("passwd", g.password.clone())
        .child(
            El::new("listen")
                .attr("type", "address")
                .attr("address", g.listen.clone()),
        )
}

/// Disk bus and device names per backend.
pub fn disk_target(backend: Backend, index: usize) -> (&'static str, String) {
    let letter = (b'a' + index as u8) as char;
    match backend {
        Backend::Xen => ("xen", format!("xvd{letter}")),
        _ => ("virtio", format!("vd{letter}")),
    }
}

/// The creature metadata of a domain, if it is creature's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParsedMeta {
    pub template: String,
    pub state_dir: String,
    pub pool: String,
    pub volumes: Vec<String>,
}

/// vCPUs and memory of a domain's XML (libvirt writes memory in KiB).
pub fn sizing(xml: &str) -> Option<crate::resize::Sizing> {
    use quick_xml::events::Event;
    // The texts of <vcpu>, <memory> and <currentMemory>, children of <domain>.
    let mut r = quick_xml::Reader::from_str(xml);
    let (mut max_cpus, mut memory, mut max_memory) = (None, None, None);
    let mut cur: Option<Vec<u8>> = None;
    let mut depth = 0usize;
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                cur = (depth == 2).then(|| e.local_name().as_ref().to_vec());
            }
            Ok(Event::Text(t)) => {
                let v = t.unescape().ok()?.trim().to_string();
                match cur.as_deref() {
                    Some(b"vcpu") => max_cpus = v.parse::<u32>().ok(),
                    Some(b"memory") => max_memory = v.parse::<u64>().ok().map(|k| k * 1024),
                    Some(b"currentMemory") => memory = v.parse::<u64>().ok().map(|k| k * 1024),
                    _ => {}
                }
            }
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                cur = None;
            }
            Ok(Event::Eof) => break,
            Err(_) => return None,
            _ => {}
        }
    }
    let (max_cpus, max_memory) = (max_cpus?, max_memory?);
    let attr = |tag: &str, key: &str| {
        crate::xml::attrs_of(xml, tag)
            .into_iter()
            .find_map(|a| a.get(key).cloned())
    };
    Some(crate::resize::Sizing {
        // libvirt leaves out current= when every vCPU is on.
        cpus: attr("vcpu", "current")
            .and_then(|c| c.parse().ok())
            .unwrap_or(max_cpus),
        max_cpus,
        memory: memory.unwrap_or(max_memory),
        max_memory,
        // Xen's balloon is the hypervisor's own: every xen domain has it.
        balloon: attr("memballoon", "model").as_deref() == Some("virtio")
            || attr("domain", "type").as_deref() == Some("xen"),
    })
}

/// Parse what `virDomainGetMetadata(ELEMENT, META_NS)` returns.
pub fn parse_metadata(xml: &str) -> Option<ParsedMeta> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut m = ParsedMeta::default();
    let mut cur: Option<Vec<u8>> = None;
    let mut owner = false;
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => cur = Some(e.local_name().as_ref().to_vec()),
            Ok(Event::Text(t)) => {
                let v = t.unescape().ok()?.into_owned();
                match cur.as_deref() {
                    Some(b"owner") => owner = v == "creature",
                    Some(b"template") => m.template = v,
                    Some(b"state-dir") => m.state_dir = v,
                    Some(b"pool") => m.pool = v,
                    Some(b"volume") => m.volumes.push(v),
                    _ => {}
                }
            }
            Ok(Event::End(_)) => cur = None,
            Ok(Event::Eof) => break,
            Err(_) => return None,
            _ => {}
        }
    }
    owner.then_some(m)
}

#[cfg(test)]
mod tests;
