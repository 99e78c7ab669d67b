//! What an image file is, read once with `qemu-img info` at import and then
//! always passed explicitly, so a raw image is never probed as qcow2 later.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
struct Info {
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "backing-filename")]
    backing_filename: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub format: String,
    pub virtual_size: u64,
}

/// `label` names the file in messages (the user's name for it, not the
/// cache's temporary path).
pub fn inspect(path: &Path, label: &str) -> Result<Format> {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U", "--"])
        .arg(path)
        .output()
        .map_err(|e| Error::unavailable("cannot run qemu-img (install qemu-utils)").caused_by(e))?;
    if !out.status.success() {
        return Err(Error::invalid(format!("qemu-img cannot read {label}"))
            .caused_by(String::from_utf8_lossy(&out.stderr).trim()));
    }
    let info: Info = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::other("cannot parse qemu-img's answer").caused_by(e))?;
    check(label, info)
}

fn check(label: &str, info: Info) -> Result<Format> {
    if let Some(b) = info.backing_filename {
        // A cached image must stand alone: a backing file could point anywhere
        // on the host and expose it to a guest.
        return Err(Error::invalid(format!(
            "{label} is a {} image with a backing file ({b}); only standalone images are cached",
            info.format
        )));
    }
    match info.format.as_str() {
        "raw" | "qcow2" => Ok(Format { format: info.format, virtual_size: info.virtual_size }),
        other => Err(Error::invalid(format!(
            "{label} is a {other} image; creature caches raw and qcow2 images (convert with qemu-img convert)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backing_files_are_refused() {
        let info = Info {
            format: "qcow2".into(),
            virtual_size: 1,
            backing_filename: Some("/etc/shadow".into()),
        };
        let e = check("x", info).unwrap_err();
        assert!(e.message().contains("backing file (/etc/shadow)"));
        let info = Info {
            format: "vmdk".into(),
            virtual_size: 1,
            backing_filename: None,
        };
        assert!(check("x", info).is_err());
    }
}
