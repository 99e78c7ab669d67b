//! Completions, man pages and docs/support-matrix.md are generated from the
//! code; the committed copies must be what the code generates now.

use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn committed_artifacts_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (rel, want) in creature::generate::artifacts() {
        match std::fs::read(root.join(&rel)) {
            Ok(have) if have == want => {}
            Ok(_) => stale.push(format!("{} differs", rel.display())),
            Err(e) => stale.push(format!("{}: {e}", rel.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "generated files are stale; run `cargo run -- generate` and commit:\n{}",
        stale.join("\n")
    );
}

#[test]
fn no_leftover_generated_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let generated: BTreeSet<_> = creature::generate::artifacts()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    for dir in ["man", "completions"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let rel = Path::new(dir).join(e.unwrap().file_name());
            assert!(
                generated.contains(&rel),
                "{} is no longer generated; delete it",
                rel.display()
            );
        }
    }
}

#[test]
fn man_page_documents_exit_codes_and_matrix_rule() {
    let page = creature::generate::artifacts()
        .into_iter()
        .find(|(p, _)| p == Path::new("man/creature.1"))
        .expect("man/creature.1")
        .1;
    let page = String::from_utf8(page).unwrap();
    for needle in ["EXIT STATUS", "SUPPORT MATRIX", "130", "refused"] {
        assert!(page.contains(needle), "creature.1 lacks {needle}");
    }
    let subs = creature::generate::artifacts();
    for name in [
        "man/creature-create.1",
        "man/creature-net-create.1",
        "man/creature-host-info.1",
    ] {
        assert!(
            subs.iter().any(|(p, _)| p == Path::new(name)),
            "{name} missing"
        );
    }
}

#[test]
fn readme_exit_codes_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let fresh = creature::generate::readme_with_fresh_block(&readme).expect("markers in README.md");
    assert!(
        fresh == readme,
        "README.md exit-code table is stale; run `cargo run -- generate`"
    );
}

/// Every man page passes `mandoc -Tlint` without a word: no warning, no
/// style note.
#[test]
fn man_pages_lint_clean() {
    use std::process::Command;
    if Command::new("mandoc").arg("-V").output().is_err() {
        let must = std::env::var("CI").is_ok()
            || std::env::var("CREATURE_REQUIRE_REAL").is_ok_and(|v| v == "1");
        assert!(
            !must,
            "mandoc is required here (scripts/setup-host installs it)"
        );
        eprintln!("SKIPPED man_pages_lint_clean: no mandoc");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut pages = Vec::new();
    for (rel, bytes) in creature::generate::artifacts() {
        if rel.starts_with("man") {
            let p = dir.path().join(rel.file_name().unwrap());
            std::fs::write(&p, bytes).unwrap();
            pages.push(p);
        }
    }
    assert!(pages.len() > 60, "{} pages", pages.len());
    let out = Command::new("mandoc")
        .args(["-Tlint", "-W", "style"])
        .args(&pages)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.trim().is_empty(), "mandoc -Tlint:\n{said}");
}

/// The Debian changelog's newest entry is the crate's version (cargo-deb
/// takes the package version from Cargo.toml; the changelog must agree).
#[test]
fn debian_changelog_matches_the_crate_version() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/changelog.Debian"
    ))
    .unwrap();
    let first = text.lines().next().unwrap();
    let want = format!("creature ({}-1) ", env!("CARGO_PKG_VERSION"));
    assert!(
        first.starts_with(&want),
        "{first:?} should start with {want:?}"
    );
}
