//! `creature console` on a running tiny guest: type a command, read its
//! answer, leave with Ctrl-]. Proves matrix #28 for qemu (Nova: unknown).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::vm::Lab;
use crate::util::bin;

#[test]
fn qemu_console_types_and_reads() {
    if !super::available("qemu_console_types_and_reads") {
        return;
    }
    let lab = Lab::new();
    let m = "con-qemu";
    lab.run(&["create", m, "-t", "tiny"]).ok();
    lab.run(&["start", m]).ok();
    lab.wait_log(m, "boot line", |l| {
        l.contains("creature-test-guest: booted")
    });

    // log --follow prints what is there and what comes, until Ctrl-C (130).
    let follow = Command::new(bin())
        .args(["log", m, "--follow"])
        .env("CREATURE_STATE_DIR", lab.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Command::new(bin())
        .args(["console", m])
        .env("CREATURE_STATE_DIR", lab.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The guest's shell computes the answer, so an echo of our typing does not count.
    while !seen.contains("hello-42") {
        assert!(
            Instant::now() < deadline,
            "no answer on the console; saw:\n{seen}"
        );
        stdin.write_all(b"echo hello-$((6*7))\r").unwrap();
        stdin.flush().unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(b) => seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => break,
            }
        }
    }
    // What was typed on the console reached the log being followed.
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(follow.id() as i32, libc::SIGINT) };
    let followed = follow.wait_with_output().unwrap();
    assert_eq!(followed.status.code(), Some(130));
    let text = String::from_utf8_lossy(&followed.stdout);
    assert!(
        text.contains("creature-test-guest: booted") && text.contains("hello-42"),
        "{text}"
    );

    stdin.write_all(&[0x1d]).unwrap(); // Ctrl-]
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "console did not leave on Ctrl-]");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    // The machine runs on after the console is left.
    assert_eq!(lab.state(m), "running");
    lab.run(&["delete", m, "--yes", "--force"]).ok();
}
