use crate::util::{state_dir, Creature};

const BAD: &[&str] = &[
    "../x", "a;b", "$(id)", "-rf", "a\nb", "Web", "UPPER", "a_b", "a.b", "é", "a-", "1a", "",
];

fn long() -> String {
    format!("a{}", "b".repeat(63)) // 64 characters
}

/// Every bad name exits 2 with the rule, before the state directory exists.
#[test]
fn bad_machine_names_exit_2_before_anything_exists() {
    let d = state_dir();
    let sd = d.path().join("state");
    let mut names: Vec<String> = BAD.iter().map(|s| s.to_string()).collect();
    names.push(long());
    for name in &names {
        for verb in ["start", "info", "suspend", "delete", "set-password"] {
            Creature::new(&sd)
                .args([verb, "--", name])
                .run()
                .code(2)
                .stderr_has("must be a lower-case letter");
        }
        Creature::new(&sd)
            .args(["create", "-t", "tiny", "--", name])
            .run()
            .code(2)
            .stderr_has("invalid machine name");
        assert!(!sd.exists(), "state dir created for {name:?}");
    }
}

#[test]
fn sixty_three_characters_is_still_a_name() {
    let d = state_dir();
    let ok = format!("a{}", "b".repeat(62));
    // Valid name, no such machine: exit 4, not 2.
    Creature::new(d.path()).args(["info", &ok]).run().code(4);
}

#[test]
fn a_dash_name_without_separator_is_a_usage_error() {
    let d = state_dir();
    Creature::new(d.path()).args(["start", "-rf"]).run().code(2);
}

#[test]
fn bad_host_and_template_names_exit_2() {
    let d = state_dir();
    Creature::new(d.path())
        .args(["--host", "../etc", "list"])
        .run()
        .code(2)
        .stderr_has("invalid host name");
    Creature::new(d.path())
        .args(["create", "web", "-t", "../../etc/passwd"])
        .run()
        .code(2)
        .stderr_has("invalid template name");
    Creature::new(d.path())
        .args(["migrate", "web", "--to", "$(id)"])
        .run()
        .code(2)
        .stderr_has("invalid host name");
}
