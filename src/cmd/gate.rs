//! The gate every operation passes, in the same order for every verb:
//! names (exit 2), then the support matrix where no lookup is needed (an
//! operation no backend allows: exit 3), then the machine's record
//! (read-only; exit 4), then the matrix cell of its backend (exit 3). An
//! operation on a given backend (a new machine, `host disable`) goes
//! straight to that backend's cell, whose refusal says more. Only
//! what passes goes on to locks, connections, writes and prompts.

use crate::backend::Backend;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::op::{Op, Target, Who};
use crate::store::{MachineRecord, Store};

/// What an operation is asked to act on.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A machine creature has a record of, by name.
    Machine(&'a str),
    /// A machine about to be made, on this backend.
    New { name: &'a str, backend: Backend },
    /// A backend of the host.
    Backend(Backend),
    /// The host itself: another host is held to its engine's cells (so a
    /// partial one prints its note); this one's work serves all its backends.
    Host,
}

impl Subject<'_> {
    fn target(&self) -> Target {
        match self {
            Subject::Machine(_) => Target::Machine,
            Subject::New { .. } => Target::NewMachine,
            Subject::Backend(_) => Target::Backend,
            Subject::Host => Target::Host,
        }
    }
}

/// The record of a machine named for a verb the matrix does not govern
/// (`exec`, `shell`): its name (exit 2), then its record (exit 4).
pub fn record(ctx: &Ctx, name: &str) -> Result<MachineRecord> {
    names::check(What::Machine, name)?;
    machine_record(ctx, name)
}

/// A machine's record, read-only (exit 4 when there is none).
fn machine_record(ctx: &Ctx, name: &str) -> Result<MachineRecord> {
    Store::open_read_only(&ctx.global.state_dir)?
        .map(|s| s.machine(ctx.host_name(), name))
        .transpose()?
        .flatten()
        .ok_or_else(|| Error::machine_not_found(name, ctx.host_name()))
}

/// Check `op` on `subject`; returns the machine's record for a `Machine`.
pub fn check(ctx: &Ctx, op: Op, subject: Subject<'_>) -> Result<Option<MachineRecord>> {
    debug_assert_eq!(op.target(), subject.target(), "{op:?}");
    let name = match subject {
        Subject::Machine(n) | Subject::New { name: n, .. } => Some(n),
        Subject::Backend(_) | Subject::Host => None,
    };
    if let Some(n) = name {
        names::check(What::Machine, n)?;
    }
    // Where the backend must be looked up (or there is none), an operation
    // no backend allows is refused first; a known backend gets its own cell.
    let lookup = matches!(subject, Subject::Machine(_) | Subject::Host);
    if lookup && op.refused_everywhere() {
        return Err(op.refuse_everywhere(name));
    }
    let (backend, record) = match subject {
        Subject::Machine(n) => {
            let rec = machine_record(ctx, n)?;
            (Some(rec.backend), Some(rec))
        }
        Subject::New { backend, .. } | Subject::Backend(backend) => (Some(backend), None),
        // Another host's machines are all of its one engine (a Xen host's
        // are xen); what is made on this host serves kvm, qemu and lxc.
        Subject::Host => {
            let h = ctx.host()?;
            ((!h.is_local()).then(|| h.vm_engine()), None)
        }
    };
    if let Some(b) = backend {
        let who = name.map(Who::Machine).unwrap_or(Who::Backend);
        let hinted = |e: Error| match (op, b, name) {
            // The matrix refuses `log` for containers; their console is
            // logged all the same, so the refusal says where.
            (Op::Log, Backend::Lxc, Some(n)) => Error::new(
                e.kind(),
                format!(
                    "{}; the container's console is logged to {} (read it with less or tail)",
                    e.message(),
                    crate::backend::lxc::console_log(
                        &std::path::Path::new(&crate::backend::lxc::sys::lxcpath()).join(n)
                    )
                    .display()
                ),
            ),
            _ => e,
        };
        if let Some(note) = op.require(who, b).map_err(hinted)? {
            ctx.note(&format!("{} on {b} is partial: {note}", op.word()));
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn ctx(dir: &std::path::Path) -> Ctx {
        use clap::Parser;
        let cli = crate::cli::Cli::parse_from(
            ["creature", "--quiet", "--state-dir"]
                .into_iter()
                .chain([dir.to_str().unwrap(), "list"]),
        );
        Ctx { global: cli.global }
    }

    /// Every operation on a machine is decided the same way: exit 3 without
    /// a lookup when no backend allows it, else exit 4 for an unknown
    /// machine, else its backend's cell; and nothing is created.
    #[test]
    fn every_machine_op_is_gated_in_the_same_order() {
        let dir = tempfile::tempdir().unwrap();
        let sd = dir.path().join("state");
        let c = ctx(&sd);
        for op in Op::ALL.iter().filter(|o| o.target() == Target::Machine) {
            let e = check(&c, *op, Subject::Machine("nosuch")).unwrap_err();
            let want = if op.refused_everywhere() {
                Kind::Refused
            } else {
                Kind::NotFound
            };
            assert_eq!(e.kind(), want, "{op:?}: {}", e.message());
            let e = check(&c, *op, Subject::Machine("Bad_Name")).unwrap_err();
            assert_eq!(e.kind(), Kind::Invalid, "{op:?}");
        }
        assert!(
            !sd.exists(),
            "a refusal or lookup created the state directory"
        );

        let mut store = Store::open(&sd).unwrap();
        for b in Backend::ALL {
            let name = format!("m-{b}");
            store.begin_create("local", &name, b, None).unwrap();
            store
                .set_state("local", &name, crate::store::RecordState::Ready)
                .unwrap();
        }
        drop(store);
        for op in Op::ALL.iter().filter(|o| o.target() == Target::Machine) {
            for b in Backend::ALL {
                let name = format!("m-{b}");
                let got = check(&c, *op, Subject::Machine(&name));
                let allowed = op.feature().effective(b).allowed();
                match got {
                    Ok(rec) => {
                        assert!(allowed, "{op:?} on {b} passed the gate");
                        assert_eq!(rec.unwrap().backend, b);
                    }
                    Err(e) => {
                        assert!(!allowed, "{op:?} on {b}: {}", e.message());
                        assert_eq!(e.kind(), Kind::Refused, "{op:?} on {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn ops_without_a_machine_are_gated_by_the_matrix_alone() {
        let dir = tempfile::tempdir().unwrap();
        let c = ctx(dir.path());
        for op in Op::ALL {
            let subject = match op.target() {
                Target::Host => Subject::Host,
                Target::Backend => Subject::Backend(Backend::Lxc),
                Target::NewMachine => Subject::New {
                    name: "new",
                    backend: Backend::Lxc,
                },
                Target::Machine => continue,
            };
            let got = check(&c, *op, subject);
            let allowed = match op.target() {
                Target::Host => !op.refused_everywhere(),
                _ => op.feature().effective(Backend::Lxc).allowed(),
            };
            assert_eq!(got.is_ok(), allowed, "{op:?}");
        }
    }
}
