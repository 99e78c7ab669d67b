//! Templates (TOML) machines are created from: the format (`schema`),
//! finding and reading files (`load`), composition (`merge`) and the final
//! checks (`resolve`). docs/templates.md documents every key.

pub mod doc;
pub mod load;
pub mod merge;
pub mod resolve;
pub mod schema;

pub use load::Library;
pub use resolve::{resolve, HostLimits, Resolved};

/// Template names for shell completion (default search path).
pub fn names() -> Vec<String> {
    Library::new(None)
        .names()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}
