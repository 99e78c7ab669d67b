//! Golden files of the unit tests: what a renderer writes, compared with a
//! committed copy under tests/fixtures (which integration tests check
//! against libvirt's schemas); `UPDATE_GOLDEN=1` rewrites the copy.

/// Compare `got` with `tests/fixtures/<rel>`, rewriting it first when asked.
#[track_caller]
pub fn check(rel: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("a fixture directory")).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        got,
        want,
        "{} is stale (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}
