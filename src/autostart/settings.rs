//! Autostart settings of one machine: from the template's `[autostart]`,
//! changed later with `creature autostart enable|disable`.

use serde::Serialize;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::op::{Op, Who};
use crate::template::schema::{Autostart, StopAction};
pub use crate::wait::Wait;

pub fn action_str(a: StopAction) -> &'static str {
    match a {
        StopAction::Shutdown => "shutdown",
        StopAction::Suspend => "suspend",
        StopAction::Force => "force",
    }
}

pub fn action_parse(s: &str) -> Result<StopAction> {
    match s {
        "shutdown" => Ok(StopAction::Shutdown),
        "suspend" => Ok(StopAction::Suspend),
        "force" => Ok(StopAction::Force),
        _ => Err(Error::invalid(format!(
            "stop action {s:?}: use shutdown, suspend or force"
        ))),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub enabled: bool,
    pub priority: i32,
    pub delay: u64,
    pub wait: Wait,
    pub wait_timeout: u64,
    pub stop_timeout: u64,
    #[serde(serialize_with = "ser_action")]
    pub stop_action: StopAction,
}

fn ser_action<S: serde::Serializer>(a: &StopAction, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(action_str(*a))
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            enabled: false,
            priority: 0,
            delay: 0,
            wait: Wait::Running,
            wait_timeout: 120,
            stop_timeout: 60,
            stop_action: StopAction::Shutdown,
        }
    }
}

impl Settings {
    /// Defaults overlaid with a template's `[autostart]`.
    pub fn from_template(t: Option<&Autostart>) -> Result<Settings> {
        let mut s = Settings::default();
        if let Some(a) = t {
            s.enabled = a.enabled.unwrap_or(s.enabled);
            s.priority = a.priority.unwrap_or(s.priority);
            s.delay = a.delay.unwrap_or(s.delay);
            if let Some(w) = &a.wait {
                s.wait = w.parse()?;
            }
            s.wait_timeout = a.wait_timeout.unwrap_or(s.wait_timeout);
            s.stop_timeout = a.stop_timeout.unwrap_or(s.stop_timeout);
            s.stop_action = a.stop_action.unwrap_or(s.stop_action);
        }
        Ok(s)
    }

    /// `suspend` as a stop action needs the backend to suspend: checked
    /// against the support matrix when it is set.
    pub fn check(&self, machine: &str, backend: Backend) -> Result<()> {
        if self.stop_action == StopAction::Suspend {
            Op::StopActionSuspend.require(Who::Machine(machine), backend)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suspend_is_refused_for_lxc() {
        let s = Settings {
            stop_action: StopAction::Suspend,
            ..Settings::default()
        };
        assert!(s.check("box", Backend::Lxc).is_err());
        assert!(s.check("vm", Backend::Qemu).is_ok());
    }
}
