//! The rescue definition of a domain (#11), made from its own: the same
//! devices, but booted directly from a rescue kernel and initramfs, with a
//! small scratch disk first so the machine's own disks are the guest's
//! second (and later) disks. A streaming XML transform with quick-xml's
//! reader and writer: elements are copied as libvirt wrote them, and what
//! creature adds is written as elements, never pasted. Pure.

use std::io::Cursor;

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

use crate::error::{Error, Result};

pub struct Rescue<'a> {
    pub kernel: &'a str,
    pub initrd: &'a str,
    /// Path of the scratch disk, and its volume name (deleted with the machine).
    pub scratch_path: &'a str,
    pub scratch_volume: &'a str,
    /// The rescue image's name, recorded in the domain's metadata.
    pub image: &'a str,
}

/// Guest device names move up one (vda -> vdb) to make room for the scratch disk.
fn next_dev(dev: &str) -> Option<String> {
    let last = dev.chars().last()?;
    if !last.is_ascii_lowercase() || last == 'z' {
        return None;
    }
    Some(format!(
        "{}{}",
        &dev[..dev.len() - 1],
        (last as u8 + 1) as char
    ))
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::other("cannot read the domain definition for rescue").caused_by(e)
}

pub fn render(original: &str, r: &Rescue<'_>) -> Result<String> {
    let mut reader = Reader::from_str(original);
    let mut w = Writer::new_with_indent(Cursor::new(Vec::new()), b' ', 2);
    let mut depth = 0usize;
    let mut in_os = false;
    let mut os_type: Option<(BytesStart<'static>, String)> = None;
    let mut in_type = false;
    let mut in_disk = false;
    let mut disk_is_disk = false;
    let mut scratch_written = false;
    let mut disks_moved = 0;
    // A Xen domain (PV): the scratch disk is a raw file for blkback on
    // xvda, and the rescue kernel's console is Xen's.
    let mut xen = false;
    let write = |w: &mut Writer<Cursor<Vec<u8>>>, e: Event<'_>| w.write_event(e).map_err(bad);
    loop {
        let ev = reader.read_event().map_err(bad)?;
        match ev {
            Event::Eof => break,
            Event::Start(ref e) if depth == 0 && e.local_name().as_ref() == b"domain" => {
                xen = e
                    .attributes()
                    .flatten()
                    .any(|a| a.key.as_ref() == b"type" && a.value.as_ref() == b"xen");
                depth += 1;
                write(&mut w, ev.clone())?;
            }
            Event::Start(ref e) if depth == 1 && e.local_name().as_ref() == b"os" => {
                in_os = true;
                depth += 1;
            }
            Event::End(ref e) if in_os && e.local_name().as_ref() == b"os" => {
                in_os = false;
                depth -= 1;
                let (ty, text) = os_type
                    .take()
                    .ok_or_else(|| bad("the definition has no <os><type>"))?;
                write(&mut w, Event::Start(BytesStart::new("os")))?;
                write(&mut w, Event::Start(ty))?;
                write(&mut w, Event::Text(BytesText::new(&text)))?;
                write(&mut w, Event::End(BytesEnd::new("type")))?;
                for (el, v) in [
                    ("kernel", r.kernel),
                    ("initrd", r.initrd),
                    (
                        "cmdline",
                        if xen {
                            "console=hvc0 creature.rescue=1"
                        } else {
                            "console=ttyS0 creature.rescue=1"
                        },
                    ),
                ] {
                    write(&mut w, Event::Start(BytesStart::new(el)))?;
                    write(&mut w, Event::Text(BytesText::new(v)))?;
                    write(&mut w, Event::End(BytesEnd::new(el)))?;
                }
                write(&mut w, Event::End(BytesEnd::new("os")))?;
            }
            // Inside <os>: only its <type> is kept.
            Event::Start(ref e) if in_os => {
                depth += 1;
                if e.local_name().as_ref() == b"type" {
                    in_type = true;
                    os_type = Some((e.to_owned(), String::new()));
                }
            }
            Event::Text(ref t) if in_os => {
                if in_type {
                    if let Some((_, s)) = os_type.as_mut() {
                        s.push_str(&t.unescape().map_err(bad)?);
                    }
                }
            }
            Event::End(_) if in_os => {
                depth -= 1;
                in_type = false;
            }
            Event::Empty(_) | Event::Comment(_) | Event::CData(_) if in_os => {}
            Event::Start(ref e) if e.local_name().as_ref() == b"disk" => {
                let device = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"device")
                    .map(|a| a.value.into_owned());
                disk_is_disk = device.as_deref().is_none_or(|d| d == b"disk");
                if disk_is_disk && !scratch_written {
                    scratch(&mut w, r, xen)?;
                    scratch_written = true;
                }
                in_disk = true;
                depth += 1;
                write(&mut w, ev.clone())?;
            }
            Event::End(ref e) if e.local_name().as_ref() == b"disk" => {
                in_disk = false;
                depth -= 1;
                write(&mut w, ev.clone())?;
            }
            Event::Empty(ref e)
                if in_disk && disk_is_disk && e.local_name().as_ref() == b"target" =>
            {
                let mut t = BytesStart::new("target");
                for a in e.attributes().flatten() {
                    if a.key.as_ref() == b"dev" {
                        let dev = String::from_utf8_lossy(&a.value).into_owned();
                        let moved = next_dev(&dev)
                            .ok_or_else(|| bad(format!("cannot move disk {dev} up one")))?;
                        t.push_attribute(("dev", moved.as_str()));
                        disks_moved += 1;
                    } else {
                        t.push_attribute(a);
                    }
                }
                write(&mut w, Event::Empty(t))?;
            }
            // The guest numbers virtio disks by their PCI slot, not their
            // target name: with the disks' addresses dropped, libvirt gives
            // them slots in this order, the scratch disk first.
            Event::Empty(ref e)
                if in_disk && disk_is_disk && e.local_name().as_ref() == b"address" => {}
            Event::End(ref e) if e.name().as_ref() == b"creature:machine" => {
                for (el, v) in [
                    ("creature:rescued", r.image),
                    ("creature:volume", r.scratch_volume),
                ] {
                    write(&mut w, Event::Start(BytesStart::new(el)))?;
                    write(&mut w, Event::Text(BytesText::new(v)))?;
                    write(&mut w, Event::End(BytesEnd::new(el)))?;
                }
                depth -= 1;
                write(&mut w, ev.clone())?;
            }
            Event::Start(_) => {
                depth += 1;
                write(&mut w, ev.clone())?;
            }
            Event::End(_) => {
                depth -= 1;
                write(&mut w, ev.clone())?;
            }
            // Indentation is the writer's.
            Event::Text(ref t) if t.iter().all(|b| b.is_ascii_whitespace()) => {}
            other => write(&mut w, other)?,
        }
    }
    if disks_moved == 0 {
        return Err(Error::conflict(
            "it has no disks: rescue boots a rescue system with the machine's own disks attached",
        ));
    }
    String::from_utf8(w.into_inner().into_inner()).map_err(bad)
}

/// The scratch disk's format: qcow2, or raw for a Xen domain.
pub fn scratch_format(xen: bool) -> &'static str {
    if xen {
        "raw"
    } else {
        "qcow2"
    }
}

fn scratch(w: &mut Writer<Cursor<Vec<u8>>>, r: &Rescue<'_>, xen: bool) -> Result<()> {
    let mut disk = BytesStart::new("disk");
    disk.push_attribute(("type", "file"));
    disk.push_attribute(("device", "disk"));
    let mut driver = BytesStart::new("driver");
    driver.push_attribute(("name", if xen { "phy" } else { "qemu" }));
    driver.push_attribute(("type", scratch_format(xen)));
    let mut source = BytesStart::new("source");
    source.push_attribute(("file", r.scratch_path));
    let mut target = BytesStart::new("target");
    target.push_attribute(("dev", if xen { "xvda" } else { "vda" }));
    target.push_attribute(("bus", if xen { "xen" } else { "virtio" }));
    for e in [
        Event::Start(disk),
        Event::Empty(driver),
        Event::Empty(source),
        Event::Empty(target),
        Event::End(BytesEnd::new("disk")),
    ] {
        w.write_event(e).map_err(bad)?;
    }
    Ok(())
}

/// The rescue image's name, if `xml` (a domain's metadata or definition)
/// says the machine is rescued.
pub fn rescued(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == b"rescued" => inside = true,
            Event::Text(t) if inside => return Some(t.unescape().ok()?.into_owned()),
            Event::Eof => return None,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = r#"<domain type='qemu'>
  <name>web</name>
  <metadata>
    <creature:machine xmlns:creature="https://creature.dev/ns/machine/1">
      <creature:owner>creature</creature:owner>
      <creature:volume>web-disk0.qcow2</creature:volume>
    </creature:machine>
  </metadata>
  <memory unit='KiB'>262144</memory>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/s/disks/web-disk0.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/s/disks/web-disk1.qcow2'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>
</domain>"#;

    fn rescue() -> Rescue<'static> {
        Rescue {
            kernel: "/s/images/k",
            initrd: "/s/images/i&<",
            scratch_path: "/s/disks/web-rescue.qcow2",
            scratch_volume: "web-rescue.qcow2",
            image: "tiny-guest",
        }
    }

    #[test]
    fn the_rescue_definition_boots_the_rescue_system_with_the_disks_moved_up() {
        let x = render(ORIGINAL, &rescue()).unwrap();
        assert!(
            x.contains("<type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>"),
            "{x}"
        );
        assert!(x.contains("<kernel>/s/images/k</kernel>"));
        assert!(
            x.contains("<initrd>/s/images/i&amp;&lt;</initrd>"),
            "escaped: {x}"
        );
        assert!(x.contains("<cmdline>console=ttyS0 creature.rescue=1</cmdline>"));
        assert!(!x.contains("<boot dev"), "{x}");
        // The scratch disk comes first, the machine's disks move up one; the cdrom stays.
        let scratch = x.find("web-rescue.qcow2\"").unwrap();
        let own = x
            .find("web-disk0.qcow2'")
            .or(x.find("web-disk0.qcow2\""))
            .unwrap();
        assert!(scratch < own);
        assert!(x.contains("dev='hdc'"), "the cdrom keeps its name");
        assert!(!x.contains("<address"), "disks get new slots: {x}");
        assert_eq!(x.matches("dev=\"vdb\"").count(), 1);
        assert_eq!(x.matches("dev=\"vdc\"").count(), 1);
        assert_eq!(rescued(&x).as_deref(), Some("tiny-guest"));
        assert!(x.contains("<creature:volume>web-rescue.qcow2</creature:volume>"));
        assert_eq!(rescued(ORIGINAL), None);
    }

    /// tests/fixtures/domain/qemu-rescue.xml and qemu-reverted.xml: the
    /// rescue definition and a snapshot revert's (disks moved) made from the
    /// golden qemu definition, checked against libvirt's schema by
    /// tests/integration/domain_xml.rs.
    #[test]
    fn golden_definitions_made_from_the_qemu_one() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/domain");
        let qemu = std::fs::read_to_string(dir.join("qemu.xml")).unwrap();
        let rescued = render(&qemu, &rescue()).unwrap();
        let reverted = crate::backend::libvirt::snapshot_xml::move_disks(
            &qemu,
            &[(
                "vda".into(),
                "/var/lib/creature/disks/web-disk0-3.qcow2".into(),
            )],
            "qcow2",
        )
        .unwrap();
        crate::golden::check("domain/qemu-rescue.xml", &rescued);
        crate::golden::check("domain/qemu-reverted.xml", &reverted);
    }

    /// A Xen PV domain: the scratch disk is raw for blkback on xvda, its
    /// disks move to xvdb..., the rescue kernel speaks on Xen's console.
    #[test]
    fn a_xen_rescue_keeps_to_xen_devices() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/domain");
        let xen = std::fs::read_to_string(dir.join("xen.xml")).unwrap();
        let r = Rescue {
            scratch_path: "/s/disks/web-rescue.raw",
            scratch_volume: "web-rescue.raw",
            ..rescue()
        };
        let x = render(&xen, &r).unwrap();
        assert!(
            x.contains("<cmdline>console=hvc0 creature.rescue=1</cmdline>"),
            "{x}"
        );
        assert!(x.contains("<driver name=\"phy\" type=\"raw\"/>"), "{x}");
        assert!(x.contains("<target dev=\"xvda\" bus=\"xen\"/>"), "{x}");
        assert!(x.contains("dev=\"xvdb\""), "{x}");
        assert!(
            !x.contains("virtio") && !x.contains("type=\"qcow2\""),
            "{x}"
        );
        crate::golden::check("domain/xen-rescue.xml", &x);
    }

    #[test]
    fn a_machine_without_disks_has_nothing_to_rescue() {
        let none = ORIGINAL.replace("device='disk'", "device='cdrom'");
        assert_eq!(
            render(&none, &rescue()).unwrap_err().kind(),
            crate::error::Kind::Conflict
        );
    }
}
