//! `net create` refuses bad input with exit 2 before anything exists.

use crate::util::{state_dir, Creature};

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
            "--vlan makes a network with a bridge of its own",
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
