//! Evacuation (#4): a host's libvirtd is killed, and its VMs are rebuilt on
//! another host from their records, with the same names, MACs and IPs; a
//! machine that cannot be rebuilt there is reported and the others go on.
//! The hosts are scripts/libvirt-host's, which see none of the test's files.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::hosts::Hosts;
use super::vm::Lab;

fn virsh(uri: &str, args: &[&str]) -> String {
    let out = Command::new("virsh")
        .args(["-c", uri])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_log(lab: &Lab, m: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = lab.run(&["log", m]);
        if r.code == 0 && r.stdout.contains(what) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in {m}'s log:\n{}{}",
            r.stdout,
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn host_of(lab: &Lab, m: &str) -> (String, String) {
    let j = lab.run(&["list", "--format", "json"]).ok().json();
    let r = j
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == m)
        .unwrap_or_else(|| panic!("{m} not listed: {j}"))
        .clone();
    (
        r["host"].as_str().unwrap().to_string(),
        r["state"].as_str().unwrap().to_string(),
    )
}

#[test]
fn a_dead_hosts_vms_are_rebuilt_elsewhere_with_their_addresses() {
    let Some(lab) =
        Lab::if_available("a_dead_hosts_vms_are_rebuilt_elsewhere_with_their_addresses")
    else {
        return;
    };
    let (hosts, uris) = Hosts::start(&[("ea", "10.199.0.31"), ("eb", "10.199.0.32")]);
    lab.run(&["host", "add", "ea", &uris[0]]).ok();
    lab.run(&["host", "add", "eb", &uris[1]]).ok();
    for h in ["ea", "eb"] {
        lab.run(&[
            "--host",
            h,
            "net",
            "create",
            "enet",
            "--subnet",
            "10.195.0.0/24",
        ])
        .ok();
    }
    // Only ea has enet2: a machine on it cannot be rebuilt on eb.
    lab.run(&[
        "--host",
        "ea",
        "net",
        "create",
        "enet2",
        "--subnet",
        "10.195.1.0/24",
    ])
    .ok();
    lab.run(&[
        "--host",
        "ea",
        "create",
        "ev1",
        "-t",
        "tiny",
        "--network",
        "enet",
        "--set",
        "disk.0.size=16MiB",
    ])
    .ok();
    lab.run(&[
        "--host",
        "ea",
        "create",
        "ev2",
        "-t",
        "tiny",
        "--network",
        "enet2",
    ])
    .ok();
    lab.run(&["start", "ev1"]).ok();
    wait_log(&lab, "ev1", "creature-test-guest: guest agent on");
    let info = lab.run(&["info", "ev1", "--format", "json"]).ok().json();
    let mac = info["nics"][0]["mac"].as_str().unwrap().to_string();
    let ip = info["nics"][0]["reserved_ip"].as_str().unwrap().to_string();

    // A host that answers keeps its machines (they can migrate).
    lab.run(&["evacuate", "ea", "--to", "eb", "--yes"])
        .code(5)
        .stderr_has("host ea answers");
    assert!(!virsh(&uris[1], &["list", "--all", "--name"]).contains("ev1"));

    hosts.kill_libvirtd("ea");
    let r = lab.run(&["evacuate", "ea", "--to", "eb", "--yes"]).code(5);
    // The plan says what each machine gets, then each is done or reported.
    assert!(
        r.stdout.contains("evacuate host ea to host eb:"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!(
            "ev1 (qemu, template tiny): same name and addresses (enet {mac} {ip}); FRESH disks"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("ev2 (qemu): not rebuilt: host eb has no network enet2"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("rebuilt ev1 on host eb"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("1 of 2 machines were not rebuilt: ev2 (exit 5)"),
        "{}",
        r.stderr
    );

    // ev1 runs on eb with its MAC and IP; ev2 stays ea's.
    assert_eq!(host_of(&lab, "ev1"), ("eb".into(), "running".into()));
    assert_eq!(host_of(&lab, "ev2").0, "ea");
    let moved = lab.run(&["info", "ev1", "--format", "json"]).ok().json();
    assert_eq!(moved["nics"][0]["mac"], mac.as_str());
    assert_eq!(moved["nics"][0]["reserved_ip"], ip.as_str());
    assert!(virsh(&uris[1], &["dumpxml", "ev1"]).contains(&mac));
    assert!(virsh(&uris[1], &["net-dumpxml", "creature-enet"]).contains(&mac));
    wait_log(&lab, "ev1", "creature-test-guest: guest agent on");
    let leased = lab.guest("ev1", "ip -4 -o addr show eth0");
    assert!(leased.contains(&format!("{ip}/")), "{leased}");
    let answered = (0..60).any(|_| {
        Command::new("ip")
            .args([
                "netns", "exec", "crh-eb", "busybox", "ping", "-c", "1", "-W", "1", &ip,
            ])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    });
    assert!(answered, "{ip} does not answer on eb");

    // `log --follow` of a machine on another host shows what it prints now.
    let mut child = lab
        .c()
        .args(["log", "ev1", "--follow", "-n", "0"])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    lab.guest("ev1", "echo follow-marker >/dev/ttyS0");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = false;
    while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if l.contains("follow-marker") {
            seen = true;
            break;
        }
    }
    crate::util::interrupt(child);
    assert!(seen, "log --follow did not show the new line");

    // ea comes back with its old ev1 still running: repair removes that
    // copy (and its disks, which eb does not share), nothing else.
    hosts.revive_libvirtd("ea");
    assert!(virsh(&uris[0], &["list", "--name"]).contains("ev1"));
    let j = lab
        .run(&["--host", "ea", "repair", "--dry-run", "--format", "json"])
        .ok()
        .json();
    let stale: Vec<&serde_json::Value> = j["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "remove-stale-copy")
        .collect();
    assert_eq!(stale.len(), 1, "{j}");
    assert_eq!(stale[0]["machine"], "ev1", "{j}");
    assert_eq!(stale[0]["keep_disks"], false, "{j}");
    assert!(
        !j["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["machine"] == "ev2"),
        "{j}"
    );
    lab.run(&["--host", "ea", "repair", "--yes"]).ok();
    assert!(!virsh(&uris[0], &["list", "--all", "--name"]).contains("ev1"));
    assert!(virsh(&uris[0], &["list", "--all", "--name"]).contains("ev2"));
    assert!(!virsh(&uris[0], &["vol-list", "--all"]).contains("ev1-disk0"));
    assert_eq!(host_of(&lab, "ev1"), ("eb".into(), "running".into()));

    lab.run(&["delete", "ev1", "--yes", "--force"]).ok();
    lab.run(&["--host", "eb", "net", "delete", "enet", "--yes"])
        .ok();
    drop(hosts);
}
