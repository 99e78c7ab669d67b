use crate::util::{state_dir, Creature};

#[test]
fn version_needs_no_state_root_or_daemon() {
    let d = state_dir();
    let missing = d.path().join("nope");
    Creature::new(&missing)
        .args(["--version"])
        .run()
        .ok()
        .stdout_has(env!("CARGO_PKG_VERSION"));
    assert!(!missing.exists(), "--version created the state directory");
}

#[test]
fn usage_errors_exit_2() {
    let d = state_dir();
    Creature::new(d.path()).args(["frobnicate"]).run().code(2);
    Creature::new(d.path()).args(["stop"]).run().code(2);
    Creature::new(d.path())
        .args(["list", "--format", "yaml"])
        .run()
        .code(2);
}

#[test]
fn markdown_is_only_for_matrix() {
    let d = state_dir();
    Creature::new(d.path())
        .args(["list", "--format", "markdown"])
        .run()
        .code(2)
        .stderr_has("only for `creature matrix`");
}

#[test]
fn list_on_an_empty_host_prints_headers_and_creates_nothing() {
    let d = state_dir();
    let sd = d.path().join("state");
    let r = Creature::new(&sd).args(["list"]).run().ok();
    assert_eq!(
        r.stdout.trim(),
        "NAME  BACKEND  STATE  RECORD  CPUS  MEMORY  IP  TEMPLATE"
    );
    assert!(!sd.exists());
    let r = Creature::new(&sd)
        .args(["list", "--format", "json"])
        .run()
        .ok();
    assert_eq!(r.json(), serde_json::json!([]));
}

/// Records on a host whose libvirtd does not answer: listed, state unknown.
#[test]
fn list_shows_records_in_table_and_json() {
    use creature::backend::Backend;
    let d = state_dir();
    crate::util::seed_on(
        d.path(),
        "h1",
        &[("web", Backend::Qemu), ("box", Backend::Kvm)],
    );
    std::fs::write(
        d.path().join("no-config.toml"),
        "[hosts.h1]\nuri = \"qemu+unix:///system?socket=/nonexistent/creature-test.sock\"\n",
    )
    .unwrap();
    let r = Creature::new(d.path())
        .args(["--host", "h1", "list"])
        .run()
        .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines[1].starts_with("box ") && lines[1].contains("kvm"),
        "{}",
        r.stdout
    );
    assert!(
        lines[2].starts_with("web ") && lines[2].contains("qemu"),
        "{}",
        r.stdout
    );
    // Columns line up: BACKEND starts at the same offset on every line.
    let col = lines[0].find("BACKEND").unwrap();
    assert_eq!(&lines[1][col..col + 3], "kvm");
    // A named host that does not answer: one warning line, its machines
    // unreachable.
    assert_eq!(
        r.stderr.matches("warning: host h1 is unreachable").count(),
        1,
        "{}",
        r.stderr
    );
    let j = Creature::new(d.path())
        .args(["--host", "h1", "list", "--format", "json"])
        .run()
        .ok()
        .json();
    assert_eq!(j[1]["name"], "web");
    assert_eq!(j[1]["backend"], "qemu");
    assert_eq!(j[1]["state"], "unreachable");
    assert_eq!(j[1]["record"], "ok");
    assert_eq!(j[1]["host"], "h1");
}

/// Containers are liblxc's, on this host only: one on another host is
/// exit 6 before anything is made.
#[test]
fn a_container_on_another_host_is_refused() {
    let d = state_dir();
    Creature::new(d.path())
        .args(["host", "add", "hx", "qemu+tcp://127.0.0.1:1/system"])
        .run()
        .ok()
        .stderr_has("does not answer now");
    let r = Creature::new(d.path())
        .args(["--host", "hx", "create", "c1", "-t", "lxc-busybox"])
        .run()
        .code(6)
        .stderr_has("containers are this host's only");
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    let j = Creature::new(d.path())
        .args(["--host", "hx", "list", "--format", "json"])
        .run()
        .ok()
        .json();
    assert_eq!(j, serde_json::json!([]), "nothing recorded");
    // The template's `host` places a VM there (hx does not answer: exit 6
    // naming it); a container's template cannot name another host.
    Creature::new(d.path())
        .args(["create", "v1", "-t", "tiny", "--set", "host=hx"])
        .run()
        .code(6)
        .stderr_has("qemu+tcp://127.0.0.1:1/system");
    Creature::new(d.path())
        .args(["create", "c2", "-t", "lxc-busybox", "--set", "host=hx"])
        .run()
        .code(2)
        .stderr_has("host: containers are this host's only");
}

#[test]
fn interrupted_create_shows_as_incomplete() {
    use creature::backend::Backend;
    let d = state_dir();
    creature::store::Store::open(d.path())
        .unwrap()
        .begin_create("local", "half", Backend::Qemu, None)
        .unwrap();
    let j = Creature::new(d.path())
        .args(["list", "--format", "json"])
        .run()
        .ok()
        .json();
    assert_eq!(j[0]["record"], "incomplete");
}

#[test]
fn create_off_a_terminal_lists_what_is_missing() {
    let d = state_dir();
    Creature::new(d.path())
        .args(["create"])
        .run()
        .code(2)
        .stderr_has("missing MACHINE and --template");
}

/// Run by a user without rights, a create exits 6 saying what it needs,
/// before it makes anything: no state directory, no record.
#[test]
fn an_unprivileged_user_gets_exit_6_before_any_change() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        || std::process::Command::new("runuser")
            .arg("--help")
            .output()
            .is_err()
    {
        eprintln!(
            "SKIPPED an_unprivileged_user_gets_exit_6_before_any_change: needs root and runuser"
        );
        assert!(
            std::env::var_os("CREATURE_REQUIRE_REAL").is_none(),
            "must run here"
        );
        return;
    }
    let d = crate::util::state_dir();
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let sd = d.path().join("state");
    let cases = [
        ("lxc-busybox", "lxc machines need root"),
        // In the test namespace libvirtd refuses nobody; elsewhere there
        // may be no libvirtd at all: exit 6 either way.
        ("tiny", "cannot connect to libvirt"),
    ];
    for (template, why) in cases {
        let out = std::process::Command::new("runuser")
            .args(["-u", "nobody", "--", crate::util::bin()])
            .arg("--state-dir")
            .arg(&sd)
            .args(["create", "x", "-t", template])
            .env("CREATURE_CONFIG", d.path().join("none.toml"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{template}: {err}");
        assert!(err.contains(why), "{template}: {err}");
        if std::env::var_os("CREATURE_TEST_NS").is_some() && template == "tiny" {
            assert!(
                err.contains("permission denied (run as root or as a member of the libvirt group)"),
                "{err}"
            );
        }
        assert!(!sd.exists(), "{template}: a state directory was made");
    }
}

/// The words a virsh or incus user types land on creature's verbs.
#[test]
fn aliases_of_other_tools_land_on_the_right_verb() {
    let d = crate::util::state_dir();
    Creature::new(d.path())
        .args(["ls", "--format", "json"])
        .run()
        .ok()
        .stdout_has("[]");
    for verb in ["destroy", "restart", "rm"] {
        Creature::new(d.path())
            .args([verb, "nosuch", "--yes"])
            .run()
            .code(4)
            .stderr_has("machine \"nosuch\" not found");
    }
    let help = Creature::new(d.path()).args(["--help"]).run().ok();
    help.stdout_has("destroy")
        .stdout_has("[alias: restart]")
        .stdout_has("[alias: rm]")
        .stdout_has("[alias: ls]");
}
