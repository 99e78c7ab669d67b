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

#[test]
fn wizard_asks_and_prints_the_equivalent_command() {
    let d = state_dir();
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
    let mut master = unsafe { std::fs::File::from_raw_fd(master_fd) };
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(master_fd, libc::F_SETFL, libc::O_NONBLOCK) };
    let mut cmd = Command::new(bin());
    cmd.args(["create"])
        .env("CREATURE_STATE_DIR", d.path())
        .env("CREATURE_CONFIG", d.path().join("none.toml"))
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
    let mut child = cmd.spawn().unwrap();
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
