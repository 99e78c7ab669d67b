//! Templates: broken files get one clear message each (golden files in
//! tests/fixtures/templates/broken/*.err; UPDATE_GOLDEN=1 rewrites them),
//! composition resolves as documented, shipped templates validate.

use std::path::{Path, PathBuf};

use crate::util::{state_dir, Creature};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates")
}

#[test]
fn broken_templates_exit_2_with_golden_messages() {
    let d = state_dir();
    let dir = fixtures().join("broken");
    let cpus = std::thread::available_parallelism()
        .unwrap()
        .get()
        .to_string();
    let mut failures = Vec::new();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 10);
    for case in cases {
        let r = Creature::new(d.path())
            .args(["template", "validate"])
            .arg_path(&case)
            .run();
        let got = r
            .stderr
            .replace(&dir.display().to_string(), "{DIR}")
            .replace(&format!("from 1 to {cpus} "), "from 1 to {CPUS} ");
        let golden = case.with_extension("err");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        let code = if case.ends_with("lxc-suspend.toml") {
            3
        } else {
            2
        };
        if r.code != code || got != want {
            failures.push(format!(
                "{}: exit {} (want {code})\n--- got\n{got}--- want\n{want}",
                case.display(),
                r.code
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn oversized_symlinked_and_special_files_are_refused() {
    let d = state_dir();
    let dir = d.path().join("tpl");
    std::fs::create_dir(&dir).unwrap();
    let big = dir.join("big.toml");
    std::fs::write(&big, format!("description = \"{}\"\n", "x".repeat(1 << 20))).unwrap();
    Creature::new(d.path())
        .args(["template", "show", "big", "--template-dir"])
        .arg_path(&dir)
        .run()
        .code(2)
        .stderr_has("over the 1048576 byte limit");
    std::os::unix::fs::symlink("/etc/passwd", dir.join("link.toml")).unwrap();
    Creature::new(d.path())
        .args(["template", "show", "link", "--template-dir"])
        .arg_path(&dir)
        .run()
        .code(2)
        .stderr_has("is a symlink");
    let fifo = dir.join("pipe.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    Creature::new(d.path())
        .args(["template", "show", "pipe", "--template-dir"])
        .arg_path(&dir)
        .run()
        .code(2)
        .stderr_has("is a FIFO");
    for bad in ["../etc/passwd", "tiny/../../x", "Tiny"] {
        Creature::new(d.path())
            .args(["template", "show", bad])
            .run()
            .code(2)
            .stderr_has("invalid template name");
    }
    Creature::new(d.path())
        .args(["template", "show", "nosuch"])
        .run()
        .code(4);
}

#[test]
fn resolved_shows_extends_variables_and_set_together() {
    let d = state_dir();
    let dir = fixtures().join("compose");
    let r = Creature::new(d.path())
        .args([
            "template",
            "show",
            "web",
            "--resolved",
            "--set",
            "variables.net=dmz",
            "--set",
            "cpus=2",
            "--template-dir",
        ])
        .arg_path(&dir)
        .run()
        .ok();
    let body: String = r.stdout.lines().skip(1).collect::<Vec<_>>().join("\n");
    let t: toml::Table = toml::from_str(&body).unwrap_or_else(|e| panic!("{e}\n{}", r.stdout));
    assert_eq!(
        t["description"].as_str(),
        Some("base for web"),
        "variable from the child"
    );
    assert_eq!(t["memory"].as_str(), Some("512MiB"), "child overrides base");
    assert_eq!(t["cpus"].as_integer(), Some(2), "--set overrides both");
    assert_eq!(
        t["boot"]["cmdline"].as_str(),
        Some("console=ttyS0 quiet role=web")
    );
    assert_eq!(
        t["boot"]["kernel"]["path"].as_str(),
        Some("/boot/vmlinuz"),
        "deep merge keeps base keys"
    );
    assert_eq!(
        t["nic"][0]["network"].as_str(),
        Some("dmz"),
        "--set variable reaches the list"
    );
    assert!(t.get("extends").is_none());
    assert!(r.stdout.lines().next().unwrap().contains("web.toml <- "));
    // --set of an unknown key is caught by the schema.
    Creature::new(d.path())
        .args([
            "template",
            "show",
            "web",
            "--resolved",
            "--set",
            "cpuz=2",
            "--template-dir",
        ])
        .arg_path(&dir)
        .run()
        .code(2)
        .stderr_has("--set cpuz=2: cpuz: unknown key (did you mean `cpus`?)");
}

/// A bad `--set` is named by its assignment and key, in plain words, before
/// anything exists.
#[test]
fn bad_set_values_name_their_key() {
    let d = crate::util::state_dir();
    let sd = d.path().join("state");
    let cases = [
        (
            "cpus=lots",
            "--set cpus=lots: cpus must be a whole number (Virtual CPUs, from 1 to the host's CPU count), got \"lots\"",
        ),
        (
            "cpu=2",
            "--set cpu=2: cpu: unknown key (did you mean `cpus`?)",
        ),
        (
            "autostart.enabled=maybe",
            "--set autostart.enabled=maybe: autostart.enabled must be true or false (Whether the machine starts at host boot), got \"maybe\"",
        ),
        (
            "disk.0.bus=ide",
            "--set disk.0.bus=ide: disk[0].bus must be one of virtio, sata, scsi, xen (Bus the disk is attached to), got \"ide\"",
        ),
        (
            "disk.0.bsu=x",
            "--set disk.0.bsu=x: disk[0].bsu: unknown key (did you mean `bus`?)",
        ),
    ];
    refused_at_validation(&sd, &cases);
}

/// Numbers on the command line are refused in words with their range.
#[test]
fn bad_numbers_on_the_command_line_say_the_range() {
    let d = crate::util::state_dir();
    for (args, want) in [
        (
            &["create", "x", "-t", "tiny", "--cpus", "lots"][..],
            "must be a whole number from 1 to 4096, got \"lots\"",
        ),
        (
            &["stop", "x", "--timeout", "-1"][..],
            "unexpected argument '-1'",
        ),
        (
            &["stop", "x", "--timeout", "1e9"][..],
            "must be a whole number from 0 to 86400, got \"1e9\"",
        ),
        (
            &["start", "--all", "--parallel", "0"][..],
            "must be a whole number from 1 to 256, got \"0\"",
        ),
        (
            &["net", "create", "n", "--vlan", "4095"][..],
            "must be a whole number from 1 to 4094, got \"4095\"",
        ),
    ] {
        crate::util::Creature::new(d.path())
            .args(args)
            .run()
            .code(2)
            .stderr_has(want);
    }
}

#[test]
fn every_shipped_template_validates() {
    let d = state_dir();
    let j = Creature::new(d.path())
        .args(["template", "list", "--format", "json"])
        .run()
        .ok()
        .json();
    let rows = j.as_array().unwrap();
    for name in [
        "tiny",
        "tiny-kvm",
        "tiny-xen",
        "debian-12",
        "lxc-busybox",
        "lxc-debian",
    ] {
        let row = rows
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed"));
        assert_eq!(row["valid"], true, "{row}");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    for e in std::fs::read_dir(dir).unwrap() {
        Creature::new(d.path())
            .args(["template", "validate"])
            .arg_path(&e.unwrap().path())
            .run()
            .ok();
    }
}

#[test]
fn template_new_writes_once() {
    let d = state_dir();
    let dir = d.path().join("mine");
    Creature::new(d.path())
        .args(["template", "new", "web", "--from", "tiny", "--template-dir"])
        .arg_path(&dir)
        .run()
        .ok();
    let text = std::fs::read_to_string(dir.join("web.toml")).unwrap();
    assert!(text.contains("extends = \"tiny\""));
    Creature::new(d.path())
        .args(["template", "new", "web", "--from", "tiny", "--template-dir"])
        .arg_path(&dir)
        .run()
        .code(5);
    let j = Creature::new(d.path())
        .args([
            "template",
            "show",
            "web",
            "--resolved",
            "--format",
            "json",
            "--template-dir",
        ])
        .arg_path(&dir)
        .run()
        .ok()
        .json();
    assert_eq!(j["template"]["backend"], "qemu");
}

/// Sizes beyond what the host or a format can give are refused at
/// validation (exit 2) naming the field, the value and the limit, before a
/// state directory exists.
#[test]
fn sizes_beyond_reason_are_refused_at_validation() {
    let d = crate::util::state_dir();
    let sd = d.path().join("state");
    let host_cpus = std::thread::available_parallelism().unwrap().get();
    let too_many = format!("cpus={}", host_cpus + 1);
    let cases: [(&str, &str); 7] = [
        ("memory=1TiB", "memory: 1.0TiB is more than the host has ("),
        ("memory=99999999999TiB", "memory"),
        ("memory=1KiB", "memory: 1KiB is below the minimum"),
        (too_many.as_str(), "(the host's CPUs)"),
        ("cpus=0", "cpus: 0 is out of range"),
        (
            "disk.0.size=1048576TiB",
            "disk.0.size: 1048576.0TiB is beyond the largest disk creature makes (8192.0TiB)",
        ),
        ("disk.0.size=99999999999999999999", "disk.0.size"),
    ];
    refused_at_validation(&sd, &cases);
}

/// Every MAC a user gives is unicast, not zero, and not in the prefix
/// libvirt gives host-side taps (fe:…): refused at validation, before a
/// state directory exists.
#[test]
fn macs_that_would_collide_or_not_unicast_are_refused() {
    let d = crate::util::state_dir();
    let sd = d.path().join("state");
    let cases = [
        ("fe:54:00:aa:bb:01", "starts with fe"),
        ("FE:00:00:00:00:01", "starts with fe"),
        ("00:00:00:00:00:00", "all zeros"),
        ("01:00:5e:00:00:01", "multicast or broadcast"),
        ("ff:ff:ff:ff:ff:ff", "multicast or broadcast"),
        ("53:54:00:00:00:01", "multicast or broadcast"),
        ("52:54:00:aa:bb", "six hex pairs"),
        ("52-54-00-aa-bb-cc", "six hex pairs"),
        ("52:54:00:aa:bb:cg", "six hex pairs"),
    ];
    for (mac, why) in cases {
        Creature::new(&sd)
            .args([
                "create",
                "x",
                "-t",
                "lxc-busybox",
                "--network",
                "n",
                "--mac",
                mac,
            ])
            .run()
            .code(2)
            .stderr_has(why);
    }
    assert!(!sd.exists());
}

/// Each `--set` of `cases` makes `create` exit 2 with its message, and no
/// state directory is made.
fn refused_at_validation(sd: &std::path::Path, cases: &[(&str, &str)]) {
    for (set, want) in cases {
        Creature::new(sd)
            .args(["create", "x", "-t", "tiny", "--set", set])
            .run()
            .code(2)
            .stderr_has(want);
    }
    assert!(!sd.exists());
}
