//! What a migration reads from and changes in a domain's definition: the
//! files its disks and boot use, and those paths moved to where the
//! destination host has them. A streaming transform with quick-xml's
//! reader and writer: everything else is copied as libvirt wrote it. Pure.

use std::collections::BTreeMap;
use std::io::Cursor;

use quick_xml::events::{BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

use crate::error::{Error, Result};

/// A disk of the domain, as far as moving it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRef {
    pub path: String,
    pub target: String,
    pub readonly: bool,
    /// disk, cdrom, ...
    pub device: String,
}

/// Files the domain uses: its file-backed disks, its direct-boot kernel
/// and initrd, and its serial log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Files {
    pub disks: Vec<DiskRef>,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub logs: Vec<String>,
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::other("cannot read the domain definition for migration").caused_by(e)
}

fn attr(e: &BytesStart<'_>, key: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

pub fn files(xml: &str) -> Result<Files> {
    let mut r = Reader::from_str(xml);
    let mut out = Files::default();
    let mut disk: Option<DiskRef> = None;
    let mut text_of: Option<&'static str> = None;
    let mut in_devices = false;
    loop {
        let ev = r.read_event().map_err(bad)?;
        match &ev {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(ev, Event::Empty(_));
                match e.local_name().as_ref() {
                    b"devices" => in_devices = !empty,
                    b"disk" if in_devices => {
                        let d = DiskRef {
                            path: String::new(),
                            target: String::new(),
                            readonly: false,
                            device: attr(e, b"device").unwrap_or_else(|| "disk".into()),
                        };
                        if !empty {
                            disk = Some(d);
                        }
                    }
                    b"source" if disk.is_some() => {
                        if let (Some(d), Some(f)) = (disk.as_mut(), attr(e, b"file")) {
                            if d.path.is_empty() {
                                d.path = f;
                            }
                        }
                    }
                    b"target" if disk.is_some() => {
                        if let (Some(d), Some(t)) = (disk.as_mut(), attr(e, b"dev")) {
                            d.target = t;
                        }
                    }
                    b"readonly" if disk.is_some() => {
                        if let Some(d) = disk.as_mut() {
                            d.readonly = true;
                        }
                    }
                    b"log" if in_devices => out.logs.extend(attr(e, b"file")),
                    b"kernel" if !empty && !in_devices => text_of = Some("kernel"),
                    b"initrd" if !empty && !in_devices => text_of = Some("initrd"),
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some(which) = text_of {
                    let v = t.unescape().map_err(bad)?.into_owned();
                    match which {
                        "kernel" => out.kernel = Some(v),
                        _ => out.initrd = Some(v),
                    }
                }
            }
            Event::End(e) => {
                text_of = None;
                match e.local_name().as_ref() {
                    b"disk" => {
                        if let Some(d) = disk.take() {
                            if !d.path.is_empty() {
                                out.disks.push(d);
                            }
                        }
                    }
                    b"devices" => in_devices = false,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The definition with file paths moved: disk sources, the kernel and the
/// initrd whose path is a key of `moved` take its value.
pub fn relocate(xml: &str, moved: &BTreeMap<String, String>) -> Result<String> {
    if moved.is_empty() {
        return Ok(xml.to_string());
    }
    let mut r = Reader::from_str(xml);
    let mut w = Writer::new(Cursor::new(Vec::new()));
    let mut in_disk = false;
    let mut in_boot_file = false;
    loop {
        let ev = r.read_event().map_err(bad)?;
        let out = match ev {
            Event::Eof => break,
            Event::Start(ref e) if e.local_name().as_ref() == b"disk" => {
                in_disk = true;
                ev
            }
            Event::End(ref e) if e.local_name().as_ref() == b"disk" => {
                in_disk = false;
                ev
            }
            Event::Start(ref e) | Event::Empty(ref e)
                if in_disk && e.local_name().as_ref() == b"source" =>
            {
                let mut s = BytesStart::new("source");
                for a in e.attributes().flatten() {
                    let v = a.unescape_value().map_err(bad)?.into_owned();
                    match (a.key.as_ref(), moved.get(&v)) {
                        (b"file", Some(to)) => s.push_attribute(("file", to.as_str())),
                        _ => s.push_attribute((
                            std::str::from_utf8(a.key.as_ref()).map_err(bad)?,
                            v.as_str(),
                        )),
                    }
                }
                match ev {
                    Event::Start(_) => Event::Start(s),
                    _ => Event::Empty(s),
                }
            }
            Event::Start(ref e)
                if !in_disk && matches!(e.local_name().as_ref(), b"kernel" | b"initrd") =>
            {
                in_boot_file = true;
                ev
            }
            Event::Text(ref t) if in_boot_file => {
                let v = t.unescape().map_err(bad)?.into_owned();
                let to = moved.get(&v).cloned().unwrap_or(v);
                Event::Text(BytesText::new(&to).into_owned())
            }
            Event::End(_) if in_boot_file => {
                in_boot_file = false;
                ev
            }
            other => other,
        };
        w.write_event(out).map_err(bad)?;
    }
    String::from_utf8(w.into_inner().into_inner()).map_err(bad)
}

/// What a storage volume's XML says that a copy of it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFacts {
    pub capacity: u64,
    pub format: String,
    /// Its backing file and that file's format.
    pub backing: Option<(String, String)>,
}

pub fn volume_facts(xml: &str) -> Result<VolumeFacts> {
    let mut r = Reader::from_str(xml);
    let (mut capacity, mut format) = (None, None);
    let (mut bpath, mut bformat) = (None, None);
    let mut stack: Vec<Vec<u8>> = Vec::new();
    loop {
        let ev = r.read_event().map_err(bad)?;
        match &ev {
            Event::Eof => break,
            Event::Start(e) => stack.push(e.local_name().as_ref().to_vec()),
            Event::Empty(e) if e.local_name().as_ref() == b"format" => {
                let in_backing = stack.iter().any(|s| s == b"backingStore");
                let ty = attr(e, b"type");
                if in_backing {
                    bformat = bformat.or(ty);
                } else if stack.last().map(|s| s.as_slice()) == Some(b"target") {
                    format = format.or(ty);
                }
            }
            Event::Text(t) => {
                let v = t.unescape().map_err(bad)?.into_owned();
                let path: Vec<&[u8]> = stack.iter().map(|s| s.as_slice()).collect();
                match path.as_slice() {
                    [b"volume", b"capacity"] => capacity = v.trim().parse().ok(),
                    [b"volume", b"backingStore", b"path"] => bpath = Some(v),
                    _ => {}
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            _ => {}
        }
    }
    Ok(VolumeFacts {
        capacity: capacity.ok_or_else(|| bad("a volume without a capacity"))?,
        format: format.unwrap_or_else(|| "raw".into()),
        backing: bpath.map(|p| (p, bformat.unwrap_or_else(|| "raw".into()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<domain type="qemu">
  <name>web</name>
  <os>
    <type arch="x86_64">hvm</type>
    <kernel>/s/images/sha256/k&amp;1</kernel>
    <initrd>/s/images/sha256/i1</initrd>
  </os>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2"/>
      <source file="/s/disks/web-disk0.qcow2" index="2"/>
      <backingStore type="file" index="3">
        <source file="/s/images/sha256/ab"/>
      </backingStore>
      <target dev="vda" bus="virtio"/>
    </disk>
    <disk type="file" device="disk">
      <source file="/s/seeds/web/drive.iso"/>
      <target dev="vdb" bus="virtio"/>
      <readonly/>
    </disk>
    <disk type="file" device="cdrom">
      <target dev="sda" bus="sata"/>
      <readonly/>
    </disk>
    <serial type="pty">
      <log file="/s/logs/web.serial.log" append="on"/>
    </serial>
  </devices>
</domain>"#;

    #[test]
    fn reads_the_files_a_domain_uses() {
        let f = files(XML).unwrap();
        assert_eq!(f.kernel.as_deref(), Some("/s/images/sha256/k&1"));
        assert_eq!(f.initrd.as_deref(), Some("/s/images/sha256/i1"));
        assert_eq!(f.logs, ["/s/logs/web.serial.log"]);
        assert_eq!(
            f.disks,
            [
                DiskRef {
                    path: "/s/disks/web-disk0.qcow2".into(),
                    target: "vda".into(),
                    readonly: false,
                    device: "disk".into()
                },
                DiskRef {
                    path: "/s/seeds/web/drive.iso".into(),
                    target: "vdb".into(),
                    readonly: true,
                    device: "disk".into()
                }
            ],
            "an empty cdrom is no file"
        );
    }

    #[test]
    fn moves_only_the_named_paths() {
        let moved: BTreeMap<String, String> = [
            ("/s/seeds/web/drive.iso", "/s/disks/web-seed.iso"),
            ("/s/images/sha256/k&1", "/r/k<1"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let out = relocate(XML, &moved).unwrap();
        let f = files(&out).unwrap();
        assert_eq!(f.disks[1].path, "/s/disks/web-seed.iso");
        assert_eq!(f.disks[0].path, "/s/disks/web-disk0.qcow2");
        assert_eq!(f.kernel.as_deref(), Some("/r/k<1"));
        assert!(out.contains("<kernel>/r/k&lt;1</kernel>"), "{out}");
        assert!(
            out.contains(r#"<source file="/s/images/sha256/ab"/>"#),
            "{out}"
        );
        assert!(out.contains(r#"index="2""#), "other attributes kept: {out}");
        assert_eq!(relocate(XML, &BTreeMap::new()).unwrap(), XML);
    }

    #[test]
    fn reads_a_volume_and_its_backing() {
        let v = volume_facts(
            "<volume type='file'><name>web-disk0.qcow2</name><capacity unit='bytes'>16777216</capacity>\
             <target><path>/s/disks/web-disk0.qcow2</path><format type='qcow2'/></target>\
             <backingStore><path>/s/images/sha256/ab</path><format type='raw'/></backingStore></volume>",
        )
        .unwrap();
        assert_eq!(
            v,
            VolumeFacts {
                capacity: 16 << 20,
                format: "qcow2".into(),
                backing: Some(("/s/images/sha256/ab".into(), "raw".into()))
            }
        );
        let e = volume_facts(
            "<volume><capacity>5</capacity><target><format type='raw'/></target></volume>",
        )
        .unwrap();
        assert_eq!(e.backing, None);
        assert_eq!(e.format, "raw");
    }
}
