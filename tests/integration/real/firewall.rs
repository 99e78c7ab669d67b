//! Network security (#36, first part): every VM NIC creature makes carries
//! libvirt's clean-traffic filter by default, holding the guest to its own
//! MAC and reserved IP. A guest that sends from another address it gave
//! itself gets no answer; with `nic.antispoof = false` (a router) the same
//! packet goes through, so the filter is what stops it.

use super::vm::{virsh, Lab};

/// Whether one ping from `src` to the gateway is answered (the guest's `ip`
/// and `ping` are busybox's).
fn answered(lab: &Lab, m: &str, src: &str) -> bool {
    let out = lab.guest(
        m,
        &format!("ping -c 1 -W 3 -I {src} 10.93.0.1 >/dev/null 2>&1 && echo yes || echo no"),
    );
    out == "yes"
}

#[test]
fn a_guest_cannot_send_from_an_address_it_was_not_given() {
    let Some(lab) = Lab::if_available("a_guest_cannot_send_from_an_address_it_was_not_given")
    else {
        return;
    };
    lab.run(&["net", "create", "fw", "--subnet", "10.93.0.0/24"])
        .ok();
    for (m, extra) in [("fw-vm", None), ("fw-open", Some("nic.0.antispoof=false"))] {
        let mut args = vec![
            "launch",
            m,
            "-t",
            "tiny",
            "--network",
            "fw",
            "--wait",
            "lease",
        ];
        if let Some(e) = extra {
            args.extend(["--set", e]);
        }
        lab.run(&args).ok();
    }
    let filtered = String::from_utf8_lossy(&virsh(&["dumpxml", "fw-vm"]).stdout).into_owned();
    assert!(filtered.contains("filter='clean-traffic'"), "{filtered}");
    let open = String::from_utf8_lossy(&virsh(&["dumpxml", "fw-open"]).stdout).into_owned();
    assert!(!open.contains("clean-traffic"), "{open}");
    for (m, spoof) in [("fw-vm", "10.93.0.250"), ("fw-open", "10.93.0.251")] {
        let own = lab.reserved_ip(m);
        assert!(answered(&lab, m, &own), "{m}: its own address is answered");
        lab.guest(m, &format!("ip addr add {spoof}/24 dev eth0"));
        let got = answered(&lab, m, spoof);
        assert_eq!(
            got,
            m == "fw-open",
            "{m}: a ping from {spoof} answered: {got}"
        );
    }
    // A network of routers: none of its VM NICs is filtered.
    lab.run(&[
        "net",
        "create",
        "fw-r",
        "--subnet",
        "10.94.0.0/24",
        "--no-antispoof",
    ])
    .ok();
    let j = lab
        .run(&["net", "info", "fw-r", "--format", "json"])
        .ok()
        .json();
    assert_eq!(j["antispoof"], false, "{j}");
    lab.run(&["create", "fw-router", "-t", "tiny", "--network", "fw-r"])
        .ok();
    let router = String::from_utf8_lossy(&virsh(&["dumpxml", "fw-router", "--inactive"]).stdout)
        .into_owned();
    assert!(!router.contains("clean-traffic"), "{router}");
    lab.run(&[
        "delete",
        "fw-vm",
        "fw-open",
        "fw-router",
        "--force",
        "--yes",
    ])
    .ok();
    lab.run(&["net", "delete", "fw", "--yes"]).ok();
    lab.run(&["net", "delete", "fw-r", "--yes"]).ok();
}
