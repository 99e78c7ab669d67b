//! `net create` refuses bad input with exit 2 before anything exists.

use crate::util::{snapshot, state_dir, Creature};

#[test]
fn bad_network_input_exits_2_before_anything_exists() {
    let d = state_dir();
    let sd = d.path().join("state");
    let cases: &[(&[&str], &str)] = &[
        (
            &["net", "create", "lan", "--subnet", "10.1.2.0/33"],
            "prefix",
        ),
        (&["net", "create", "lan", "--subnet", "10.1.2.0"], "CIDR"),
        (
            &["net", "create", "lan", "--subnet", "10.1.2.5/24"],
            "did you mean 10.1.2.0/24",
        ),
        (
            &[
                "net",
                "create",
                "lan",
                "--subnet",
                "10.1.2.0/24",
                "--bridge",
                "a-very-long-bridge0",
            ],
            "at most 15 characters",
        ),
        (
            &[
                "net",
                "create",
                "lan",
                "--subnet",
                "10.1.2.0/24",
                "--dhcp-range",
                "10.9.0.10-10.9.0.20",
            ],
            "inside 10.1.2.0/24",
        ),
        (
            &[
                "net",
                "create",
                "lan",
                "--subnet",
                "10.1.2.0/24",
                "--dhcp-range",
                "10.1.2.50-10.1.2.20",
            ],
            "FIRST is after LAST",
        ),
        (
            &[
                "net",
                "create",
                "lan",
                "--subnet",
                "10.1.2.0/24",
                "--dhcp-range",
                "10.1.2.1-10.1.2.20",
            ],
            "gateway",
        ),
        (&["net", "create", "Lan"], "invalid network name"),
        (&["net", "create", "flat", "--mode", "bridge"], "--bridge"),
    ];
    for (args, msg) in cases {
        Creature::new(&sd).args(*args).run().code(2).stderr_has(msg);
        assert!(!sd.exists(), "{args:?} created the state directory");
    }
    for (args, msg) in [
        (
            &[
                "net", "create", "tagged", "--vlan", "5", "--mode", "bridge", "--bridge", "br0",
            ][..],
            "on this host a VLAN network has a bridge of its own",
        ),
        (&["net", "create", "tagged", "--vlan", "4095"], "4095"),
        (
            &["net", "create", "tagged", "--vlan", "5", "--trunk", "a/b"],
            "a/b",
        ),
        (
            &["net", "create", "tagged", "--trunk", "crtrunk1"],
            "--vlan",
        ),
    ] {
        Creature::new(&sd).args(args).run().code(2).stderr_has(msg);
        assert!(!sd.exists(), "{args:?} created the state directory");
    }
}

#[test]
fn vlan_networks_of_other_hosts_are_vlans_of_their_own_open_vswitch_bridges() {
    // Checked before any host is reached: these hosts do not answer.
    let d = state_dir();
    for (name, uri) in [
        ("hx", "xen+tcp://127.0.0.1:1/system"),
        ("hq", "qemu+tcp://127.0.0.1:1/system"),
    ] {
        Creature::new(d.path())
            .args(["host", "add", name, uri])
            .run()
            .ok();
    }
    let before = snapshot(d.path());
    let flat = ["--mode", "bridge", "--bridge", "ovsbr0"];
    let run = |host: &str, extra: &[&str]| {
        let mut a = vec!["--host", host, "net", "create", "v5", "--vlan", "5"];
        a.extend(extra);
        Creature::new(d.path()).args(a).run()
    };
    run("hx", &[])
        .code(2)
        .stderr_has("cannot reach host hx")
        .stderr_has("--mode bridge --bridge OVSBRIDGE --vlan 5");
    let mut trunk = flat.to_vec();
    trunk.extend(["--trunk", "other"]);
    run("hx", &trunk).code(2).stderr_has("--trunk is for");
    run("hq", &flat)
        .code(3)
        .stderr_has("proven on Xen hosts only");
    assert_eq!(snapshot(d.path()), before);
}
