//! `creature console` on a running tiny guest: type a command, read its
//! answer, leave with Ctrl-]. Proves matrix #28 for qemu (Nova: unknown).
//! `log --follow` runs meanwhile and must see the same output.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::vm::{console_says, Lab};
use crate::util::bin;

#[test]
fn qemu_console_types_and_reads() {
    let Some(lab) = Lab::if_available("qemu_console_types_and_reads") else {
        return;
    };
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

    console_says(&lab, m, b"\r");

    // What was typed on the console reached the log being followed.
    std::thread::sleep(Duration::from_millis(500));
    let followed = crate::util::interrupt(follow);
    let text = String::from_utf8_lossy(&followed.stdout);
    assert!(
        text.contains("creature-test-guest: booted") && text.contains("hello-42"),
        "{text}"
    );

    // The machine runs on after the console is left.
    assert_eq!(lab.state(m), "running");
    lab.run(&["delete", m, "--yes", "--force"]).ok();
}
