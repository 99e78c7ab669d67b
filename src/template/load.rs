//! Finding and reading template files: the search path, the checks on each
//! file, and per-file parsing with positions for errors.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::names::{self, What};
use crate::template::schema::Template;

/// Templates larger than this are refused before parsing.
pub const MAX_BYTES: u64 = 1 << 20;

/// Templates shipped in templates/, embedded in the binary.
pub const SHIPPED: &[(&str, &str)] = &[
    ("debian-12", include_str!("../../templates/debian-12.toml")),
    (
        "debian-12-local",
        include_str!("../../templates/debian-12-local.toml"),
    ),
    ("installer", include_str!("../../templates/installer.toml")),
    (
        "lxc-busybox",
        include_str!("../../templates/lxc-busybox.toml"),
    ),
    (
        "lxc-debian",
        include_str!("../../templates/lxc-debian.toml"),
    ),
    (
        "lxc-debian-cloud",
        include_str!("../../templates/lxc-debian-cloud.toml"),
    ),
    ("tiny", include_str!("../../templates/tiny.toml")),
    ("tiny-kvm", include_str!("../../templates/tiny-kvm.toml")),
    ("tiny-xen", include_str!("../../templates/tiny-xen.toml")),
];

/// One template's text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// A path, or `shipped:NAME` for an embedded template.
    pub origin: String,
    pub text: String,
}

/// The search path: `--template-dir`, /etc/creature/templates, the
/// package's copies in /usr/share/creature/templates, then the ones built
/// into the binary (the same texts, so a build without the package works).
#[derive(Debug, Clone)]
pub struct Library {
    dirs: Vec<PathBuf>,
}

impl Library {
    pub fn new(template_dir: Option<&Path>) -> Library {
        let mut dirs = Vec::new();
        if let Some(d) = template_dir {
            dirs.push(d.to_path_buf());
        }
        dirs.push(system_dir());
        dirs.push(PathBuf::from(PACKAGE_DIR));
        Library { dirs }
    }

    /// A library whose first root is `dir` (for `template validate FILE`).
    pub fn with_first(mut self, dir: &Path) -> Library {
        self.dirs.insert(0, dir.to_path_buf());
        self
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Find a template by name: the first root that has it wins.
    pub fn find(&self, name: &str) -> Result<Source> {
        names::check(What::Template, name)?;
        for dir in &self.dirs {
            let path = dir.join(format!("{name}.toml"));
            if let Some(text) = read_template_file(&path, true)? {
                return Ok(Source {
                    name: name.to_string(),
                    origin: path.display().to_string(),
                    text,
                });
            }
        }
        if let Some((_, text)) = SHIPPED.iter().find(|(n, _)| *n == name) {
            return Ok(Source {
                name: name.to_string(),
                origin: format!("shipped:{name}"),
                text: text.to_string(),
            });
        }
        Err(Error::not_found(format!(
            "template {name:?} not found in {} or the shipped templates (see `creature template list`)",
            self.dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// Every template name on the search path, first occurrence first.
    pub fn names(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for dir in &self.dirs {
            let Ok(rd) = fs::read_dir(dir) else { continue };
            let mut here: Vec<(String, String)> = rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| {
                    let f = e.file_name().into_string().ok()?;
                    let n = f.strip_suffix(".toml")?;
                    names::is_valid(n).then(|| (n.to_string(), e.path().display().to_string()))
                })
                .collect();
            here.sort();
            out.extend(here);
        }
        for (n, _) in SHIPPED {
            out.push((n.to_string(), format!("shipped:{n}")));
        }
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|(n, _)| seen.insert(n.clone()));
        out
    }
}

/// Where the Debian package installs the shipped templates.
pub const PACKAGE_DIR: &str = "/usr/share/creature/templates";

/// /etc/creature/templates, or `templates/` beside $CREATURE_CONFIG.
pub fn system_dir() -> PathBuf {
    crate::config::path()
        .parent()
        .map(|p| p.join("templates"))
        .unwrap_or_else(|| PathBuf::from("/etc/creature/templates"))
}

/// Read a template file, refusing anything but a regular file of sane size.
/// `Ok(None)` when it does not exist and `missing_ok`.
pub fn read_template_file(path: &Path, missing_ok: bool) -> Result<Option<String>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => return Ok(None),
        Err(e) => {
            return Err(
                Error::not_found(format!("cannot read template {}", path.display())).caused_by(e),
            )
        }
    };
    let ft = meta.file_type();
    let what = if ft.is_symlink() {
        Some("a symlink")
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO")
    } else if ft.is_block_device() || ft.is_char_device() {
        Some("a device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(Error::invalid(format!(
            "template {} is {what}; templates must be regular files",
            path.display()
        )));
    }
    if meta.len() > MAX_BYTES {
        return Err(Error::invalid(format!(
            "template {} is {} bytes, over the {} byte limit; refusing to parse it",
            path.display(),
            meta.len(),
            MAX_BYTES
        )));
    }
    // O_NOFOLLOW and O_NONBLOCK: the file must not turn into a symlink or
    // FIFO between the check and the open.
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            Error::invalid(format!("cannot open template {}", path.display())).caused_by(e)
        })?;
    let mut buf = Vec::new();
    (&mut f)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| {
            Error::invalid(format!("cannot read template {}", path.display())).caused_by(e)
        })?;
    if buf.len() as u64 > MAX_BYTES {
        return Err(Error::invalid(format!(
            "template {} grew over the {MAX_BYTES} byte limit while being read",
            path.display()
        )));
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| Error::invalid(format!("template {} is not UTF-8 text", path.display())))
}

/// Parse one file on its own, so errors point into it.
pub fn parse(src: &Source) -> Result<(Template, toml::Table)> {
    let tpl: Template = toml::from_str(&src.text).map_err(|e| located(src, &e))?;
    let table: toml::Table = toml::from_str(&src.text).map_err(|e| located(src, &e))?;
    Ok((tpl, table))
}

/// `file:line:col: message`, the line, and a caret under the spot.
fn located(src: &Source, e: &toml::de::Error) -> Error {
    let msg = e.message().trim().to_string();
    let msg = match suggest(&msg) {
        Some(s) => format!("{msg} (did you mean `{s}`?)"),
        None => msg,
    };
    let Some(span) = e.span() else {
        return Error::invalid(format!("template {}: {msg}", src.origin));
    };
    let (line_no, col, line) = position(&src.text, span.start);
    let width = src.text[span.clone()]
        .lines()
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(1)
        .max(1);
    let gutter = " ".repeat(line_no.to_string().len());
    Error::invalid(format!(
        "template {}:{line_no}:{col}: {msg}\n{gutter} |\n{line_no} | {line}\n{gutter} | {}{}",
        src.origin,
        " ".repeat(col - 1),
        "^".repeat(width)
    ))
}

/// 1-based line and column (in characters) of a byte offset, and the line.
fn position(text: &str, offset: usize) -> (usize, usize, &str) {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let col = text[start..offset].chars().count() + 1;
    (line_no, col, &text[start..end])
}

/// serde's "unknown field `x`, expected one of `a`, `b`": the closest of
/// the expected names, if one is close enough to be a typo.
pub(crate) fn suggest(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|cand| (distance(unknown, cand), cand))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c.to_string())
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            name: "t".into(),
            origin: "t.toml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn unknown_key_has_position_caret_and_suggestion() {
        let e = parse(&src("backend = \"qemu\"\ncpu = 2\n")).unwrap_err();
        assert_eq!(
            e.message(),
            "template t.toml:2:1: unknown field `cpu`, expected one of `description`, `extends`, `backend`, `cpus`, `memory`, `max_cpus`, `max_vcpus`, `max_memory`, `rescue`, `guest_agent`, `variables`, `disk`, `boot`, `nic`, `volume`, `rootfs`, `autostart`, `cloud_init`, `alternative`, `config_drive`, `inject`, `display`, `iso`, `security_groups`, `host` (did you mean `cpus`?)\n  |\n2 | cpu = 2\n  | ^^^"
        );
    }

    #[test]
    fn no_suggestion_for_far_off_keys() {
        assert_eq!(
            suggest("unknown field `zebra`, expected one of `cpus`, `memory`"),
            None
        );
        assert_eq!(
            suggest("unknown field `memroy`, expected one of `cpus`, `memory`").as_deref(),
            Some("memory")
        );
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let e = parse(&src("cpus = \"two\"\n")).unwrap_err();
        assert!(
            e.message()
                .starts_with("template t.toml:1:8: invalid type: string \"two\", expected u32"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn shipped_templates_parse() {
        for (name, text) in SHIPPED {
            parse(&Source {
                name: name.to_string(),
                origin: name.to_string(),
                text: text.to_string(),
            })
            .unwrap_or_else(|e| panic!("{name}: {}", e.message()));
        }
    }
}
