//! What creature runs: `strace -f -e execve` over create, start, stop and
//! delete of a VM and a container. creature runs programs only with
//! argument vectors; the shells seen are liblxc's own fixed hooks
//! (docs/reliability.md), and no template value reaches any program.

use std::process::Command;

use super::vm::Lab;

const MARK: &str = "ZZtemplateZZ";

/// The argument vectors of every execve in a trace.
fn execs(trace: &str) -> Vec<Vec<String>> {
    trace
        .lines()
        .filter_map(|l| {
            let args = l.split_once("execve(")?.1.split_once(", [")?.1;
            let args = args.split_once("]")?.0;
            Some(
                args.split("\", \"")
                    .map(|a| a.trim_matches('"').to_string())
                    .collect(),
            )
        })
        .collect()
}

/// The shells liblxc runs, with nothing but ids and the (validated) name.
fn allowed_shell(cmd: &str, name: &str) -> bool {
    let ids = |s: &str| {
        s.split(' ')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
    };
    cmd.strip_prefix("newuidmap ").is_some_and(ids)
        || cmd.strip_prefix("newgidmap ").is_some_and(ids)
        || cmd == format!("exec /usr/share/lxcfs/lxc.mount.hook {name} lxc mount")
        || cmd == format!("exec /usr/share/lxcfs/lxc.reboot.hook {name} lxc post-stop")
}

/// Run creature under `strace -f` until creature itself exits, then stop
/// tracing: a started container's monitor stays a traced child forever.
fn traced(state: &std::path::Path, out: &std::path::Path, args: &[&str]) -> String {
    let mut strace = Command::new("strace")
        // seccomp-bpf: tracees stop only at execve, so tracing costs little.
        .args([
            "-f",
            "--seccomp-bpf",
            "-q",
            "-s",
            "400",
            "-e",
            "trace=execve",
            "-o",
        ])
        .arg(out)
        .arg(crate::util::bin())
        .args(args)
        .env("CREATURE_STATE_DIR", state)
        .env("CREATURE_CONFIG", state.join("none.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("strace (setup-host installs it)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        let first = text.split_whitespace().next().unwrap_or("").to_string();
        if let Some(line) = text.lines().find(|l| {
            // strace pads the pid column: "4244  +++ exited with 0 +++".
            let (pid, rest) = l.split_once(' ').unwrap_or(("", ""));
            !first.is_empty() && pid == first && rest.trim_start().starts_with("+++ exited with ")
        }) {
            let code = line
                .rsplit("exited with ")
                .next()
                .unwrap_or("")
                .trim_end_matches(" +++");
            assert_eq!(code, "0", "{args:?} failed under strace");
            let _ = strace.kill();
            let _ = strace.wait();
            return text;
        }
        if let Ok(Some(st)) = strace.try_wait() {
            assert!(st.success(), "{args:?} failed under strace");
            return std::fs::read_to_string(out).unwrap_or_default();
        }
        if std::time::Instant::now() > deadline {
            let _ = strace.kill();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            panic!(
                "{args:?} did not finish under strace; the trace ends (newest first):\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn child_processes_are_argument_vectors_without_template_values() {
    let Some(lab) =
        Lab::if_available("child_processes_are_argument_vectors_without_template_values")
    else {
        return;
    };
    lab.run(&["net", "create", "n-exec", "--subnet", "10.89.0.0/24"])
        .ok();
    for (m, template) in [("ex-ct", "lxc-busybox"), ("ex-vm", "tiny")] {
        let set = format!("description={MARK}");
        let steps: [&[&str]; 4] = [
            &[
                "create",
                m,
                "-t",
                template,
                "--network",
                "n-exec",
                "--set",
                &set,
            ],
            &["start", m, "--wait", "running"],
            &["stop", m, "--force"],
            &["delete", m, "--yes"],
        ];
        for args in steps {
            let out = lab.path().join("trace.txt");
            let _ = std::fs::remove_file(&out);
            let trace = traced(lab.path(), &out, args);
            let all = execs(&trace);
            assert!(!all.is_empty(), "strace saw nothing: {trace}");
            // The front becoming the engine passes the user's own words on
            // unchanged: the same argument vector, once.
            assert_eq!(
                all.get(1),
                all.first(),
                "the front did not become the engine"
            );
            for argv in &all[2..] {
                let prog = argv[0].rsplit('/').next().unwrap_or("");
                // Inside the container: its own init and scripts.
                if [
                    "init",
                    "rcS",
                    "udhcpc",
                    "default.script",
                    "echo",
                    "cttyhack",
                    "sleep",
                ]
                .contains(&prog)
                    || argv.first().is_some_and(|a| a == "udhcpc")
                {
                    continue;
                }
                assert!(
                    !argv.iter().any(|a| a.contains(MARK)),
                    "{args:?}: a template value reached {argv:?}"
                );
                if prog == "sh" || prog == "bash" || prog == "dash" {
                    let ok = argv.len() == 3 && argv[1] == "-c" && allowed_shell(&argv[2], m)
                        || argv == &["/bin/sh", "-l"];
                    assert!(ok, "{args:?}: unexpected shell {argv:?}");
                }
            }
        }
    }
    lab.run(&["net", "delete", "n-exec", "--yes"]).ok();
}
