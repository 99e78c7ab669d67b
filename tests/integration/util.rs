//! A builder that runs the real binary with a private state directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use creature::backend::Backend;
use creature::store::{RecordState, Store};

pub struct Creature {
    cmd: Command,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn code(self, expected: i32) -> Run {
        assert_eq!(
            self.code, expected,
            "exit code {} (expected {expected})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        self.code(0)
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(self, needle: &str) -> Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_creature")
}

impl Creature {
    /// The binary with `--state-dir` pointing at `state`.
    pub fn new(state: &Path) -> Creature {
        let mut cmd = Command::new(bin());
        cmd.env("CREATURE_STATE_DIR", state)
            .env("NO_COLOR", "1")
            .env_remove("CREATURE_HOST")
            .env("CREATURE_CONFIG", state.join("no-config.toml"));
        Creature { cmd }
    }

    pub fn args<I, S>(mut self, args: I) -> Creature
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn arg_path(mut self, p: &Path) -> Creature {
        self.cmd.arg(p);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Creature {
        self.cmd.env(k, v);
        self
    }

    /// The command itself, to spawn (several at once) instead of `run`.
    pub fn command(self) -> Command {
        self.cmd
    }

    pub fn run(mut self) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = self.cmd.output().expect("run creature");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

/// Run another program; it must succeed (its stderr is the failure message).
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Ctrl-C a running creature (SIGINT) and return its output once it has
/// exited with 130, the interrupted exit code.
#[track_caller]
pub fn interrupt(child: std::process::Child) -> Output {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A temporary state directory (0700, as creature wants it).
pub fn state_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Seed machine records through the library, as a finished create leaves them.
pub fn seed(state: &Path, machines: &[(&str, Backend)]) {
    seed_on(state, "local", machines)
}

pub fn seed_on(state: &Path, host: &str, machines: &[(&str, Backend)]) {
    let mut s = Store::open(state).expect("open store");
    for (name, backend) in machines {
        s.begin_create(host, name, *backend, Some("seeded"))
            .unwrap();
        s.set_state(host, name, RecordState::Ready).unwrap();
    }
}

/// Every file of the state directory with its length and a digest of its
/// bytes, to prove nothing changed (and to print a readable difference).
pub fn snapshot(state: &Path) -> Vec<(PathBuf, usize, u64)> {
    use std::hash::{Hash, Hasher};
    let mut v: Vec<(PathBuf, usize, u64)> = std::fs::read_dir(state)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let bytes = std::fs::read(e.path()).unwrap_or_default();
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    bytes.hash(&mut h);
                    (e.path(), bytes.len(), h.finish())
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Fault tests need the fail points, which only a `test-hooks` build has.
#[track_caller]
pub fn require_hooks() {
    #[cfg(not(feature = "test-hooks"))]
    panic!("this test needs the fail points: cargo test --features test-hooks (scripts/test does)");
}
