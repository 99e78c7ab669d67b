//! `creature host info`: facts about this host and whether each backend can
//! be used here, and if not, why not.

use std::collections::BTreeSet;
use std::fs;
use std::time::Duration;

use serde::Serialize;

use crate::backend::Backend;
use crate::backend::{libvirt, lxc};
use crate::error::Result;

#[derive(Debug, Serialize)]
pub struct HostInfo {
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_bytes: u64,
    pub libvirt_library: String,
    pub libvirt_daemon: Option<String>,
    pub liblxc: String,
    pub backends: Vec<BackendStatus>,
}

#[derive(Debug, Serialize)]
pub struct BackendStatus {
    pub backend: Backend,
    pub usable: bool,
    pub detail: String,
}

/// libvirt's packed version number (major * 1e6 + minor * 1e3 + micro).
pub fn version_string(v: u32) -> String {
    format!("{}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000)
}

fn read_trim(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "model name").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("MemTotal:")?;
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

/// Domain types libvirt offers for x86_64 guests, from its capabilities XML.
pub fn domain_types(capabilities: &str) -> BTreeSet<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(capabilities);
    let mut out = BTreeSet::new();
    let mut in_x86 = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.name().as_ref() {
                b"arch" => {
                    in_x86 = e
                        .try_get_attribute("name")
                        .ok()
                        .flatten()
                        .is_some_and(|a| a.value.as_ref() == b"x86_64");
                }
                b"domain" if in_x86 => {
                    if let Ok(Some(a)) = e.try_get_attribute("type") {
                        out.insert(String::from_utf8_lossy(&a.value).into_owned());
                    }
                }
                _ => {}
            },
            Ok(Event::End(e)) if e.name().as_ref() == b"arch" => in_x86 = false,
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    out
}

fn dev_kvm_usable() -> std::result::Result<(), String> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
        .map_err(|e| format!("/dev/kvm: {e}"))
}

const PROBE_LIMIT: Duration = Duration::from_secs(15);

pub fn probe() -> Result<HostInfo> {
    let libvirt_library = virt::connect::Connect::version()
        .map(version_string)
        .unwrap_or_else(|_| "unknown".into());

    // One connection answers for kvm and qemu.
    let qemu_uri = libvirt::Uri::local(Backend::Qemu).expect("qemu is libvirt-driven");
    let qemu = libvirt::open(&qemu_uri, PROBE_LIMIT).and_then(|c| {
        let version = c
            .lib_version()
            .map(version_string)
            .map_err(|e| libvirt::map_error("cannot read libvirtd's version", e))?;
        let caps = c
            .capabilities()
            .map_err(|e| libvirt::map_error("cannot read libvirt capabilities", e))?;
        Ok((version, domain_types(&caps)))
    });
    let (libvirt_daemon, types, qemu_err) = match qemu {
        Ok((v, t)) => (Some(v), t, None),
        Err(e) => (
            None,
            BTreeSet::new(),
            Some(
                e.causes()
                    .first()
                    .cloned()
                    .unwrap_or_else(|| e.message().to_string()),
            ),
        ),
    };

    let mut backends = Vec::new();
    for b in Backend::ALL {
        let (usable, detail) = match b {
            Backend::Kvm => match (&qemu_err, types.contains("kvm"), dev_kvm_usable()) {
                (Some(e), _, _) => (false, format!("libvirtd not reachable: {e}")),
                (None, false, Err(e)) => (false, format!("libvirt offers no kvm domains ({e})")),
                (None, false, Ok(())) => (false, "libvirt offers no kvm domains".into()),
                (None, true, Err(e)) => (false, e),
                (None, true, Ok(())) => (true, "libvirtd reachable, /dev/kvm usable".into()),
            },
            Backend::Qemu => match (&qemu_err, types.contains("qemu")) {
                (Some(e), _) => (false, format!("libvirtd not reachable: {e}")),
                (None, false) => (
                    false,
                    "libvirt offers no qemu (TCG) domains: is qemu-system-x86 installed?".into(),
                ),
                (None, true) => (true, "libvirtd reachable, QEMU TCG available".into()),
            },
            Backend::Lxc => {
                let path = lxc::sys::global_config_item("lxc.lxcpath").unwrap_or_default();
                let cg = std::path::Path::new("/sys/fs/cgroup");
                // liblxc 5 drives cgroup v2 and v1 (hybrid) hierarchies alike.
                let cgroups = cg.join("cgroup.controllers").exists() || cg.join("memory").is_dir();
                if !cgroups {
                    (
                        false,
                        "no cgroup hierarchy mounted at /sys/fs/cgroup".into(),
                    )
                } else if path.is_empty() {
                    (false, "liblxc reports no lxc.lxcpath".into())
                } else {
                    (
                        true,
                        format!(
                            "liblxc {} loaded, containers in {path}",
                            lxc::sys::version()
                        ),
                    )
                }
            }
            Backend::Xen => {
                let uri = libvirt::Uri::local(Backend::Xen).expect("xen is libvirt-driven");
                match libvirt::open(&uri, PROBE_LIMIT) {
                    Ok(_) => (true, "libxl connection works".into()),
                    Err(e) => (
                        false,
                        format!(
                            "no Xen host: {}",
                            e.causes()
                                .first()
                                .map(String::as_str)
                                .unwrap_or(e.message())
                        ),
                    ),
                }
            }
        };
        backends.push(BackendStatus {
            backend: b,
            usable,
            detail,
        });
    }

    Ok(HostInfo {
        hostname: read_trim("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".into()),
        kernel: read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
        cpu_model: cpu_model(&fs::read_to_string("/proc/cpuinfo").unwrap_or_default()),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory_bytes: mem_total(&fs::read_to_string("/proc/meminfo").unwrap_or_default()),
        libvirt_library,
        libvirt_daemon,
        liblxc: lxc::sys::version(),
        backends,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_domain_types_for_x86_64_only() {
        let caps = r#"<capabilities><host/>
          <guest><os_type>hvm</os_type><arch name='i686'><domain type='kvm'/></arch></guest>
          <guest><os_type>hvm</os_type><arch name='x86_64'><wordsize>64</wordsize>
            <domain type='qemu'/></arch></guest></capabilities>"#;
        let t = domain_types(caps);
        assert!(t.contains("qemu"));
        assert!(!t.contains("kvm"));
    }

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: Foo CPU @ 2GHz\n"),
            "Foo CPU @ 2GHz"
        );
        assert_eq!(mem_total("MemTotal:       1024 kB\n"), 1024 * 1024);
        assert_eq!(version_string(9_000_000), "9.0.0");
        assert_eq!(version_string(10_002_003), "10.2.3");
    }
}
