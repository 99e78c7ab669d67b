//! `creature create` with missing arguments on a terminal asks for them and
//! prints the equivalent one-line command. Driven through a real pty.

use std::io::Write;

use crate::util::{on_pty, read_until, state_dir};

#[test]
fn wizard_asks_and_prints_the_equivalent_command() {
    let d = state_dir();
    let (mut child, mut master) = on_pty(d.path(), &["create"]);
    let mut seen = String::new();
    read_until(&mut master, &mut seen, "template");
    // The last template (Up wraps around), tiny-xen: no Xen host here, so
    // reaching libvirt's xen driver fails after the wizard (nothing is
    // created or downloaded).
    master.write_all(b"\x1b[A\r").unwrap();
    read_until(&mut master, &mut seen, "machine name");
    master.write_all(b"Bad!\r").unwrap(); // refused by the name rule, asked again
    read_until(&mut master, &mut seen, "lower-case letter");
    master.write_all(b"\x15web1\r").unwrap(); // Ctrl-U clears the line
    read_until(&mut master, &mut seen, "vCPUs");
    master.write_all(b"\r").unwrap();
    read_until(&mut master, &mut seen, "memory");
    master.write_all(b"\r").unwrap();
    read_until(&mut master, &mut seen, "network");
    master.write_all(b"\r").unwrap();
    read_until(&mut master, &mut seen, "equivalent command:");
    read_until(&mut master, &mut seen, "xen:///system");
    let status = child.wait().unwrap();
    assert!(
        seen.contains(
            "equivalent command: creature create web1 --template tiny-xen --cpus 1 --memory 256MiB"
        ),
        "{seen}"
    );
    // libvirt's xen driver does not answer here: exit 6.
    assert_eq!(status.code(), Some(6), "{seen}");
}

/// Answering "no" at a prompt is an answer, not an interrupt: exit 1,
/// "nothing was done", and the machine is still there.
#[test]
fn a_declined_delete_exits_1_and_keeps_the_machine() {
    let d = state_dir();
    crate::util::seed(d.path(), &[("vm", creature::backend::Backend::Qemu)]);
    let (mut child, mut master) = on_pty(d.path(), &["delete", "vm"]);
    let mut seen = String::new();
    read_until(&mut master, &mut seen, "delete machine vm");
    master.write_all(b"n").unwrap();
    read_until(&mut master, &mut seen, "nothing was done");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{seen}");
    let s = creature::store::Store::open(d.path()).unwrap();
    assert!(s.machine("local", "vm").unwrap().is_some());
}
