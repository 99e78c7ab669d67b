//! Files generated from the code and committed: shell completions, man pages
//! and docs/support-matrix.md. `creature generate` writes them; a test fails
//! when a committed copy differs from what this produces.

use std::path::PathBuf;

use clap_complete::env::Shells;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use crate::error::Kind;
use crate::matrix::{Backend, Feature};

/// The environment variable the shell sets when it calls creature back.
pub const COMPLETE_VAR: &str = "COMPLETE";

/// Every generated file: (path relative to the repository root, contents).
pub fn artifacts() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = completions();
    out.extend(man_pages());
    out.push((
        PathBuf::from("docs/support-matrix.md"),
        crate::cmd::matrix::markdown().into_bytes(),
    ));
    out
}

fn completions() -> Vec<(PathBuf, Vec<u8>)> {
    let shells = Shells::builtins();
    [
        ("bash", "creature.bash"),
        ("zsh", "_creature"),
        ("fish", "creature.fish"),
    ]
    .into_iter()
    .map(|(shell, file)| {
        let mut buf = Vec::new();
        shells
            .completer(shell)
            .expect("builtin shell")
            .write_registration(COMPLETE_VAR, "creature", "creature", "creature", &mut buf)
            .expect("writing to a Vec cannot fail");
        (PathBuf::from("completions").join(file), buf)
    })
    .collect()
}

fn man_pages() -> Vec<(PathBuf, Vec<u8>)> {
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = Vec::new();
    collect(&cmd, &mut out, true);
    out
}

fn collect(cmd: &clap::Command, out: &mut Vec<(PathBuf, Vec<u8>)>, top: bool) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, out, false);
    }
    let man = Man::new(cmd.clone()).manual("creature manual");
    let mut buf = Vec::new();
    man.render(&mut buf).expect("writing to a Vec cannot fail");
    if top {
        top_sections()
            .to_writer(&mut buf)
            .expect("writing to a Vec cannot fail");
    }
    out.push((PathBuf::from("man").join(man.get_filename()), buf));
}

/// Sections only creature(1) has: exit status, the matrix rule, files.
fn top_sections() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for k in Kind::ALL {
        r.control("TP", []);
        r.text([bold(k.exit_code().to_string())]);
        r.text([roman(k.meaning())]);
    }
    r.control("SH", ["SUPPORT MATRIX"]);
    r.text([roman(
        "Every operation on a machine is checked against the support matrix before any lock, \
         connection, file write or prompt. The matrix is the OpenStack Nova hypervisor support \
         matrix cut down to creature's backends (kvm, qemu, lxc, xen). A cell Nova marks missing \
         is always refused; a cell Nova marks unknown is refused until creature proves it with a \
         real-backend test; a complete or partial cell is refused until creature implements it. \
         Refusals exit with status 3 and name the operation, the machine, its backend and the \
         cell. Partial cells print their note when the operation runs. \
         See creature-matrix(1) and docs/support-matrix.md.",
    )]);
    r.control("PP", []);
    let allowed: Vec<String> = Feature::ALL
        .iter()
        .flat_map(|f| {
            Backend::ALL
                .iter()
                .filter(move |b| f.effective(**b).allowed())
                .map(move |b| format!("{} on {}", f.id(), b))
        })
        .collect();
    r.text([roman(format!(
        "Allowed today: {}.",
        if allowed.is_empty() {
            "nothing".into()
        } else {
            allowed.join(", ")
        }
    ))]);
    r.control("SH", ["FILES"]);
    r.control("TP", []);
    r.text([bold("/var/lib/creature/creature.db")]);
    r.text([roman(
        "State database (SQLite, WAL mode). The directory is created mode 0700; a state \
         directory or database that is a symlink or writable by others is refused (exit 9).",
    )]);
    r.control("TP", []);
    r.text([bold("/etc/creature/config.toml")]);
    r.text([roman(
        "Named hosts: [hosts.NAME] uri = \"qemu+ssh://root@h2/system\".",
    )]);
    r.control("SH", ["ENVIRONMENT"]);
    r.control("TP", []);
    r.text([bold("CREATURE_STATE_DIR")]);
    r.text([roman("State directory, as --state-dir.")]);
    r.control("TP", []);
    r.text([bold("CREATURE_HOST")]);
    r.text([roman("Host, as --host.")]);
    r.control("TP", []);
    r.text([bold("NO_COLOR")]);
    r.text([roman("When set and not empty, no colors.")]);
    r
}
