//! Autostart settings of one machine: from the template's `[autostart]`,
//! changed later with `creature autostart enable|disable`.

use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::matrix::{self, Backend, Feature, Subject};
use crate::template::schema::{Autostart, StopAction};

/// What the next batch waits for after this machine starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wait {
    None,
    Running,
    Lease,
    Tcp(u16),
}

impl FromStr for Wait {
    type Err = Error;
    fn from_str(s: &str) -> Result<Wait> {
        match s {
            "none" => Ok(Wait::None),
            "running" => Ok(Wait::Running),
            "lease" => Ok(Wait::Lease),
            _ => s
                .strip_prefix("tcp:")
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p > 0)
                .map(Wait::Tcp)
                .ok_or_else(|| {
                    Error::invalid(format!("wait {s:?}: use none, running, lease or tcp:PORT"))
                }),
        }
    }
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wait::None => f.write_str("none"),
            Wait::Running => f.write_str("running"),
            Wait::Lease => f.write_str("lease"),
            Wait::Tcp(p) => write!(f, "tcp:{p}"),
        }
    }
}

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
            matrix::require(
                "autostart --stop-action suspend",
                Subject::Machine(machine),
                backend,
                Feature::Suspend,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_parse_and_print() {
        for w in ["none", "running", "lease", "tcp:22"] {
            assert_eq!(w.parse::<Wait>().unwrap().to_string(), w);
        }
        for bad in ["tcp:0", "tcp:x", "soon", "tcp:70000"] {
            assert!(bad.parse::<Wait>().is_err(), "{bad}");
        }
    }

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
