//! Values offered by shell completion, read at completion time (the shell
//! calls `creature` back through the registration scripts in completions/).
//! Completion must never fail loudly or create anything: errors mean "no
//! candidates".

use std::path::PathBuf;

use clap_complete::engine::CompletionCandidate;

use crate::store::Store;

fn state_dir() -> PathBuf {
    std::env::var_os("CREATURE_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_STATE_DIR))
}

fn from_store(f: impl FnOnce(&Store) -> Vec<String>) -> Vec<CompletionCandidate> {
    match Store::open_read_only(&state_dir()) {
        Ok(Some(s)) => f(&s).into_iter().map(CompletionCandidate::new).collect(),
        _ => Vec::new(),
    }
}

pub fn machines() -> Vec<CompletionCandidate> {
    from_store(|s| {
        s.machines(None)
            .map(|ms| ms.into_iter().map(|m| m.name).collect())
            .unwrap_or_default()
    })
}

pub fn waits() -> Vec<CompletionCandidate> {
    ["none", "running", "lease", "tcp:"]
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
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

/// The matrix's feature ids, each with its title as the description.
pub fn features() -> Vec<CompletionCandidate> {
    crate::matrix::Feature::ALL
        .iter()
        .map(|f| CompletionCandidate::new(f.id()).help(Some(f.title().into())))
        .collect()
}
