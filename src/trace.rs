//! `-v` and `-vv`: what creature asks of its backends, on stderr. `-v`
//! prints each backend call with its duration; `-vv` adds the XML and
//! configuration text creature sends. The level is set once by `cmd::run`;
//! nothing is printed at level 0, and nothing here changes what is done.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static LEVEL: AtomicU8 = AtomicU8::new(0);
static START: OnceLock<Instant> = OnceLock::new();

pub fn set_level(level: u8) {
    START.get_or_init(Instant::now);
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

fn stamp() -> f64 {
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Run `f` and, at `-v`, say what it was, how long it took and whether it failed.
pub fn call<T, E: std::fmt::Display>(
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    if level() == 0 {
        return f();
    }
    let at = stamp();
    let t = Instant::now();
    let r = f();
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let outcome = match &r {
        Ok(_) => String::new(),
        Err(e) => format!(": failed: {e}"),
    };
    eprintln!("trace: [+{at:.3}s] {} ({ms:.1} ms){outcome}", what());
    r
}

/// At `-vv`, the text sent (domain or network XML, a container's config).
pub fn text(what: &str, body: &str) {
    if level() < 2 {
        return;
    }
    let mut out = format!("trace: [+{:.3}s] {what}:\n", stamp());
    for line in body.lines() {
        out.push_str("trace: | ");
        out.push_str(line);
        out.push('\n');
    }
    eprint!("{out}");
}
