//! Names of machines, networks, templates and hosts. Checked before anything
//! else happens, because names become file paths, libvirt names and
//! interface names.

use crate::error::{Error, Result};

pub const RULE: &str =
    "a lower-case letter, then up to 62 of [a-z0-9-], not ending in '-' (at most 63 characters)";

/// What a name names, for the error message.
#[derive(Debug, Clone, Copy)]
pub enum What {
    Machine,
    Network,
    Template,
    Host,
    Image,
    Snapshot,
    Volume,
    SecGroup,
}

impl What {
    fn as_str(self) -> &'static str {
        match self {
            What::Machine => "machine",
            What::Network => "network",
            What::Template => "template",
            What::Host => "host",
            What::Image => "image",
            What::Snapshot => "snapshot",
            What::Volume => "volume",
            What::SecGroup => "security group",
        }
    }
}

/// `^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`, written out so it costs no regex engine.
pub fn is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 63 || !b[0].is_ascii_lowercase() {
        return false;
    }
    if b[b.len() - 1] == b'-' {
        return false;
    }
    b.iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

pub fn check(what: What, name: &str) -> Result<()> {
    if is_valid(name) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid {} name {:?}: must be {}",
            what.as_str(),
            name,
            RULE
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_names() {
        for n in [
            "a",
            "web1",
            "db-primary",
            "x9",
            &format!("a{}", "b".repeat(62)),
        ] {
            assert!(is_valid(n), "{n}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        let long = format!("a{}", "b".repeat(63));
        for n in [
            "", "../x", "a;b", "$(id)", "-rf", "a\nb", "Web", "a-", "1abc", "a_b", "a.b", "é",
            "a b", &long,
        ] {
            assert!(!is_valid(n), "{n:?}");
        }
    }
}
