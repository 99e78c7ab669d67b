//! `creature exec` and `creature shell`: a command inside a running
//! machine, through its backend's way in; creature exits with the
//! command's status.

use std::io::{IsTerminal, Write};

use crate::backend::{self, ExecSpec};
use crate::cli::ExecOpts;
use crate::cmd::{gate, Ctx};
use crate::error::Result;
use crate::exec;

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
    let code = drv.exec(&rec.name, &spec)?;
    drop(drv);
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}
