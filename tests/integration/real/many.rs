//! Verbs over several machines: names, --all and filters shared with
//! `list`, one line per machine, the worst exit status, one question for a
//! destructive verb.

use super::vm::Lab;

fn states(lab: &Lab) -> Vec<(String, String)> {
    let j = lab.run(&["list", "--format", "json"]).ok().json();
    let mut v: Vec<(String, String)> = j
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["record"] == "ok")
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn several_machines_per_verb_with_filters() {
    let Some(lab) = Lab::if_available("several_machines_per_verb_with_filters") else {
        return;
    };
    // -vv shows the configuration sent; -v each backend call and its time.
    lab.run(&["-vv", "create", "mm-a", "-t", "lxc-busybox"])
        .ok()
        .stderr_has("trace: ")
        .stderr_has("lxc config of mm-a:\ntrace: | ")
        .stderr_has("trace: | lxc.uts.name = mm-a");
    for m in ["mm-b", "mm-c"] {
        let r = lab.run(&["create", m, "-t", "lxc-busybox"]).ok();
        assert!(!r.stderr.contains("trace:"), "{}", r.stderr);
    }
    lab.run(&["-vv", "create", "mm-vm", "-t", "tiny"])
        .ok()
        .stderr_has("libvirt: connect qemu:///system (")
        .stderr_has("domain XML of mm-vm:\ntrace: | <domain type=\"qemu\"");
    let r = lab.run(&["-v", "info", "mm-vm"]).ok();
    assert!(
        r.stderr.lines().any(|l| l.starts_with("trace: [+")
            && l.contains("qemu: details mm-vm (")
            && l.ends_with(" ms)")),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("<domain"),
        "-v shows no XML: {}",
        r.stderr
    );

    // Names: each machine gets its line; an unknown one fails alone, and
    // the exit status is its (the worst).
    let r = lab
        .run(&["start", "mm-a", "mm-nosuch", "mm-b"])
        .code(4)
        .stdout_has("started mm-a")
        .stdout_has("started mm-b")
        .stderr_has("error: mm-nosuch: ")
        .stderr_has("1 of 3 machines failed to start: mm-nosuch (exit 4)");
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    assert_eq!(
        states(&lab),
        pairs(&[
            ("mm-a", "running"),
            ("mm-b", "running"),
            ("mm-c", "shut-off"),
            ("mm-vm", "shut-off")
        ])
    );

    // list filters, the same words as the verbs'.
    let running = lab
        .run(&["list", "--state", "running", "--format", "json"])
        .ok()
        .json();
    let names: Vec<&str> = running
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mm-a", "mm-b"]);
    let vms = lab
        .run(&[
            "list",
            "--backend",
            "qemu",
            "--template",
            "tiny",
            "--format",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(vms.as_array().unwrap().len(), 1);
    assert_eq!(vms[0]["name"], "mm-vm");

    // --all with a filter picks what the verb applies to: the one stopped
    // container, not the running ones, and not the VM.
    lab.run(&["start", "--all", "--backend", "lxc"])
        .ok()
        .stdout_has("started mm-c");
    assert_eq!(
        states(&lab),
        pairs(&[
            ("mm-a", "running"),
            ("mm-b", "running"),
            ("mm-c", "running"),
            ("mm-vm", "shut-off")
        ])
    );
    lab.run(&["pause", "--all"]).ok();
    let s = states(&lab);
    assert!(s[..3].iter().all(|(_, st)| st == "paused"), "{s:?}");
    lab.run(&["unpause", "--state", "paused"]).ok();

    // Completion offers what the verb applies to: start the stopped VM,
    // stop the running containers.
    let complete = |verb: &str| -> Vec<String> {
        let r = lab
            .c()
            .env("COMPLETE", "fish")
            // The suite loads the machine; a Tab's one second is not what
            // this asserts.
            .env("CREATURE_TEST_COMPLETION_WAIT", "60")
            .args(["--", "creature", verb, ""])
            .run()
            .ok();
        r.stdout
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .filter(|c| !c.starts_with('-'))
            .collect()
    };
    assert_eq!(complete("start"), ["mm-vm"]);
    assert_eq!(complete("stop"), ["mm-a", "mm-b", "mm-c"]);
    assert_eq!(complete("exec"), ["mm-a", "mm-b", "mm-c"]);
    assert_eq!(complete("info"), ["mm-a", "mm-b", "mm-c", "mm-vm"]);

    // A refused verb fails for the machines whose backend refuses it (exit
    // 3), and the others still run theirs.
    lab.run(&["start", "mm-vm"]).ok();
    lab.run(&["suspend", "mm-a", "mm-vm"])
        .code(3)
        .stdout_has("suspended mm-vm")
        .stderr_has("missing for lxc");
    assert_eq!(lab.state("mm-vm"), "saved");

    // Destructive over several: asked once, and off a terminal only with --yes.
    lab.run(&["destroy", "--backend", "lxc"])
        .code(2)
        .stderr_has("power off 3 machines (mm-a, mm-b, mm-c)?");
    assert_eq!(lab.state("mm-a"), "running");
    lab.run(&["stop", "--all", "--timeout", "30"])
        .ok()
        .stdout_has("stopped mm-a")
        .stdout_has("stopped mm-c");
    lab.run(&["delete", "--all"])
        .code(2)
        .stderr_has("delete 4 machines (mm-a, mm-b, mm-c, mm-vm) and their disks?");
    lab.run(&["delete", "--all", "--yes", "--parallel", "2"])
        .ok()
        .stdout_has("deleted mm-vm")
        .stdout_has("deleted mm-b");
    assert!(states(&lab).is_empty());
    lab.run(&["start", "--all"])
        .ok()
        .stderr_has("no machine to start");
}
