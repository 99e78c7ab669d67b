//! /etc/creature/config.toml: named hosts (libvirt URIs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

pub const LOCAL: &str = "local";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub hosts: BTreeMap<String, HostEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// libvirt URI of the host, e.g. qemu+ssh://root@h2/system.
    pub uri: String,
}

pub fn path() -> PathBuf {
    std::env::var_os("CREATURE_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/creature/config.toml"))
}

pub fn load(path: &Path) -> Result<Config> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => return Err(Error::other(format!("cannot read {}", path.display())).caused_by(e)),
    };
    let cfg: Config = toml::from_str(&text)
        .map_err(|e| Error::invalid(format!("invalid {}", path.display())).caused_by(e))?;
    for name in cfg.hosts.keys() {
        crate::names::check(crate::names::What::Host, name)?;
    }
    Ok(cfg)
}
