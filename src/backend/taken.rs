//! What the host and its backends already use, read before allocating:
//! subnets on its interfaces and routes (for `--subnet auto`), and MACs of
//! libvirt domains, LXC containers and host NICs (so a new MAC collides
//! with none of them). The allocator in net/ is pure; this feeds it.

use std::collections::HashMap;
use std::process::Command;

use crate::net::ipv4::Subnet;
use crate::net::Mac;

/// Subnets of the host's addresses and routes (`ip -j`), with where each
/// was seen.
pub fn host_subnets() -> Vec<(Subnet, String)> {
    let mut out = Vec::new();
    let run = |args: &[&str]| -> serde_json::Value {
        Command::new("ip")
            .args(args)
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice(&o.stdout).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    for iface in run(&["-j", "-4", "addr", "show"])
        .as_array()
        .into_iter()
        .flatten()
    {
        let ifname = iface["ifname"].as_str().unwrap_or("?");
        for a in iface["addr_info"].as_array().into_iter().flatten() {
            if let (Some(ip), Some(p)) = (a["local"].as_str(), a["prefixlen"].as_u64()) {
                if let Ok(ip) = ip.parse() {
                    out.push((Subnet::new(ip, p as u8), format!("host interface {ifname}")));
                }
            }
        }
    }
    for r in run(&["-j", "-4", "route", "show", "table", "all"])
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(dst) = r["dst"].as_str() {
            if dst == "default" {
                continue;
            }
            let (a, p) = dst.split_once('/').unwrap_or((dst, "32"));
            if let (Ok(a), Ok(p)) = (a.parse(), p.parse::<u8>()) {
                let dev = r["dev"].as_str().unwrap_or("?");
                out.push((Subnet::new(a, p), format!("a host route via {dev}")));
            }
        }
    }
    out
}

/// MACs in use on the host outside creature's records, with their owners.
pub fn external_macs(conn: Option<&virt::connect::Connect>) -> HashMap<Mac, String> {
    let mut out = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/sys/class/net") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(m) = std::fs::read_to_string(e.path().join("address"))
                .ok()
                .and_then(|a| Mac::parse_any(a.trim()))
            {
                out.insert(m, format!("host NIC {name}"));
            }
        }
    }
    if let Some(c) = conn {
        for d in c.list_all_domains(0).unwrap_or_default() {
            let name = d.name().unwrap_or_default();
            if let Ok(x) = d.xml_desc(0) {
                for mac in crate::backend::libvirt::machine::parse_devices(&x).1 {
                    if let Some(m) = Mac::parse_any(&mac) {
                        out.insert(m, format!("libvirt domain {name}"));
                    }
                }
            }
        }
    }
    let path = crate::backend::lxc::sys::lxcpath();
    for name in crate::backend::lxc::sys::list_all(&path) {
        if let Ok(c) = crate::backend::lxc::sys::Container::open(&name, &path) {
            for i in 0..8 {
                let Some(hw) = c.config_item(&format!("lxc.net.{i}.hwaddr")) else {
                    break;
                };
                if let Some(m) = Mac::parse_any(&hw) {
                    out.insert(m, format!("container {name}"));
                }
            }
        }
    }
    out
}

/// A stable id for this host, for MAC hashing (/etc/machine-id).
pub fn host_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_string()
        })
}
