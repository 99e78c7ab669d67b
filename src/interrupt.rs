//! Ctrl-C: long operations poll a flag and undo their work, then exit 130,
//! instead of dying half-done.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Catch SIGINT and SIGTERM from now on (for the rest of the process).
pub fn catch() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_sigint as *const () as libc::sighandler_t);
    }
}

pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The error to return when interrupted.
pub fn error(what: &str) -> crate::error::Error {
    crate::error::Error::new(
        crate::error::Kind::Interrupted,
        format!("interrupted: {what}"),
    )
}

/// Err(interrupted) once Ctrl-C came: for checks between the steps of a
/// long operation.
pub fn check(what: &str) -> crate::error::Result<()> {
    if requested() {
        Err(error(what))
    } else {
        Ok(())
    }
}
