//! `creature`: the front. What needs no backend (`--version`, `matrix`) is
//! answered here, without libvirt's and liblxc's libraries, which cost
//! about 11 ms and 14 MiB to load (docs/performance.md, start-up);
//! everything else, completion included, is the engine's: this process
//! becomes `creature-engine` (exec, same pid), which has the whole
//! command line.
//!
//! The grammar here is deliberately tiny: anything it does not know
//! exactly, help and errors included, goes to the engine, so the two can
//! never disagree about what a command means.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use creature::cli::MatrixArgs;
use creature::output::Format;

/// What the front answers itself.
enum Fast {
    Version,
    Matrix(MatrixArgs, Format),
}

fn fast(args: &[OsString]) -> Option<Fast> {
    if std::env::var_os(creature::generate::COMPLETE_VAR).is_some() {
        return None;
    }
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

/// The engine beside this binary (a build tree), else where the package
/// puts it.
fn engine() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("creature-engine")));
    match beside {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("/usr/lib/creature/creature-engine"),
    }
}

fn main() {
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
            let engine = engine();
            let mut cmd = std::process::Command::new(&engine);
            cmd.arg0(&arg0).args(&args);
            // Where the user's `creature` is: the engine prints it in the
            // systemd unit it writes.
            if let Ok(me) = std::env::current_exe() {
                cmd.env(creature::generate::FRONT_VAR, me);
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
