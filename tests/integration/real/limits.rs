//! Disk I/O limits (#22) on a real qemu guest: from the template and from
//! `creature limits`, read back from libvirt, live and persistent, and
//! really throttling: the guest reads its disk no faster than the limit.

use std::time::Instant;

use super::vm::{virsh, Lab};

#[test]
fn disk_io_limits_throttle_a_real_guest() {
    let Some(lab) = Lab::if_available("disk_io_limits_throttle_a_real_guest") else {
        return;
    };
    let m = "lim-vm";
    lab.run(&[
        "create",
        m,
        "-t",
        "tiny",
        "--set",
        "disk.0.size=64MiB",
        "--set",
        "disk.0.read_bytes_sec=1MiB",
    ])
    .ok();
    let xml = String::from_utf8_lossy(&virsh(&["dumpxml", m]).stdout).into_owned();
    assert!(
        xml.contains("<read_bytes_sec>1048576</read_bytes_sec>"),
        "{xml}"
    );
    // Shut off: the persistent definition answers.
    let j = lab.run(&["limits", m, "--format", "json"]).ok().json();
    assert_eq!(j[0]["disk"], "vda");
    assert_eq!(j[0]["read_bytes_sec"], 1u64 << 20);

    lab.run(&["start", m]).ok();
    lab.wait_log(m, "the guest agent", |l| {
        l.contains("creature-test-guest: guest agent on")
    });
    // 4 MiB read straight from the disk at 1 MiB/s takes at least 3 s; an
    // unthrottled read here takes a small fraction of that.
    let t = Instant::now();
    lab.run(&[
        "exec",
        m,
        "--",
        "dd",
        "if=/dev/vda",
        "of=/dev/null",
        "bs=1M",
        "count=4",
        "iflag=direct",
    ])
    .ok();
    let took = t.elapsed().as_secs_f64();
    assert!(
        took >= 3.0,
        "4 MiB at 1 MiB/s read in {took:.2} s: not throttled"
    );

    // A live change, read back live and from the persistent definition.
    lab.run(&[
        "limits",
        m,
        "--read-bps",
        "0",
        "--total-bps",
        "8MiB",
        "--write-iops",
        "50",
    ])
    .ok()
    .stdout_has("limited lim-vm (vda): live and persistent");
    let j = lab.run(&["limits", m, "--format", "json"]).ok().json();
    assert_eq!(j[0]["read_bytes_sec"], 0);
    assert_eq!(j[0]["total_bytes_sec"], 8u64 << 20);
    assert_eq!(j[0]["write_iops_sec"], 50);
    let inactive =
        String::from_utf8_lossy(&virsh(&["dumpxml", "--inactive", m]).stdout).into_owned();
    assert!(
        inactive.contains("<total_bytes_sec>8388608</total_bytes_sec>"),
        "{inactive}"
    );
    lab.run(&["limits", m]).ok().stdout_has("8MiB/s");

    // Refused changes leave every limit as it was.
    lab.run(&["limits", m, "--read-bps", "1MiB"])
        .code(2)
        .stderr_has("a total bytes limit cannot be set beside a read or write bytes limit");
    lab.run(&["limits", m, "--disk", "vdz", "--total-iops", "5"])
        .code(4)
        .stderr_has("has no disk vdz (its disks: vda)");
    lab.run(&["limits", m, "--total-bps", "lots"])
        .code(2)
        .stderr_has("must be 0 or a size such as 10MiB");
    let again = lab.run(&["limits", m, "--format", "json"]).ok().json();
    assert_eq!(again, j);

    // A stopped machine's change waits for its next start.
    lab.run(&["destroy", m]).ok();
    lab.run(&["limits", m, "--write-iops", "99"])
        .ok()
        .stdout_has("persistent; in force from the next start");
    lab.run(&["start", m]).ok();
    let j = lab.run(&["limits", m, "--format", "json"]).ok().json();
    assert_eq!(j[0]["write_iops_sec"], 99);
    assert_eq!(j[0]["total_bytes_sec"], 8u64 << 20);

    // The matrix refuses it for containers (#22 lxc: missing).
    lab.run(&["create", "lim-ct", "-t", "lxc-busybox"]).ok();
    lab.run(&["limits", "lim-ct"])
        .code(3)
        .stderr_has("missing for lxc");
    lab.run(&["delete", m, "lim-ct", "--force", "--yes"]).ok();
}
