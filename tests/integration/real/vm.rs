//! Shared helpers for VM tests on the namespace's libvirtd: a private state
//! directory with the tiny guest imported.

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

    pub fn state(&self, name: &str) -> String {
        let j = self.run(&["info", name, "--format", "json"]).ok().json();
        j["state"].as_str().unwrap().to_string()
    }
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
