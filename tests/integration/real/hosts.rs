//! Several hosts: two more libvirt hosts in the test namespace
//! (scripts/libvirt-host: each its own network, mount and UTS namespaces
//! and libvirtd on TCP), named with `host add`; machines made on each;
//! `list` asks every host at once, and one whose libvirtd is gone costs one
//! warning line while the others are listed.

use std::path::PathBuf;
use std::process::Command;

use super::vm::Lab;

/// Hosts made for a test, stopped when it ends, whatever happens.
pub struct Hosts(Vec<String>);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/libvirt-host")
}

impl Hosts {
    /// Start each (name, address); their URIs, in order.
    pub fn start(hosts: &[(&str, &str)]) -> (Hosts, Vec<String>) {
        let mut made = Hosts(Vec::new());
        let mut uris = Vec::new();
        for (name, addr) in hosts {
            let out = Command::new(script())
                .args(["start", name, addr])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "libvirt-host start {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            made.0.push(name.to_string());
            uris.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        (made, uris)
    }

    /// Kill a host's libvirtd (its namespace and domains stay).
    pub fn kill_libvirtd(&self, name: &str) {
        let work = std::env::var("CREATURE_TEST_WORK").expect("inside scripts/ns-run");
        let pid = std::fs::read_to_string(format!("{work}/hosts/{name}/libvirtd.pid")).unwrap();
        let ok = Command::new("kill")
            .arg(pid.trim())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill libvirtd of {name}");
        // Gone when its socket no longer answers.
        for _ in 0..50 {
            if !Command::new("kill")
                .args(["-0", pid.trim()])
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
                .success()
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("libvirtd of {name} did not exit");
    }
}

impl Hosts {
    /// Start a killed libvirtd again, in its host's namespaces.
    pub fn revive_libvirtd(&self, name: &str) {
        let out = Command::new(script())
            .args(["revive", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "libvirt-host revive {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for h in &self.0 {
            let _ = Command::new(script()).args(["stop", h]).status();
        }
    }
}

fn virsh_on(uri: &str, args: &[&str]) -> bool {
    Command::new("virsh")
        .args(["-c", uri])
        .args(args)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn hosts_are_named_disabled_and_listed_at_once_and_a_dead_one_costs_one_line() {
    let Some(lab) = Lab::if_available(
        "hosts_are_named_disabled_and_listed_at_once_and_a_dead_one_costs_one_line",
    ) else {
        return;
    };
    let (hosts, uris) = Hosts::start(&[("ha", "10.199.0.11"), ("hb", "10.199.0.12")]);
    for (name, uri) in [("ha", &uris[0]), ("hb", &uris[1])] {
        lab.run(&["host", "add", name, uri])
            .ok()
            .stdout_has(&format!("added host {name}"));
    }
    lab.run(&["host", "add", "ha", &uris[0]])
        .code(5)
        .stderr_has("already exists");
    lab.run(&["host", "add", "local", &uris[0]])
        .code(2)
        .stderr_has("`local` is this host");
    lab.run(&["host", "add", "hx", "http://10.199.0.11/"])
        .code(2)
        .stderr_has("the driver must be qemu or xen");
    // A host that is down can be named; it is said at once.
    lab.run(&["host", "add", "hz", "qemu+tcp://10.199.0.19/system"])
        .ok()
        .stderr_has("warning: host hz does not answer now");
    let j = lab.run(&["host", "list", "--format", "json"]).ok().json();
    let reach: Vec<(String, bool)> = j
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_string(),
                h["reachable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reach,
        [
            ("local".to_string(), true),
            ("ha".into(), true),
            ("hb".into(), true),
            ("hz".into(), false)
        ],
        "{j}"
    );

    // What libvirt on another host says of it.
    let info = lab
        .run(&["host", "info", "ha", "--format", "json"])
        .ok()
        .json();
    let mut got = std::collections::BTreeSet::new();
    super::json::paths(&info, "", &mut got);
    let section = "host info NAME";
    super::json::check(section, &super::json::documented()[section], &got);
    assert_eq!(info["hostname"], "ha", "{info}");
    assert!(
        info["domain_types"]
            .as_array()
            .unwrap()
            .contains(&"qemu".into()),
        "{info}"
    );
    assert!(info["free_memory_bytes"].as_u64().unwrap() > 0, "{info}");
    lab.run(&["host", "info", "hz"]).code(6);

    // A machine on each host; names are unique across hosts.
    let small = ["-t", "tiny", "--set", "disk.0.size=16MiB"];
    for (host, m) in [("local", "h-loc"), ("ha", "h-a"), ("hb", "h-b")] {
        let mut args = vec!["--host", host, "create", m];
        args.extend(small);
        lab.run(&args).ok();
    }
    assert!(virsh_on(&uris[0], &["dominfo", "h-a"]), "h-a is not on ha");
    assert!(!virsh_on(&uris[1], &["dominfo", "h-a"]), "h-a is on hb");
    let mut again = vec!["--host", "hb", "create", "h-a"];
    again.extend(small);
    lab.run(&again)
        .code(5)
        .stderr_has("already exists on host ha");

    // Service control (#14): a disabled host takes no new machine, while
    // its own keep running; a Xen host's cell is missing (exit 3).
    lab.run(&["start", "h-b"]).ok();
    lab.run(&["host", "disable", "hb", "--reason", "disk swap"])
        .ok()
        .stdout_has("disabled host hb");
    let j = lab.run(&["host", "list", "--format", "json"]).ok().json();
    let hb = j
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "hb")
        .unwrap();
    assert_eq!(hb["enabled"], false, "{j}");
    assert_eq!(hb["disabled_reason"], "disk swap", "{j}");
    let mut onto_b = vec!["--host", "hb", "create", "h-c"];
    onto_b.extend(small);
    lab.run(&onto_b)
        .code(5)
        .stderr_has("host hb is disabled (disk swap)");
    assert!(virsh_on(&uris[1], &["domstate", "h-b"]));
    let state = Command::new("virsh")
        .args(["-c", &uris[1], "domstate", "h-b"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "running");
    assert!(!virsh_on(&uris[1], &["dominfo", "h-c"]));
    lab.run(&["host", "add", "hx", "xen+tcp://10.199.0.30/system"])
        .ok();
    lab.run(&["host", "disable", "hx"])
        .code(3)
        .stderr_has("xen");
    lab.run(&["host", "remove", "hx"]).ok();
    lab.run(&["host", "enable", "hb"])
        .ok()
        .stdout_has("enabled host hb");
    lab.run(&onto_b).ok();
    lab.run(&["delete", "h-c", "--yes"]).ok();
    lab.run(&["stop", "h-b", "--force"]).ok();

    // A stopped machine's swap on another host: its files are hb's, so hb's
    // libvirt streams the bytes (qemu-img here would read this host's
    // disk); a format change there is refused (exit 5), nothing moved.
    let vol = |name: &str, format: &str| {
        lab.run(&[
            "--host",
            "hb",
            "volume",
            "create",
            name,
            "--size",
            "4MiB",
            "--disk-format",
            format,
        ])
        .ok();
        lab.run(&["--host", "hb", "volume", "info", name, "--format", "json"])
            .ok()
            .json()["path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (hv1, hv2, _) = (vol("hv1", "raw"), vol("hv2", "raw"), vol("hv3", "qcow2"));
    let work = tempfile::tempdir().unwrap();
    let (marked, back) = (work.path().join("in"), work.path().join("out"));
    std::fs::write(&marked, b"remote-swap-marker").unwrap();
    assert!(virsh_on(
        &uris[1],
        &["vol-upload", &hv1, marked.to_str().unwrap()]
    ));
    lab.run(&["volume", "attach", "h-b", "hv1"]).ok();
    lab.run(&["volume", "swap", "h-b", "hv1", "hv3"])
        .code(5)
        .stderr_has("copied as raw bytes");
    lab.run(&["volume", "swap", "h-b", "hv1", "hv2"])
        .ok()
        .stdout_has("swapped volume hv1 for hv2 on h-b (vdb)");
    assert!(virsh_on(
        &uris[1],
        &["vol-download", &hv2, back.to_str().unwrap()]
    ));
    let got = std::fs::read(&back).unwrap();
    assert!(got.starts_with(b"remote-swap-marker"), "{:?}", &got[..32]);
    assert_eq!(got.len(), 4 << 20);
    let def = Command::new("virsh")
        .args(["-c", &uris[1], "dumpxml", "h-b", "--inactive"])
        .output()
        .unwrap();
    let def = String::from_utf8_lossy(&def.stdout);
    assert!(def.contains("hv2") && !def.contains("hv1"), "{def}");
    lab.run(&["volume", "detach", "h-b", "hv2"]).ok();
    for v in ["hv1", "hv2", "hv3"] {
        lab.run(&["--host", "hb", "volume", "delete", v, "--yes"])
            .ok();
    }

    // Every host at once: the unreachable one is one warning line.
    let rows = |args: &[&str]| -> Vec<(String, String, String)> {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        let j = lab.run(&a).ok().json();
        // Other tests' machines share the local libvirtd: only ours count.
        j.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"].as_str().unwrap().starts_with("h-"))
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_string(),
                    r["host"].as_str().unwrap().to_string(),
                    r["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let off = |m: &str, h: &str| (m.to_string(), h.to_string(), "shut-off".to_string());
    assert_eq!(
        rows(&["list"]),
        [off("h-a", "ha"), off("h-b", "hb"), off("h-loc", "local")]
    );
    let r = lab.run(&["list"]).ok();
    assert_eq!(
        r.stderr.matches("warning: host hz is unreachable").count(),
        1,
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("HOST"), "{}", r.stdout);
    assert_eq!(rows(&["list", "--host", "ha"]), [off("h-a", "ha")]);

    // ha's libvirtd dies: its machine is unreachable, the others listed.
    hosts.kill_libvirtd("ha");
    let got = rows(&["list"]);
    assert_eq!(
        got,
        [
            (
                "h-a".to_string(),
                "ha".to_string(),
                "unreachable".to_string()
            ),
            off("h-b", "hb"),
            off("h-loc", "local")
        ]
    );
    let r = lab.run(&["list"]).ok();
    assert_eq!(
        r.stderr.matches("warning: host ha is unreachable").count(),
        1,
        "{}",
        r.stderr
    );

    // A host with machines is not forgotten.
    lab.run(&["host", "remove", "hb"]).code(5).stderr_has("h-b");
    lab.run(&["--host", "hb", "delete", "h-b", "--yes"]).ok();
    lab.run(&["host", "remove", "hb"]).ok();
    lab.run(&["host", "remove", "hz"]).ok();
    lab.run(&["delete", "h-loc", "--yes"]).ok();
    drop(hosts);
}
