//! The NoCloud seed: `meta-data`, `user-data` and, where networking is
//! injected, `network-config` (version 2, NICs matched by MAC).

use serde_json::{json, Map, Value};

use super::{pretty, user_data, Addr, NicConfig, Seed};

pub fn files(iid: &str, seed: &Seed, nics: Option<&[NicConfig]>) -> Vec<(String, Vec<u8>)> {
    let mut meta = Map::new();
    meta.insert("instance-id".into(), json!(iid));
    meta.insert("local-hostname".into(), json!(seed.hostname));
    let keys = super::public_keys(seed);
    if !keys.is_empty() {
        meta.insert("public-keys".into(), json!(keys));
    }
    let mut out = vec![
        ("meta-data".to_string(), pretty(&Value::Object(meta))),
        ("user-data".to_string(), user_data(seed)),
    ];
    if let Some(nics) = nics {
        out.push(("network-config".to_string(), pretty(&network_config(nics))));
    }
    out
}

/// Netplan-style version 2. Each NIC is named `eth<index>` and matched by
/// its MAC: cloud-init renames the interface to that name where the
/// renderer needs one.
pub fn network_config(nics: &[NicConfig]) -> Value {
    let mut eths = Map::new();
    for (i, n) in nics.iter().enumerate() {
        let mut e = Map::new();
        e.insert("match".into(), json!({ "macaddress": n.mac }));
        e.insert("set-name".into(), json!(format!("eth{i}")));
        match &n.addr {
            Addr::Dhcp => {
                e.insert("dhcp4".into(), json!(true));
            }
            Addr::Static {
                ip,
                prefix,
                gateway,
                dns,
            } => {
                e.insert("dhcp4".into(), json!(false));
                e.insert("addresses".into(), json!([format!("{ip}/{prefix}")]));
                if let Some(g) = gateway {
                    e.insert("gateway4".into(), json!(g.to_string()));
                }
                if !dns.is_empty() {
                    let a: Vec<String> = dns.iter().map(|d| d.to_string()).collect();
                    e.insert("nameservers".into(), json!({ "addresses": a }));
                }
            }
        }
        eths.insert(format!("eth{i}"), Value::Object(e));
    }
    json!({ "version": 2, "ethernets": eths })
}
