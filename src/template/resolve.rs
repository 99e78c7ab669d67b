//! From a template name to a checked, final template: follow `extends`
//! (with cycle detection), merge, apply `--set` and variables, then check
//! everything the final result must satisfy.

use std::net::Ipv4Addr;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::size::Size;
use crate::template::load::{self, Library, Source};
use crate::template::merge;
use crate::template::schema::{
    Autostart, Boot, CloudInit, Disk, Nic, Source as FileSource, StopAction, Template,
};

const MAX_DEPTH: usize = 16;
pub const MIN_MEMORY: Size = Size(16 << 20);
pub const DEFAULT_MEMORY: Size = Size(512 << 20);

/// A template ready to create from.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub name: String,
    /// Files of the chain, the template itself first.
    pub chain: Vec<String>,
    pub backend: Backend,
    pub cpus: u32,
    pub memory: Size,
    pub template: Template,
}

/// What a machine was made from, kept with its record: `evacuate` rebuilds
/// it from this when its host is gone (the template file may have changed
/// or gone since).
#[derive(serde::Serialize, serde::Deserialize)]
struct Recorded {
    name: String,
    backend: Backend,
    cpus: u32,
    memory: u64,
    template: Template,
}

impl Resolved {
    /// As kept in the machine's record (JSON).
    pub fn to_record(&self) -> Result<String> {
        serde_json::to_string(&Recorded {
            name: self.name.clone(),
            backend: self.backend,
            cpus: self.cpus,
            memory: self.memory.0,
            template: self.template.clone(),
        })
        .map_err(|e| Error::other("cannot record the machine's template").caused_by(e))
    }

    pub fn from_record(text: &str) -> Result<Resolved> {
        let r: Recorded = serde_json::from_str(text).map_err(|e| {
            Error::corrupt("the machine's recorded template is damaged").caused_by(e)
        })?;
        Ok(Resolved {
            name: r.name,
            chain: Vec::new(),
            backend: r.backend,
            cpus: r.cpus,
            memory: Size(r.memory),
            template: r.template,
        })
    }

    pub fn autostart(&self) -> Autostart {
        self.template.autostart.clone().unwrap_or_default()
    }
    pub fn disks(&self) -> &[Disk] {
        &self.template.disks
    }
}

/// Facts about the host the template is checked against.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    pub cpus: u32,
    /// The host's memory in bytes (None: unknown, not checked).
    pub memory: Option<u64>,
}

/// No size creature accepts is larger: 2^53 bytes (8 PiB) is beyond any
/// pool here and the largest integer a JSON consumer reads exactly.
pub const MAX_SIZE: Size = Size(1 << 53);

impl HostLimits {
    pub fn local() -> HostLimits {
        HostLimits {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1),
            memory: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|m| mem_total(&m)),
        }
    }
}

/// MemTotal of /proc/meminfo, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Resolve a template by name.
pub fn resolve(lib: &Library, name: &str, sets: &[String], host: HostLimits) -> Result<Resolved> {
    let src = lib.find(name)?;
    resolve_source(lib, src, sets, host)
}

/// Resolve a template whose text is already read (`template validate FILE`).
pub fn resolve_source(
    lib: &Library,
    src: Source,
    sets: &[String],
    host: HostLimits,
) -> Result<Resolved> {
    let name = src.name.clone();
    // Child first; each file checked alone so errors point into it.
    let mut chain: Vec<(Source, toml::Table)> = Vec::new();
    let mut next = Some(src);
    while let Some(s) = next.take() {
        if chain.len() == MAX_DEPTH {
            return Err(Error::invalid(format!(
                "template {name:?}: `extends` chain is deeper than {MAX_DEPTH}"
            )));
        }
        let (tpl, table) = load::parse(&s)?;
        if let Some(parent) = &tpl.extends {
            names::check(What::Template, parent)
                .map_err(|e| Error::invalid(format!("{}: extends: {}", s.origin, e.message())))?;
            let mut seen: Vec<&str> = chain.iter().map(|(c, _)| c.name.as_str()).collect();
            seen.push(&s.name);
            if seen.contains(&parent.as_str()) {
                seen.push(parent);
                return Err(Error::invalid(format!(
                    "template {name:?}: `extends` cycle: {}",
                    seen.join(" -> ")
                )));
            }
            next = Some(lib.find(parent)?);
        }
        chain.push((s, table));
    }
    let origins: Vec<String> = chain.iter().map(|(s, _)| s.origin.clone()).collect();

    let mut merged = toml::Table::new();
    for (_, table) in chain.into_iter().rev() {
        merge::deep_merge(&mut merged, table);
    }
    merged.remove("extends");
    let named = |e: Error| Error::invalid(format!("template {name:?}: {}", e.message()));
    for s in sets {
        merge::apply_set(&mut merged, s).map_err(named)?;
    }
    merge::substitute(&mut merged).map_err(named)?;
    let template: Template = serde_path_to_error::deserialize(toml::Value::Table(merged))
        .map_err(|e| composed_error(&name, sets, e))?;
    check(&name, origins, template, host)
}

/// A type or key error in the composed template, named by its key and,
/// when a `--set` put it there, by that assignment, in a sysadmin's words.
fn composed_error(
    name: &str,
    sets: &[String],
    e: serde_path_to_error::Error<toml::de::Error>,
) -> Error {
    let key = e.path().to_string();
    let raw = e.inner().message().trim().to_string();
    let msg = match (
        raw.strip_prefix("unknown field `"),
        super::load::suggest(&raw),
    ) {
        (Some(_), Some(s)) => format!("unknown key (did you mean `{s}`?)"),
        (Some(rest), None) => format!(
            "unknown key; known here: {}",
            rest.split_once("expected one of ")
                .map(|(_, l)| l.replace('`', ""))
                .unwrap_or_default()
        ),
        (None, _) => plain_words(&key, &raw),
    };
    let flat = |p: &str| -> String {
        p.split(['.', '[', ']'])
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join(".")
    };
    let given = sets.iter().rev().find(|s| {
        s.split_once('=')
            .is_some_and(|(k, _)| flat(k) == flat(&key))
    });
    match given {
        Some(set) => Error::invalid(format!("--set {set}: {key}{}{msg}", sep(&msg))),
        None => Error::invalid(format!(
            "template {name:?} (after extends, variables and --set): {key}{}{msg}",
            sep(&msg)
        )),
    }
}

/// "cpus must be ...", but "cpus: unknown key".
fn sep(msg: &str) -> &'static str {
    if msg.starts_with("must be ") {
        " "
    } else {
        ": "
    }
}

/// serde's words ("invalid type: string \"lots\", expected u32",
/// "unknown variant `foo`, expected one of ...") as what the key must be,
/// what was given, and what the key is for (from the key reference).
fn plain_words(key: &str, msg: &str) -> String {
    let (want, got) = if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let Some((got, want)) = rest.split_once(", expected ") else {
            return msg.to_string();
        };
        let want = match want {
            "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number".to_string(),
            "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_string(),
            "a boolean" => "true or false".to_string(),
            "a string" => "a quoted string".to_string(),
            "a sequence" => "a list".to_string(),
            other => other.to_string(),
        };
        (want, got.strip_prefix("string ").unwrap_or(got).to_string())
    } else if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let Some((got, list)) = rest.split_once(", expected ") else {
            return msg.to_string();
        };
        let list = list
            .strip_prefix("one of ")
            .unwrap_or(list)
            .replace('`', "");
        (
            format!("one of {list}"),
            format!("{:?}", got.trim_matches('`')),
        )
    } else {
        return msg.to_string();
    };
    // disk[0].bus is documented as disk.bus.
    let doc_key: String = key
        .split(['.', '['])
        .filter(|p| !p.ends_with(']'))
        .collect::<Vec<_>>()
        .join(".");
    let about = super::doc::KEYS
        .iter()
        .find(|k| k.key == doc_key)
        .map(|k| format!(" ({})", k.text.trim_end_matches('.')))
        .unwrap_or_default();
    format!("must be {want}{about}, got {got}")
}

fn field_err(name: &str, field: &str, why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("template {name:?}: {field}: {why}"))
}

fn check_source(name: &str, field: &str, s: &FileSource) -> Result<()> {
    let set = [s.image.is_some(), s.url.is_some(), s.path.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if set != 1 {
        return Err(field_err(
            name,
            field,
            "give exactly one of `image`, `url` or `path`",
        ));
    }
    if s.image.is_some() && s.format.is_some() {
        return Err(field_err(
            name,
            &format!("{field}.format"),
            "is for `url` and `path` sources; a cached image's format was recorded when it was imported",
        ));
    }
    if let Some(img) = &s.image {
        names::check(What::Image, img).map_err(|e| field_err(name, field, e.message()))?;
    }
    if let Some(url) = &s.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(field_err(
                name,
                field,
                format!("url {url:?} must be http:// or https://"),
            ));
        }
        let hex = |h: &str, n: usize| h.len() == n && h.bytes().all(|b| b.is_ascii_hexdigit());
        match (&s.sha256, &s.sha512) {
            (Some(h), _) if !hex(h, 64) => {
                return Err(field_err(
                    name,
                    field,
                    format!("sha256 {h:?} is not 64 hex digits"),
                ))
            }
            (_, Some(h)) if !hex(h, 128) => {
                return Err(field_err(
                    name,
                    field,
                    format!("sha512 {h:?} is not 128 hex digits"),
                ))
            }
            (None, None) => {
                return Err(field_err(
                    name,
                    field,
                    "a `url` needs its `sha256` or `sha512`",
                ))
            }
            _ => {}
        }
    }
    if let Some(p) = &s.path {
        if !p.starts_with('/') {
            return Err(field_err(
                name,
                field,
                format!("path {p:?} must be absolute"),
            ));
        }
    }
    if let Some(f) = &s.file {
        if f.is_empty() || f.contains('/') || f.starts_with('.') {
            return Err(field_err(
                name,
                field,
                format!("file {f:?} must be a plain file name"),
            ));
        }
    }
    Ok(())
}

fn check(name: &str, chain: Vec<String>, t: Template, host: HostLimits) -> Result<Resolved> {
    let backend = t
        .backend
        .ok_or_else(|| field_err(name, "backend", "missing; one of kvm, qemu, lxc, xen"))?;
    let cpus = t.cpus.unwrap_or(1);
    if cpus < 1 || cpus > host.cpus {
        return Err(field_err(
            name,
            "cpus",
            format!(
                "{cpus} is out of range: from 1 to {} (the host's CPUs)",
                host.cpus
            ),
        ));
    }
    let memory = t.memory.unwrap_or(DEFAULT_MEMORY);
    if memory < MIN_MEMORY {
        return Err(field_err(
            name,
            "memory",
            format!("{memory} is below the minimum of {MIN_MEMORY}"),
        ));
    }
    if let Some(total) = host.memory.filter(|&t| memory.0 > t) {
        return Err(field_err(
            name,
            "memory",
            format!(
                "{} is more than the host has ({})",
                memory.human(),
                Size(total).human()
            ),
        ));
    }
    match backend {
        Backend::Lxc => check_container(name, &t)?,
        vm => check_vm(name, vm, &t)?,
    }
    let vm = matches!(backend, Backend::Kvm | Backend::Qemu);
    // Xen PV guests take vCPUs and memory (its balloon) live too.
    let resizable = vm || backend == Backend::Xen;
    if let Some(max) = t.max_cpus {
        if !resizable {
            return Err(field_err(
                name,
                "max_cpus",
                format!("is for VMs (kvm, qemu, xen), not {backend}"),
            ));
        }
        if max < cpus || max > host.cpus.max(cpus) * 8 {
            return Err(field_err(
                name,
                "max_cpus",
                format!(
                    "{max} is out of range: from cpus ({cpus}) to {}",
                    host.cpus.max(cpus) * 8
                ),
            ));
        }
    }
    if let Some(max) = t.max_memory {
        if !resizable {
            return Err(field_err(
                name,
                "max_memory",
                format!("is for VMs (kvm, qemu, xen), not {backend}"),
            ));
        }
        if max < memory || max > MAX_SIZE {
            return Err(field_err(
                name,
                "max_memory",
                format!(
                    "{} is out of range: from memory ({}) to {}",
                    max.human(),
                    memory.human(),
                    MAX_SIZE.human()
                ),
            ));
        }
    }
    if let Some(img) = &t.rescue {
        if !vm {
            return Err(field_err(
                name,
                "rescue",
                format!("is for kvm and qemu machines, not {backend}"),
            ));
        }
        names::check(What::Image, img).map_err(|e| field_err(name, "rescue", e.message()))?;
    }
    if let Some(h) = &t.host {
        names::check(What::Host, h).map_err(|e| field_err(name, "host", e.message()))?;
        if backend == Backend::Lxc && h != crate::config::LOCAL {
            return Err(field_err(
                name,
                "host",
                "containers are this host's only (liblxc runs them where creature runs)",
            ));
        }
    }
    if t.guest_agent == Some(true) && !matches!(backend, Backend::Kvm | Backend::Qemu) {
        return Err(field_err(
            name,
            "guest_agent",
            format!("is for kvm and qemu machines (the QEMU guest agent), not {backend}"),
        ));
    }
    check_disks(name, &t.disks)?;
    check_volumes(name, backend, &t.volumes)?;
    if let Some(b) = &t.boot {
        check_boot(name, b)?;
    }
    check_nics(name, &t.nics)?;
    if let Some(a) = &t.autostart {
        check_autostart(name, backend, a)?;
    }
    if let Some(c) = &t.cloud_init {
        check_cloud_init(name, c)?;
    }
    check_injects(name, &t.injects)?;
    for g in &t.security_groups {
        names::check(What::SecGroup, g)
            .map_err(|e| field_err(name, "security_groups", e.message()))?;
    }
    if let Some(d) = &t.display {
        if let Some(l) = &d.listen {
            l.parse::<std::net::IpAddr>().map_err(|_| {
                field_err(
                    name,
                    "display.listen",
                    format!("{l:?} is not an IP address"),
                )
            })?;
        }
    }
    if let Some(a) = &t.alternative {
        names::check(What::Template, a).map_err(|e| field_err(name, "alternative", e.message()))?;
    }
    if backend == Backend::Lxc
        && t.config_drive.as_ref().and_then(|d| d.format) == Some(crate::seed::Format::Openstack)
    {
        return Err(field_err(
            name,
            "config_drive.format",
            "a container's seed is NoCloud, inside its root filesystem; \"openstack\" is for VMs",
        ));
    }
    if let Some(d) = &t.description {
        if d.contains('\n') {
            return Err(field_err(name, "description", "must be one line"));
        }
    }
    Ok(Resolved {
        name: name.to_string(),
        chain,
        backend,
        cpus,
        memory,
        template: Template {
            cpus: Some(cpus),
            memory: Some(memory),
            ..t
        },
    })
}

/// A VM boots disks or a kernel, never a container's root filesystem.
fn check_vm(name: &str, backend: Backend, t: &Template) -> Result<()> {
    if t.rootfs.is_some() {
        return Err(field_err(
            name,
            "[rootfs]",
            format!("is for containers; backend {backend} boots disks or a kernel"),
        ));
    }
    let kernel = t.boot.as_ref().and_then(|b| b.kernel.as_ref()).is_some();
    if let Some(iso) = &t.iso {
        if backend == Backend::Xen {
            return Err(field_err(
                name,
                "iso",
                "is for kvm and qemu machines; xen boots a kernel or its disk",
            ));
        }
        if kernel {
            return Err(field_err(
                name,
                "iso",
                "an installer image boots through the firmware, and boot.kernel boots a kernel directly: give one of them",
            ));
        }
        check_source(name, "iso", iso)?;
    } else if t.disks.is_empty() && !kernel {
        return Err(field_err(
            name,
            "[[disk]]",
            format!("backend {backend} needs a disk, a [boot] kernel or an iso"),
        ));
    }
    Ok(())
}

/// A VM whose disks are all empty boots nothing without an installer. The
/// template itself is valid (the `installer` template is made to be given
/// `--iso`); the machine made from it without one is refused.
pub fn check_bootable(r: &Resolved) -> Result<()> {
    let t = &r.template;
    let kernel = t.boot.as_ref().and_then(|b| b.kernel.as_ref()).is_some();
    if r.backend != Backend::Lxc
        && !kernel
        && t.iso.is_none()
        && t.disks.iter().all(|d| d.source.is_none())
    {
        return Err(Error::invalid(format!(
            "template {:?} boots nothing: its disks are empty; give an installer with `--iso FILE`",
            r.name
        )));
    }
    Ok(())
}

/// A container has a root filesystem and nothing a VM boots.
fn check_container(name: &str, t: &Template) -> Result<()> {
    if t.boot.is_some() {
        return Err(field_err(
            name,
            "[boot]",
            "is for virtual machines; an lxc container has no kernel of its own",
        ));
    }
    if t.iso.is_some() {
        return Err(field_err(
            name,
            "iso",
            "is for virtual machines; an lxc container boots no installer",
        ));
    }
    if !t.disks.is_empty() {
        return Err(field_err(
            name,
            "[[disk]]",
            "is for virtual machines; an lxc container uses [rootfs]",
        ));
    }
    let rootfs = t.rootfs.as_ref().ok_or_else(|| {
        field_err(
            name,
            "[rootfs]",
            "missing; an lxc container needs a root filesystem",
        )
    })?;
    use crate::template::schema::RootfsKind as K;
    match rootfs.kind {
        K::Busybox | K::Tarball | K::Dir if rootfs.overlay == Some(true) => {
            return Err(field_err(
                name,
                "rootfs.overlay",
                "only a debootstrap root filesystem has a cached tree to lay an overlay on",
            ));
        }
        K::Busybox => {}
        K::Debootstrap => {
            let release = rootfs.release.as_deref().unwrap_or("");
            if !names::is_valid(release) {
                return Err(field_err(
                    name,
                    "rootfs.release",
                    format!("{release:?} is not a Debian suite name"),
                ));
            }
        }
        K::Tarball | K::Dir => {
            let s = rootfs.source.as_ref().ok_or_else(|| {
                field_err(
                    name,
                    "rootfs.source",
                    "a tarball or dir root filesystem needs `source`",
                )
            })?;
            check_source(name, "rootfs.source", s)?;
        }
    }
    for p in &rootfs.packages {
        if p.is_empty()
            || !p
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(field_err(
                name,
                "rootfs.packages",
                format!("{p:?} is not a Debian package name"),
            ));
        }
    }
    Ok(())
}

fn check_disks(name: &str, disks: &[Disk]) -> Result<()> {
    for (i, d) in disks.iter().enumerate() {
        d.limits().check(&format!("template {name:?}: disk.{i}"))?;
        if let Some(s) = &d.source {
            check_source(name, &format!("disk.{i}.source"), s)?;
        } else if d.size.is_none() {
            return Err(field_err(
                name,
                &format!("disk.{i}"),
                "an empty disk needs a `size`",
            ));
        }
        if let Some(sz) = d.size {
            if sz > MAX_SIZE {
                return Err(field_err(
                    name,
                    &format!("disk.{i}.size"),
                    format!(
                        "{} is beyond the largest disk creature makes ({})",
                        sz.human(),
                        MAX_SIZE.human()
                    ),
                ));
            }
            if sz < Size(1 << 20) {
                return Err(field_err(
                    name,
                    &format!("disk.{i}.size"),
                    format!("{sz} is below 1MiB"),
                ));
            }
        }
    }
    Ok(())
}

fn check_volumes(
    name: &str,
    backend: Backend,
    vols: &[crate::template::schema::Volume],
) -> Result<()> {
    let container = backend == Backend::Lxc;
    for (i, v) in vols.iter().enumerate() {
        let at = |k: &str| format!("volume.{i}{k}");
        match (&v.path, container) {
            (None, true) => {
                return Err(field_err(
                    name,
                    &at(".path"),
                    "a container's volume needs the path it is mounted at",
                ))
            }
            (Some(p), true) if !crate::backend::lxc::volumes::path_ok(p) => {
                return Err(field_err(
                    name,
                    &at(".path"),
                    format!("{p:?} is not a plain absolute path (letters, digits, / . _ -), nor /"),
                ))
            }
            (Some(_), false) => {
                return Err(field_err(
                    name,
                    &at(".path"),
                    "is for containers; a VM's volume is a disk (target)",
                ))
            }
            _ => {}
        }
        if container
            && (v.target.is_some() || v.format == Some(crate::template::schema::DiskFormat::Qcow2))
        {
            return Err(field_err(
                name,
                &at(""),
                "a container's volume is raw with a filesystem, mounted at path: no target, no qcow2",
            ));
        }
        if backend == Backend::Xen
            && (v.format == Some(crate::template::schema::DiskFormat::Qcow2)
                || v.target.as_deref().is_some_and(|t| !t.starts_with("xvd")))
        {
            return Err(field_err(
                name,
                &at(""),
                "a Xen machine's volume is a raw file on an xvdX device: no qcow2, no vdX or sdX target",
            ));
        }
        match (&v.name, v.size) {
            (Some(n), None) => {
                names::check(What::Volume, n)
                    .map_err(|e| field_err(name, &at(".name"), e.message()))?;
                if v.format.is_some() || v.keep.is_some() {
                    return Err(field_err(
                        name,
                        &at(""),
                        "format and keep are for a volume made for the machine, not an existing one (name)",
                    ));
                }
            }
            (None, Some(sz)) => {
                if sz < Size(1 << 20) || sz > MAX_SIZE {
                    return Err(field_err(
                        name,
                        &at(".size"),
                        format!("{sz} is not between 1MiB and {}", MAX_SIZE.human()),
                    ));
                }
            }
            _ => {
                return Err(field_err(
                    name,
                    &at(""),
                    "needs either `name` (an existing volume) or `size` (one made for the machine)",
                ))
            }
        }
        if let Some(t) = &v.target {
            if crate::backend::libvirt::volume_xml::bus_of(t).is_none() {
                return Err(field_err(
                    name,
                    &at(".target"),
                    format!(
                        "{t:?} is not a device name such as vdb (virtio), sdb (scsi) or xvdb (xen)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_boot(name: &str, b: &Boot) -> Result<()> {
    if let Some(k) = &b.kernel {
        check_source(name, "boot.kernel", k)?;
    }
    if let Some(k) = &b.initrd {
        if b.kernel.is_none() {
            return Err(field_err(name, "boot.initrd", "needs boot.kernel"));
        }
        check_source(name, "boot.initrd", k)?;
    }
    if let Some(c) = &b.cmdline {
        if b.kernel.is_none() {
            return Err(field_err(name, "boot.cmdline", "needs boot.kernel"));
        }
        if c.chars().any(|ch| ch.is_control()) {
            return Err(field_err(
                name,
                "boot.cmdline",
                "must be one line without control characters",
            ));
        }
    }
    Ok(())
}

fn check_nics(name: &str, nics: &[Nic]) -> Result<()> {
    for (i, n) in nics.iter().enumerate() {
        names::check(What::Network, &n.network)
            .map_err(|e| field_err(name, &format!("nic.{i}.network"), e.message()))?;
        if let Some(m) = &n.mac {
            m.parse::<crate::net::Mac>()
                .map_err(|e| field_err(name, &format!("nic.{i}.mac"), e))?;
        }
        if let Some(ip) = &n.ip {
            ip.parse::<Ipv4Addr>().map_err(|_| {
                field_err(
                    name,
                    &format!("nic.{i}.ip"),
                    format!("{ip:?} is not an IPv4 address"),
                )
            })?;
        }
    }
    Ok(())
}

fn check_autostart(name: &str, backend: Backend, a: &Autostart) -> Result<()> {
    if let Some(w) = &a.wait {
        if w.parse::<crate::wait::Wait>().is_err() {
            return Err(field_err(
                name,
                "autostart.wait",
                format!("{w:?}: use {}", crate::wait::CHOICES),
            ));
        }
    }
    if a.stop_action == Some(StopAction::Suspend) {
        crate::op::Op::TemplateStopActionSuspend.require(crate::op::Who::Backend, backend)?;
    }
    Ok(())
}

fn check_cloud_init(name: &str, c: &CloudInit) -> Result<()> {
    use crate::seed;
    for u in &c.users {
        if !names::is_valid(&u.name) {
            return Err(field_err(
                name,
                "cloud_init.users",
                format!("{:?} is not a valid user name", u.name),
            ));
        }
    }
    let keys = c
        .ssh_keys
        .iter()
        .chain(c.users.iter().flat_map(|u| u.ssh_keys.iter()));
    for k in keys {
        seed::check_key(k).map_err(|e| field_err(name, "cloud_init.ssh_keys", e))?;
    }
    for cmd in &c.runcmd {
        if cmd.is_empty() {
            return Err(field_err(name, "cloud_init.runcmd", "an empty command"));
        }
    }
    if let Some(l) = &c.locale {
        let ok = !l.is_empty()
            && l.len() <= 64
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
        if !ok {
            return Err(field_err(
                name,
                "cloud_init.locale",
                format!("{l:?} is not a locale name such as C.UTF-8 or en_US.UTF-8"),
            ));
        }
    }
    if let Some(u) = &c.default_user {
        if !names::is_valid(u) {
            return Err(field_err(
                name,
                "cloud_init.default_user",
                format!("{u:?} is not a valid user name"),
            ));
        }
    }
    if let Some(h) = &c.hostname {
        if !names::is_valid(h) {
            return Err(field_err(
                name,
                "cloud_init.hostname",
                format!("{h:?} is not a valid host name (letters, digits and '-', at most 63)"),
            ));
        }
    }
    for f in &c.write_files {
        let field = "cloud_init.write_files";
        seed::check_dest(&f.path).map_err(|e| field_err(name, field, e))?;
        if let Some(m) = &f.mode {
            seed::parse_mode(m).map_err(|e| field_err(name, field, e))?;
        }
        if let Some(o) = &f.owner {
            seed::check_owner(o).map_err(|e| field_err(name, field, e))?;
        }
    }
    if let Some(p) = &c.user_data {
        if !p.starts_with('/') {
            return Err(field_err(
                name,
                "cloud_init.user_data",
                format!("{p:?} must be an absolute path on the host"),
            ));
        }
        // The file replaces the generated cloud-config: what it would hold
        // has nowhere to go.
        let generated = [
            ("users", !c.users.is_empty()),
            ("packages", !c.packages.is_empty()),
            ("runcmd", !c.runcmd.is_empty()),
            ("write_files", !c.write_files.is_empty()),
            ("locale", c.locale.is_some()),
        ];
        if let Some((k, _)) = generated.iter().find(|(_, set)| *set) {
            return Err(field_err(
                name,
                "cloud_init.user_data",
                format!("the file replaces the generated user-data, so cloud_init.{k} would be lost: put it in the file, or drop user_data"),
            ));
        }
    }
    Ok(())
}

fn check_injects(name: &str, injects: &[crate::template::schema::Inject]) -> Result<()> {
    use crate::seed;
    for i in injects {
        let field = "inject";
        if !i.source.starts_with('/') {
            return Err(field_err(
                name,
                "inject.source",
                format!("{:?} must be an absolute path on the host", i.source),
            ));
        }
        seed::check_dest(&i.dest).map_err(|e| field_err(name, "inject.dest", e))?;
        if let Some(m) = &i.mode {
            seed::parse_mode(m).map_err(|e| field_err(name, field, e))?;
        }
        if let Some(o) = &i.owner {
            seed::check_owner(o).map_err(|e| field_err(name, field, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod record_tests {
    use super::*;

    /// Every shipped template, with overrides, survives its record.
    #[test]
    fn a_record_gives_back_the_resolved_template() {
        let lib = Library::new(None);
        let mut tried = 0;
        for (name, _) in crate::template::load::SHIPPED {
            let name = name.trim_end_matches(".toml");
            let Ok(r) = resolve(
                &lib,
                name,
                &["cpus=1".into()],
                HostLimits {
                    cpus: 64,
                    memory: None,
                },
            ) else {
                continue;
            };
            let back = Resolved::from_record(&r.to_record().unwrap()).unwrap();
            assert_eq!(back.template, r.template, "{name}");
            assert_eq!(
                (back.name.as_str(), back.backend, back.cpus, back.memory),
                (r.name.as_str(), r.backend, r.cpus, r.memory),
                "{name}"
            );
            tried += 1;
        }
        assert!(tried >= 5, "only {tried} shipped templates resolved");
        assert!(Resolved::from_record("{").is_err());
    }
}
