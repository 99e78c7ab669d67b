//! One error type for the whole program. Every kind maps to one exit code, so
//! scripts and systemd units can tell "refused" from "not found" from "timed out".

use std::fmt;

/// The documented exit codes (man page "EXIT STATUS", README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// 1: anything not covered below.
    Other,
    /// 2: bad usage or invalid input (names, templates, values).
    Invalid,
    /// 3: refused by the support matrix.
    Refused,
    /// 4: machine, network, template, image or host not found.
    NotFound,
    /// 5: already exists, still in use, or in the wrong state.
    Conflict,
    /// 6: a backend is unavailable (daemon down, permission denied, library missing).
    Unavailable,
    /// 7: an operation did not finish in time.
    Timeout,
    /// 8: a pool (MAC, IP, disk space) is exhausted.
    Exhausted,
    /// 9: the state database or directory is corrupt or unsafe to use.
    StateCorrupt,
    /// 130: interrupted (SIGINT).
    Interrupted,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::Other,
        Kind::Invalid,
        Kind::Refused,
        Kind::NotFound,
        Kind::Conflict,
        Kind::Unavailable,
        Kind::Timeout,
        Kind::Exhausted,
        Kind::StateCorrupt,
        Kind::Interrupted,
    ];

    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Other => 1,
            Kind::Invalid => 2,
            Kind::Refused => 3,
            Kind::NotFound => 4,
            Kind::Conflict => 5,
            Kind::Unavailable => 6,
            Kind::Timeout => 7,
            Kind::Exhausted => 8,
            Kind::StateCorrupt => 9,
            Kind::Interrupted => 130,
        }
    }

    /// One line for the man page and README exit-code tables.
    pub fn meaning(self) -> &'static str {
        match self {
            Kind::Other => "other error",
            Kind::Invalid => "usage error or invalid input (names, templates, values)",
            Kind::Refused => "refused by the support matrix (missing, unknown or not implemented for the machine's backend)",
            Kind::NotFound => "machine, network, template, image or host not found",
            Kind::Conflict => "conflict: already exists, still in use, or in the wrong state",
            Kind::Unavailable => "backend unavailable: daemon down, permission denied, library missing",
            Kind::Timeout => "timed out",
            Kind::Exhausted => "resource exhausted: MAC or IP pool, disk space",
            Kind::StateCorrupt => "state database or directory corrupt or unsafe",
            Kind::Interrupted => "interrupted (Ctrl-C)",
        }
    }
}

/// An error: its kind (exit code), a one-line message, and the causes beneath it.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    message: String,
    causes: Vec<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            causes: Vec::new(),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn causes(&self) -> &[String] {
        &self.causes
    }

    /// The lines a user sees: `error: [WHO: ]message`, then each cause.
    pub fn report(&self, who: Option<&str>) -> String {
        let mut out = match who {
            Some(w) => format!("error: {w}: {}", self.message),
            None => format!("error: {}", self.message),
        };
        for c in &self.causes {
            out.push_str(&format!("\n  caused by: {c}"));
        }
        out
    }

    /// Add an underlying cause (printed as "caused by: …").
    pub fn caused_by(mut self, cause: impl fmt::Display) -> Self {
        self.causes.push(cause.to_string());
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, message)
    }
    /// The one wording of a machine creature has no record of.
    pub fn machine_not_found(name: &str, host: &str) -> Self {
        Self::not_found(format!(
            "machine {name:?} not found on host {host} (see `creature list`)"
        ))
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Kind::Conflict, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Kind::Unavailable, message)
    }
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(Kind::StateCorrupt, message)
    }
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(Kind::Other, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Attach context to foreign errors without losing them: the foreign error
/// becomes the first cause line.
pub trait Context<T> {
    fn context(self, kind: Kind, message: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context(self, kind: Kind, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::new(kind, message()).caused_by(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_documented() {
        let mut codes: Vec<i32> = Kind::ALL.iter().map(|k| k.exit_code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 130]);
    }

    #[test]
    fn context_keeps_the_cause() {
        let r: std::result::Result<(), &str> = Err("disk on fire");
        let e = r.context(Kind::Other, || "saving".into()).unwrap_err();
        assert_eq!(e.message(), "saving");
        assert_eq!(e.causes(), ["disk on fire"]);
    }
}
