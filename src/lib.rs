//! creature: manage virtual machines and system containers (KVM, QEMU, Xen
//! through libvirt; LXC through liblxc) from one command.

pub mod autostart;
pub mod backend;
pub mod cli;
pub mod cmd;
pub mod complete;
pub mod config;
pub mod deadline;
pub mod doctor;
pub mod error;
pub mod examples;
pub mod exec;
pub mod front;
pub mod generate;
#[cfg(test)]
mod golden;
pub mod host;
pub mod image;
pub mod interrupt;
pub mod iotune;
pub mod matrix;
pub mod names;
pub mod net;
pub mod op;
pub mod output;
pub mod progress;
pub mod repair;
pub mod resize;
pub mod roff_lint;
pub mod screenshot;
pub mod secgroup;
pub mod seed;
pub mod shutdown;
pub mod since;
pub mod size;
pub mod snapshot;
pub mod ssh;
pub mod statedir;
pub mod store;
pub mod template;
pub mod time;
pub mod tool;
pub mod trace;
pub mod undo;
pub mod wait;
pub mod xml;

pub use error::{Error, Kind, Result};

pub const DEFAULT_STATE_DIR: &str = "/var/lib/creature";

/// Parse the command line and run it. Shell completion requests are answered
/// first (the shell calls back with COMPLETE=<shell> set).
pub fn run(cli: cli::Cli) -> Result<()> {
    backend::libvirt::quiet_errors();
    cmd::run(cli)
}
