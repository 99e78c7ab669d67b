//! The Debian package as a sysadmin meets it: `apt install ./creature_*.deb`
//! into a fresh Debian 12 root (scripts/build-deb-root, used through an
//! overlay so the cached root stays pristine), offline, then the installed
//! files used from inside that root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The package and the root, from scripts/test; a test that must run and
/// cannot fails.
fn inputs() -> Option<(PathBuf, PathBuf)> {
    let deb = std::env::var_os("CREATURE_TEST_DEB").map(PathBuf::from);
    let root = std::env::var_os("CREATURE_TEST_DEB_ROOT").map(|d| PathBuf::from(d).join("root"));
    match (deb, root) {
        (Some(d), Some(r)) if d.is_file() && r.join("usr/bin/apt-get").exists() => Some((d, r)),
        (d, r) => {
            let why = format!(
                "needs CREATURE_TEST_DEB (scripts/package) and CREATURE_TEST_DEB_ROOT \
                 (scripts/build-deb-root): {d:?}, {r:?}"
            );
            if std::env::var("CREATURE_REQUIRE_REAL").is_ok_and(|v| v == "1")
                || std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
            {
                panic!("{why}");
            }
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED package test: {why}");
            None
        }
    }
}

struct Mounted(Vec<PathBuf>);

impl Drop for Mounted {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} exited {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn chroot(root: &Path) -> Command {
    let mut c = Command::new("chroot");
    c.arg(root)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C.UTF-8")
        .env("HOME", "/root")
        .env("DEBIAN_FRONTEND", "noninteractive");
    c
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn deb_installs_and_works_in_a_fresh_debian_root() {
    if !super::available("deb_installs_and_works_in_a_fresh_debian_root") {
        return;
    }
    let Some((deb, lower)) = inputs() else { return };
    let work = tempfile::tempdir_in("/var/tmp").unwrap();
    let (upper, wdir, root) = (
        work.path().join("upper"),
        work.path().join("work"),
        work.path().join("root"),
    );
    for d in [&upper, &wdir, &root] {
        std::fs::create_dir(d).unwrap();
    }
    let mut mounts = Mounted(Vec::new());
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            wdir.display()
        ))
        .arg(&root));
    mounts.0.push(root.clone());
    run(Command::new("mount")
        .args(["-t", "proc", "proc"])
        .arg(root.join("proc")));
    mounts.0.push(root.join("proc"));
    let file = deb.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::copy(&deb, root.join("tmp").join(&file)).unwrap();

    // A fresh root has no creature.
    assert!(!root.join("usr/bin/creature").exists());
    let out = run(chroot(&root).args([
        "apt-get",
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        &format!("/tmp/{file}"),
        "man-db",
        "bash-completion",
    ]));
    assert!(text(&out).contains("Setting up creature"), "{}", text(&out));

    let version = text(&run(chroot(&root).args(["creature", "--version"])));
    assert_eq!(
        version.trim(),
        format!("creature {}", env!("CARGO_PKG_VERSION")),
        "{version}"
    );
    // The front answers --version and matrix without the backend
    // libraries; the engine it becomes for the rest has them.
    let ldd = |exe: &str| text(&run(chroot(&root).args(["ldd", exe])));
    let front = ldd("/usr/bin/creature");
    assert!(
        !front.contains("libvirt") && !front.contains("liblxc"),
        "{front}"
    );
    let engine = ldd("/usr/lib/creature/creature-engine");
    assert!(
        engine.contains("libvirt.so.0") && engine.contains("liblxc.so.1"),
        "{engine}"
    );
    // No daemon in this root: the matrix needs none.
    let matrix = text(&run(chroot(&root).args(["creature", "matrix"])));
    assert!(
        matrix.contains("FEATURE") && matrix.contains("live-migrate"),
        "{matrix}"
    );
    let man = text(&run(chroot(&root)
        .env("MANWIDTH", "100")
        .args(["man", "-P", "cat", "creature"])));
    assert!(man.contains("EXIT STATUS"), "{man}");
    let man5 = text(&run(chroot(&root).args([
        "man",
        "-P",
        "cat",
        "5",
        "creature-template",
    ])));
    assert!(man5.contains("extends"), "{man5}");

    // Bash completion as bash-completion loads it on demand: from the file
    // where the package put it, asking the installed binary.
    let script = "\
        . /usr/share/bash-completion/bash_completion\n\
        __load_completion creature || exit 3\n\
        f=$(complete -p creature | sed -E 's/.* -F ([^ ]+) .*/\\1/')\n\
        COMP_WORDS=(creature mat); COMP_CWORD=1; COMP_LINE='creature mat'\n\
        COMP_POINT=${#COMP_LINE}; COMP_TYPE=9\n\
        \"$f\" creature mat creature\n\
        printf '%s\\n' \"${COMPREPLY[@]}\"\n";
    let completion = text(&run(chroot(&root).args(["bash", "-c", script])));
    assert_eq!(completion.trim(), "matrix", "{completion}");

    // The shipped templates are files a sysadmin can read, found first there.
    let list = text(&run(
        chroot(&root).args(["creature", "template", "list", "--format", "json"])
    ));
    assert!(
        list.contains("/usr/share/creature/templates/tiny.toml"),
        "{list}"
    );
    // The unit is installed and left for the admin to enable.
    assert!(root
        .join("usr/lib/systemd/system/creature.service")
        .is_file());
    assert!(!root
        .join("etc/systemd/system/multi-user.target.wants/creature.service")
        .exists());
    for f in [
        "usr/share/zsh/vendor-completions/_creature",
        "usr/share/fish/vendor_completions.d/creature.fish",
        "usr/share/man/man1/creature-create.1.gz",
        "usr/share/doc/creature/copyright",
    ] {
        assert!(root.join(f).is_file(), "{f} not installed");
    }

    // And it goes away cleanly.
    run(chroot(&root).args(["dpkg", "--purge", "creature"]));
    assert!(!root.join("usr/bin/creature").exists());
    assert!(!root.join("usr/lib/creature").exists());
    assert!(!root.join("usr/share/creature").exists());
    drop(mounts);
}
