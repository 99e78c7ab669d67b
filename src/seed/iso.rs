//! The drive a VM reads its seed from: an ISO 9660 volume with Joliet and
//! Rock Ridge names, written by xorriso (an argument vector, no shell).
//! Files are staged in a private directory and the finished image is moved
//! into place, so a reader never sees half a drive and no one else ever
//! sees its contents.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::Rendered;
use crate::error::{Error, Kind, Result};
use crate::statedir::io_error;

/// Write `r` as an ISO image at `out` (mode 0600).
pub fn write(r: &Rendered, out: &Path) -> Result<()> {
    let parent = out.parent().expect("an ISO path has a directory");
    let stage = parent.join(format!(".stage-{}", std::process::id()));
    let _ = fs::remove_dir_all(&stage);
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&stage)
        .map_err(|e| {
            io_error(
                Kind::Unavailable,
                &stage,
                format!("cannot create {}", stage.display()),
                e,
            )
        })?;
    let done = stage_and_build(r, &stage, out);
    let _ = fs::remove_dir_all(&stage);
    done
}

fn stage_and_build(r: &Rendered, stage: &Path, out: &Path) -> Result<()> {
    let root = stage.join("root");
    for (rel, bytes) in &r.files {
        let p = root.join(rel);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(p.parent().expect("a file has a directory"))
            .map_err(|e| io_error(Kind::Unavailable, &p, format!("cannot stage {rel}"), e))?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .map_err(|e| io_error(Kind::Unavailable, &p, format!("cannot stage {rel}"), e))?;
        f.write_all(bytes)
            .map_err(|e| io_error(Kind::Unavailable, &p, format!("cannot stage {rel}"), e))?;
    }
    let iso = stage.join("drive.iso");
    let iso_s = iso
        .to_str()
        .ok_or_else(|| Error::invalid("the state directory's path is not UTF-8"))?;
    let root_s = root.to_str().expect("under the same directory");
    crate::tool::run(
        "cannot write the config drive",
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-quiet",
            "-o",
            iso_s,
            "-volid",
            r.label,
            "-joliet",
            // Absolute: never read as an option (this mode knows no `--`).
            "-rational-rock",
            root_s,
        ],
    )?;
    fs::set_permissions(&iso, fs::Permissions::from_mode(0o600)).map_err(|e| {
        io_error(
            Kind::Other,
            &iso,
            format!("cannot protect {}", iso.display()),
            e,
        )
    })?;
    fs::rename(&iso, out).map_err(|e| {
        io_error(
            Kind::Other,
            out,
            format!("cannot move the drive to {}", out.display()),
            e,
        )
    })?;
    Ok(())
}

/// The volume label and the files of an ISO image, read back by xorriso
/// (for `config-drive show` and the tests).
pub fn list(iso: &Path) -> Result<(String, Vec<String>)> {
    let p = iso
        .to_str()
        .ok_or_else(|| Error::invalid("path is not UTF-8"))?;
    let out = crate::tool::run(
        "cannot read the config drive",
        "xorriso",
        &[
            "-indev",
            p,
            "-report_about",
            "WARNING",
            "-pvd_info",
            "-find",
            "/",
            "-type",
            "f",
        ],
    )?;
    let mut label = String::new();
    let mut files = Vec::new();
    for l in out.lines() {
        if let Some(v) = l.strip_prefix("Volume Id    :") {
            label = v.trim().to_string();
        } else if let Some(f) = l.strip_prefix('\'').and_then(|l| l.strip_suffix('\'')) {
            files.push(f.trim_start_matches('/').to_string());
        }
    }
    files.sort();
    Ok((label, files))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drive as a real ISO reader sees it: label, names (Rock Ridge
    /// keeps `meta-data`'s dash and `user_data`'s case) and content.
    #[test]
    fn drives_read_back_with_xorriso() {
        let dir = tempfile::tempdir().unwrap();
        let mut listing = String::new();
        for format in [
            super::super::Format::Nocloud,
            super::super::Format::Openstack,
        ] {
            let seed = super::super::Seed {
                format,
                hostname: "web".into(),
                ..Default::default()
            };
            let r = super::super::render("web", &seed, None);
            let iso = dir.path().join(format!("{}.iso", format.as_str()));
            write(&r, &iso).unwrap();
            let (label, files) = list(&iso).unwrap();
            listing.push_str(&format!("{}: label {label}\n", format.as_str()));
            for f in files {
                listing.push_str(&format!("  {f}\n"));
            }
            assert_eq!(
                std::fs::metadata(&iso).unwrap().permissions().mode() & 0o777,
                0o600
            );
            // Nothing staged is left beside it.
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().starts_with(".stage"))
                .collect();
            assert!(left.is_empty(), "{left:?}");
        }
        crate::golden::check("seed/drives.txt", &listing);
    }
}
