//! `creature display`: where a VM's graphical console listens (VNC or
//! SPICE), and its password on request. Also what a create records of a
//! template's `[display]`.

use std::io::Read;

use serde::Serialize;

use crate::backend::{Driver, PowerState};
use crate::cli::DisplayArgs;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::output::{self, Table};
use crate::store::{DisplayRecord, MachineRecord, Store};
use crate::template::schema::DisplayKind;
use crate::template::Resolved;

/// VNC's password limit; SPICE gets the same.
const PASSWORD_LEN: usize = 8;

/// A random password of letters and digits, from the kernel's generator.
pub fn new_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut f = std::fs::File::open("/dev/urandom")
        .map_err(|e| Error::unavailable("cannot read /dev/urandom").caused_by(e))?;
    let mut out = String::new();
    let mut b = [0u8; 1];
    while out.len() < PASSWORD_LEN {
        f.read_exact(&mut b)
            .map_err(|e| Error::unavailable("cannot read /dev/urandom").caused_by(e))?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        if (b[0] as usize) < limit {
            out.push(ALPHABET[b[0] as usize % ALPHABET.len()] as char);
        }
    }
    Ok(out)
}

/// What a create makes of the template's `[display]`: None for none.
pub fn record_for(r: &Resolved) -> Result<Option<DisplayRecord>> {
    let d = r.template.display.clone().unwrap_or_default();
    // An installer is driven on its screen.
    let default = if r.template.iso.is_some() {
        DisplayKind::Vnc
    } else {
        DisplayKind::None
    };
    let kind = match d.kind.unwrap_or(default) {
        DisplayKind::None => return Ok(None),
        k => k,
    };
    Ok(Some(DisplayRecord {
        kind: kind.as_str().to_string(),
        listen: d.listen.unwrap_or_else(|| "127.0.0.1".into()),
        password: new_password()?,
    }))
}

/// Whether an address is reachable from this host only.
pub fn loopback(listen: &str) -> bool {
    listen
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback())
}

#[derive(Serialize)]
struct View {
    machine: String,
    #[serde(rename = "type")]
    kind: String,
    listen: String,
    port: u16,
    uri: String,
    /// Only with --show-password.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

/// The port libvirt gave the display at start, from the live definition.
fn live_port(xml: &str, kind: &str) -> Option<u16> {
    crate::xml::attrs_of(xml, "graphics")
        .into_iter()
        .find(|a| a.get("type").map(String::as_str) == Some(kind))
        .and_then(|a| a.get("port").and_then(|p| p.parse().ok()))
        .filter(|p: &u16| *p > 0)
}

pub fn run(ctx: &Ctx, drv: &dyn Driver, rec: &MachineRecord, a: &DisplayArgs) -> Result<()> {
    let name = &rec.name;
    let store = Store::open_read_only(&ctx.global.state_dir)?;
    let d = match &store {
        Some(s) => s.display(&rec.host, name)?,
        None => None,
    }
    .ok_or_else(|| {
        Error::conflict(format!(
            "machine {name:?} has no display: its template has no [display] (or type = \"none\"); \
             make one from a template with [display] type = \"vnc\" or \"spice\""
        ))
    })?;
    if let Some(p) = a.protocol {
        let asked = clap::ValueEnum::to_possible_value(&p)
            .expect("every protocol has a name")
            .get_name()
            .to_string();
        if asked != d.kind {
            return Err(Error::conflict(format!(
                "machine {name:?}'s display is {}, not {asked}",
                d.kind
            )));
        }
    }
    if a.set_password {
        return set_password(ctx, drv, rec, d, a.show_password);
    }
    let st = drv.state(name)?;
    if st != PowerState::Running && st != PowerState::Paused {
        return Err(Error::conflict(format!(
            "machine {name:?} is {}: its display exists while it runs (`creature start {name}`)",
            st.as_str()
        )));
    }
    if let Some(file) = &a.screenshot {
        return screenshot(ctx, drv, name, file);
    }
    let xml = drv.live_xml(name)?;
    let port = live_port(&xml, &d.kind).ok_or_else(|| {
        Error::other(format!(
            "machine {name:?} runs without its {} display",
            d.kind
        ))
    })?;
    let host = if d.listen.contains(':') {
        format!("[{}]", d.listen)
    } else {
        d.listen.clone()
    };
    let v = View {
        machine: name.clone(),
        kind: d.kind.clone(),
        listen: d.listen.clone(),
        port,
        uri: format!("{}://{host}:{port}", d.kind),
        password: a.show_password.then(|| d.password.clone()),
    };
    output::emit(ctx.global.format, &v, || {
        let mut t = Table::new(["KEY", "VALUE"]);
        t.row(["uri", v.uri.as_str()]);
        t.row([
            "password",
            v.password.as_deref().unwrap_or("(hidden: --show-password)"),
        ]);
        t
    })
}

/// A new password, in libvirt (live when running) and then in the record;
/// if the record cannot take it, libvirt gets the old one back.
fn set_password(
    ctx: &Ctx,
    drv: &dyn Driver,
    rec: &MachineRecord,
    old: DisplayRecord,
    show: bool,
) -> Result<()> {
    let name = &rec.name;
    let new = DisplayRecord {
        password: new_password()?,
        ..old.clone()
    };
    let live = drv.set_display_password(name, &new)?;
    let saved =
        Store::open(&ctx.global.state_dir).and_then(|mut s| s.set_display(&rec.host, name, &new));
    if let Err(e) = saved {
        return Err(match drv.set_display_password(name, &old) {
            Ok(_) => e.caused_by("the display keeps its old password"),
            Err(back) => e.caused_by(format!(
                "and the old password could not be put back: {}",
                back.message()
            )),
        });
    }
    ctx.say(&format!(
        "new password for the {} display of {name} ({}){}",
        new.kind,
        if live {
            "live and from its next start"
        } else {
            "from its next start"
        },
        if show {
            format!(": {}", new.password)
        } else {
            String::new()
        }
    ));
    Ok(())
}

/// The guest's screen, saved as PNG next to `file` and renamed onto it.
fn screenshot(ctx: &Ctx, drv: &dyn Driver, name: &str, file: &std::path::Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (mime, bytes) = drv.screenshot(name)?;
    let (width, height, png) = crate::screenshot::png_of(&mime, bytes)?;
    let tmp = file.with_extension(format!("part-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&png).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(crate::statedir::io_error(
            crate::error::Kind::Other,
            file,
            format!("cannot write {}", file.display()),
            e,
        ));
    }
    ctx.say(&format!(
        "saved the {width}x{height} screen of {name} to {}",
        file.display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_eight_unambiguous_characters_and_differ() {
        let a = new_password().unwrap();
        assert_eq!(a.len(), 8);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() && !b"0O1lI".contains(&b)));
        assert_ne!(a, new_password().unwrap());
    }

    #[test]
    fn the_port_comes_from_the_live_definition() {
        let xml = "<domain><devices><graphics type='vnc' port='5901' autoport='yes' listen='127.0.0.1'/></devices></domain>";
        assert_eq!(live_port(xml, "vnc"), Some(5901));
        assert_eq!(live_port(xml, "spice"), None);
        assert_eq!(live_port("<graphics type='vnc' port='-1'/>", "vnc"), None);
        assert!(loopback("127.0.0.1") && loopback("::1") && !loopback("0.0.0.0"));
    }
}
