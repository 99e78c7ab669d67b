//! What an image file is, read once with `qemu-img info` at import and then
//! always passed explicitly, so a raw image is never probed as qcow2 later.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Default, Deserialize)]
struct Info {
    format: String,
    #[serde(rename = "virtual-size")]
    virtual_size: u64,
    #[serde(rename = "backing-filename")]
    backing_filename: Option<String>,
    #[serde(default)]
    encrypted: bool,
    #[serde(rename = "format-specific")]
    specific: Option<Specific>,
}

#[derive(Debug, Default, Deserialize)]
struct Specific {
    data: Option<SpecificData>,
}

#[derive(Debug, Default, Deserialize)]
struct SpecificData {
    #[serde(rename = "data-file")]
    data_file: Option<String>,
    #[serde(default)]
    corrupt: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub format: String,
    pub virtual_size: u64,
}

/// `label` names the file in messages (the user's name for it, not the
/// cache's temporary path).
pub fn inspect(path: &Path, label: &str) -> Result<Format> {
    info(path, label, None)
}

/// As `inspect`, for a file whose format its owner named (`raw` or
/// `qcow2`): it is read as that format, never probed into another. A file
/// named qcow2 must be one; a file named raw stays raw whatever its first
/// bytes look like. Unnamed, a file is probed, and a raw disk whose guest
/// wrote another format's header at its start is taken for that format,
/// so the checks below still refuse a backing or data file it names.
pub fn inspect_as(path: &Path, label: &str, declared: Option<&str>) -> Result<Format> {
    let Some(want) = declared else {
        return inspect(path, label);
    };
    if want != "raw" {
        let probed = info(path, label, None)?;
        if probed.format != want {
            return Err(Error::invalid(format!(
                "{label} is named {want} but is a {} image",
                probed.format
            )));
        }
        return Ok(probed);
    }
    info(path, label, Some(want))
}

fn info(path: &Path, label: &str, format: Option<&str>) -> Result<Format> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["info", "--output=json", "-U"]);
    if let Some(f) = format {
        cmd.args(["-f", f]);
    }
    let out =
        cmd.arg("--").arg(path).output().map_err(|e| {
            Error::unavailable("cannot run qemu-img (install qemu-utils)").caused_by(e)
        })?;
    if !out.status.success() {
        return Err(Error::invalid(format!("qemu-img cannot read {label}"))
            .caused_by(String::from_utf8_lossy(&out.stderr).trim()));
    }
    let info: Info = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::other("cannot parse qemu-img's answer").caused_by(e))?;
    check(label, info)
}

/// Images are untrusted input: anything that makes the hypervisor open
/// another host file (a backing file, an external data file), needs a key,
/// or is marked corrupt is refused before it is cached or used.
fn check(label: &str, info: Info) -> Result<Format> {
    if let Some(b) = info.backing_filename {
        // A cached image must stand alone: a backing file could point anywhere
        // on the host and expose it to a guest.
        return Err(Error::invalid(format!(
            "{label} is a {} image with a backing file ({b}); only standalone images are cached",
            info.format
        )));
    }
    let data = info.specific.and_then(|s| s.data).unwrap_or_default();
    if let Some(f) = data.data_file {
        return Err(Error::invalid(format!(
            "{label} is a {} image with an external data file ({f}); a guest would read and write that host file",
            info.format
        )));
    }
    if info.encrypted {
        return Err(Error::invalid(format!(
            "{label} is an encrypted {} image; creature caches only unencrypted images",
            info.format
        )));
    }
    if data.corrupt {
        return Err(Error::invalid(format!(
            "{label} is marked corrupt by qemu-img (repair it with qemu-img check -r all)"
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

    fn parsed(json: &str) -> Result<Format> {
        check("x", serde_json::from_str(json).unwrap())
    }

    /// qemu-img's own JSON for a data file, encryption and corruption.
    #[test]
    fn data_files_encryption_and_corruption_are_refused() {
        let data_file = r#"{"virtual-size": 1048576, "format": "qcow2", "format-specific":
            {"type": "qcow2", "data": {"compat": "1.1", "data-file": "/tmp/df.raw", "data-file-raw": true, "corrupt": false}}}"#;
        assert!(parsed(data_file)
            .unwrap_err()
            .message()
            .contains("external data file (/tmp/df.raw)"));
        let enc = r#"{"virtual-size": 1, "format": "qcow2", "encrypted": true,
            "format-specific": {"type": "qcow2", "data": {"encrypt": {"format": "luks"}, "corrupt": false}}}"#;
        assert!(parsed(enc).unwrap_err().message().contains("encrypted"));
        let corrupt = r#"{"virtual-size": 1, "format": "qcow2",
            "format-specific": {"type": "qcow2", "data": {"corrupt": true}}}"#;
        assert!(parsed(corrupt).unwrap_err().message().contains("corrupt"));
        let fine = r#"{"virtual-size": 7, "format": "qcow2",
            "format-specific": {"type": "qcow2", "data": {"corrupt": false}}}"#;
        assert_eq!(parsed(fine).unwrap().virtual_size, 7);
        let raw = r#"{"virtual-size": 9, "format": "raw"}"#;
        assert_eq!(parsed(raw).unwrap().format, "raw");
    }

    #[test]
    fn backing_files_are_refused() {
        let info = Info {
            format: "qcow2".into(),
            virtual_size: 1,
            backing_filename: Some("/etc/shadow".into()),
            ..Default::default()
        };
        let e = check("x", info).unwrap_err();
        assert!(e.message().contains("backing file (/etc/shadow)"));
        let info = Info {
            format: "vmdk".into(),
            virtual_size: 1,
            ..Default::default()
        };
        assert!(check("x", info).is_err());
    }
}

/// The ISO 9660 volume descriptor's signature, at byte 1 of sector 16.
const ISO9660_AT: u64 = 16 * 2048 + 1;
const ISO9660_MAGIC: &[u8; 5] = b"CD001";

/// An installer image must be ISO 9660: a disk image given by mistake
/// would boot nothing, and the firmware says so only on the screen.
pub fn check_iso9660(path: &Path, label: &str) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)
        .map_err(|e| Error::not_found(format!("cannot open {label}")).caused_by(e))?;
    let mut magic = [0u8; 5];
    let read = f
        .seek(SeekFrom::Start(ISO9660_AT))
        .and_then(|_| f.read_exact(&mut magic));
    if read.is_err() || &magic != ISO9660_MAGIC {
        return Err(Error::invalid(format!(
            "{label} is not an ISO 9660 installer image (no CD001 volume descriptor at byte {ISO9660_AT})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod iso_tests {
    use super::*;

    #[test]
    fn iso9660_is_told_from_other_files() {
        let d = tempfile::tempdir().unwrap();
        let iso = d.path().join("a.iso");
        let mut b = vec![0u8; 40000];
        b[ISO9660_AT as usize..ISO9660_AT as usize + 5].copy_from_slice(ISO9660_MAGIC);
        std::fs::write(&iso, &b).unwrap();
        check_iso9660(&iso, "a.iso").unwrap();
        let short = d.path().join("short");
        std::fs::write(&short, b"CD001").unwrap();
        let e = check_iso9660(&short, "short").unwrap_err();
        assert!(e.message().contains("not an ISO 9660"), "{}", e.message());
        b[ISO9660_AT as usize] = b'X';
        std::fs::write(&iso, &b).unwrap();
        assert!(check_iso9660(&iso, "a.iso").is_err());
        let e = check_iso9660(&d.path().join("none"), "none").unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::NotFound);
    }
}
