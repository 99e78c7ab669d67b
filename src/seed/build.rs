//! A machine's seed from its template and the create flags, reading the
//! host files they name; and its NICs as the guest should set them up,
//! from creature's records of its networks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Addr, File, InjectArg, NicConfig, Seed, User, MAX_CONTENT};
use crate::error::{Error, Kind, Result};
use crate::net::NetMode;
use crate::store::{Nic, Store};
use crate::template::Resolved;

/// What `create` adds to the template's first-boot settings.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub user_data: Option<PathBuf>,
    pub ssh_keys: Vec<PathBuf>,
    pub injects: Vec<InjectArg>,
}

impl Extras {
    pub fn is_empty(&self) -> bool {
        self.user_data.is_none() && self.ssh_keys.is_empty() && self.injects.is_empty()
    }
}

/// Whether the machine gets a drive at all, and whether it injects files
/// (the matrix's #24, checked before anything exists).
pub fn wanted(r: &Resolved, x: &Extras) -> bool {
    let t = &r.template;
    t.cloud_init.is_some() || t.config_drive.is_some() || injects_files(r, x) || !x.is_empty()
}

pub fn injects_files(r: &Resolved, x: &Extras) -> bool {
    !r.template.injects.is_empty() || !x.injects.is_empty()
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        let kind = if e.kind() == std::io::ErrorKind::NotFound {
            Kind::NotFound
        } else {
            Kind::Unavailable
        };
        Error::new(kind, format!("{what}: cannot read {}", path.display())).caused_by(e)
    })?;
    if !meta.is_file() {
        return Err(Error::invalid(format!(
            "{what}: {} is not a regular file",
            path.display()
        )));
    }
    if meta.len() > MAX_CONTENT as u64 {
        return Err(too_big(what));
    }
    std::fs::read(path).map_err(|e| {
        Error::unavailable(format!("{what}: cannot read {}", path.display())).caused_by(e)
    })
}

fn too_big(what: &str) -> Error {
    Error::invalid(format!(
        "{what}: a config drive carries at most {} MiB in all; copy big files another way",
        MAX_CONTENT >> 20
    ))
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777)
}

/// The seed, or None when the machine gets no drive.
pub fn seed(machine: &str, r: &Resolved, x: &Extras) -> Result<Option<Seed>> {
    if !wanted(r, x) {
        return Ok(None);
    }
    let t = &r.template;
    let ci = t.cloud_init.clone().unwrap_or_default();
    let mut s = Seed {
        format: t
            .config_drive
            .as_ref()
            .and_then(|d| d.format)
            .unwrap_or_default(),
        hostname: ci.hostname.clone().unwrap_or_else(|| machine.to_string()),
        default_keys: ci.ssh_keys.clone(),
        users: ci
            .users
            .iter()
            .map(|u| User {
                name: u.name.clone(),
                keys: u.ssh_keys.clone(),
                sudo: u.sudo.unwrap_or(false),
            })
            .collect(),
        packages: ci.packages.clone(),
        runcmd: ci.runcmd.clone(),
        locale: ci.locale.clone(),
        default_user: ci.default_user.clone(),
        creature_key: None,
        files: Vec::new(),
        user_data: None,
    };
    s.default_keys.extend(key_files(&x.ssh_keys)?);
    for f in &ci.write_files {
        s.files.push(File {
            path: f.path.clone(),
            content: f.content.clone().into_bytes(),
            mode: f
                .mode
                .as_deref()
                .map_or(Ok(0o644), super::parse_mode)
                .map_err(Error::invalid)?,
            owner: f.owner.clone(),
        });
    }
    for i in &t.injects {
        let src = Path::new(&i.source);
        s.files.push(File {
            path: i.dest.clone(),
            content: read(&format!("template {}: inject {}", r.name, i.source), src)?,
            mode: match &i.mode {
                Some(m) => super::parse_mode(m).map_err(Error::invalid)?,
                None => mode_of(src),
            },
            owner: i.owner.clone(),
        });
    }
    for i in &x.injects {
        let src = Path::new(&i.source);
        s.files.push(File {
            path: i.dest.clone(),
            content: read(&format!("--inject-file {}", i.source), src)?,
            mode: i.mode.unwrap_or_else(|| mode_of(src)),
            owner: None,
        });
    }
    let raw = match (&x.user_data, &ci.user_data) {
        (Some(p), _) => Some((format!("--user-data {}", p.display()), p.clone())),
        (None, Some(p)) => Some((
            format!("template {}: cloud_init.user_data", r.name),
            PathBuf::from(p),
        )),
        (None, None) => None,
    };
    if let Some((what, p)) = raw {
        s.user_data = Some(user_data_file(&what, &p, &mut s)?);
    }
    let total: usize = s.files.iter().map(|f| f.content.len()).sum::<usize>()
        + s.user_data.as_ref().map_or(0, Vec::len);
    if total > MAX_CONTENT {
        return Err(too_big("the files to inject"));
    }
    Ok(Some(s))
}

/// A user-data file to use whole: read, once the seed has nothing the
/// generated user-data would have carried.
pub fn user_data_file(what: &str, p: &Path, s: &mut Seed) -> Result<Vec<u8>> {
    // The locale is a template's default for its image, not something the
    // user asked for: a user-data file of one's own may drop it.
    s.locale = None;
    let generated = !s.users.is_empty() || !s.packages.is_empty() || !s.runcmd.is_empty();
    if generated || !s.files.is_empty() {
        let lost = if s.files.is_empty() {
            "the template's cloud_init users, packages and runcmd"
        } else {
            "the files to inject (written by the generated user-data)"
        };
        return Err(Error::invalid(format!(
            "{what}: a user-data file replaces the generated one, so {lost} would be lost; put them in the file, or drop it"
        )));
    }
    read(what, p)
}

/// The keys of authorized_keys-style files.
pub fn key_files(files: &[PathBuf]) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for k in files {
        let what = format!("--ssh-key {}", k.display());
        let text = String::from_utf8(read(&what, k)?)
            .map_err(|_| Error::invalid(format!("{what}: not a text file of public keys")))?;
        keys.extend(super::keys_of(&text).map_err(|e| Error::invalid(format!("{what}: {e}")))?);
    }
    Ok(keys)
}

/// Each NIC as the guest should set it up: by DHCP where its network runs
/// it (or is flat: the outside's DHCP), else its reserved address, with the
/// network's gateway as router (nat and route networks) and DNS server.
pub fn nics(store: &Store, host: &str, nics: &[Nic]) -> Result<Vec<NicConfig>> {
    let mut out = Vec::new();
    for n in nics {
        let net = store.network(host, &n.network)?;
        let addr = match (&net, &n.ip) {
            (Some(net), Some(ip)) if !net.dhcp => {
                let sub: crate::net::ipv4::Subnet = net
                    .subnet
                    .as_deref()
                    .ok_or_else(|| Error::corrupt(format!("network {} has no subnet", net.name)))?
                    .parse()
                    .map_err(|e: String| Error::corrupt(e))?;
                let routed = matches!(
                    net.mode.parse::<NetMode>(),
                    Ok(NetMode::Nat | NetMode::Route)
                );
                Addr::Static {
                    ip: ip.parse().map_err(|_| {
                        Error::corrupt(format!("bad IP {ip} in the state database"))
                    })?,
                    prefix: sub.prefix,
                    gateway: routed.then(|| sub.gateway()),
                    dns: vec![sub.gateway()],
                }
            }
            _ => Addr::Dhcp,
        };
        out.push(NicConfig {
            mac: n.mac.clone(),
            addr,
        });
    }
    Ok(out)
}
