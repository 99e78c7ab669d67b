//! `creature exec` and `creature shell`: a command inside a running
//! machine, through its backend's way in; creature exits with the
//! command's status. A VM is reached through the QEMU guest agent, or over
//! ssh with creature's own key where its config drive authorized one: for a
//! terminal, another user or a shell (which the agent cannot give), and
//! when the agent is not there.

use std::io::{IsTerminal, Write};

use crate::backend::{self, Backend, ExecSpec, PowerState};
use crate::cli::ExecOpts;
use crate::cmd::{gate, Ctx};
use crate::error::{Error, Kind, Result};
use crate::exec;
use crate::seed;
use crate::ssh::{self, Route};

pub fn run(ctx: &Ctx, name: &str, opts: &ExecOpts, argv: Vec<String>) -> Result<()> {
    let rec = gate::record(ctx, name)?;
    let env = opts
        .env
        .iter()
        .map(|kv| exec::check_env(kv).map(|(k, v)| (k.to_string(), v.to_string())))
        .collect::<Result<Vec<_>>>()?;
    let tty = opts.tty
        || (!opts.no_tty && std::io::stdin().is_terminal() && std::io::stdout().is_terminal());
    let spec = ExecSpec {
        argv,
        env,
        user: opts.user.clone(),
        cwd: opts.cwd.clone(),
        tty,
        term: tty.then(|| std::env::var("TERM").unwrap_or_else(|_| "xterm".into())),
    };
    let host = ctx.host()?;
    let drv = backend::open(rec.backend, &host)?;
    let route = match rec.backend {
        Backend::Lxc => None,
        _ => route(ctx, &rec.name)?,
    };
    let code = match route {
        Some(r) => {
            let st = drv.state(&rec.name)?;
            if st != PowerState::Running {
                return Err(backend::wrong_state(&rec.name, "run a command in", st));
            }
            let agent_cannot = spec.tty || spec.argv.is_empty() || spec.user.is_some();
            if agent_cannot {
                over_ssh(&rec.name, &r, &spec)?
            } else {
                match drv.exec(&rec.name, &spec) {
                    // No agent, or it does not answer: ssh is the other way in.
                    Err(e) if e.kind() == Kind::Unavailable => over_ssh(&rec.name, &r, &spec)?,
                    other => other?,
                }
            }
        }
        None => drv.exec(&rec.name, &spec)?,
    };
    drop(drv);
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// The machine's ssh route: its config drive authorized creature's key for
/// the image's default user, and its first NIC has a reserved address.
fn route(ctx: &Ctx, name: &str) -> Result<Option<Route>> {
    let dir = &ctx.global.state_dir;
    let Some(s) = seed::store::load(dir, name)? else {
        return Ok(None);
    };
    let (Some(user), Some(_)) = (s.default_user, s.creature_key) else {
        return Ok(None);
    };
    let key = seed::drive::key_path(dir, name);
    let Some(ip) = crate::cmd::lifecycle::machine_nics(ctx, name)?
        .into_iter()
        .find_map(|n| n.ip)
    else {
        return Ok(None);
    };
    Ok(Some(Route {
        user,
        ip,
        key: key.display().to_string(),
        known_hosts: seed::drive::known_hosts(dir, name).display().to_string(),
    }))
}

/// Run it over ssh; the remote command's status (255: ssh's own failure,
/// told as exit 6).
fn over_ssh(name: &str, r: &Route, spec: &ExecSpec) -> Result<i32> {
    let args = ssh::argv(r, spec);
    let mut cmd = std::process::Command::new("ssh");
    cmd.args(&args);
    if let Some(t) = &spec.term {
        cmd.env("TERM", t);
    }
    let st = crate::trace::call(|| format!("ssh {}", args.join(" ")), || cmd.status())
        .map_err(|e| Error::unavailable("cannot run ssh (openssh-client)").caused_by(e))?;
    match st.code() {
        Some(255) => Err(Error::unavailable(format!(
            "cannot reach machine {name:?} over ssh as {}@{} (is it booted, with sshd and cloud-init?)",
            r.user, r.ip
        ))),
        Some(c) => Ok(c),
        None => {
            use std::os::unix::process::ExitStatusExt;
            Ok(128 + st.signal().unwrap_or(0))
        }
    }
}
