//! What a machine is told at first boot: cloud-init's NoCloud seed, or an
//! OpenStack config-2 drive. This module is pure: a `Seed` (what the
//! template, the flags and the machine's network say) renders to a list of
//! files; `iso.rs` writes them to the drive, `store.rs` keeps the seed.
//!
//! cloud-init reads YAML, and JSON is YAML: every document is written with
//! serde_json, so no value is ever pasted into markup by hand.

pub mod build;
pub mod drive;
pub mod iso;
pub mod nocloud;
pub mod openstack;
pub mod store;

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Which of cloud-init's two drive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// NoCloud: `meta-data`, `user-data`, `network-config`, label `cidata`.
    #[default]
    Nocloud,
    /// OpenStack config drive: `openstack/latest/*`, label `config-2`.
    Openstack,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Nocloud => "nocloud",
            Format::Openstack => "openstack",
        }
    }

    /// The volume label cloud-init looks for.
    pub fn label(self) -> &'static str {
        match self {
            Format::Nocloud => "cidata",
            Format::Openstack => "config-2",
        }
    }
}

/// Everything a machine's drive says, before its network is known.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
pub struct Seed {
    pub format: Format,
    pub hostname: String,
    /// Authorized keys of the image's default user.
    pub default_keys: Vec<String>,
    pub users: Vec<User>,
    pub packages: Vec<String>,
    pub runcmd: Vec<Vec<String>>,
    pub locale: Option<String>,
    /// The image's default user, reached over ssh with `creature_key`.
    #[serde(default)]
    pub default_user: Option<String>,
    /// creature's own public key for the machine (VMs with a default user).
    #[serde(default)]
    pub creature_key: Option<String>,
    /// `cloud_init.write_files`, `[[inject]]` and `--inject-file`, in that order.
    pub files: Vec<File>,
    /// A user-data file given whole (`cloud_init.user_data`, `--user-data`):
    /// it replaces the generated cloud-config.
    pub user_data: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct User {
    pub name: String,
    pub keys: Vec<String>,
    pub sudo: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct File {
    /// Absolute path in the guest.
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
    /// `user:group`; None: root's.
    pub owner: Option<String>,
}

/// One NIC as the guest should configure it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NicConfig {
    pub mac: String,
    pub addr: Addr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Addr {
    Dhcp,
    Static {
        ip: Ipv4Addr,
        prefix: u8,
        /// None on a network that goes nowhere (isolated).
        gateway: Option<Ipv4Addr>,
        dns: Vec<Ipv4Addr>,
    },
}

/// A drive's files, paths relative to its root.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub label: &'static str,
    pub instance_id: String,
    pub files: Vec<(String, Vec<u8>)>,
}

/// The instance-id: the machine's name and a digest of all it is told.
/// Any change makes a new instance to cloud-init, which then runs its
/// first-boot modules again (and applies a new network configuration), as
/// LXD does when an instance's cloud-init settings change.
pub fn instance_id(machine: &str, seed: &Seed, nics: Option<&[NicConfig]>) -> String {
    let canon = serde_json::to_vec(&(seed, nics)).expect("a seed serializes");
    let h = Sha256::digest(&canon);
    format!("{machine}-{}", &crate::image::cache::hex(&h)[..12])
}

/// Render the drive. `nics` is None where the backend does not inject
/// networking (the guest then configures its NICs by itself).
pub fn render(machine: &str, seed: &Seed, nics: Option<&[NicConfig]>) -> Rendered {
    let iid = instance_id(machine, seed, nics);
    let files = match seed.format {
        Format::Nocloud => nocloud::files(&iid, seed, nics),
        Format::Openstack => openstack::files(&iid, machine, seed, nics),
    };
    Rendered {
        label: seed.format.label(),
        instance_id: iid,
        files,
    }
}

/// The default user's authorized keys: the user's, then creature's own.
pub fn public_keys(seed: &Seed) -> Vec<String> {
    seed.default_keys
        .iter()
        .chain(seed.creature_key.iter())
        .cloned()
        .collect()
}

/// The user-data document: the file given whole, or cloud-config.
pub fn user_data(seed: &Seed) -> Vec<u8> {
    if let Some(raw) = &seed.user_data {
        return raw.clone();
    }
    let mut out = b"#cloud-config\n".to_vec();
    out.extend(pretty(&cloud_config(seed)));
    out
}

fn cloud_config(seed: &Seed) -> serde_json::Value {
    use base64::Engine;
    use serde_json::{json, Map, Value};
    let mut c = Map::new();
    if !seed.users.is_empty() {
        // "default" keeps the image's own user (and the keys meta-data gives it).
        let mut users = vec![json!("default")];
        for u in &seed.users {
            let mut e = Map::new();
            e.insert("name".into(), json!(u.name));
            e.insert("shell".into(), json!("/bin/bash"));
            e.insert("lock_passwd".into(), json!(true));
            if !u.keys.is_empty() {
                e.insert("ssh_authorized_keys".into(), json!(u.keys));
            }
            if u.sudo {
                e.insert("sudo".into(), json!("ALL=(ALL) NOPASSWD:ALL"));
            }
            users.push(Value::Object(e));
        }
        c.insert("users".into(), Value::Array(users));
    }
    if let Some(l) = &seed.locale {
        c.insert("locale".into(), json!(l));
    }
    if !seed.packages.is_empty() {
        c.insert("packages".into(), json!(seed.packages));
    }
    if !seed.runcmd.is_empty() {
        c.insert("runcmd".into(), json!(seed.runcmd));
    }
    if !seed.files.is_empty() {
        let made: Vec<&str> = seed.users.iter().map(|u| u.name.as_str()).collect();
        let files: Vec<Value> = seed
            .files
            .iter()
            .map(|f| {
                let owner = f.owner.clone().unwrap_or_else(|| "root:root".into());
                let user = owner.split(':').next().unwrap_or("");
                let mut e = json!({
                    "path": f.path,
                    "encoding": "b64",
                    "content": base64::engine::general_purpose::STANDARD.encode(&f.content),
                    "permissions": format!("{:04o}", f.mode),
                    "owner": owner,
                });
                // A file owned by a user this seed creates waits for that user.
                if made.contains(&user) {
                    e["defer"] = json!(true);
                }
                e
            })
            .collect();
        c.insert("write_files".into(), Value::Array(files));
    }
    Value::Object(c)
}

/// JSON as cloud-init's YAML reader takes it: pretty (a space after every
/// colon, which PyYAML's flow mappings want) and ending in a newline.
pub fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).expect("JSON renders");
    out.push(b'\n');
    out
}

/// `SRC:DEST[:MODE]` of `--inject-file`.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectArg {
    pub source: String,
    pub dest: String,
    pub mode: Option<u32>,
}

impl std::str::FromStr for InjectArg {
    type Err = String;
    fn from_str(s: &str) -> Result<InjectArg, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let (source, dest, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, None),
            [s, d, m] => (*s, *d, Some(*m)),
            _ => {
                return Err(format!(
                    "{s:?}: expected SRC:DEST or SRC:DEST:MODE (the paths may not contain ':')"
                ))
            }
        };
        if source.is_empty() {
            return Err(format!("{s:?}: SRC is empty"));
        }
        check_dest(dest).map_err(|e| format!("{s:?}: {e}"))?;
        let mode = mode
            .map(|m| parse_mode(m).map_err(|e| format!("{s:?}: {e}")))
            .transpose()?;
        Ok(InjectArg {
            source: source.into(),
            dest: dest.into(),
            mode,
        })
    }
}

/// A file mode in octal, as chmod takes it (`640`, `0640`).
pub fn parse_mode(m: &str) -> Result<u32, String> {
    let v = u32::from_str_radix(m, 8)
        .ok()
        .filter(|v| *v <= 0o7777 && !m.is_empty() && m.len() <= 5)
        .ok_or_else(|| format!("mode {m:?} is not an octal file mode such as 0644"))?;
    Ok(v)
}

/// A destination in the guest: absolute, and no component that climbs.
pub fn check_dest(d: &str) -> Result<(), String> {
    if !d.starts_with('/') || d.ends_with('/') {
        return Err(format!(
            "destination {d:?} must be an absolute file path in the guest"
        ));
    }
    if d.contains('\0') || d.contains('\n') || d.split('/').any(|c| c == "..") {
        return Err(format!(
            "destination {d:?} may not contain '..' or control characters"
        ));
    }
    Ok(())
}

/// `user` or `user:group`, each a plain name.
pub fn check_owner(o: &str) -> Result<(), String> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    };
    let mut it = o.splitn(2, ':');
    let user = it.next().unwrap_or("");
    if ok(user) && it.next().is_none_or(ok) {
        Ok(())
    } else {
        Err(format!("owner {o:?} is not USER or USER:GROUP"))
    }
}

/// An authorized-keys line, as sshd reads it.
pub fn check_key(k: &str) -> Result<(), String> {
    let t = k.split_whitespace().next().unwrap_or("");
    let known = t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-");
    if k.contains('\n') || !known || k.split_whitespace().count() < 2 {
        return Err(
            "each key is one line: its type (e.g. ssh-ed25519), the key, an optional comment"
                .into(),
        );
    }
    Ok(())
}

/// The keys of an authorized_keys-style file: one per line; blank lines and
/// `#` comments skipped.
pub fn keys_of(text: &str) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        check_key(l).map_err(|e| format!("line {}: {e}", i + 1))?;
        keys.push(l.to_string());
    }
    if keys.is_empty() {
        return Err("no key in it".into());
    }
    Ok(keys)
}

/// Most a drive may carry: it is built in memory and on the host's disk at
/// each change, and cloud-init is no file-transfer tool.
pub const MAX_CONTENT: usize = 16 << 20;

#[cfg(test)]
mod tests;
