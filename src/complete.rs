//! Values offered by shell completion, read at completion time (the shell
//! calls `creature` back through the registration scripts in completions/).
//! Completion must never fail loudly or create anything: errors mean "no
//! candidates".

use std::path::PathBuf;

use clap_complete::engine::CompletionCandidate;

use crate::store::Store;

/// The words of the command line being completed: the shell passes them
/// after `--` (`creature -- creature start --state-dir /x w`).
fn words() -> Vec<String> {
    std::env::args().skip_while(|a| a != "--").skip(1).collect()
}

/// The value of a global option typed on the line (`--opt V` or `--opt=V`).
fn typed(words: &[String], opt: &str) -> Option<String> {
    let mut found = None;
    for (i, w) in words.iter().enumerate() {
        if w == opt {
            found = words.get(i + 1).cloned();
        } else if let Some(v) = w.strip_prefix(&format!("{opt}=")) {
            found = Some(v.to_string());
        }
    }
    found.filter(|v| !v.is_empty())
}

/// The verb being completed: the first word that is neither an option nor
/// the value of a global option that takes one.
fn verb(words: &[String]) -> Option<String> {
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        if matches!(w.as_str(), "--state-dir" | "--host" | "--format") {
            it.next();
        } else if !w.starts_with('-') {
            return Some(w.clone());
        }
    }
    None
}

fn state_dir() -> PathBuf {
    typed(&words(), "--state-dir")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CREATURE_STATE_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_STATE_DIR))
}

fn host() -> String {
    typed(&words(), "--host")
        .or_else(|| std::env::var("CREATURE_HOST").ok())
        .unwrap_or_else(|| crate::config::LOCAL.to_string())
}

fn from_store(f: impl FnOnce(&Store) -> Vec<String>) -> Vec<CompletionCandidate> {
    match Store::open_read_only(&state_dir()) {
        Ok(Some(s)) => f(&s).into_iter().map(CompletionCandidate::new).collect(),
        _ => Vec::new(),
    }
}

/// Machines of the host on the line. After a verb that needs a state
/// (`start`: not running; `stop`, `exec`: running), only those in it, asked
/// of the backends within a second; without an answer, every machine.
pub fn machines() -> Vec<CompletionCandidate> {
    let host = host();
    let all = {
        let host = host.clone();
        move |s: &Store| -> Vec<String> {
            s.machines(Some(&host))
                .map(|ms| ms.into_iter().map(|m| m.name).collect())
                .unwrap_or_default()
        }
    };
    let Some(states) = verb(&words()).and_then(|v| crate::cmd::many::states_for(&v)) else {
        return from_store(all);
    };
    match engine_list(&host) {
        Some(rows) => rows
            .into_iter()
            // A machine whose backend did not answer may be in any state.
            .filter(|r| {
                r["record"] == "ok"
                    && (r["state"] == "unknown" || states.iter().any(|s| r["state"] == s.as_str()))
            })
            .filter_map(|r| r["name"].as_str().map(CompletionCandidate::new))
            .collect(),
        None => from_store(all),
    }
}

/// `list --format json` of one host, asked of the engine (the front links
/// no backend library) within `completion_wait()`; None when it does not
/// answer in time or well.
fn engine_list(host: &str) -> Option<Vec<serde_json::Value>> {
    use std::io::Read;
    let mut cmd = std::process::Command::new(crate::front::engine());
    cmd.args(["list", "--format", "json", "--host", host, "--state-dir"])
        .arg(state_dir())
        .env_remove(crate::generate::COMPLETE_VAR)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().ok()?;
    let mut out = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        out.read_to_end(&mut buf).map(|_| buf)
    });
    let deadline = std::time::Instant::now() + completion_wait();
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let buf = reader.join().ok()?.ok()?;
    serde_json::from_slice(&buf).ok()
}

/// A second: a Tab that waits longer is worse than one that offers too much.
/// Tests on a loaded machine wait longer (`CREATURE_TEST_COMPLETION_WAIT`,
/// seconds, with the `test-hooks` feature only) so that what they assert is
/// the filter, not the load.
fn completion_wait() -> std::time::Duration {
    let hook = cfg!(feature = "test-hooks")
        .then(|| std::env::var("CREATURE_TEST_COMPLETION_WAIT").ok())
        .flatten()
        .and_then(|s| s.parse().ok());
    std::time::Duration::from_secs(hook.unwrap_or(1))
}

/// The machine named after `snapshot <sub>` on the line.
fn snapshot_machine(words: &[String]) -> Option<String> {
    let at = words.iter().position(|w| w == "snapshot")?;
    words
        .iter()
        .skip(at + 2)
        .find(|w| !w.starts_with('-'))
        .cloned()
}

/// Snapshots of the machine on the line (`snapshot revert web <TAB>`).
pub fn snapshots() -> Vec<CompletionCandidate> {
    let Some(machine) = snapshot_machine(&words()) else {
        return Vec::new();
    };
    let host = host();
    from_store(move |s| {
        s.snapshots(&host, &machine)
            .map(|v| v.into_iter().map(|r| r.name).collect())
            .unwrap_or_default()
    })
}

pub fn waits() -> Vec<CompletionCandidate> {
    ["none", "running", "lease", "tcp:"]
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// Hosts added to the state database (and `local`).
pub fn hosts() -> Vec<CompletionCandidate> {
    let mut v = vec![CompletionCandidate::new(crate::config::LOCAL)];
    v.extend(from_store(|s| {
        s.hosts()
            .map(|h| h.into_iter().map(|h| h.name).collect())
            .unwrap_or_default()
    }));
    v
}

pub fn secgroups() -> Vec<CompletionCandidate> {
    from_store(|s| {
        s.secgroups()
            .map(|v| v.into_iter().map(|g| g.name).collect())
            .unwrap_or_default()
    })
}

pub fn networks() -> Vec<CompletionCandidate> {
    from_store(|s| s.network_names().unwrap_or_default())
}

pub fn templates() -> Vec<CompletionCandidate> {
    crate::template::names()
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

pub fn images() -> Vec<CompletionCandidate> {
    from_store(|s| s.image_names().unwrap_or_default())
}

/// Volumes of the host on the line.
pub fn volumes() -> Vec<CompletionCandidate> {
    let host = host();
    from_store(move |s| {
        s.volumes(&host)
            .map(|v| v.into_iter().map(|r| r.name).collect())
            .unwrap_or_default()
    })
}

/// The matrix's feature ids, each with its title as the description.
pub fn features() -> Vec<CompletionCandidate> {
    crate::matrix::Feature::ALL
        .iter()
        .map(|f| CompletionCandidate::new(f.id()).help(Some(f.title().into())))
        .collect()
}
