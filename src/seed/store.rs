//! Where a machine's seed lives: `<state>/seeds/<machine>/`, the directory
//! open to QEMU for the drive (0711) but neither listable nor readable by
//! anyone else: `seed.json` (what the machine is told, regenerated from at
//! each start) and `drive.iso`, both 0600.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Seed;
use crate::error::{Error, Kind, Result};
use crate::statedir::{self, io_error};

pub fn dir(state_dir: &Path, machine: &str) -> PathBuf {
    state_dir.join("seeds").join(machine)
}

pub const ISO: &str = "drive.iso";

pub fn iso(state_dir: &Path, machine: &str) -> PathBuf {
    dir(state_dir, machine).join(ISO)
}

/// The machine's seed directory, made if missing (never through a symlink).
pub fn make_dir(state_dir: &Path, machine: &str) -> Result<PathBuf> {
    statedir::subdir(state_dir, "seeds", 0o711)?;
    statedir::subdir(state_dir, &format!("seeds/{machine}"), 0o711)
}

/// Make the machine's seed directory and record its seed.
pub fn save(state_dir: &Path, machine: &str, seed: &Seed) -> Result<PathBuf> {
    let d = make_dir(state_dir, machine)?;
    let path = d.join("seed.json");
    let tmp = d.join("seed.json.new");
    let mut f = statedir::rewrite(&tmp, 0o600)?;
    let bytes = serde_json::to_vec(seed).expect("a seed serializes");
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| {
            io_error(
                Kind::Unavailable,
                &tmp,
                format!("cannot write {}", tmp.display()),
                e,
            )
        })?;
    fs::rename(&tmp, &path).map_err(|e| {
        io_error(
            Kind::Other,
            &path,
            format!("cannot write {}", path.display()),
            e,
        )
    })?;
    Ok(d)
}

/// The machine's recorded seed; None when it has no drive.
pub fn load(state_dir: &Path, machine: &str) -> Result<Option<Seed>> {
    let path = dir(state_dir, machine).join("seed.json");
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::corrupt(format!("{} is damaged", path.display())).caused_by(e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(
            Kind::Unavailable,
            &path,
            format!("cannot read {}", path.display()),
            e,
        )),
    }
}

/// Forget the machine's seed and drive (its delete, or an undone create).
pub fn remove(state_dir: &Path, machine: &str) -> Result<()> {
    let d = dir(state_dir, machine);
    match fs::remove_dir_all(&d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(
            Kind::Other,
            &d,
            format!("cannot remove {}", d.display()),
            e,
        )),
    }
}
