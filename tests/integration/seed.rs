//! First-boot settings that cannot be carried are refused before anything
//! exists: one line, its exit code, and the state directory untouched.
//! (The drives themselves are proven on real guests: real/cloudinit.rs.)

use std::path::Path;

use crate::util::{snapshot, state_dir, Creature};

#[track_caller]
fn refused(code: i32, args: &[&str], words: &[&str]) {
    let d = state_dir();
    let before = snapshot(d.path());
    let r = Creature::new(d.path()).args(args).run().code(code);
    for w in words {
        assert!(
            r.stderr.contains(w),
            "{args:?}: stderr lacks {w:?}: {}",
            r.stderr
        );
    }
    assert_eq!(
        r.stderr
            .trim()
            .lines()
            .filter(|l| l.starts_with("error"))
            .count(),
        1,
        "{}",
        r.stderr
    );
    assert_eq!(
        snapshot(d.path()),
        before,
        "{args:?} changed the state directory"
    );
    assert!(!d.path().join("seeds").exists());
}

fn file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn bad_first_boot_settings_are_refused_before_anything_exists() {
    let w = tempfile::tempdir().unwrap();
    let motd = file(w.path(), "motd", "hi\n");
    let ud = file(w.path(), "ud", "#cloud-config\n{}\n");
    let junk = file(w.path(), "junk.pub", "not a key\n");
    let inject = format!("{motd}:/etc/motd");
    // The argument's form: the parser's refusal names what is wanted.
    refused(
        2,
        &["create", "a", "-t", "tiny", "--inject-file", "/etc/motd"],
        &["SRC:DEST"],
    );
    refused(
        2,
        &[
            "create",
            "a",
            "-t",
            "tiny",
            "--inject-file",
            &format!("{motd}:etc/x"),
        ],
        &["absolute"],
    );
    refused(
        2,
        &[
            "create",
            "a",
            "-t",
            "tiny",
            "--inject-file",
            &format!("{motd}:/etc/x:999"),
        ],
        &["octal"],
    );
    // A host file that is not there: exit 4, named.
    refused(
        4,
        &[
            "create",
            "a",
            "-t",
            "tiny",
            "--inject-file",
            "/nonexistent/f:/etc/f",
        ],
        &["/nonexistent/f"],
    );
    refused(
        4,
        &[
            "create",
            "a",
            "-t",
            "tiny",
            "--user-data",
            "/nonexistent/ud",
        ],
        &["/nonexistent/ud"],
    );
    // Not a key file.
    refused(
        2,
        &["create", "a", "-t", "tiny", "--ssh-key", &junk],
        &["--ssh-key", "line 1"],
    );
    // A user-data file replaces the one that would carry the files.
    refused(
        2,
        &[
            "create",
            "a",
            "-t",
            "tiny",
            "--user-data",
            &ud,
            "--inject-file",
            &inject,
        ],
        &["replaces the generated one"],
    );
    // More than a drive carries.
    let big = w.path().join("big");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    refused(
        2,
        &[
            "create",
            "a",
            "-t",
            "tiny",
            "--inject-file",
            &format!("{}:/big", big.display()),
        ],
        &["16 MiB"],
    );
    // The matrix: file injection is missing for lxc (and xen), whatever is easy.
    refused(
        3,
        &["create", "a", "-t", "lxc-busybox", "--inject-file", &inject],
        &["--inject-file", "lxc"],
    );
    refused(
        3,
        &["create", "a", "-t", "tiny-xen", "--inject-file", &inject],
        &["--inject-file", "xen"],
    );
    // A display the matrix marks missing: lxc has neither VNC nor SPICE.
    refused(
        3,
        &[
            "create",
            "a",
            "-t",
            "lxc-busybox",
            "--set",
            "display.type=vnc",
        ],
        &["VNC", "lxc"],
    );
    refused(
        2,
        &[
            "create",
            "a",
            "-t",
            "tiny",
            "--set",
            "display.type=vnc",
            "--set",
            "display.listen=everywhere",
        ],
        &["display.listen"],
    );
}

#[test]
fn template_first_boot_keys_are_checked() {
    let w = tempfile::tempdir().unwrap();
    let td = w.path().display().to_string();
    let cases: &[(&str, &str)] = &[
        ("backend = \"lxc\"\n[rootfs]\ntype = \"busybox\"\n[config_drive]\nformat = \"openstack\"\n", "is for VMs"),
        ("extends = \"tiny\"\n[config_drive]\nformat = \"iso\"\n", "format"),
        ("extends = \"tiny\"\n[[inject]]\nsource = \"rel/path\"\ndest = \"/etc/x\"\n", "absolute path on the host"),
        ("extends = \"tiny\"\n[[inject]]\nsource = \"/etc/hostname\"\ndest = \"/etc/../x\"\n", "'..'"),
        ("extends = \"tiny\"\n[cloud_init]\nhostname = \"Not_A_Host\"\n", "cloud_init.hostname"),
        ("extends = \"tiny\"\n[cloud_init]\nlocale = \"en US\"\n", "cloud_init.locale"),
        ("extends = \"tiny\"\n[cloud_init]\nuser_data = \"/etc/hostname\"\nruncmd = [[\"true\"]]\n", "cloud_init.runcmd would be lost"),
        ("extends = \"tiny\"\n[cloud_init]\nwrite_files = [{ path = \"/x\", owner = \"a b\" }]\n", "USER:GROUP"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let name = format!("t{i}");
        std::fs::write(w.path().join(format!("{name}.toml")), text).unwrap();
        refused(
            2,
            &["create", "a", "-t", &name, "--template-dir", &td],
            &[want],
        );
    }
}
