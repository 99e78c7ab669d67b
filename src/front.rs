//! The two binaries: `creature`, the front users run, which links neither
//! libvirt nor liblxc (src/main.rs), and `creature-engine`, which it
//! becomes for everything it does not answer itself. Completion runs in
//! the front and asks the engine, as a child, for what needs a backend.

use std::path::PathBuf;

/// Set by the front for the engine it becomes: the path of the `creature`
/// the user ran, which the engine writes into systemd units.
pub const FRONT_VAR: &str = "CREATURE_FRONT";

/// The engine beside the running binary (a build tree, or the engine
/// itself), else where the package puts it.
pub fn engine() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("creature-engine")));
    match beside {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("/usr/lib/creature/creature-engine"),
    }
}
