//! Host programs creature runs to completion (qemu-img, losetup, mkfs,
//! mount): an argument vector, traced at `-v`, and one error line with the
//! program's own complaint when it fails.

use std::process::Command;

use crate::error::{Error, Result};

/// Run `prog args`; its trimmed stdout. `what` says what creature was doing.
pub fn run(what: &str, prog: &str, args: &[&str]) -> Result<String> {
    let out = crate::trace::call(
        || format!("{prog} {}", args.join(" ")),
        || Command::new(prog).args(args).output(),
    )
    .map_err(|e| Error::unavailable(format!("cannot run {prog}")).caused_by(e))?;
    if !out.status.success() {
        return Err(Error::other(format!(
            "{what}: {prog} {}: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether `prog args` exits 0 (a question, not a change: nothing to report).
pub fn succeeds(prog: &str, args: &[&str]) -> bool {
    Command::new(prog)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

/// Copy a disk's data into an existing volume block for block
/// (`qemu-img convert -n`): a swap of a stopped machine's volume.
pub fn copy_disk(old: &str, old_format: &str, new: &str, new_format: &str) -> Result<()> {
    run(
        &format!("cannot copy {old} into {new}"),
        "qemu-img",
        &[
            "convert", "-n", "-f", old_format, "-O", new_format, "--", old, new,
        ],
    )
    .map(|_| ())
}
