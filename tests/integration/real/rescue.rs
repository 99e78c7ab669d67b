//! `creature rescue` and `unrescue` (#11) on a real qemu guest: the rescue
//! system boots (its kernel command line says so) and reads a marker the
//! machine wrote on its own disk, now its second disk; unrescue boots the
//! machine from that disk again; a rescue killed half-way (fail points) is
//! still known and undone.

use super::vm::Lab;

const MARK: &str = "rescue-marker-42";

fn marker_on(lab: &Lab, m: &str, dev: &str) -> String {
    lab.guest(
        m,
        &format!("dd if=/dev/{dev} bs=512 skip=2048 count=1 2>/dev/null | head -c 16"),
    )
}

fn boots(lab: &Lab, m: &str) -> usize {
    lab.log(m)
        .matches("creature-test-guest: guest agent on")
        .count()
}

fn rescued(lab: &Lab, m: &str) -> serde_json::Value {
    lab.run(&["info", m, "--format", "json"]).ok().json()["rescued"].clone()
}

#[test]
fn rescue_reads_the_machines_own_disk() {
    let Some(lab) = Lab::if_available("rescue_reads_the_machines_own_disk") else {
        return;
    };
    crate::util::require_hooks();
    let m = "rs-vm";
    lab.run(&["create", m, "-t", "tiny", "--set", "disk.0.size=16MiB"])
        .ok();
    lab.run(&["start", m]).ok();
    lab.wait_log(m, "the guest agent", |_| boots(&lab, m) == 1);
    lab.guest(
        m,
        &format!("printf {MARK} | dd of=/dev/vda bs=512 seek=2048 conv=notrunc 2>/dev/null; sync"),
    );
    assert_eq!(marker_on(&lab, m, "vda"), MARK);

    lab.run(&["rescue", m, "--image", "tiny-guest"])
        .ok()
        .stdout_has("rescued rs-vm: booted from image tiny-guest");
    lab.wait_log(m, "the rescue system", |_| boots(&lab, m) == 2);
    assert_eq!(rescued(&lab, m), "tiny-guest");
    lab.run(&["info", m])
        .ok()
        .stdout_has("booted from image tiny-guest");
    assert!(lab
        .guest(m, "cat /proc/cmdline")
        .contains("creature.rescue=1"));
    // Its own disk is the second disk now, marker and all; the first is the scratch disk.
    assert_eq!(marker_on(&lab, m, "vdb"), MARK);
    assert_eq!(lab.guest(m, "cat /sys/block/vda/size"), "2048");
    assert_eq!(lab.guest(m, "cat /sys/block/vdb/size"), "32768");
    lab.run(&["rescue", m])
        .code(5)
        .stderr_has("already rescued");
    let kept = lab.path().join("rescue").join(format!("{m}.xml"));
    assert!(kept.exists());
    let scratch = lab.path().join("disks").join(format!("{m}-rescue.qcow2"));
    let no_leftovers = || !kept.exists() && !scratch.exists();

    lab.run(&["unrescue", m]).ok().stdout_has("unrescued rs-vm");
    lab.wait_log(m, "its own system again", |_| boots(&lab, m) == 3);
    assert!(rescued(&lab, m).is_null());
    assert!(!lab
        .guest(m, "cat /proc/cmdline")
        .contains("creature.rescue"));
    assert_eq!(marker_on(&lab, m, "vda"), MARK);
    assert!(no_leftovers());
    lab.run(&["unrescue", m])
        .code(5)
        .stderr_has("is not rescued");

    // Killed after its definition was kept: nothing changed, and a rescue works after.
    lab.c()
        .args(["rescue", m, "--image", "tiny-guest"])
        .env("CREATURE_TEST_FAIL_AT", "rescue-kept")
        .run()
        .code(1);
    assert!(rescued(&lab, m).is_null());
    assert_eq!(lab.state(m), "running");
    // Killed after the rescue was defined, before it started: info knows, unrescue undoes.
    lab.c()
        .args(["rescue", m, "--image", "tiny-guest"])
        .env("CREATURE_TEST_FAIL_AT", "rescue-defined")
        .run()
        .code(1);
    assert_eq!(rescued(&lab, m), "tiny-guest");
    lab.run(&["unrescue", m]).ok();
    lab.wait_log(m, "its own system after the interrupted rescue", |_| {
        boots(&lab, m) == 4
    });
    assert_eq!(marker_on(&lab, m, "vda"), MARK);

    // An image without the files, and no default image: one line, exit 4, nothing changes.
    lab.run(&["rescue", m, "--image", "nosuch"])
        .code(4)
        .stderr_has("no rescue image \"nosuch\"");
    lab.run(&["rescue", m])
        .code(4)
        .stderr_has("import one named rescue");
    // Deleting a rescued machine removes its scratch disk and kept definition.
    lab.run(&["rescue", m, "--image", "tiny-guest"]).ok();
    lab.run(&["delete", m, "--force", "--yes"])
        .ok()
        .stdout_has("the definition kept for unrescue");
    assert!(no_leftovers());
}
