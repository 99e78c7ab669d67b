//! The host a command acts on: its name, creature's state directory, and
//! for a named host the libvirt URI from /etc/creature/config.toml.
//! Resolved once per command and handed down, so nothing below `cmd/`
//! reads the command line or the configuration again.

use std::path::{Path, PathBuf};

use crate::backend::libvirt::Uri;
use crate::backend::Backend;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Host {
    name: String,
    state_dir: PathBuf,
    /// None: this host (each backend's local URI).
    remote: Option<Uri>,
}

impl Host {
    /// `name` None or "local" is this host; another must be a host of the
    /// state database (`creature host add`) or of the configuration file
    /// (exit 4 otherwise).
    pub fn resolve(name: Option<&str>, state_dir: &Path) -> Result<Host> {
        let remote = match name {
            None => None,
            Some(h) if h == crate::config::LOCAL => None,
            Some(h) => {
                let stored = crate::store::Store::open_read_only(state_dir)?
                    .map(|s| s.host(h))
                    .transpose()?
                    .flatten();
                match stored {
                    Some(r) => Some(Uri(r.uri)),
                    None => {
                        let path = crate::config::path();
                        let cfg = crate::config::load(&path)?;
                        let entry = cfg.hosts.get(h).ok_or_else(|| {
                            Error::not_found(format!(
                                "host {h:?} not found: neither added (`creature host add`) nor named in {}",
                                path.display()
                            ))
                        })?;
                        Some(Uri(entry.uri.clone()))
                    }
                }
            }
        };
        Ok(Host {
            name: name.unwrap_or(crate::config::LOCAL).to_string(),
            state_dir: state_dir.to_path_buf(),
            remote,
        })
    }

    /// Every host creature knows: this one, those added, those of the
    /// configuration file (an added one wins over a configured namesake).
    pub fn all(state_dir: &Path) -> Result<Vec<Host>> {
        let mut out = vec![Host::resolve(None, state_dir)?];
        let mut names = std::collections::BTreeSet::new();
        if let Some(s) = crate::store::Store::open_read_only(state_dir)? {
            for h in s.hosts()? {
                names.insert(h.name.clone());
                out.push(Host {
                    name: h.name,
                    state_dir: state_dir.to_path_buf(),
                    remote: Some(Uri(h.uri)),
                });
            }
        }
        for (name, e) in crate::config::load(&crate::config::path())?.hosts {
            if names.insert(name.clone()) && name != crate::config::LOCAL {
                out.push(Host {
                    name,
                    state_dir: state_dir.to_path_buf(),
                    remote: Some(Uri(e.uri)),
                });
            }
        }
        Ok(out)
    }

    /// The URI creature reaches this host's VMs at (local: qemu:///system).
    pub fn uri_text(&self) -> String {
        match &self.remote {
            Some(u) => u.0.clone(),
            None => "qemu:///system".into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The libvirt driver that answers there for VMs (a remote host's URI
    /// names one): the engine asked for what it has.
    pub fn vm_engine(&self) -> Backend {
        match &self.remote {
            Some(u) if u.0.starts_with("xen") => Backend::Xen,
            _ => Backend::Qemu,
        }
    }

    /// This machine, where creature can run programs next to the backends.
    pub fn is_local(&self) -> bool {
        self.remote.is_none()
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The libvirt URI of a libvirt-driven backend on this host.
    pub fn uri(&self, backend: Backend) -> Result<Uri> {
        match (&self.remote, backend) {
            (_, Backend::Lxc) => Err(Error::other("internal error: lxc has no libvirt URI")),
            (Some(u), _) => Ok(u.clone()),
            (None, b) => Uri::local(b).ok_or_else(|| Error::other("no local URI")),
        }
    }

    /// The libvirt connection that runs creature's networks on this host:
    /// the QEMU driver's, which containers attach to as well.
    pub fn network_uri(&self) -> Result<Uri> {
        self.uri(Backend::Qemu)
    }

    /// What answers for `backend` here, as errors name it.
    pub fn engine(&self, backend: Backend) -> Result<String> {
        Ok(match backend {
            Backend::Lxc => "liblxc".to_string(),
            b => format!("libvirt at {}", self.uri(b)?.0),
        })
    }
}
