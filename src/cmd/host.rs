//! `creature host info|maintenance|service`.

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
        HostCommand::Info => {
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
        HostCommand::Maintenance => {
            gate::check(ctx, Op::HostMaintenance, Subject::Host)?;
            Err(Error::other("host maintenance has no implementation"))
        }
        HostCommand::Service { backend, .. } => {
            gate::check(ctx, Op::HostService, Subject::Backend(backend))?;
            Err(Error::other("host service has no implementation"))
        }
    }
}
