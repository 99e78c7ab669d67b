use std::collections::BTreeMap;

use crate::util::{state_dir, Creature};

/// (row, backend) -> Nova cell word, from the fixture copied out of
/// shared/support-matrix.md.
fn expected() -> BTreeMap<(u64, String), String> {
    let text = include_str!("../fixtures/nova-matrix.txt");
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        // | # | feature | status | kvm | qemu | lxc | xen | surface |
        let n: u64 = cols[1].parse().unwrap();
        for (i, b) in ["kvm", "qemu", "lxc", "xen"].iter().enumerate() {
            let word = cols[4 + i].split(':').next().unwrap().trim().to_string();
            m.insert((n, b.to_string()), word);
        }
    }
    m
}

#[test]
fn fixture_matches_shared_spec_when_present() {
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/support-matrix.md");
    let Ok(spec) = std::fs::read_to_string(shared) else {
        eprintln!("note: {shared} not present; the fixture stands for it");
        return;
    };
    let rows: Vec<&str> = spec
        .lines()
        .filter(|l| l.starts_with("| ") && l[2..].starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let fixture: Vec<&str> = include_str!("../fixtures/nova-matrix.txt")
        .lines()
        .collect();
    assert_eq!(rows, fixture, "tests/fixtures/nova-matrix.txt is stale");
}

#[test]
fn json_has_forty_features_with_novas_cells() {
    let d = state_dir();
    let j = Creature::new(d.path())
        .args(["matrix", "--format", "json"])
        .run()
        .ok()
        .json();
    let rows = j.as_array().unwrap();
    assert_eq!(rows.len(), 40);
    let want = expected();
    assert_eq!(want.len(), 160);
    for r in rows {
        let n = r["number"].as_u64().unwrap();
        let cells = r["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 4);
        for c in cells {
            let b = c["backend"].as_str().unwrap().to_string();
            assert_eq!(
                c["nova"].as_str().unwrap(),
                want[&(n, b.clone())],
                "row {n} backend {b}"
            );
            // creature never allows what Nova marks missing.
            if c["nova"] == "missing" {
                assert_eq!(c["allowed"], false, "row {n} {b}");
            }
        }
    }
}

#[test]
fn partial_cells_carry_their_note() {
    let d = state_dir();
    let j = Creature::new(d.path())
        .args([
            "matrix",
            "--format",
            "json",
            "--feature",
            "snapshot",
            "--backend",
            "xen",
        ])
        .run()
        .ok()
        .json();
    assert_eq!(j[0]["cells"][0]["nova"], "partial");
    assert_eq!(
        j[0]["cells"][0]["note"],
        "only cold snapshots (pause + snapshot)"
    );
}

#[test]
fn filters_and_bad_filters() {
    let d = state_dir();
    let r = Creature::new(d.path())
        .args(["matrix", "--feature", "17"])
        .run()
        .ok();
    assert_eq!(r.stdout.lines().count(), 2);
    assert!(r.stdout.contains("suspend"));
    Creature::new(d.path())
        .args(["matrix", "--feature", "teleport"])
        .run()
        .code(2)
        .stderr_has("unknown feature");
    Creature::new(d.path())
        .args(["matrix", "--backend", "vmware"])
        .run()
        .code(2);
}

#[test]
fn every_proof_names_an_existing_test() {
    use creature::backend::Backend;
    use creature::matrix::{Feature, Impl};
    for f in Feature::ALL {
        for b in Backend::ALL {
            if let Impl::Yes(proof) = f.implemented().get(b) {
                let (file, func) = proof.split_once("::").expect("file::function");
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
                let src = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{f:?}/{b}: {}: {e}", path.display()));
                assert!(
                    src.contains(&format!("fn {func}()")),
                    "{f:?}/{b}: no fn {func} in {file}"
                );
            }
        }
    }
}

/// Cells creature decides on beyond Nova carry their reason: FC allowed but
/// not proven on hardware; iSCSI refused for containers for a fact of the host.
#[test]
fn creatures_own_notes_say_why() {
    let d = state_dir();
    let note = |feature: &str, backend: &str| {
        Creature::new(d.path())
            .args([
                "matrix",
                "--format",
                "json",
                "--feature",
                feature,
                "--backend",
                backend,
            ])
            .run()
            .ok()
            .json()[0]["cells"][0]
            .clone()
    };
    let fc = note("block-storage-fc", "qemu");
    assert_eq!(fc["allowed"], true);
    assert!(
        fc["note"]
            .as_str()
            .unwrap()
            .contains("not proven on FC hardware"),
        "{fc}"
    );
    let chap = note("iscsi-chap", "lxc");
    assert_eq!(chap["allowed"], false);
    assert!(
        chap["note"].as_str().unwrap().contains("iscsi_tcp"),
        "{chap}"
    );
}

/// The front answers `--version` and `matrix` itself, without the backend
/// libraries: every answer (output, errors, exit code) is the engine's.
#[test]
fn the_front_and_the_engine_answer_alike() {
    let cases: &[&[&str]] = &[
        &["--version"],
        &["-V"],
        &["matrix"],
        &["matrix", "--backend", "lxc"],
        &["matrix", "--feature=suspend", "--format", "json"],
        &["matrix", "--format", "markdown"],
        &["matrix", "--format=markdown", "--backend", "lxc"],
        &["matrix", "--feature", "nosuch"],
        &["matrix", "--backend", "bogus"],
        &["matrix", "--bogus"],
        &["matrix", "--help"],
    ];
    let run = |exe: &str, args: &[&str]| {
        let o = std::process::Command::new(exe)
            .arg0("creature")
            .args(args)
            .env_remove("COMPLETE")
            .output()
            .unwrap();
        (
            o.status.code(),
            o.stdout,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    use std::os::unix::process::CommandExt;
    for args in cases {
        let front = run(env!("CARGO_BIN_EXE_creature"), args);
        let engine = run(env!("CARGO_BIN_EXE_creature-engine"), args);
        assert_eq!(front, engine, "{args:?}");
    }
}
