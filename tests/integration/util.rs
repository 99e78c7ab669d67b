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

/// Read the pty until `needle` shows (20 s at most).
#[track_caller]
pub fn read_until(master: &mut std::fs::File, buf: &mut String, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut chunk = [0u8; 4096];
    while !buf.contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} on the terminal; saw:\n{buf}"
        );
        match std::io::Read::read(master, &mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break, // child closed the pty
            Err(e) => panic!("read pty: {e}"),
        }
    }
}

/// `creature ARGS` on a new pty as its controlling terminal; returns the
/// child and the pty's master end (non-blocking).
pub fn on_pty(state: &std::path::Path, args: &[&str]) -> (std::process::Child, std::fs::File) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("CREATURE_STATE_DIR", state)
        .env("CREATURE_CONFIG", state.join("none.toml"))
        .env("TERM", "xterm");
    spawn_on_pty(cmd)
}

/// Any program on a new pty as its controlling terminal (stdin, stdout and
/// stderr); the child and the pty's master end (non-blocking).
pub fn spawn_on_pty(mut cmd: Command) -> (std::process::Child, std::fs::File) {
    let (mut master_fd, mut slave_fd) = (0, 0);
    // SAFETY: openpty fills two descriptors we then own.
    let rc = unsafe {
        libc::openpty(
            &mut master_fd,
            &mut slave_fd,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0);
    // SAFETY: fresh descriptors from openpty, owned here.
    let slave = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(slave_fd) };
    let master = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(master_fd) };
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(master_fd, libc::F_SETFL, libc::O_NONBLOCK) };
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    (cmd.spawn().unwrap(), master)
}
