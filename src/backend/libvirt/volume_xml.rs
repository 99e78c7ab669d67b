//! The `<disk>` of a block volume attached to a domain, and the guest
//! device it takes. Pure.

use crate::xml::El;

/// What to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDisk {
    /// A file, or `pool/volume` for a volume of a pool that is not
    /// file-backed (an iSCSI LUN): see `pool_volume`.
    pub path: String,
    /// (pool, volume) of a network volume: the disk names the pool's volume
    /// and libvirt connects (and logs in) for QEMU.
    pub pool_volume: Option<(String, String)>,
    /// `path` is a block device of the host (a LUN through its kernel
    /// initiator: how a xen domU gets one, blkback serving it).
    pub block: bool,
    /// `qcow2` or `raw`.
    pub format: String,
    pub target: String,
    pub readonly: bool,
    pub shareable: bool,
}

/// The bus a device name implies (`vdX` virtio, `sdX` scsi, `xvdX` xen).
pub fn bus_of(target: &str) -> Option<&'static str> {
    let (prefix, rest) = if let Some(r) = target.strip_prefix("xvd") {
        ("xen", r)
    } else if let Some(r) = target.strip_prefix("vd") {
        ("virtio", r)
    } else if let Some(r) = target.strip_prefix("sd") {
        ("scsi", r)
    } else {
        return None;
    };
    (rest.len() == 1 && rest.bytes().all(|b| b.is_ascii_lowercase())).then_some(prefix)
}

/// The first device name of `prefix` (`vd`) that no disk of the machine
/// has, from `b` on (`a` is its first disk's by convention).
pub fn next_target(prefix: &str, used: &[String]) -> Option<String> {
    (b'b'..=b'z')
        .map(|c| format!("{prefix}{}", c as char))
        .find(|t| !used.contains(t))
}

pub fn render(d: &VolumeDisk) -> String {
    let (kind, source) = match &d.pool_volume {
        Some((pool, vol)) => (
            "volume",
            El::new("source")
                .attr("pool", pool.clone())
                .attr("volume", vol.clone()),
        ),
        None if d.block => ("block", El::new("source").attr("dev", d.path.clone())),
        None => ("file", El::new("source").attr("file", d.path.clone())),
    };
    El::new("disk")
        .attr("type", kind)
        .attr("device", "disk")
        .child(if bus_of(&d.target) == Some("xen") {
            // Xen: blkback in dom0 serves the raw file (libxl's phy
            // backend, the file set up on a loop device) or the block
            // device, no QEMU.
            El::new("driver").attr("name", "phy").attr("type", "raw")
        } else {
            El::new("driver")
                .attr("name", "qemu")
                .attr("type", d.format.clone())
                // A disk two guests write must not be cached on the host side.
                .attr("cache", if d.shareable { "none" } else { "default" })
        })
        .child(source)
        .child(
            El::new("target")
                .attr("dev", d.target.clone())
                .attr("bus", bus_of(&d.target).unwrap_or("virtio")),
        )
        .child_if(d.readonly, || El::new("readonly"))
        .child_if(d.shareable, || El::new("shareable"))
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_buses() {
        assert_eq!(
            next_target("vd", &["vda".into(), "vdb".into(), "sda".into()]).as_deref(),
            Some("vdc")
        );
        assert_eq!(next_target("vd", &[]).as_deref(), Some("vdb"));
        let full: Vec<String> = (b'a'..=b'z').map(|c| format!("vd{}", c as char)).collect();
        assert_eq!(next_target("vd", &full), None);
        assert_eq!(bus_of("vdc"), Some("virtio"));
        assert_eq!(bus_of("xvdb"), Some("xen"));
        assert_eq!(bus_of("sdb"), Some("scsi"));
        assert_eq!(bus_of("vd1"), None);
        assert_eq!(bus_of("hda"), None);
    }

    #[test]
    fn a_disk_says_what_it_is() {
        let lun = render(&VolumeDisk {
            path: "p/unit:0:0:1".into(),
            pool_volume: Some(("p".into(), "unit:0:0:1".into())),
            block: false,
            format: "raw".into(),
            target: "vdb".into(),
            readonly: false,
            shareable: false,
        });
        assert!(
            lun.starts_with("<disk type=\"volume\" device=\"disk\">")
                && lun.contains("<source pool=\"p\" volume=\"unit:0:0:1\"/>"),
            "{lun}"
        );
        let x = render(&VolumeDisk {
            path: "/v/data.qcow2".into(),
            pool_volume: None,
            block: false,
            format: "qcow2".into(),
            target: "vdc".into(),
            readonly: true,
            shareable: false,
        });
        assert_eq!(
            x,
            "<disk type=\"file\" device=\"disk\">\n  <driver name=\"qemu\" type=\"qcow2\" cache=\"default\"/>\n  \
             <source file=\"/v/data.qcow2\"/>\n  <target dev=\"vdc\" bus=\"virtio\"/>\n  <readonly/>\n</disk>\n"
        );
        // Xen: blkback's raw file, whatever the record says of caching.
        let xen = render(&VolumeDisk {
            path: "/v/data.img".into(),
            pool_volume: None,
            block: false,
            format: "raw".into(),
            target: "xvdb".into(),
            readonly: false,
            shareable: false,
        });
        assert!(
            xen.contains("<driver name=\"phy\" type=\"raw\"/>")
                && xen.contains("<target dev=\"xvdb\" bus=\"xen\"/>"),
            "{xen}"
        );
        // A LUN of dom0's kernel initiator: a block device for blkback.
        let lun = render(&VolumeDisk {
            path: "/dev/disk/by-path/ip-10.0.0.2:3260-iscsi-iqn.x:d-lun-1".into(),
            pool_volume: None,
            block: true,
            format: "raw".into(),
            target: "xvdc".into(),
            readonly: false,
            shareable: false,
        });
        assert_eq!(
            lun,
            "<disk type=\"block\" device=\"disk\">\n  <driver name=\"phy\" type=\"raw\"/>\n  \
             <source dev=\"/dev/disk/by-path/ip-10.0.0.2:3260-iscsi-iqn.x:d-lun-1\"/>\n  \
             <target dev=\"xvdc\" bus=\"xen\"/>\n</disk>\n"
        );
    }
}
