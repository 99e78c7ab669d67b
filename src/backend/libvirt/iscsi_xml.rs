//! The libvirt objects of an iSCSI volume (#33, #34): a storage pool
//! logging in with CHAP through a private libvirt secret, whose value never
//! appears in any XML. Pure. For QEMU an `iscsi-direct` pool (libvirt's
//! userspace initiator, libiscsi: no kernel initiator needed, QEMU reaches
//! the LUN itself); for Xen an `iscsi` pool (the host's kernel initiator:
//! blkback serves block devices, libxl has no network disks).

use crate::xml::El;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// host or host:port.
    pub portal: String,
    pub iqn: String,
    pub lun: u32,
    pub chap_user: Option<String>,
}

impl Target {
    /// (host, port) of the portal; 3260 when it names none.
    pub fn host_port(&self) -> Option<(String, u16)> {
        match self.portal.rsplit_once(':') {
            Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
            None => Some((self.portal.clone(), 3260)),
        }
        .filter(|(h, _)| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        })
    }

    /// An IQN (`iqn.YYYY-MM.reversed.domain[:name]`) or EUI name, as RFC 3720 spells them.
    pub fn iqn_ok(&self) -> bool {
        let ok_chars = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-:".contains(c))
        };
        (self.iqn.starts_with("iqn.") || self.iqn.starts_with("eui."))
            && self.iqn.len() <= 223
            && ok_chars(&self.iqn)
    }

    /// libvirt's name of the LUN in the pool.
    pub fn volume(&self) -> String {
        format!("unit:0:0:{}", self.lun)
    }
}

/// The secret holding the CHAP password, found by its usage name.
pub fn secret(usage: &str) -> String {
    El::new("secret")
        .attr("ephemeral", "no")
        .attr("private", "yes")
        .child(
            El::new("usage")
                .attr("type", "iscsi")
                .child(El::leaf("target", usage)),
        )
        .render()
}

/// Who logs in to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator<'a> {
    /// libvirt's own (libiscsi), by this name; the hypervisor opens the LUN.
    Userspace(&'a str),
    /// The host kernel's (open-iscsi); the LUN is a block device there,
    /// named by udev under /dev/disk/by-path. It logs in with the host's
    /// own initiator name: libvirt sets CHAP on the target's default node
    /// record, which a login through an interface of its own (made for an
    /// `<initiator>`) does not use.
    Kernel,
}

/// The pool: one target, logged in to by `initiator`.
pub fn pool(name: &str, t: &Target, initiator: Initiator, secret_usage: Option<&str>) -> String {
    let (host, port) = t.host_port().unwrap_or_default();
    let auth = match (&t.chap_user, secret_usage) {
        (Some(u), Some(s)) => Some(
            El::new("auth")
                .attr("type", "chap")
                .attr("username", u.clone())
                .child(El::new("secret").attr("usage", s)),
        ),
        _ => None,
    };
    El::new("pool")
        .attr(
            "type",
            match initiator {
                Initiator::Userspace(_) => "iscsi-direct",
                Initiator::Kernel => "iscsi",
            },
        )
        .child(El::leaf("name", name))
        .child(
            El::new("source")
                .child(
                    El::new("host")
                        .attr("name", host)
                        .attr("port", port.to_string()),
                )
                .child(El::new("device").attr("path", t.iqn.clone()))
                .children(match initiator {
                    Initiator::Userspace(iqn) => {
                        Some(El::new("initiator").child(El::new("iqn").attr("name", iqn)))
                    }
                    Initiator::Kernel => None,
                })
                .children(auth),
        )
        .child_if(initiator == Initiator::Kernel, || {
            El::new("target").child(El::leaf("path", "/dev/disk/by-path"))
        })
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(portal: &str, iqn: &str) -> Target {
        Target {
            portal: portal.into(),
            iqn: iqn.into(),
            lun: 1,
            chap_user: Some("u\"<".into()),
        }
    }

    #[test]
    fn portals_and_names() {
        assert_eq!(
            t("10.0.0.2", "iqn.x").host_port(),
            Some(("10.0.0.2".into(), 3260))
        );
        assert_eq!(
            t("san:3261", "iqn.x").host_port(),
            Some(("san".into(), 3261))
        );
        assert_eq!(t("san:port", "iqn.x").host_port(), None);
        assert_eq!(t("a b", "iqn.x").host_port(), None);
        assert!(t("h", "iqn.2026-12.org.example:disk1").iqn_ok());
        assert!(!t("h", "iqn.2026-12.org.example:Disk 1").iqn_ok());
        assert!(!t("h", "nqn.x").iqn_ok());
        assert_eq!(t("h", "iqn.x").volume(), "unit:0:0:1");
    }

    #[test]
    fn the_pool_names_the_secret_never_its_value() {
        let x = pool(
            "p1",
            &t("san:3261", "iqn.2026-12.org.example:d"),
            Initiator::Userspace("iqn.2026-12.creature:h"),
            Some("creature-p1"),
        );
        assert_eq!(
            x,
            "<pool type=\"iscsi-direct\">\n  <name>p1</name>\n  <source>\n    <host name=\"san\" port=\"3261\"/>\n    \
             <device path=\"iqn.2026-12.org.example:d\"/>\n    <initiator>\n      <iqn name=\"iqn.2026-12.creature:h\"/>\n    \
             </initiator>\n    <auth type=\"chap\" username=\"u&quot;&lt;\">\n      <secret usage=\"creature-p1\"/>\n    \
             </auth>\n  </source>\n</pool>\n"
        );
        let k = pool(
            "p1",
            &t("san", "iqn.2026-12.org.example:d"),
            Initiator::Kernel,
            None,
        );
        assert!(
            k.starts_with("<pool type=\"iscsi\">")
                && k.contains("<host name=\"san\" port=\"3260\"/>")
                && !k.contains("<auth")
                && !k.contains("<initiator")
                && k.ends_with(
                    "  <target>\n    <path>/dev/disk/by-path</path>\n  </target>\n</pool>\n"
                ),
            "{k}"
        );
        assert_eq!(
            secret("creature-p1"),
            "<secret ephemeral=\"no\" private=\"yes\">\n  <usage type=\"iscsi\">\n    <target>creature-p1</target>\n  </usage>\n</secret>\n"
        );
    }
}
