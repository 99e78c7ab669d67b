use crate::util::{state_dir, Creature};

/// Proves matrix row 6 (Guest host status) for kvm, qemu and lxc against the
/// namespace's own libvirtd and liblxc.
#[test]
fn host_info_reports_real_backends() {
    if !super::available("host_info_reports_real_backends") {
        return;
    }
    let d = state_dir();
    let j = Creature::new(d.path())
        .args(["host", "info", "--format", "json"])
        .run()
        .ok()
        .json();
    let virsh = std::process::Command::new("virsh")
        .args(["-c", "qemu:///system", "version", "--daemon"])
        .output()
        .expect("virsh");
    let virsh = String::from_utf8_lossy(&virsh.stdout);
    let daemon = j["libvirt_daemon"].as_str().expect("libvirtd version");
    assert!(
        virsh.contains(daemon),
        "virsh says {virsh}, creature says {daemon}"
    );
    assert!(j["cpus"].as_u64().unwrap() >= 1);
    assert!(j["memory_bytes"].as_u64().unwrap() > 1 << 20);
    let status = |b: &str| {
        j["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["backend"] == b)
            .cloned()
            .unwrap()
    };
    assert_eq!(status("qemu")["usable"], true, "{}", status("qemu"));
    let kvm_dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    assert_eq!(status("kvm")["usable"], kvm_dev, "{}", status("kvm"));
    assert_eq!(status("lxc")["usable"], true, "{}", status("lxc"));
    assert!(status("lxc")["detail"]
        .as_str()
        .unwrap()
        .contains(j["liblxc"].as_str().unwrap()));
    assert_eq!(status("xen")["usable"], false);
    assert!(status("xen")["detail"]
        .as_str()
        .unwrap()
        .contains("no Xen host"));
}
