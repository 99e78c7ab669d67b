//! A lifecycle verb over several machines: names, `--all`, or filters
//! shared with `list`. Each machine goes through the same gate and verb as
//! alone, on a bounded pool of workers; one result line per machine, and
//! the exit status is the worst one (the highest code).

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::backend::PowerState;
use crate::cli::{Command, Filter, Selection};
use crate::cmd::{lifecycle, list, machine, Ctx};
use crate::error::{Error, Kind, Result};
use crate::interrupt;
use crate::names::{self, What};
use crate::op::Op;

/// The states in which a machine can take the verb `word` (also what shell
/// completion offers after it); None: any state.
pub fn states_for(word: &str) -> Option<&'static [PowerState]> {
    use PowerState as P;
    Some(match word {
        // A saved machine is brought back with restore, not start.
        "start" => &[P::ShutOff, P::Crashed],
        "destroy" => &[P::Running, P::Paused, P::ShuttingDown, P::Crashed],
        "stop" => &[P::Running, P::Paused, P::ShuttingDown],
        "reboot" | "restart" | "pause" | "exec" | "shell" | "console" => &[P::Running],
        "unpause" => &[P::Paused],
        "suspend" => &[P::Running, P::Paused],
        "restore" => &[P::Saved],
        _ => return None,
    })
}

/// Verbs that lose a machine or its running state: asked once for all.
fn destructive(cmd: &Command) -> bool {
    matches!(cmd, Command::Delete(_) | Command::Destroy(_))
}

/// Which of `rows` a selection picks (pure; `rows` from `list::rows`).
/// Without `--state`, the states the verb applies to: `start --all` starts
/// what is not running instead of failing on what is; delete takes any.
pub fn pick(op: Op, cmd: &Command, filter: &Filter, rows: &[list::ListRow]) -> Vec<String> {
    let mut f = filter.clone();
    if f.state.is_empty() {
        let word = if matches!(cmd, Command::Destroy(_)) {
            "destroy"
        } else {
            op.word()
        };
        f.state = states_for(word).map(<[_]>::to_vec).unwrap_or_default();
    }
    rows.iter()
        // Only creature's own machines; a missing one can still be deleted.
        .filter(|r| r.record == "ok" || (op == Op::Delete && r.record == "missing"))
        .filter(|r| list::matches(r, &f))
        .map(|r| r.name.clone())
        .collect()
}

pub fn run(ctx: &Ctx, op: Op, cmd: &Command, sel: &Selection) -> Result<()> {
    for n in &sel.names {
        names::check(What::Machine, n)?;
    }
    let chosen: Vec<String> = if sel.names.is_empty() {
        if op.refused_everywhere() {
            return Err(op.refuse_everywhere(None));
        }
        let host = ctx.host()?;
        pick(op, cmd, &sel.filter, &list::rows(ctx, &host)?)
    } else {
        let mut seen = std::collections::BTreeSet::new();
        sel.names
            .iter()
            .filter(|n| seen.insert(n.as_str()))
            .cloned()
            .collect()
    };
    if chosen.is_empty() {
        ctx.note(&format!("no machine to {}: none matches", op.word()));
        return Ok(());
    }
    if destructive(cmd) {
        let verb = if matches!(cmd, Command::Destroy(_)) {
            "power off"
        } else {
            "delete"
        };
        let what = if matches!(cmd, Command::Delete(_)) {
            " and their disks"
        } else {
            ""
        };
        lifecycle::confirm(
            ctx,
            &format!(
                "{verb} {} machines ({}){what}?",
                chosen.len(),
                chosen.join(", ")
            ),
        )?;
    }
    interrupt::catch();
    // Asked once above: each machine's own verb must not ask again.
    let mut each = ctx.clone();
    each.global.yes = true;
    let queue = Mutex::new(chosen.iter().cloned().collect::<VecDeque<_>>());
    let failed: Mutex<Vec<(String, Error)>> = Mutex::new(Vec::new());
    let workers = usize::from(sel.parallel).min(chosen.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if interrupt::requested() {
                    return;
                }
                let Some(name) = queue.lock().expect("queue").pop_front() else {
                    return;
                };
                if let Err(e) = machine::one(&each, op, cmd, &name) {
                    eprintln!("{}", e.report(Some(&name)));
                    failed.lock().expect("failures").push((name, e));
                }
            });
        }
    });
    let not_run: Vec<String> = queue.into_inner().expect("queue").into();
    let mut failed = failed.into_inner().expect("failures");
    if !not_run.is_empty() {
        return Err(interrupt::error(&format!(
            "{} of {} machines not begun: {}",
            not_run.len(),
            chosen.len(),
            not_run.join(", ")
        )));
    }
    if failed.is_empty() {
        return Ok(());
    }
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    let worst = failed
        .iter()
        .map(|(_, e)| e.kind())
        .max_by_key(|k| k.exit_code())
        .unwrap_or(Kind::Other);
    Err(Error::new(
        worst,
        format!(
            "{} of {} machines failed to {}: {}",
            failed.len(),
            chosen.len(),
            op.word(),
            failed
                .iter()
                .map(|(n, e)| format!("{n} (exit {})", e.kind().exit_code()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use clap::Parser;

    fn row(name: &str, backend: Backend, state: &str, record: &'static str) -> list::ListRow {
        list::ListRow {
            name: name.into(),
            host: "local".into(),
            backend,
            state: state.into(),
            record,
            template: Some(
                if backend == Backend::Lxc {
                    "lxc-busybox"
                } else {
                    "tiny"
                }
                .into(),
            ),
            created_at: None,
            nics: Vec::new(),
            cpus: None,
            memory_bytes: None,
            cpu_time_ns: None,
        }
    }

    fn cmd(args: &[&str]) -> Command {
        crate::cli::Cli::parse_from(std::iter::once(&"creature").chain(args)).command
    }

    #[test]
    fn all_picks_the_machines_the_verb_applies_to_and_never_a_foreign_one() {
        let rows = [
            row("a", Backend::Qemu, "running", "ok"),
            row("b", Backend::Lxc, "shut-off", "ok"),
            row("c", Backend::Lxc, "paused", "ok"),
            row("d", Backend::Qemu, "saved", "ok"),
            row("e", Backend::Qemu, "running", "foreign"),
            row("f", Backend::Lxc, "shut-off", "untracked"),
            row("g", Backend::Qemu, "-", "missing"),
            row("h", Backend::Qemu, "unknown", "ok"),
        ];
        let pick_for = |args: &[&str]| {
            let c = cmd(args);
            let (op, sel) = machine::selection(&c).unwrap();
            pick(op, &c, &sel.filter, &rows)
        };
        assert_eq!(pick_for(&["start", "--all"]), ["b"]);
        assert_eq!(pick_for(&["stop", "--all"]), ["a", "c"]);
        assert_eq!(pick_for(&["unpause", "--all"]), ["c"]);
        assert_eq!(pick_for(&["restore", "--all"]), ["d"]);
        assert_eq!(pick_for(&["stop", "--backend", "lxc"]), ["c"]);
        assert_eq!(pick_for(&["start", "--backend", "lxc"]), ["b"]);
        // An explicit state replaces the verb's own.
        assert_eq!(pick_for(&["stop", "--state", "running"]), ["a"]);
        assert_eq!(
            pick_for(&["delete", "--all"]),
            ["a", "b", "c", "d", "g", "h"]
        );
        assert_eq!(
            pick_for(&["delete", "--template", "tiny"]),
            ["a", "d", "g", "h"]
        );
        assert_eq!(pick_for(&["delete", "--state", "shut-off"]), ["b"]);
    }

    #[test]
    fn one_name_alone_is_the_single_machine_path() {
        assert_eq!(
            machine::route(&cmd(&["start", "a"])),
            Some((Op::Start, "a"))
        );
        assert_eq!(machine::route(&cmd(&["start", "a", "b"])), None);
        assert_eq!(machine::route(&cmd(&["start", "--all"])), None);
        assert!(crate::cli::Cli::try_parse_from(["creature", "start"]).is_err());
        assert!(crate::cli::Cli::try_parse_from(["creature", "start", "a", "--all"]).is_err());
        assert!(
            crate::cli::Cli::try_parse_from(["creature", "start", "a", "--backend", "lxc"])
                .is_err()
        );
    }
}
