//! `creature`: the front. What needs no backend (`--version`, `matrix`,
//! shell completion) is answered here, without libvirt's and liblxc's
//! libraries, which cost about 11 ms and 14 MiB to load
//! (docs/performance.md, start-up); for everything else this process
//! becomes `creature-engine` (exec, same pid), which has the whole
//! command line.
//!
//! The grammar here is deliberately tiny: anything it does not know
//! exactly, help and errors included, goes to the engine, so the two can
//! never disagree about what a command means.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use creature::cli::MatrixArgs;
use creature::output::Format;

/// What the front answers itself.
enum Fast {
    Version,
    Matrix(MatrixArgs, Format),
}

fn fast(args: &[OsString]) -> Option<Fast> {
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    match args.as_slice() {
        ["--version"] | ["-V"] => Some(Fast::Version),
        ["matrix", rest @ ..] => {
            let mut m = MatrixArgs {
                backend: None,
                feature: None,
            };
            let mut format = Format::Table;
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                let (key, inline) = match a.split_once('=') {
                    Some((k, v)) if k.starts_with("--") => (k, Some(v)),
                    _ => (*a, None),
                };
                let mut value = || inline.or_else(|| it.next().copied());
                match key {
                    "--backend" if m.backend.is_none() => {
                        m.backend = Some(creature::backend::Backend::parse(value()?)?)
                    }
                    "--feature" if m.feature.is_none() => m.feature = Some(value()?.to_string()),
                    "--format" => {
                        format = match value()? {
                            "table" => Format::Table,
                            "json" => Format::Json,
                            "markdown" => Format::Markdown,
                            _ => return None,
                        }
                    }
                    _ => return None,
                }
            }
            Some(Fast::Matrix(m, format))
        }
        _ => None,
    }
}

fn main() {
    // Completion is answered here too; what needs a backend (machines in
    // a state) the completers ask the engine for, as a child.
    clap_complete::CompleteEnv::with_factory(creature::cli::command)
        .var(creature::generate::COMPLETE_VAR)
        .complete();
    let mut argv = std::env::args_os();
    let arg0 = argv.next().unwrap_or_else(|| "creature".into());
    let args: Vec<OsString> = argv.collect();
    let done = match fast(&args) {
        Some(Fast::Version) => {
            println!("creature {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some(Fast::Matrix(m, format)) => creature::cmd::matrix::run(&m, format),
        None => {
            let engine = creature::front::engine();
            let mut cmd = std::process::Command::new(&engine);
            cmd.arg0(&arg0).args(&args);
            // Where the user's `creature` is: the engine prints it in the
            // systemd unit it writes.
            if let Ok(me) = std::env::current_exe() {
                cmd.env(creature::front::FRONT_VAR, me);
            }
            let e = cmd.exec();
            eprintln!("error: cannot run {}: {e}", engine.display());
            std::process::exit(6);
        }
    };
    if let Err(e) = done {
        eprintln!("{}", e.report(None));
        std::process::exit(e.kind().exit_code());
    }
}
