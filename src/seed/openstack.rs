//! The OpenStack config drive (config-2): `openstack/latest/meta_data.json`,
//! `user_data` and, where networking is injected, `network_data.json`, as
//! Nova writes them and cloud-init's ConfigDrive source reads them.

use std::net::Ipv4Addr;

use serde_json::{json, Map, Value};

use super::{pretty, user_data, Addr, NicConfig, Seed};

const DIR: &str = "openstack/latest";

pub fn files(
    iid: &str,
    machine: &str,
    seed: &Seed,
    nics: Option<&[NicConfig]>,
) -> Vec<(String, Vec<u8>)> {
    let mut meta = Map::new();
    meta.insert("uuid".into(), json!(iid));
    meta.insert("name".into(), json!(machine));
    meta.insert("hostname".into(), json!(seed.hostname));
    meta.insert("launch_index".into(), json!(0));
    let keys = super::public_keys(seed);
    if !keys.is_empty() {
        let keys: Map<String, Value> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("key{i}"), json!(k)))
            .collect();
        meta.insert("public_keys".into(), Value::Object(keys));
    }
    let mut out = vec![
        (
            format!("{DIR}/meta_data.json"),
            pretty(&Value::Object(meta)),
        ),
        (format!("{DIR}/user_data"), user_data(seed)),
    ];
    if let Some(nics) = nics {
        out.push((
            format!("{DIR}/network_data.json"),
            pretty(&network_data(nics)),
        ));
    }
    out
}

pub fn network_data(nics: &[NicConfig]) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut dns_servers: Vec<Ipv4Addr> = Vec::new();
    for (i, n) in nics.iter().enumerate() {
        let link = format!("tap{i}");
        links.push(json!({ "id": link, "type": "phy", "ethernet_mac_address": n.mac }));
        match &n.addr {
            Addr::Dhcp => networks.push(json!({
                "id": format!("network{i}"), "type": "ipv4_dhcp", "link": link,
            })),
            Addr::Static {
                ip,
                prefix,
                gateway,
                dns,
            } => {
                let mask = crate::net::ipv4::Subnet::new(*ip, *prefix).mask();
                let routes: Vec<Value> = gateway
                    .iter()
                    .map(|g| {
                        json!({ "network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": g.to_string() })
                    })
                    .collect();
                networks.push(json!({
                    "id": format!("network{i}"), "type": "ipv4", "link": link,
                    "ip_address": ip.to_string(), "netmask": mask.to_string(), "routes": routes,
                }));
                for d in dns {
                    if !dns_servers.contains(d) {
                        dns_servers.push(*d);
                    }
                }
            }
        }
    }
    let services: Vec<Value> = dns_servers
        .iter()
        .map(|d| json!({ "type": "dns", "address": d.to_string() }))
        .collect();
    json!({ "links": links, "networks": networks, "services": services })
}
