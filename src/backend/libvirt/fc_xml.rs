//! A Fibre Channel volume's pool (#32), as libvirt makes one: a `scsi` pool
//! whose `fc_host` adapter is an NPIV vHBA created from the WWNN/WWPN the
//! user gives, on a parent HBA. Pure.

use crate::xml::El;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fc {
    pub wwnn: String,
    pub wwpn: String,
    /// The parent HBA (`scsi_host3`); libvirt picks a capable one when None.
    pub parent: Option<String>,
    pub lun: u32,
}

/// A world wide name as libvirt takes it: 16 hex digits.
pub fn wwn_ok(s: &str) -> bool {
    let s = s.strip_prefix("0x").unwrap_or(s);
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn pool(name: &str, fc: &Fc) -> String {
    let mut adapter = El::new("adapter").attr("type", "fc_host");
    if let Some(p) = &fc.parent {
        adapter = adapter.attr("parent", p.clone());
    }
    El::new("pool")
        .attr("type", "scsi")
        .child(El::leaf("name", name))
        .child(
            El::new("source").child(
                adapter
                    .attr("managed", "yes")
                    .attr("wwnn", fc.wwnn.clone())
                    .attr("wwpn", fc.wwpn.clone()),
            ),
        )
        .child(El::new("target").child(El::leaf("path", "/dev/disk/by-path")))
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wwns() {
        assert!(wwn_ok("20000000c9831b4b"));
        assert!(wwn_ok("0x10000000c9831b4b"));
        assert!(!wwn_ok("20000000c9831b4"));
        assert!(!wwn_ok("20000000c9831b4g"));
    }

    /// tests/fixtures/storage/fc-pool.xml and iscsi-pool.xml, checked
    /// against libvirt's storagepool schema by tests/integration/domain_xml.rs.
    #[test]
    fn golden_pools() {
        let fc = pool(
            "creature-fc-san1",
            &Fc {
                wwnn: "20000000c9831b4b".into(),
                wwpn: "10000000c9831b4b".into(),
                parent: Some("scsi_host3".into()),
                lun: 1,
            },
        );
        use crate::backend::libvirt::iscsi_xml::{self, Initiator, Target};
        let target = Target {
            portal: "10.0.0.5:3260".into(),
            iqn: "iqn.2026-12.org.example:disks".into(),
            lun: 1,
            chap_user: Some("web".into()),
        };
        let iscsi = |initiator| {
            iscsi_xml::pool(
                "creature-iscsi-lun1",
                &target,
                initiator,
                Some("creature-creature-iscsi-lun1"),
            )
        };
        crate::golden::check("storage/fc-pool.xml", &fc);
        crate::golden::check(
            "storage/iscsi-pool.xml",
            &iscsi(Initiator::Userspace("iqn.2026-12.org.creature:host")),
        );
        // A Xen host's: dom0's kernel initiator.
        crate::golden::check("storage/iscsi-kernel-pool.xml", &iscsi(Initiator::Kernel));
    }
}
