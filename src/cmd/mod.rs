//! One file per verb group; this one routes parsed commands to them.

mod autostart;
mod config_drive;
mod console;
mod create;
mod display;
mod doctor;
mod evacuate;
mod exec;
mod gate;
mod host;
mod image;
mod lifecycle;
mod limits;
pub mod list;
mod machine;
pub mod many;
pub mod matrix;
mod migrate;
mod net;
mod nic_view;
mod repair;
mod rescue;
mod secgroup;
mod snapshot;
mod template;
pub(crate) mod volume;

use crate::cli::{Cli, Command, Global};
use crate::error::{Error, Result};
use crate::names::{self, What};

/// What every verb gets: the global options.
#[derive(Clone)]
pub struct Ctx {
    pub global: Global,
}

impl Ctx {
    pub fn host_name(&self) -> &str {
        self.global.host.as_deref().unwrap_or(crate::config::LOCAL)
    }

    /// The host this command acts on, resolved once (a named host's URI
    /// comes from the configuration) and handed down.
    pub fn host(&self) -> Result<crate::backend::Host> {
        crate::backend::Host::resolve(self.global.host.as_deref(), &self.global.state_dir)
    }

    /// libvirt on this command's host, where its networks and volumes are.
    pub fn network_conn(&self) -> Result<virt::connect::Connect> {
        crate::backend::libvirt::open(
            &self.host()?.network_uri()?,
            std::time::Duration::from_secs(30),
        )
    }

    /// A result line on stdout (`started web`), unless --quiet. With
    /// `--format json` stdout carries JSON alone, so the line goes to stderr.
    pub fn say(&self, msg: &str) {
        if self.global.quiet {
            return;
        }
        if self.global.format == crate::output::Format::Json {
            eprintln!("{msg}");
        } else {
            let _ = crate::output::write_stdout(&format!("{msg}\n"));
        }
    }

    /// A remark on stderr (partial cells, progress), unless --quiet.
    pub fn note(&self, msg: &str) {
        if !self.global.quiet {
            eprintln!("note: {msg}");
        }
    }
}

pub fn run(cli: Cli) -> Result<()> {
    if let Some(h) = &cli.global.host {
        names::check(What::Host, h)?;
    }
    crate::trace::set_level(if cli.global.quiet {
        0
    } else {
        cli.global.verbose
    });
    let mut ctx = Ctx { global: cli.global };
    // Machine names are unique across hosts: a verb that names one machine
    // finds its host without `--host`.
    let named = match &cli.command {
        Command::Exec(a) => Some(a.machine.name.as_str()),
        Command::Shell(a) => Some(a.machine.name.as_str()),
        Command::Autostart(crate::cli::AutostartCommand::Enable(a)) => {
            Some(a.machine.name.as_str())
        }
        Command::Autostart(
            crate::cli::AutostartCommand::Disable(a) | crate::cli::AutostartCommand::Show(a),
        ) => Some(a.name.as_str()),
        c => machine::route(c).map(|(_, n)| n),
    };
    if let (None, Some(n)) = (&ctx.global.host, named) {
        if names::check(What::Machine, n).is_ok() {
            if let Some(s) = crate::store::Store::open_read_only(&ctx.global.state_dir)? {
                ctx.global.host = s.host_of(n)?.filter(|h| h != crate::config::LOCAL);
            }
        }
    }
    match cli.command {
        Command::Matrix(a) => matrix::run(&a, ctx.global.format),
        Command::Doctor => doctor::run(&ctx),
        Command::Generate(a) => write_generated(&a.out),
        Command::Host(h) => host::run(&ctx, h),
        Command::List(a) => list::run(&ctx, &a),
        Command::Net(n) => net::run(&ctx, n),
        Command::Repair(a) => repair::run(&ctx, &a),
        Command::Exec(a) => exec::run(&ctx, &a.machine.name, &a.opts, a.command.clone()),
        Command::Shell(a) => exec::run(&ctx, &a.machine.name, &a.opts, Vec::new()),
        Command::Template(t) => template::run(&ctx, t),
        Command::Image(i) => image::run(&ctx, i),
        Command::Autostart(a) => autostart::run(&ctx, a),
        Command::Autostop(a) => autostart::run_stop(&ctx, a),
        other => machine::run(&ctx, other),
    }
}

fn write_generated(out: &std::path::Path) -> Result<()> {
    for (rel, bytes) in crate::generate::artifacts() {
        let path = out.join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::other(format!("cannot create {}", dir.display())).caused_by(e)
            })?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| Error::other(format!("cannot write {}", path.display())).caused_by(e))?;
    }
    let readme = out.join("README.md");
    if let Ok(text) = std::fs::read_to_string(&readme) {
        let fresh = crate::generate::readme_with_fresh_block(&text).ok_or_else(|| {
            Error::other(format!("{} lacks the exit-codes markers", readme.display()))
        })?;
        std::fs::write(&readme, fresh)
            .map_err(|e| Error::other(format!("cannot write {}", readme.display())).caused_by(e))?;
    }
    Ok(())
}
