//! Shared helpers for VM tests on the namespace's libvirtd: a private state
//! directory with the tiny guest imported.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{state_dir, Creature, Run};

pub struct Lab {
    pub dir: tempfile::TempDir,
}

pub fn guest_dir() -> PathBuf {
    std::env::var_os("CREATURE_TEST_GUEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/creature-test/guest"))
}

impl Lab {
    /// A state directory QEMU can reach, with the tiny guest imported.
    /// The lab of a real-backend test, or None where the test skips (see
    /// `real::available`, which fails it instead where it must run).
    pub fn if_available(test: &str) -> Option<Lab> {
        super::available(test).then(Lab::new)
    }

    pub fn new() -> Lab {
        let dir = state_dir();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let g = guest_dir();
        assert!(
            g.join("vmlinuz").exists(),
            "no test guest in {} (scripts/build-test-guest)",
            g.display()
        );
        let lab = Lab { dir };
        lab.c()
            .args(["image", "import", "--name", "tiny-guest"])
            .arg_path(&g.join("vmlinuz"))
            .arg_path(&g.join("initrd.img"))
            .run()
            .ok();
        lab
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn c(&self) -> Creature {
        Creature::new(self.dir.path())
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.c().args(args).run()
    }

    /// What a shell script prints in the machine (`creature exec`), trimmed.
    pub fn guest(&self, m: &str, script: &str) -> String {
        self.run(&["exec", m, "--", "sh", "-c", script])
            .ok()
            .stdout
            .trim()
            .to_string()
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join("logs").join(format!("{name}.serial.log")))
            .unwrap_or_default()
    }

    /// Wait until the serial log satisfies `ok` (60 s at most).
    #[track_caller]
    pub fn wait_log(&self, name: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let l = self.log(name);
            if ok(&l) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: no {what} in the serial log:\n{l}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The machine's row of `list --format json`.
    pub fn list_row(&self, name: &str) -> serde_json::Value {
        let j = self.run(&["list", "--format", "json"]).ok().json();
        j.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not listed: {j}"))
            .clone()
    }

    /// The IP reserved for a machine's first NIC, from the state database.
    pub fn reserved_ip(&self, m: &str) -> String {
        let s = creature::store::Store::open(self.path()).unwrap();
        s.nics("local", m).unwrap()[0]
            .ip
            .clone()
            .expect("a reserved IP")
    }

    /// `create M -t tiny` with a 16 MiB disk and a config drive (the key
    /// of `dummy_key`), for tests of what a create leaves.
    pub fn create_tiny_with_drive(&self, m: &str) -> Creature {
        let key = dummy_key(self.path());
        self.c()
            .args([
                "create",
                m,
                "-t",
                "tiny",
                "--set",
                "disk.0.size=16MiB",
                "--ssh-key",
            ])
            .arg_path(&key)
    }

    pub fn state(&self, name: &str) -> String {
        let j = self.run(&["info", name, "--format", "json"]).ok().json();
        j["state"].as_str().unwrap().to_string()
    }
}

/// A public key file in `dir` that gives a machine a config drive (no one
/// logs in with it).
pub fn dummy_key(dir: &Path) -> PathBuf {
    let key = dir.join("dummy.pub");
    std::fs::write(
        &key,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummy dummy@test\n",
    )
    .unwrap();
    key
}

pub fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// The last `creature-tick <uptime>` value in a log.
pub fn last_tick(log: &str) -> Option<f64> {
    log.lines()
        .rev()
        .filter_map(|l| l.trim().strip_prefix("creature-tick "))
        .find_map(|t| t.trim().parse().ok())
}

pub fn virsh(args: &[&str]) -> std::process::Output {
    std::process::Command::new("virsh")
        .args(["-c", "qemu:///system"])
        .args(args)
        .output()
        .unwrap()
}

/// Types a command on the machine's console, waits for its computed
/// answer (an echo of the typing does not count), leaves with Ctrl-].
pub fn console_says(lab: &Lab, m: &str, eol: &[u8]) {
    console_answers(lab, m, eol, "echo hello-$((6*7))", "hello-42");
}

/// Type `cmd` on the machine's console (again every few seconds until
/// `want` shows), then leave with Ctrl-]; what the console showed.
pub fn console_answers(lab: &Lab, m: &str, eol: &[u8], cmd: &str, want: &str) -> String {
    let mut child = std::process::Command::new(crate::util::bin())
        .args(["console", m])
        .env("CREATURE_STATE_DIR", lab.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
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
    while !seen.contains(want) {
        assert!(
            Instant::now() < deadline,
            "no answer on the console; saw:\n{seen}"
        );
        stdin.write_all(cmd.as_bytes()).unwrap();
        stdin.write_all(eol).unwrap();
        stdin.flush().unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(b) => seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => break,
            }
        }
    }
    stdin.write_all(&[0x1d]).unwrap();
    stdin.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "console did not leave on Ctrl-]");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    seen
}

/// Run `cmd` inside container `ct` (lxc-attach); the caller judges the result.
pub fn attach(ct: &str, cmd: &[&str]) -> std::process::Output {
    std::process::Command::new("lxc-attach")
        .args(["-n", ct, "--"])
        .args(cmd)
        .output()
        .unwrap()
}
