//! `creature host info|add|list|remove|disable|enable|maintenance`.

use serde::Serialize;

use crate::backend::Backend;
use crate::cli::HostCommand;
use crate::cmd::gate::Subject;
use crate::cmd::{gate, Ctx};
use crate::error::{Error, Result};
use crate::host::{self, HostInfo};
use crate::matrix::Feature;
use crate::op::Op;
use crate::output::{self, Table};

#[derive(Serialize)]
struct InfoView {
    #[serde(flatten)]
    info: HostInfo,
    /// creature's effective "Guest host status" cell per backend.
    host_status: Vec<HostStatus>,
    /// Whether `net create --vlan` can work here, and why not.
    vlan: Facility,
}

/// A host facility: usable or not, and why.
#[derive(Serialize)]
struct Facility {
    usable: bool,
    detail: String,
}

#[derive(Serialize)]
struct HostStatus {
    backend: Backend,
    cell: &'static str,
}

fn human_bytes(b: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    format!("{:.1} GiB", b as f64 / GIB)
}

pub fn run(ctx: &Ctx, cmd: HostCommand) -> Result<()> {
    match cmd {
        HostCommand::Info { name: Some(n) } if n != crate::config::LOCAL => remote_info(ctx, &n),
        HostCommand::Info { .. } => {
            let info = host::probe()?;
            let view = InfoView {
                host_status: Backend::ALL
                    .iter()
                    .map(|b| HostStatus {
                        backend: *b,
                        cell: Feature::HostStatus.effective(*b).word(),
                    })
                    .collect(),
                info,
                vlan: match crate::backend::ovs::usable() {
                    Ok(()) => Facility {
                        usable: true,
                        detail: "Open vSwitch answers: VLAN networks get an access port on a trunk"
                            .into(),
                    },
                    Err(why) => Facility {
                        usable: false,
                        detail: why,
                    },
                },
            };
            output::emit(ctx.global.format, &view, || {
                let i = &view.info;
                let mut t = Table::new(["KEY", "VALUE"]);
                t.row(["hostname", &i.hostname]);
                t.row(["kernel", &i.kernel]);
                t.row(["cpu", &format!("{} x {}", i.cpus, i.cpu_model)]);
                t.row(["memory".to_string(), human_bytes(i.memory_bytes)]);
                t.row(["libvirt library", &i.libvirt_library]);
                t.row([
                    "libvirtd",
                    i.libvirt_daemon.as_deref().unwrap_or("not reachable"),
                ]);
                t.row(["liblxc", &i.liblxc]);
                t.row([
                    "vlan networks".to_string(),
                    format!(
                        "{}: {}",
                        if view.vlan.usable {
                            "usable"
                        } else {
                            "unusable"
                        },
                        view.vlan.detail
                    ),
                ]);
                for s in &i.backends {
                    t.row([
                        format!("backend {}", s.backend),
                        format!(
                            "{}: {}",
                            if s.usable { "usable" } else { "unusable" },
                            s.detail
                        ),
                    ]);
                }
                t
            })
        }
        HostCommand::Add { name, uri } => add(ctx, &name, &uri),
        HostCommand::List => list(ctx),
        HostCommand::Remove { name } => {
            crate::names::check(crate::names::What::Host, &name)?;
            let mut store = crate::store::Store::open(&ctx.global.state_dir)?;
            store.remove_host(&name)?;
            ctx.say(&format!("removed host {name}"));
            Ok(())
        }
        HostCommand::Maintenance => {
            gate::check(ctx, Op::HostMaintenance, Subject::Host)?;
            Err(Error::other("host maintenance has no implementation"))
        }
        HostCommand::Disable { name, reason } => service(ctx, &name, Some(reason)),
        HostCommand::Enable { name } => service(ctx, &name, None),
    }
}

/// `host info NAME` of another host: what its libvirtd says.
#[derive(Serialize)]
struct RemoteInfo {
    name: String,
    uri: String,
    hostname: String,
    cpu_model: String,
    cpus: u32,
    memory_bytes: u64,
    free_memory_bytes: u64,
    libvirt_daemon: String,
    /// Domain types libvirt offers there for x86_64 (qemu, kvm, xen).
    domain_types: Vec<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    machines: usize,
}

fn remote_info(ctx: &Ctx, name: &str) -> Result<()> {
    crate::names::check(crate::names::What::Host, name)?;
    let host = crate::backend::Host::resolve(Some(name), &ctx.global.state_dir)?;
    let uri = crate::backend::libvirt::Uri(host.uri_text());
    let conn = crate::backend::libvirt::open(&uri, std::time::Duration::from_secs(10))?;
    let lv = |what: &str, e| {
        crate::backend::libvirt::map_error(format!("host {name}: cannot read {what}"), e)
    };
    let node = conn.node_info().map_err(|e| lv("its node facts", e))?;
    let caps = conn.capabilities().map_err(|e| lv("its capabilities", e))?;
    let store = crate::store::Store::open_read_only(&ctx.global.state_dir)?;
    let (reason, machines) = match &store {
        Some(s) => (s.host_disabled(name)?, s.machines(Some(name))?.len()),
        None => (None, 0),
    };
    let view = RemoteInfo {
        name: name.to_string(),
        uri: uri.0.clone(),
        hostname: conn.hostname().map_err(|e| lv("its host name", e))?,
        cpu_model: node.model.clone(),
        cpus: node.cpus,
        memory_bytes: node.memory * 1024,
        free_memory_bytes: conn.free_memory().map_err(|e| lv("its free memory", e))?,
        libvirt_daemon: host::version_string(
            conn.lib_version()
                .map_err(|e| lv("its libvirt version", e))?,
        ),
        domain_types: host::domain_types(&caps).into_iter().collect(),
        enabled: reason.is_none(),
        disabled_reason: reason,
        machines,
    };
    output::emit(ctx.global.format, &view, || {
        let mut t = Table::new(["KEY", "VALUE"]);
        t.row(["name", &view.name]);
        t.row(["uri", &view.uri]);
        t.row(["hostname", &view.hostname]);
        t.row([
            "cpu".to_string(),
            format!("{} x {}", view.cpus, view.cpu_model),
        ]);
        t.row([
            "memory".to_string(),
            format!(
                "{} ({} free)",
                human_bytes(view.memory_bytes),
                human_bytes(view.free_memory_bytes)
            ),
        ]);
        t.row(["libvirtd", &view.libvirt_daemon]);
        t.row(["domain types".to_string(), view.domain_types.join(", ")]);
        t.row([
            "service".to_string(),
            match &view.disabled_reason {
                None => "enabled".into(),
                Some(r) => format!("disabled: {r}"),
            },
        ]);
        t.row(["machines".to_string(), view.machines.to_string()]);
        t
    })
}

/// `host disable NAME [--reason]` (`reason` Some) or `host enable NAME`.
fn service(ctx: &Ctx, name: &str, reason: Option<Option<String>>) -> Result<()> {
    crate::names::check(crate::names::What::Host, name)?;
    let host = crate::backend::Host::resolve(Some(name), &ctx.global.state_dir)?;
    let op = if reason.is_some() {
        Op::HostDisable
    } else {
        Op::HostEnable
    };
    // Its VM driver's cell governs it (containers are never placed on a
    // host by creature's choice).
    gate::check(ctx, op, Subject::Backend(host.vm_engine()))?;
    let mut store = crate::store::Store::open(&ctx.global.state_dir)?;
    match reason {
        Some(r) => {
            let r = r.unwrap_or_default();
            if r.chars().any(char::is_control) {
                return Err(Error::invalid("--reason: one line of text, please"));
            }
            store.disable_host(name, &r)?;
            ctx.say(&format!(
                "disabled host {name}: it takes no new machines; its machines keep running"
            ));
            if host.is_local() {
                ctx.note("containers are not governed by it (service control is missing for lxc)");
            }
        }
        None => {
            if store.enable_host(name)? {
                ctx.say(&format!("enabled host {name}"));
            } else {
                ctx.say(&format!("host {name} was not disabled"));
            }
        }
    }
    Ok(())
}

/// The libvirt URI schemes creature drives (`driver[+transport]://...`).
fn check_uri(uri: &str) -> Result<()> {
    let bad = |why: &str| Error::invalid(format!("host URI {uri:?}: {why}"));
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| bad("expected DRIVER[+TRANSPORT]://[USER@]HOST[:PORT]/PATH"))?;
    let (driver, transport) = match scheme.split_once('+') {
        Some((d, t)) => (d, Some(t)),
        None => (scheme, None),
    };
    if !matches!(driver, "qemu" | "xen") {
        return Err(bad(
            "the driver must be qemu or xen (containers are this host's only)",
        ));
    }
    if transport.is_some_and(|t| !matches!(t, "ssh" | "tcp" | "tls" | "libssh" | "libssh2")) {
        return Err(bad(
            "the transport must be ssh, tcp, tls, libssh or libssh2",
        ));
    }
    if !rest.contains('/') || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("expected a path such as /system, and no spaces"));
    }
    Ok(())
}

fn add(ctx: &Ctx, name: &str, uri: &str) -> Result<()> {
    crate::names::check(crate::names::What::Host, name)?;
    if name == crate::config::LOCAL {
        return Err(Error::invalid(
            "`local` is this host; name the other host differently",
        ));
    }
    check_uri(uri)?;
    let mut store = crate::store::Store::open(&ctx.global.state_dir)?;
    store.add_host(name, uri)?;
    // Added even when it does not answer now (a host may be down); said.
    match crate::backend::libvirt::open(
        &crate::backend::libvirt::Uri(uri.to_string()),
        std::time::Duration::from_secs(5),
    ) {
        Ok(_) => ctx.say(&format!("added host {name} ({uri})")),
        Err(e) => {
            ctx.say(&format!("added host {name} ({uri})"));
            eprintln!("warning: host {name} does not answer now: {}", e.message());
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct HostRow {
    name: String,
    uri: String,
    /// Whether libvirt on it answered within the deadline.
    reachable: bool,
    /// libvirtd's version there; null when it did not answer.
    libvirt: Option<String>,
    /// Why it did not answer; null when it did.
    error: Option<String>,
    /// creature's machines recorded on it.
    machines: usize,
    /// It takes new machines (`host disable` makes it false).
    enabled: bool,
    /// Why it is disabled; null when enabled.
    disabled_reason: Option<String>,
}

/// Each host asked at once, each within its own deadline.
fn list(ctx: &Ctx) -> Result<()> {
    let hosts = crate::backend::Host::all(&ctx.global.state_dir)?;
    let store = crate::store::Store::open_read_only(&ctx.global.state_dir)?;
    let counts = match &store {
        Some(s) => s.machines(None)?,
        None => Vec::new(),
    };
    let mut disabled = std::collections::BTreeMap::new();
    if let Some(s) = &store {
        for h in &hosts {
            if let Some(r) = s.host_disabled(h.name())? {
                disabled.insert(h.name().to_string(), r);
            }
        }
    }
    let probes: Vec<_> = hosts
        .iter()
        .map(|h| {
            let uri = crate::backend::libvirt::Uri(h.uri_text());
            std::thread::spawn(move || {
                crate::backend::libvirt::open(&uri, std::time::Duration::from_secs(5)).and_then(
                    |c| {
                        c.lib_version()
                            .map(crate::host::version_string)
                            .map_err(|e| crate::backend::libvirt::map_error("libvirt version", e))
                    },
                )
            })
        })
        .collect();
    let rows: Vec<HostRow> = hosts
        .iter()
        .zip(probes)
        .map(|(h, p)| {
            let got = p
                .join()
                .unwrap_or_else(|_| Err(Error::other("the probe panicked")));
            HostRow {
                name: h.name().to_string(),
                uri: h.uri_text(),
                reachable: got.is_ok(),
                libvirt: got.as_ref().ok().cloned(),
                error: got.err().map(|e| e.message().to_string()),
                machines: counts.iter().filter(|m| m.host == h.name()).count(),
                enabled: !disabled.contains_key(h.name()),
                disabled_reason: disabled.get(h.name()).cloned(),
            }
        })
        .collect();
    output::emit(ctx.global.format, &rows, || {
        let mut t = Table::new(["NAME", "URI", "STATE", "MACHINES", "SERVICE"]);
        for r in &rows {
            t.row([
                r.name.clone(),
                r.uri.clone(),
                match &r.libvirt {
                    Some(v) => format!("up (libvirt {v})"),
                    None => "unreachable".into(),
                },
                r.machines.to_string(),
                match &r.disabled_reason {
                    None => "enabled".into(),
                    Some(w) if w.is_empty() => "disabled".into(),
                    Some(w) => format!("disabled: {w}"),
                },
            ]);
        }
        t
    })
}
