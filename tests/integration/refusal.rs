//! The matrix refuses before any side effect: exit 3, one clear line, and
//! the state directory byte-identical afterwards.

use creature::backend::Backend;

use crate::util::{seed, snapshot, state_dir, Creature};

#[track_caller]
fn refused(machines: &[(&str, Backend)], args: &[&str], words: &[&str]) {
    let d = state_dir();
    seed(d.path(), machines);
    let before = snapshot(d.path());
    let r = Creature::new(d.path()).args(args).run().code(3);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected:\n{}", r.stderr);
    for w in words {
        assert!(
            r.stderr.contains(w),
            "{args:?}: stderr lacks {w:?}: {}",
            r.stderr
        );
    }
    assert_eq!(
        snapshot(d.path()),
        before,
        "{args:?} changed the state directory"
    );
}

#[test]
fn lxc_missing_cells_are_refused() {
    let m = &[("box", Backend::Lxc)];
    let cases: &[(&[&str], &str)] = &[
        (&["suspend", "box"], "Suspend instance"),
        (&["restore", "box"], "Restore instance"),
        (
            &["snapshot", "create", "box"],
            "Save snapshot of instance disk",
        ),
        (
            &["snapshot", "list", "box"],
            "Save snapshot of instance disk",
        ),
        (
            &["snapshot", "export", "box", "--image", "i"],
            "Save snapshot of instance disk",
        ),
        (&["resize", "box", "--cpus", "2"], "Resize instance"),
        (&["rescue", "box"], "Rescue instance"),
        (&["unrescue", "box"], "Rescue instance"),
        (&["volume", "attach", "box", "v1"], "Attach block volume"),
        (&["volume", "detach", "box", "v1"], "Detach block volume"),
        (&["migrate", "box", "--to", "h2"], "Live migrate"),
        (&["log", "box"], "View serial console logs"),
        (&["display", "box"], "Remote desktop over VNC"),
        (
            &["display", "box", "--protocol", "spice"],
            "Remote desktop over SPICE",
        ),
        (
            &["display", "box", "--protocol", "rdp"],
            "Remote desktop over RDP",
        ),
        (
            &["limits", "box", "--total-iops", "100"],
            "Instance disk I/O limits",
        ),
    ];
    for (args, title) in cases {
        refused(m, args, &["box", "lxc", "missing", title, "refused"]);
    }
}

#[test]
fn always_missing_features_are_refused_without_a_lookup() {
    // No machine named "ghost" exists: the refusal still comes first (exit 3, not 4).
    refused(
        &[],
        &["set-password", "ghost"],
        &["set-password", "missing for every backend"],
    );
    refused(
        &[],
        &["host", "maintenance"],
        &["maintenance", "missing for every backend"],
    );
    refused(
        &[("vm", Backend::Qemu)],
        &["set-password", "vm"],
        &["Set instance admin password"],
    );
}

#[test]
fn unknown_cells_are_refused_until_proven() {
    // Evacuation is the one cell Nova leaves unknown that creature has not
    // proven for xen; evacuate refuses it machine by machine in its plan,
    // through the same gate as every verb.
    use creature::op::{Op, Who};
    let e = Op::Evacuate
        .require(Who::Machine("x"), Backend::Xen)
        .unwrap_err();
    assert_eq!(e.kind().exit_code(), 3);
    for w in ["unknown", "has not proven it"] {
        assert!(e.message().contains(w), "{}", e.message());
    }
}

#[test]
fn unimplemented_cells_are_refused_with_their_own_words() {
    refused(
        &[("vm", Backend::Xen)],
        &["migrate", "vm", "--to", "local"],
        &[
            "migrat",
            "\"vm\"",
            "is not possible for backend xen here",
            "shadow paging",
        ],
    );
    refused(
        &[("x", Backend::Xen)],
        &["display", "x"],
        &[
            "is not possible for backend xen here",
            "without a DES cipher",
        ],
    );
    // A Xen host cannot be disabled: service control is missing for xen.
    let d = state_dir();
    Creature::new(d.path())
        .args(["host", "add", "hx", "xen+tcp://127.0.0.1:1/system"])
        .run()
        .ok();
    let before = snapshot(d.path());
    let r = Creature::new(d.path())
        .args(["host", "disable", "hx", "--reason", "r"])
        .run()
        .code(3);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("missing for xen"), "{}", r.stderr);
    assert_eq!(snapshot(d.path()), before);
}

#[test]
fn unknown_machine_is_not_found() {
    let d = state_dir();
    seed(d.path(), &[("vm", Backend::Qemu)]);
    Creature::new(d.path())
        .args(["start", "nosuch"])
        .run()
        .code(4)
        .stderr_has("\"nosuch\" not found");
}

/// File injection is missing for lxc: refused by the matrix before the state
/// directory or any container exists.
#[test]
fn inject_file_on_lxc_is_refused_before_anything_exists() {
    let d = crate::util::state_dir();
    let sd = d.path().join("state");
    crate::util::Creature::new(&sd)
        .args([
            "create",
            "box",
            "-t",
            "lxc-busybox",
            "--inject-file",
            "/etc/hostname:/etc/x",
        ])
        .run()
        .code(3)
        .stderr_has("Inject files into disk image");
    assert!(!sd.exists());
}
