//! Autostart at host boot and autostop at shutdown: settings, plans (pure)
//! and their execution, and the systemd unit that runs them.

pub mod plan;
pub mod settings;
pub mod unit;
