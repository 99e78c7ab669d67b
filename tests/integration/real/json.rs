//! docs/json.md is the contract of `--format json`: every read verb runs on
//! real machines, and each field it prints must be named there, and each
//! field named there (unless optional) must be printed.

use std::collections::{BTreeMap, BTreeSet};

use super::vm::Lab;

/// The field paths of a JSON value: `a.b`, `a[].b`; an empty array is `a[]`.
pub fn paths(v: &serde_json::Value, at: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                paths(x, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            let p = format!("{at}[]");
            if a.is_empty() {
                out.insert(p.clone());
            }
            for x in a {
                // The elements of a top-level array are the rows.
                paths(x, if at.is_empty() { "" } else { &p }, out);
            }
        }
        _ => {
            out.insert(at.to_string());
        }
    }
}

/// docs/json.md's sections: the verb of each heading, with its fields and
/// whether each is optional.
pub fn documented() -> BTreeMap<String, BTreeMap<String, bool>> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"),
    )
    .unwrap();
    let mut out: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    let mut cur = None;
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## `creature ") {
            let verb = h.split(" --format json").next().unwrap().to_string();
            out.entry(verb.clone()).or_default();
            cur = Some(verb);
        } else if let (Some(v), Some(row)) = (&cur, line.strip_prefix("| `")) {
            let (path, rest) = row.split_once('`').unwrap();
            let optional = rest.split('|').nth(1).unwrap_or("").contains("optional");
            out.get_mut(v).unwrap().insert(path.to_string(), optional);
        }
    }
    out
}

pub fn check(section: &str, doc: &BTreeMap<String, bool>, got: &BTreeSet<String>) {
    for p in got {
        let named = doc.contains_key(p)
            // An empty array stands for the fields of its elements.
            || (p.ends_with("[]") && doc.keys().any(|d| d.starts_with(&format!("{p}."))));
        assert!(
            named,
            "`creature {section}` prints `{p}`, which docs/json.md does not name"
        );
    }
    for (d, optional) in doc {
        let under_empty = got
            .iter()
            .any(|p| p.ends_with("[]") && d.starts_with(&format!("{p}.")));
        assert!(
            got.contains(d) || *optional || under_empty,
            "docs/json.md names `{d}` for `creature {section}`, which it does not print: {got:?}"
        );
    }
}

/// Sections checked by other tests (with `documented`, `paths`, `check`).
const ELSEWHERE: &[&str] = &[
    "migrate MACHINE --to HOST",
    "host info NAME",
    "doctor",
    "image prune --dry-run",
];

#[test]
fn json_output_is_what_docs_json_md_says() {
    let Some(lab) = Lab::if_available("json_output_is_what_docs_json_md_says") else {
        return;
    };
    lab.run(&["net", "create", "js", "--subnet", "10.90.0.0/24"])
        .ok();
    lab.run(&["secgroup", "create", "js-g"]).ok();
    lab.run(&[
        "secgroup",
        "rule",
        "add",
        "js-g",
        "--direction",
        "in",
        "--proto",
        "tcp",
        "--port",
        "22-23",
        "--remote-group",
        "js-g",
    ])
    .ok();
    // With a config drive, so `info` shows one.
    lab.c()
        .args([
            "launch",
            "js-vm",
            "-t",
            "tiny",
            "--network",
            "js",
            "--wait",
            "lease",
        ])
        .args([
            "--set",
            "disk.0.size=16MiB",
            "--set",
            "display.type=vnc",
            "--set",
            "security_groups=[\"js-g\"]",
            "--ssh-key",
        ])
        .arg_path(&super::vm::dummy_key(lab.path()))
        .run()
        .ok();
    lab.run(&[
        "launch",
        "js-ct",
        "-t",
        "lxc-busybox",
        "--network",
        "js",
        "--wait",
        "lease",
    ])
    .ok();
    lab.run(&["autostart", "enable", "js-vm", "--priority", "3"])
        .ok();
    lab.run(&["snapshot", "create", "js-vm", "js-s1"]).ok();
    lab.run(&["volume", "create", "js-vol", "--size", "4MiB"])
        .ok();
    lab.run(&["volume", "attach", "js-vm", "js-vol"]).ok();
    let doc = documented();
    let cases: &[(&str, &[&str])] = &[
        ("list", &["list"]),
        ("info MACHINE", &["info", "js-vm"]),
        ("info MACHINE", &["info", "js-ct"]),
        ("limits MACHINE", &["limits", "js-vm"]),
        ("config-drive MACHINE", &["config-drive", "js-vm"]),
        ("display MACHINE", &["display", "js-vm", "--show-password"]),
        ("snapshot list MACHINE", &["snapshot", "list", "js-vm"]),
        ("volume list", &["volume", "list"]),
        ("volume info VOLUME", &["volume", "info", "js-vol"]),
        ("secgroup list", &["secgroup", "list"]),
        ("secgroup show GROUP", &["secgroup", "show", "js-g"]),
        ("net list", &["net", "list"]),
        ("net info NETWORK", &["net", "info", "js"]),
        ("net leases NETWORK", &["net", "leases", "js"]),
        ("image list", &["image", "list"]),
        ("template list", &["template", "list"]),
        ("matrix", &["matrix"]),
        ("host info", &["host", "info"]),
        ("host list", &["host", "list"]),
        ("autostart show MACHINE", &["autostart", "show", "js-vm"]),
        (
            "autostart run --dry-run",
            &["autostart", "run", "--dry-run"],
        ),
        ("autostart run --dry-run", &["autostop", "run", "--dry-run"]),
        ("repair --dry-run", &["repair", "--dry-run"]),
    ];
    let mut seen = BTreeSet::new();
    for (section, args) in cases {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        let r = lab.run(&a).ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: stdout is not one JSON document ({e}):\n{}",
                r.stdout
            )
        });
        let mut got = BTreeSet::new();
        paths(&v, "", &mut got);
        let fields = doc
            .get(*section)
            .unwrap_or_else(|| panic!("docs/json.md has no section for `creature {section}`"));
        check(section, fields, &got);
        seen.insert(section.to_string());
    }
    // Every section of the page is exercised (a few by the tests that have
    // what they need: two hosts for a migration).
    let sections: BTreeSet<String> = doc
        .keys()
        .filter(|k| !ELSEWHERE.contains(&k.as_str()))
        .cloned()
        .collect();
    assert_eq!(sections, seen, "docs/json.md sections without a case here");
    lab.run(&["delete", "js-vm", "js-ct", "--force", "--yes"])
        .ok();
    lab.run(&["net", "delete", "js", "--yes"]).ok();
    lab.run(&["volume", "delete", "js-vol", "--yes"]).ok();
    lab.run(&["secgroup", "delete", "js-g", "--yes"]).ok();
}
