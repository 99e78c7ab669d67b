//! The gate every machine verb passes: name check, then the support matrix,
//! all before any lock, connection, write or prompt. The only thing read is
//! the machine's record (read-only), to learn its backend.

use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::matrix::{self, Feature, Subject};
use crate::names::{self, What};
use crate::store::{MachineRecord, Store};

/// Validate the name, find the machine's backend, and check the matrix.
pub fn machine(ctx: &Ctx, op: &str, name: &str, feature: Feature) -> Result<MachineRecord> {
    names::check(What::Machine, name)?;
    if matrix::missing_everywhere(feature) {
        return Err(matrix::refuse_everywhere(op, Some(name), feature));
    }
    let record = Store::open_read_only(&ctx.global.state_dir)?
        .map(|s| s.machine(ctx.host_name(), name))
        .transpose()?
        .flatten()
        .ok_or_else(|| {
            Error::not_found(format!(
                "machine {name:?} not found on host {} (see `creature list`)",
                ctx.host_name()
            ))
        })?;
    let note = matrix::require(op, Subject::Machine(name), record.backend, feature)?;
    if let Some(note) = note {
        ctx.note(&format!("{op} on {} is partial: {note}", record.backend));
    }
    Ok(record)
}

/// An operation no backend offers yet, and that needs no machine.
pub fn host_feature(op: &str, feature: Feature) -> Result<()> {
    if matrix::refused_everywhere(feature) {
        return Err(matrix::refuse_everywhere(op, None, feature));
    }
    Ok(())
}
