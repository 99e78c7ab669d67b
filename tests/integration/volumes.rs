//! Fibre Channel volumes (#32) where no FC hardware exists: the pool XML is
//! golden and schema-valid (src/backend/libvirt/fc_xml.rs and
//! domain_xml.rs here); this proves the command refuses a host without an
//! HBA before anything is defined or recorded, and bad WWNs first.

use crate::util::{state_dir, Creature};

#[test]
fn fc_volumes_are_golden_and_refused_without_an_hba() {
    let has_hba = std::fs::read_dir("/sys/class/fc_host").is_ok_and(|mut d| d.next().is_some());
    if has_hba {
        // A host with FC hardware would define a real vHBA: not here.
        assert!(
            std::env::var("CI").is_err(),
            "CI runs on hosts without FC hardware; this one has some"
        );
        eprintln!(
            "SKIPPED fc_volumes_are_golden_and_refused_without_an_hba: this host has an FC HBA"
        );
        return;
    }
    let d = state_dir();
    let c = || Creature::new(d.path());
    let args = |wwnn: &str| {
        vec![
            "volume".to_string(),
            "create".into(),
            "san1".into(),
            "--fc-wwnn".into(),
            wwnn.into(),
            "--fc-wwpn".into(),
            "10000000c9831b4b".into(),
            "--lun".into(),
            "1".into(),
        ]
    };
    c().args(args("20000000c9831b4"))
        .run()
        .code(2)
        .stderr_has("16 hex digits");
    c().args(args("20000000c9831b4b"))
        .run()
        .code(6)
        .stderr_has("this host has no Fibre Channel HBA");
    // Nothing recorded.
    let j = c()
        .args(["volume", "list", "--format", "json"])
        .run()
        .ok()
        .json();
    assert_eq!(j, serde_json::json!([]));
    // --size and a LUN source do not mix; a LUN needs its number.
    c().args([
        "volume",
        "create",
        "x",
        "--size",
        "1GiB",
        "--fc-wwnn",
        "20000000c9831b4b",
        "--fc-wwpn",
        "10000000c9831b4b",
        "--lun",
        "1",
    ])
    .run()
    .code(2);
    c().args([
        "volume",
        "create",
        "x",
        "--fc-wwnn",
        "20000000c9831b4b",
        "--fc-wwpn",
        "10000000c9831b4b",
    ])
    .run()
    .code(2);
}
