//! The XML of snapshots (#16): the `<domainsnapshot>` creature asks libvirt
//! for, and a domain definition with some disks moved to other files (a
//! revert). Pure.

use std::io::Cursor;

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, Writer};

use crate::error::{Error, Result};
use crate::xml::El;

/// An external snapshot: each of `overlays` (target, new file) gets a new
/// qcow2 file on top of what it writes to now; every other disk of
/// `all_targets` is left out of it; memory goes to `memory` if given.
pub fn snapshot(
    name: &str,
    overlays: &[(String, String)],
    all_targets: &[String],
    memory: Option<&str>,
) -> String {
    let mem = match memory {
        Some(f) => El::new("memory")
            .attr("snapshot", "external")
            .attr("file", f),
        None => El::new("memory").attr("snapshot", "no"),
    };
    let disks = all_targets
        .iter()
        .map(|t| match overlays.iter().find(|(o, _)| o == t) {
            Some((_, file)) => El::new("disk")
                .attr("name", t.clone())
                .attr("snapshot", "external")
                .attr("type", "file")
                .child(El::new("driver").attr("type", "qcow2"))
                .child(El::new("source").attr("file", file.clone())),
            None => El::new("disk")
                .attr("name", t.clone())
                .attr("snapshot", "no"),
        });
    El::new("domainsnapshot")
        .child(El::leaf("name", name))
        .child(mem)
        .child(El::new("disks").children(disks))
        .render()
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::other("cannot read the domain definition").caused_by(e)
}

/// `xml` with the disks of `moves` (target, file) reading from their new
/// file of `format` (its backing chain probed again: old `<backingStore>`s
/// go). Every other byte is copied as libvirt wrote it.
pub fn move_disks(xml: &str, moves: &[(String, String)], format: &str) -> Result<String> {
    let mut reader = Reader::from_str(xml);
    let mut w = Writer::new(Cursor::new(Vec::new()));
    let mut disk: Option<Vec<Event<'static>>> = None;
    let mut moved = 0;
    loop {
        let ev = reader.read_event().map_err(bad)?.into_owned();
        match (&ev, disk.as_mut()) {
            (Event::Eof, _) => break,
            (Event::Start(e), None) if e.local_name().as_ref() == b"disk" => {
                disk = Some(vec![ev]);
            }
            (Event::End(e), Some(buf)) if e.local_name().as_ref() == b"disk" => {
                buf.push(ev);
                let buf = disk.take().expect("in a disk");
                let target = buf.iter().find_map(|e| match e {
                    Event::Empty(s) | Event::Start(s) if s.local_name().as_ref() == b"target" => {
                        attr(s, "dev")
                    }
                    _ => None,
                });
                let to = target.and_then(|t| moves.iter().find(|(m, _)| *m == t));
                let out = match to {
                    Some((_, file)) => {
                        moved += 1;
                        rewrite_disk(buf, file, format)
                    }
                    None => buf,
                };
                for e in out {
                    w.write_event(e).map_err(bad)?;
                }
            }
            (_, Some(buf)) => buf.push(ev),
            (_, None) => w.write_event(ev).map_err(bad)?,
        }
    }
    if moved != moves.len() {
        return Err(Error::other(format!(
            "the definition has {moved} of the {} disks to move",
            moves.len()
        )));
    }
    String::from_utf8(w.into_inner().into_inner()).map_err(bad)
}

fn attr(e: &BytesStart<'_>, k: &str) -> Option<String> {
    e.try_get_attribute(k)
        .ok()
        .flatten()
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

/// One `<disk>`'s events with its own `<source>` pointing at `file`, its
/// driver qcow2, and no `<backingStore>` (or anything inside one).
fn rewrite_disk(events: Vec<Event<'static>>, file: &str, format: &str) -> Vec<Event<'static>> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut skip_from: Option<usize> = None;
    for ev in events {
        let (opens, closes) = match &ev {
            Event::Start(_) => (true, false),
            Event::End(_) => (false, true),
            _ => (false, false),
        };
        if closes {
            depth -= 1;
        }
        if let Some(d) = skip_from {
            if closes && depth == d {
                skip_from = None;
            }
            if opens {
                depth += 1;
            }
            continue;
        }
        // depth 1: direct children of <disk>.
        let named = |e: &BytesStart<'_>, n: &[u8]| e.local_name().as_ref() == n;
        let ev = match ev {
            Event::Start(ref e) if depth == 1 && named(e, b"backingStore") => {
                skip_from = Some(depth);
                depth += 1;
                continue;
            }
            Event::Empty(ref e) if depth == 1 && named(e, b"backingStore") => continue,
            Event::Empty(ref e) | Event::Start(ref e)
                if depth == 1 && (named(e, b"source") || named(e, b"driver")) =>
            {
                let is_source = named(e, b"source");
                let mut s = BytesStart::new(if is_source { "source" } else { "driver" });
                for a in e.attributes().flatten() {
                    let k = a.key.as_ref();
                    if (is_source && (k == b"file" || k == b"index"))
                        || (!is_source && k == b"type")
                    {
                        continue;
                    }
                    s.push_attribute(a);
                }
                if is_source {
                    s.push_attribute(("file", file));
                } else {
                    s.push_attribute(("type", format));
                }
                match ev {
                    Event::Start(_) => Event::Start(s.into_owned()),
                    _ => Event::Empty(s.into_owned()),
                }
            }
            other => other,
        };
        if opens {
            depth += 1;
        }
        out.push(ev);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_names_each_disk_and_leaves_the_others_out() {
        let x = snapshot(
            "s1",
            &[("vda".into(), "/p/web-disk0-1.qcow2".into())],
            &["vda".into(), "sdc".into()],
            None,
        );
        assert_eq!(
            x,
            "<domainsnapshot>\n  <name>s1</name>\n  <memory snapshot=\"no\"/>\n  <disks>\n    \
             <disk name=\"vda\" snapshot=\"external\" type=\"file\">\n      <driver type=\"qcow2\"/>\n      \
             <source file=\"/p/web-disk0-1.qcow2\"/>\n    </disk>\n    <disk name=\"sdc\" snapshot=\"no\"/>\n  \
             </disks>\n</domainsnapshot>\n"
        );
        assert!(snapshot("s", &[], &[], Some("/m/s.mem"))
            .contains("<memory snapshot=\"external\" file=\"/m/s.mem\"/>"));
    }

    /// tests/fixtures/domain/snapshot*.xml (checked against libvirt's
    /// schema by tests/integration/domain_xml.rs).
    #[test]
    fn golden_snapshots() {
        let all = ["vda".to_string(), "vdb".into(), "sda".into()];
        let overlays = [
            (
                "vda".to_string(),
                "/var/lib/creature/disks/web-disk0-1.qcow2".to_string(),
            ),
            (
                "vdb".into(),
                "/var/lib/creature/disks/web-disk1-2.qcow2".into(),
            ),
        ];
        for (file, mem) in [
            ("snapshot.xml", None),
            (
                "snapshot-memory.xml",
                Some("/var/lib/creature/snapshots/web/s1.mem"),
            ),
        ] {
            crate::golden::check(
                &format!("domain/{file}"),
                &snapshot("s1", &overlays, &all, mem),
            );
        }
    }

    const LIVE: &str = r#"<domain type="qemu"><name>web</name><devices>
<disk type="file" device="disk"><driver name="qemu" type="qcow2"/><source file="/p/web-disk0-2.qcow2" index="3"/><backingStore type="file" index="2"><format type="qcow2"/><source file="/p/web-disk0.qcow2"/><backingStore/></backingStore><target dev="vda" bus="virtio"/></disk>
<disk type="file" device="cdrom"><driver name="qemu" type="raw"/><source file="/s/seed.iso"/><target dev="sda" bus="sata"/><readonly/></disk>
</devices></domain>"#;

    #[test]
    fn moving_a_disk_changes_its_source_only() {
        let x = move_disks(
            LIVE,
            &[("vda".into(), "/p/web-disk0-5.qcow2".into())],
            "qcow2",
        )
        .unwrap();
        assert!(
            x.contains(r#"<source file="/p/web-disk0-5.qcow2"/>"#),
            "{x}"
        );
        assert!(x.contains(r#"<driver name="qemu" type="qcow2"/>"#), "{x}");
        assert!(!x.contains("backingStore"), "{x}");
        assert!(!x.contains("web-disk0-2"), "{x}");
        assert!(x.contains(r#"<source file="/s/seed.iso"/>"#), "{x}");
        assert!(x.contains(r#"<target dev="vda" bus="virtio"/>"#), "{x}");
        assert_eq!(x.matches("<disk ").count(), 2);
    }

    #[test]
    fn a_file_name_is_escaped_and_a_missing_disk_refused() {
        let x = move_disks(LIVE, &[("vda".into(), "/p/a\"<b.qcow2".into())], "raw").unwrap();
        assert!(
            x.contains(r#"<driver name="qemu" type="raw"/><source file="/p/a&quot;&lt;b.qcow2"/>"#),
            "{x}"
        );
        assert!(x.contains("file=\"/p/a&quot;&lt;b.qcow2\""), "{x}");
        assert!(move_disks(LIVE, &[("vdz".into(), "/x".into())], "qcow2").is_err());
    }
}
