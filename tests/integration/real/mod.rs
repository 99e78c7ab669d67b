//! Tests on real backends. They run only inside the namespace scripts/ns-run
//! makes (never against the host's own daemons). In CI, or with
//! CREATURE_REQUIRE_REAL=1, a test that cannot run fails; elsewhere it says
//! it skipped.

mod autostart;
mod cloudinit;
mod console;
mod containers;
pub mod debian;
mod display;
mod doctor;
mod evacuate;
mod exec;
mod firewall;
mod host;
mod hosts;
mod iscsi;
pub mod json;
mod lifecycle;
mod limits;
mod load;
mod many;
mod migrate;
mod network;
mod package;
mod repair;
mod rescue;
mod resize;
mod shell;
mod snapshot;
mod storage;
mod vlan;
pub mod vm;
mod volumes;
pub mod xen;

/// Whether real-backend tests may run here; panics where they must.
pub fn available(test: &str) -> bool {
    let in_ns = std::env::var_os("CREATURE_TEST_NS").is_some();
    let must = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("CREATURE_REQUIRE_REAL").is_ok_and(|v| v == "1");
    let sock = std::path::Path::new("/run/libvirt/libvirt-sock").exists();
    let why = if !in_ns {
        Some("not inside the test namespace (run scripts/test)")
    } else if !sock {
        Some("libvirtd is not running in the test namespace")
    } else {
        None
    };
    match why {
        None => true,
        Some(why) if must => panic!("{test}: real backend required but unavailable: {why}"),
        Some(why) => {
            // Straight to fd 2: libtest captures eprintln! of passing tests,
            // and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
            false
        }
    }
}
