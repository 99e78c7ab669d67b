//! `creature create` with missing arguments on a terminal asks for them and
//! prints the equivalent one-line command. Driven through a real pty.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bin, state_dir};

fn read_until(master: &mut std::fs::File, buf: &mut String, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut chunk = [0u8; 4096];
    while !buf.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} on the terminal; saw:\n{buf}"
        );
        match master.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break, // child closed the pty
            Err(e) => panic!("read pty: {e}"),
        }
    }
}

/// `creature ARGS` on a new pty as its controlling terminal; returns the
/// child and the pty's master end (non-blocking).
fn on_pty(state: &std::path::Path, args: &[&str]) -> (std::process::Child, std::fs::File) {
    let (mut master_fd, mut slave_fd) = (0, 0);
    // SAFETY: openpty fills two descriptors we then own.
    let rc = unsafe {
        libc::openpty(
            &mut master_fd,
            &mut slave_fd,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: fresh descriptors from openpty, owned here.
    let slave = unsafe { OwnedFd::from_raw_fd(slave_fd) };
    let master = unsafe { std::fs::File::from_raw_fd(master_fd) };
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(master_fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("CREATURE_STATE_DIR", state)
        .env("CREATURE_CONFIG", state.join("none.toml"))
        .env("TERM", "xterm")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    (cmd.spawn().unwrap(), master)
}

#[test]
fn wizard_asks_and_prints_the_equivalent_command() {
    let d = state_dir();
    let (mut child, mut master) = on_pty(d.path(), &["create"]);
    let mut seen = String::new();
    read_until(&mut master, &mut seen, "template");
    // The sixth template, tiny-xen: no Xen host here, so the matrix refuses
    // it after the wizard (and nothing is created or downloaded).
    master
        .write_all(b"\x1b[B\x1b[B\x1b[B\x1b[B\x1b[B\r")
        .unwrap();
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
    read_until(&mut master, &mut seen, "refused");
    let status = child.wait().unwrap();
    assert!(
        seen.contains(
            "equivalent command: creature create web1 --template tiny-xen --cpus 1 --memory 256MiB"
        ),
        "{seen}"
    );
    // Launch is not implemented for xen: the matrix has the last word.
    assert_eq!(status.code(), Some(3), "{seen}");
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
