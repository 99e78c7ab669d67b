//! Xen for real: a Xen 4.17 hypervisor with a PV dom0 running libvirtd's
//! libxl driver, booted under QEMU TCG inside the test namespace
//! (scripts/build-xen-host, scripts/xen-host), reached as a named host over
//! xen+tcp on the namespace's loopback. One boot serves every check (about
//! a minute); the domU is the busybox test guest as a PV guest, its kernel
//! and initrd uploaded into dom0's pool.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::vm::Lab;

/// The Xen host, stopped when the test ends, whatever happens.
pub struct XenHost {
    pub uri: String,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/xen-host")
}

impl XenHost {
    pub fn boot(port: u16) -> XenHost {
        let out = Command::new(script())
            .args(["start", &port.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/xen-host start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        XenHost {
            uri: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    }
}

impl Drop for XenHost {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").status();
    }
}

fn state(lab: &Lab, m: &str) -> (String, String, String) {
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
        r["backend"].as_str().unwrap().to_string(),
        r["state"].as_str().unwrap().to_string(),
    )
}

fn wait_state(lab: &Lab, m: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, _, s) = state(lab, m);
        if s == want {
            return;
        }
        assert!(Instant::now() < deadline, "{m} is {s}, not {want}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn wait_log(lab: &Lab, m: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = lab.run(&["log", m]);
        if r.code == 0 && r.stdout.contains(what) {
            return r.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "no {what:?} in {m}'s console log:\n{}{}",
            r.stdout,
            r.stderr
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn xen_pv_machines_on_a_real_xen_host() {
    let Some(lab) = Lab::if_available("xen_pv_machines_on_a_real_xen_host") else {
        return;
    };
    let xen = XenHost::boot(26509);
    lab.run(&["host", "add", "xh", &xen.uri]).ok();

    // Host status: what libvirt's libxl driver there says.
    let info = lab
        .run(&["host", "info", "xh", "--format", "json"])
        .ok()
        .json();
    assert_eq!(info["hostname"], "xen-host", "{info}");
    assert!(
        info["domain_types"]
            .as_array()
            .unwrap()
            .contains(&"xen".into()),
        "{info}"
    );

    // Launch: a PV domU from this host's image cache (uploaded to dom0).
    lab.run(&["--host", "xh", "create", "xv", "-t", "tiny-xen"])
        .ok();
    let xml = Command::new("virsh")
        .args(["-c", &xen.uri, "dumpxml", "xv"])
        .output()
        .unwrap();
    let xml = String::from_utf8_lossy(&xml.stdout);
    assert!(xml.contains("xenpv"), "{xml}");
    lab.run(&["start", "xv"]).ok();
    assert_eq!(
        state(&lab, "xv"),
        ("xh".into(), "xen".into(), "running".into())
    );
    // Its console, logged by xenconsoled in dom0 and read back through libvirt.
    let log = wait_log(&lab, "xv", "creature-test-guest: booted");
    assert!(log.contains("creature-test-guest: booted"), "{log}");

    // Pause and unpause.
    lab.run(&["pause", "xv"]).ok();
    assert_eq!(state(&lab, "xv").2, "paused");
    lab.run(&["unpause", "xv"]).ok();
    assert_eq!(state(&lab, "xv").2, "running");

    // Suspend (libxl's managed save) and restore: the same boot goes on.
    let boots = |l: &str| l.matches("creature-test-guest: booted").count();
    lab.run(&["suspend", "xv"]).ok();
    assert_eq!(state(&lab, "xv").2, "saved");
    lab.run(&["restore", "xv"]).ok();
    assert_eq!(state(&lab, "xv").2, "running");
    // Reboot: the guest's kernel restarts (a second boot line).
    let rebooted_at = creature::time::rfc3339_now();
    std::thread::sleep(Duration::from_millis(1100));
    lab.run(&["reboot", "xv"]).ok();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let l = lab.run(&["log", "xv"]).ok().stdout;
        if boots(&l) >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no second boot after reboot:\n{l}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(state(&lab, "xv").2, "running");
    // Its log stamps each line (xenconsoled), so `--since` takes a time:
    // the reboot's boot only, from just before the reboot; both from an hour
    // ago; the last start's boot with `start` (no reboot since it).
    let l = lab.run(&["log", "xv", "--since", &rebooted_at]).ok().stdout;
    assert_eq!(boots(&l), 1, "since {rebooted_at}:\n{l}");
    assert_eq!(
        boots(&lab.run(&["log", "xv", "--since", "1h"]).ok().stdout),
        2
    );
    let l = lab.run(&["log", "xv", "--since", "start"]).ok().stdout;
    assert_eq!(boots(&l), 2, "{l}");
    let l = lab
        .run(&["log", "xv", "--since", "1d", "-n", "1"])
        .ok()
        .stdout;
    assert_eq!(l.lines().count(), 1, "{l}");

    // A network of creature's in dom0: the domU takes its reserved address
    // by DHCP from libvirt's dnsmasq there.
    lab.run(&[
        "--host",
        "xh",
        "net",
        "create",
        "xnet",
        "--mode",
        "route",
        "--subnet",
        "10.194.0.0/24",
    ])
    .ok();
    lab.run(&[
        "--host",
        "xh",
        "create",
        "xn",
        "-t",
        "tiny-xen",
        "--network",
        "xnet",
    ])
    .ok();
    let ip = lab.run(&["info", "xn", "--format", "json"]).ok().json()["nics"][0]["reserved_ip"]
        .as_str()
        .unwrap()
        .to_string();
    lab.run(&["start", "xn"]).ok();
    let l = wait_log(&lab, "xn", "creature-test-guest: lease");
    assert!(l.contains(&format!("lease eth0 {ip}")), "{l}");
    // The interactive console (libvirt's console stream, from xenconsoled
    // in dom0): typed into the domU's shell, which pings dom0's end of the
    // network and says whether it answered.
    super::vm::console_answers(
        &lab,
        "xn",
        b"\r",
        "ping -c 2 -W 3 10.194.0.1 >/dev/null && echo dom0-answers-$((40+2))",
        "dom0-answers-42",
    );

    // Security groups and firewall rules: libxl applies no filter, so
    // creature names the domU's vif (`<target dev>`) and binds the NIC's
    // filter to it in dom0 while the domU is created paused. Pings from xn
    // are what the group lets in: nothing inbound at first, icmp once a
    // rule allows it (live), nothing again once it is removed, and still
    // nothing after a reboot (the rules hold for the vif's name). Outbound
    // is allowed: xs reaches dom0.
    lab.run(&["secgroup", "create", "xweb"]).ok();
    lab.run(&[
        "--host",
        "xh",
        "create",
        "xs",
        "-t",
        "tiny-xen",
        "--network",
        "xnet",
        "--set",
        "security_groups=[\"xweb\"]",
    ])
    .ok();
    let xs_ip = lab.run(&["info", "xs", "--format", "json"]).ok().json()["nics"][0]["reserved_ip"]
        .as_str()
        .unwrap()
        .to_string();
    lab.run(&["start", "xs"]).ok();
    wait_log(&lab, "xs", &format!("lease eth0 {xs_ip}"));
    let vif = creature::secgroup::filter::veth_name(
        &creature::backend::firewall::scope(lab.path()),
        "xs",
        0,
    );
    let virsh_xh = |args: &[&str]| {
        let o = Command::new("virsh")
            .args(["-c", &xen.uri])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(
        virsh_xh(&["nwfilter-binding-list"]).contains(&vif),
        "no binding on {vif}"
    );
    assert!(virsh_xh(&["dumpxml", "xs"]).contains(&format!("<target dev='{vif}'/>")));
    let ping_xs = |want: &str| {
        super::vm::console_answers(
            &lab,
            "xn",
            b"\r",
            &format!(
                "ping -c 1 -W 2 {xs_ip} >/dev/null && echo open-$((40+2)) || echo shut-$((40+2))"
            ),
            &format!("{want}-42"),
        );
    };
    ping_xs("shut");
    super::vm::console_answers(
        &lab,
        "xs",
        b"\r",
        "ping -c 1 -W 3 10.194.0.1 >/dev/null && echo out-$((40+2))",
        "out-42",
    );
    let icmp = [
        "secgroup",
        "rule",
        "add",
        "xweb",
        "--direction",
        "in",
        "--proto",
        "icmp",
    ];
    lab.run(&icmp).ok().stdout_has("(1 machine, live)");
    ping_xs("open");
    let mut remove = icmp;
    remove[2] = "remove";
    lab.run(&remove).ok();
    ping_xs("shut");
    lab.run(&["reboot", "xs"]).ok();
    let deadline = Instant::now() + Duration::from_secs(180);
    let lease = format!("creature-test-guest: lease eth0 {xs_ip}");
    while lab.run(&["log", "xs"]).ok().stdout.matches(&lease).count() < 2 {
        assert!(Instant::now() < deadline, "no lease after xs's reboot");
        std::thread::sleep(Duration::from_secs(1));
    }
    ping_xs("shut");
    lab.run(&["delete", "xs", "--yes", "--force"]).ok();
    assert!(
        !virsh_xh(&["nwfilter-binding-list"]).contains(&vif),
        "binding on {vif} left"
    );
    lab.run(&["secgroup", "delete", "xweb", "--yes"]).ok();

    lab.run(&["delete", "xn", "--yes", "--force"]).ok();
    lab.run(&["--host", "xh", "net", "delete", "xnet", "--yes"])
        .ok();

    // Image storage: a disk from a cached qcow2 image is a raw copy in
    // dom0's pool (blkback reads raw files), grown to the template's size;
    // an empty disk beside it. The guest prints each disk's size and first
    // bytes on its console.
    let work = tempfile::tempdir().unwrap();
    let marked = work.path().join("marked.raw");
    let mut data = b"creature-xen-disk-0123456789abcdef".to_vec();
    data.resize(8 << 20, 0);
    std::fs::write(&marked, &data).unwrap();
    let q = work.path().join("marked.qcow2");
    assert!(Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&marked)
        .arg(&q)
        .status()
        .unwrap()
        .success());
    lab.c()
        .args(["image", "import", "--name", "xen-disk"])
        .arg_path(&q)
        .run()
        .ok();
    let td = work.path().join("templates");
    std::fs::create_dir(&td).unwrap();
    std::fs::write(
        td.join("xd.toml"),
        "extends = \"tiny-xen\"\n\
         [[disk]]\nsource = { image = \"xen-disk\", file = \"marked.qcow2\" }\nsize = \"16MiB\"\n\
         [[disk]]\nsize = \"4MiB\"\n",
    )
    .unwrap();
    std::fs::write(
        td.join("xq.toml"),
        "extends = \"tiny-xen\"\n[[disk]]\nsize = \"4MiB\"\nformat = \"qcow2\"\n",
    )
    .unwrap();
    let tds = td.to_str().unwrap();
    lab.run(&[
        "--host",
        "xh",
        "create",
        "xq",
        "-t",
        "xq",
        "--template-dir",
        tds,
    ])
    .code(2)
    .stderr_has("xen disks are raw");
    lab.run(&[
        "--host",
        "xh",
        "create",
        "xd",
        "-t",
        "xd",
        "--template-dir",
        tds,
    ])
    .ok();
    // Every volume of every pool in dom0, listed.
    let dom0_vols = || -> String {
        virsh_xh(&["pool-list", "--name"])
            .split_whitespace()
            .map(|p| virsh_xh(&["vol-list", p]))
            .collect()
    };
    assert!(!virsh_xh(&["list", "--all", "--name"]).contains("xq"));
    let xml = virsh_xh(&["dumpxml", "xd"]);
    assert!(
        xml.contains("<driver name='phy' type='raw'/>") && xml.contains("xd-disk0.raw"),
        "{xml}"
    );
    lab.run(&["start", "xd"]).ok();
    let l = wait_log(&lab, "xd", "creature-test-guest: disk xvdb");
    assert!(
        l.contains("creature-test-guest: disk xvda 32768 creature-xen-disk-0123456789abcd"),
        "{l}"
    );
    assert!(l.contains("creature-test-guest: disk xvdb 8192"), "{l}");

    // Snapshot, cold (Nova's "pause + snapshot"): each raw disk copied in
    // dom0's pool while the domU is paused. s1 holds the image's bytes;
    // the guest then overwrites them and s2 holds that; reverting to each
    // boots the domU on what it held. No memory, no export for xen.
    lab.run(&["snapshot", "create", "xd", "s1"])
        .ok()
        .stdout_has("was paused for");
    assert_eq!(state(&lab, "xd").2, "running");
    lab.run(&["snapshot", "create", "xd", "sm", "--memory"])
        .code(2)
        .stderr_has("without its memory");
    super::vm::console_answers(
        &lab,
        "xd",
        b"\r",
        "echo overwritten-by-test > /dev/xvda && sync && echo wrote-$((40+2))",
        "wrote-42",
    );
    lab.run(&["snapshot", "create", "xd", "s2"]).ok();
    let listed = lab
        .run(&["snapshot", "list", "xd", "--format", "json"])
        .ok()
        .json();
    let files: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["disks"].as_array().unwrap())
        .map(|d| d["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 4, "{listed}");
    for f in &files {
        assert!(f.ends_with(".raw"), "{listed}");
    }
    let booted_on = |bytes: &str, times: usize| {
        let want = format!("creature-test-guest: disk xvda 32768 {bytes}");
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let l = lab.run(&["log", "xd"]).ok().stdout;
            if l.matches(&want).count() >= times {
                break;
            }
            assert!(Instant::now() < deadline, "no {want:?} x{times}:\n{l}");
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    lab.run(&["snapshot", "revert", "xd", "s1", "--yes"])
        .ok()
        .stdout_has("started again");
    booted_on("creature-xen-disk-0123456789abcd", 2);
    lab.run(&["snapshot", "revert", "xd", "s2", "--yes"]).ok();
    booted_on("overwritten-by-test", 1);
    let s1 = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "s1")
        .unwrap()["disks"][0]["file"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert!(dom0_vols().contains(&s1), "{s1}");
    lab.run(&["snapshot", "delete", "xd", "s1"]).ok();
    let left = dom0_vols();
    assert!(!left.contains(&s1), "{s1} left after delete:\n{left}");
    lab.run(&["snapshot", "export", "xd", "--image", "xd-image"])
        .code(2)
        .stderr_has("xen machine");
    lab.run(&["delete", "xd", "--yes", "--force"]).ok();
    let vols = dom0_vols();
    assert!(!vols.contains("xd-disk"), "{vols}");

    // Config drive: the NoCloud ISO is made here, shipped into dom0's pool
    // and given to the domU read-only; the guest mounts it and prints its
    // label and meta-data. A changed setting is shipped again at the next
    // start, as a new instance.
    std::fs::write(
        td.join("xc.toml"),
        "extends = \"tiny-xen\"\n[cloud_init]\nhostname = \"xen-seeded\"\n",
    )
    .unwrap();
    lab.run(&[
        "--host",
        "xh",
        "create",
        "xc",
        "-t",
        "xc",
        "--template-dir",
        tds,
    ])
    .ok();
    let xml = virsh_xh(&["dumpxml", "xc"]);
    assert!(
        xml.contains("xc-seed.iso") && xml.contains("<readonly/>"),
        "{xml}"
    );
    lab.run(&["start", "xc"]).ok();
    let l = wait_log(&lab, "xc", "creature-test-guest: seed");
    assert!(
        l.contains("seed xvda cidata") && l.contains(r#""local-hostname": "xen-seeded""#),
        "{l}"
    );
    lab.run(&["config-drive", "xc", "--hostname", "xen-again"])
        .ok();
    lab.run(&["stop", "xc", "--force"]).ok();
    lab.run(&["start", "xc"])
        .ok()
        .stdout_has("rewrote its config drive");
    let l = wait_log(&lab, "xc", r#""local-hostname": "xen-again""#);
    assert_eq!(l.matches("seed xvda cidata").count(), 2, "{l}");
    lab.run(&["delete", "xc", "--yes", "--force"]).ok();
    let vols = dom0_vols();
    assert!(!vols.contains("xc-seed"), "{vols}");

    // Block volumes in dom0's pool (raw: blkback reads files): one made with
    // the machine from its template, one hot-plugged into the running domU
    // and unplugged again. The guest prints each disk it gains or loses.
    std::fs::write(
        td.join("xw.toml"),
        "extends = \"tiny-xen\"\n[[volume]]\nsize = \"4MiB\"\n",
    )
    .unwrap();
    lab.run(&["--host", "xh", "volume", "create", "xraw", "--size", "8MiB"])
        .ok()
        .stdout_has("8MiB raw");
    lab.run(&[
        "--host",
        "xh",
        "volume",
        "create",
        "xq2",
        "--size",
        "8MiB",
        "--disk-format",
        "qcow2",
    ])
    .ok();
    lab.run(&[
        "--host",
        "xh",
        "create",
        "xw",
        "-t",
        "xw",
        "--template-dir",
        tds,
    ])
    .ok();
    lab.run(&["start", "xw"]).ok();
    wait_log(&lab, "xw", "creature-test-guest: disk xvdb 8192");
    lab.run(&["volume", "attach", "xw", "xq2"])
        .code(2)
        .stderr_has("xen disks are raw");
    lab.run(&["volume", "attach", "xw", "xraw", "--target", "vdc"])
        .code(2)
        .stderr_has("xvdX");
    lab.run(&["volume", "attach", "xw", "xraw"])
        .ok()
        .stdout_has("as xvdc (live and persistent)");
    wait_log(&lab, "xw", "creature-test-guest: attached xvdc 16384");
    assert!(virsh_xh(&["dumpxml", "xw", "--inactive"]).contains("xraw.img"));
    // The guest's log keeps every boot's lines: each unplug of xvdc is
    // seen as one more "detached" line than before it.
    let detach_xvdc = |volume: &str| {
        let seen = || {
            lab.run(&["log", "xw"])
                .ok()
                .stdout
                .matches("creature-test-guest: detached xvdc")
                .count()
        };
        let before = seen();
        lab.run(&["volume", "detach", "xw", volume]).ok();
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen() <= before {
            assert!(Instant::now() < deadline, "{volume} was not unplugged");
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    detach_xvdc("xraw");
    assert!(!virsh_xh(&["dumpxml", "xw"]).contains("xraw.img"));

    // Swap, cold only (libxl has no block copy): refused while xw runs;
    // stopped, dom0's libvirt streams xraw's bytes into xsw and xw's
    // definition reads xsw, where the guest finds xraw's marker at boot.
    // A qcow2 volume is no xen disk, so no swap target either.
    let xraw = lab
        .run(&["--host", "xh", "volume", "info", "xraw", "--format", "json"])
        .ok()
        .json()["path"]
        .as_str()
        .unwrap()
        .to_string();
    let marked = td.join("xraw-marked");
    {
        let f = std::fs::File::create(&marked).unwrap();
        use std::io::Write;
        (&f).write_all(b"xen-swap-marker").unwrap();
        f.set_len(8 << 20).unwrap();
    }
    let up = Command::new("virsh")
        .args(["-c", &xen.uri, "vol-upload", &xraw])
        .arg(&marked)
        .output()
        .unwrap();
    assert!(up.status.success(), "{up:?}");
    lab.run(&["--host", "xh", "volume", "create", "xsw", "--size", "8MiB"])
        .ok();
    lab.run(&["volume", "attach", "xw", "xraw"])
        .ok()
        .stdout_has("as xvdc (live and persistent)");
    lab.run(&["volume", "swap", "xw", "xraw", "xsw"])
        .code(5)
        .stderr_has("stop it to swap");
    lab.run(&["stop", "xw", "--force"]).ok();
    lab.run(&["volume", "swap", "xw", "xraw", "xq2"])
        .code(2)
        .stderr_has("xen disks are raw");
    lab.run(&["volume", "swap", "xw", "xraw", "xsw"])
        .ok()
        .stdout_has("swapped volume xraw for xsw on xw (xvdc)")
        .stderr_has("cold only");
    let def = virsh_xh(&["dumpxml", "xw", "--inactive"]);
    assert!(
        def.contains("xsw.img") && !def.contains("xraw.img"),
        "{def}"
    );
    lab.run(&["start", "xw"]).ok();
    wait_log(
        &lab,
        "xw",
        "creature-test-guest: disk xvdc 16384 xen-swap-marker",
    );
    detach_xvdc("xsw");

    // iSCSI with CHAP: libxl has no network disks, so dom0's kernel
    // initiator logs in (a libvirt iscsi pool there, the CHAP secret a
    // private libvirt secret of dom0's) to a tgt target of the test
    // namespace on 10.197.0.1 (an address of the namespace's loopback, which
    // dom0 reaches through QEMU's user-mode network), and the LUN is
    // hot-plugged into the domU as dom0's block device (udev's by-path name).
    let work = tempfile::tempdir().unwrap();
    let backing = work.path().join("xlun.img");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&backing).unwrap();
        f.write_all(b"xen-lun-marker").unwrap();
        f.set_len(32 << 20).unwrap();
    }
    let _ = Command::new("ip")
        .args(["addr", "add", "10.197.0.1/32", "dev", "lo"])
        .status();
    let _tgt = super::iscsi::start_target_at("8", "10.197.0.1:3262", &backing);
    let secret = |name: &str, value: &str| {
        use std::os::unix::fs::PermissionsExt;
        let f = work.path().join(name);
        std::fs::write(&f, value).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        f.to_str().unwrap().to_string()
    };
    let (right, wrong) = (
        secret("chap", super::iscsi::SECRET),
        secret("wrong", "not-the-secret"),
    );
    let create = |name: &str, secret: &str| {
        lab.run(&[
            "--host",
            "xh",
            "volume",
            "create",
            name,
            "--iscsi",
            "10.197.0.1:3262",
            "--iqn",
            super::iscsi::IQN,
            "--lun",
            "1",
            "--chap-user",
            "cuser",
            "--chap-secret-file",
            secret,
        ])
    };
    create("xbad", &wrong)
        .code(6)
        .stderr_has("cannot log in to iSCSI target");
    assert!(!virsh_xh(&["pool-list", "--all"]).contains("iscsi-xbad"));
    assert!(!virsh_xh(&["secret-list"]).contains("iscsi-xbad"));
    create("xlun", &right).ok().stdout_has("CHAP: yes");
    let pool = virsh_xh(&["pool-list", "--all", "--name"])
        .lines()
        .map(str::trim)
        .find(|p| p.ends_with("-iscsi-xlun"))
        .unwrap_or_else(|| panic!("no iscsi pool in dom0"))
        .to_string();
    let px = virsh_xh(&["pool-dumpxml", &pool]);
    assert!(
        px.contains("<pool type='iscsi'>") && !px.contains(super::iscsi::SECRET),
        "{px}"
    );
    lab.run(&["volume", "attach", "xw", "xlun"])
        .ok()
        .stdout_has("as xvdc (live and persistent)");
    wait_log(
        &lab,
        "xw",
        "creature-test-guest: attached xvdc 65536 xen-lun-marker",
    );
    let live = virsh_xh(&["dumpxml", "xw"]);
    assert!(
        live.contains("<disk type='block' device='disk'>")
            && live.contains("<source dev='/dev/disk/by-path/ip-10.197.0.1:3262-iscsi-"),
        "{live}"
    );
    detach_xvdc("xlun");
    assert!(!virsh_xh(&["dumpxml", "xw", "--inactive"]).contains("by-path"));
    lab.run(&["--host", "xh", "volume", "delete", "xlun", "--yes"])
        .ok();
    assert!(!virsh_xh(&["pool-list", "--all"]).contains("iscsi-xlun"));
    assert!(!virsh_xh(&["secret-list"]).contains("iscsi-xlun"));
    // FC: dom0 has no HBA, as its libvirt says (this host's sysfs could
    // not): exit 6, nothing defined there.
    lab.run(&[
        "--host",
        "xh",
        "volume",
        "create",
        "xfc",
        "--fc-wwnn",
        "20000000c9831b4b",
        "--fc-wwpn",
        "10000000c9831b4b",
        "--lun",
        "1",
    ])
    .code(6)
    .stderr_has("host xh has no Fibre Channel HBA");
    assert!(!virsh_xh(&["pool-list", "--all"]).contains("-fc-xfc"));
    lab.run(&["delete", "xw", "--yes", "--force"])
        .ok()
        .stdout_has("removed volume xw-vol0");
    for v in ["xraw", "xq2", "xsw"] {
        lab.run(&["--host", "xh", "volume", "delete", v, "--yes"])
            .ok();
    }
    let vols = dom0_vols();
    assert!(
        !vols.contains("xw-vol0") && !vols.contains("xraw") && !vols.contains("xsw"),
        "{vols}"
    );

    // Flat networking: a network on dom0's own bridge xenbr0 (made by the
    // host's init, with dom0's address 10.193.0.1), no DHCP of creature's;
    // the domU's vif is a port of that bridge, and with an address of its
    // subnet given by hand on the console it reaches dom0 there.
    lab.run(&[
        "--host", "xh", "net", "create", "xflat", "--mode", "bridge", "--bridge", "xenbr0",
    ])
    .ok();
    lab.run(&[
        "--host",
        "xh",
        "create",
        "xf",
        "-t",
        "tiny-xen",
        "--network",
        "xflat",
    ])
    .ok();
    lab.run(&["start", "xf"]).ok();
    wait_log(&lab, "xf", "creature-test-guest: booted");
    let live = virsh_xh(&["dumpxml", "xf"]);
    assert!(
        live.contains("bridge='xenbr0'") && live.contains("<target dev='crv"),
        "{live}"
    );
    super::vm::console_answers(
        &lab,
        "xf",
        b"\r",
        "ip addr add 10.193.0.7/24 dev eth0 2>/dev/null; ping -c 2 -W 3 10.193.0.1 >/dev/null && echo flat-$((40+2))",
        "flat-42",
    );
    lab.run(&["delete", "xf", "--yes", "--force"]).ok();
    lab.run(&["--host", "xh", "net", "delete", "xflat", "--yes"])
        .ok();

    // VLAN networking, flat: creature cannot plumb dom0, so a VLAN network
    // on a Xen host is a VLAN of an Open vSwitch bridge of dom0's (ovsbr0,
    // made by the host's init, with dom0's address 10.192.0.1 on an
    // internal port of VLAN 100), whose ports libvirt tags. A domU with a
    // NIC on VLAN 200 and one on VLAN 100 reaches that address from the
    // second only; no security group can hold it (libvirt's filters do not
    // see Open vSwitch ports).
    lab.run(&["--host", "xh", "net", "create", "xv5", "--vlan", "5"])
        .code(2)
        .stderr_has("--mode bridge --bridge OVSBRIDGE");
    for (net, vlan) in [("xv100", "100"), ("xv200", "200")] {
        lab.run(&[
            "--host", "xh", "net", "create", net, "--vlan", vlan, "--mode", "bridge", "--bridge",
            "ovsbr0",
        ])
        .ok()
        .stdout_has(&format!("VLAN {vlan} on ovsbr0"))
        .stderr_has("on xen is partial: flat");
    }
    let nx = virsh_xh(&["net-dumpxml", "creature-xv100"]);
    assert!(
        nx.contains("<virtualport type='openvswitch'/>") && nx.contains("<tag id='100'/>"),
        "{nx}"
    );
    std::fs::write(
        td.join("xvl.toml"),
        "extends = \"tiny-xen\"\n[[nic]]\nnetwork = \"xv200\"\n[[nic]]\nnetwork = \"xv100\"\n",
    )
    .unwrap();
    lab.run(&[
        "--host",
        "xh",
        "create",
        "xvl",
        "-t",
        "xvl",
        "--template-dir",
        tds,
    ])
    .ok();
    lab.run(&["secgroup", "create", "xvg"]).ok();
    lab.run(&["secgroup", "attach", "xvl", "xvg"])
        .code(5)
        .stderr_has("cannot be in a security group");
    lab.run(&["start", "xvl"]).ok();
    wait_log(&lab, "xvl", "creature-test-guest: booted");
    let live = virsh_xh(&["dumpxml", "xvl"]);
    assert!(
        live.contains("<virtualport type='openvswitch'>")
            && live.contains("<tag id='200'/>")
            && live.contains("<tag id='100'/>"),
        "{live}"
    );
    let ping_from = |dev: &str, want: &str| {
        super::vm::console_answers(
            &lab,
            "xvl",
            b"\r",
            &format!(
                "ip addr flush dev eth0; ip addr flush dev eth1; ip link set {dev} up; \
                 ip addr add 10.192.0.7/24 dev {dev}; \
                 ping -c 2 -W 3 10.192.0.1 >/dev/null && echo vlan-open-$((40+2)) \
                 || echo vlan-shut-$((40+2))"
            ),
            want,
        )
    };
    let seen = ping_from("eth0", "-42");
    assert!(
        seen.contains("vlan-shut-42") && !seen.contains("vlan-open-42"),
        "VLAN 200 reached VLAN 100: {seen}"
    );
    ping_from("eth1", "vlan-open-42");
    lab.run(&["delete", "xvl", "--yes", "--force"]).ok();
    lab.run(&["secgroup", "delete", "xvg", "--yes"]).ok();
    for net in ["xv100", "xv200"] {
        lab.run(&["--host", "xh", "net", "delete", net, "--yes"])
            .ok();
    }
    assert!(!virsh_xh(&["net-list", "--all"]).contains("creature-xv"));

    // Resize: vCPUs and memory live up to the template's maximum (Xen plugs
    // the vCPU, its balloon gives the memory; the guest prints its count and
    // MemTotal when they change), a disk only while stopped (libxl has no
    // live disk resize), grown in dom0's pool.
    std::fs::write(
        td.join("xr.toml"),
        "extends = \"tiny-xen\"\nmax_cpus = 2\nmax_memory = \"512MiB\"\n[[disk]]\nsize = \"4MiB\"\n",
    )
    .unwrap();
    lab.run(&[
        "--host",
        "xh",
        "create",
        "xr",
        "-t",
        "xr",
        "--template-dir",
        tds,
    ])
    .ok();
    lab.run(&["start", "xr"]).ok();
    let sizes = |l: &str| -> Vec<(u32, u64)> {
        l.lines()
            .filter_map(|x| x.split("creature-test-guest: size ").nth(1))
            .map(|x| {
                let mut w = x.split_whitespace();
                (
                    w.next().unwrap().parse().unwrap(),
                    w.next().unwrap().parse().unwrap(),
                )
            })
            .collect()
    };
    let l = wait_log(&lab, "xr", "creature-test-guest: size 1 ");
    let (_, mem0) = sizes(&l)[0];
    lab.run(&["resize", "xr", "--cpus", "2", "--memory", "384MiB"])
        .ok()
        .stdout_has("memory 256MiB -> 384MiB (live, balloon)")
        .stdout_has("vCPUs 1 -> 2 (live");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let l = lab.run(&["log", "xr"]).ok().stdout;
        let last = sizes(&l).last().copied().unwrap();
        // 128 MiB more, give or take what the kernel keeps for itself.
        if last.0 == 2 && last.1 > mem0 + 100 * 1024 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the guest did not get 2 vCPUs and 128 MiB more (first MemTotal {mem0} KiB):\n{l}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    lab.run(&["resize", "xr", "--disk", "xvda=8MiB"])
        .code(5)
        .stderr_has("stop it");
    lab.run(&["stop", "xr", "--force"]).ok();
    lab.run(&["resize", "xr", "--disk", "xvda=8MiB"])
        .ok()
        .stdout_has("disk xvda 4MiB -> 8MiB");
    lab.run(&["start", "xr"]).ok();
    wait_log(&lab, "xr", "creature-test-guest: disk xvda 16384");
    let x = virsh_xh(&["dumpxml", "xr", "--inactive"]);
    assert!(
        x.contains("current='2'>2</vcpu>") || x.contains(">2</vcpu>"),
        "{x}"
    );

    // Rescue: booted from a rescue kernel and initramfs of this host's cache
    // (shipped into dom0's image pool), a raw scratch disk on xvda and its
    // own disk moved up to xvdb; unrescue boots it from its own disk again.
    let g = PathBuf::from(std::env::var("CREATURE_TEST_GUEST").unwrap());
    lab.c()
        .args(["image", "import", "--name", "rescue"])
        .arg_path(&g.join("vmlinuz"))
        .arg_path(&g.join("initrd.img"))
        .run()
        .ok();
    let boots = |l: &str| l.matches("creature-test-guest: booted").count();
    let before = boots(&lab.run(&["log", "xr"]).ok().stdout);
    lab.run(&["rescue", "xr"]).ok().stdout_has("xvda its xvdb");
    let l = wait_log(&lab, "xr", "creature-test-guest: disk xvdb 16384");
    let tail = l.rsplit("creature-test-guest: booted").next().unwrap();
    assert!(
        tail.contains("disk xvda 2048"),
        "the scratch disk is xvda:\n{l}"
    );
    assert_eq!(boots(&l), before + 1, "{l}");
    assert_eq!(
        lab.run(&["info", "xr", "--format", "json"]).ok().json()["rescued"],
        "rescue"
    );
    assert!(dom0_vols().contains("xr-rescue.raw"));
    lab.run(&["unrescue", "xr"]).ok();
    assert!(
        !dom0_vols().contains("xr-rescue"),
        "the scratch disk is left"
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let l = lab.run(&["log", "xr"]).ok().stdout;
        let tail = l.rsplit("creature-test-guest: booted").next().unwrap();
        if boots(&l) == before + 2 && tail.contains("disk xvda 16384") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no boot from its own disk after unrescue:\n{l}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    lab.run(&["delete", "xr", "--yes", "--force"]).ok();

    // A clean shutdown: the guest's init hears Xen's request and powers off.
    lab.run(&["stop", "xv", "--timeout", "120"]).ok();
    wait_state(&lab, "xv", "shut-off");
    wait_log(&lab, "xv", "creature-test-guest: shutting down");

    // Autostart and autostop order xen machines as they order the others:
    // xv (priority 10) is started first and stopped last. Xen numbers
    // domains as it creates them, so the domain ids tell the order.
    lab.run(&["--host", "xh", "create", "xa", "-t", "tiny-xen"])
        .ok();
    lab.run(&["autostart", "enable", "xv", "--priority", "10"])
        .ok();
    lab.run(&["autostart", "enable", "xa", "--priority", "1"])
        .ok();
    let order = |verb: &str| -> Vec<String> {
        let plan = lab
            .run(&["--host", "xh", verb, "run", "--dry-run", "--format", "json"])
            .ok()
            .json();
        plan["batches"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|b| b["machines"].as_array().unwrap().iter())
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(order("autostart"), ["xv", "xa"]);
    lab.run(&["--host", "xh", "autostart", "run"]).ok();
    assert_eq!(state(&lab, "xv").2, "running");
    assert_eq!(state(&lab, "xa").2, "running");
    let domid = |m: &str| -> u32 {
        virsh_xh(&["domid", m])
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("domid of {m}: {e}"))
    };
    assert!(domid("xv") < domid("xa"), "xa was started before xv");
    // autostop plans what runs, in reverse.
    assert_eq!(order("autostop"), ["xa", "xv"]);
    lab.run(&["--host", "xh", "autostop", "run"]).ok();
    assert_eq!(state(&lab, "xv").2, "shut-off");
    assert_eq!(state(&lab, "xa").2, "shut-off");
    lab.run(&["delete", "xa", "--yes"]).ok();

    lab.run(&["delete", "xv", "--yes"]).ok();
    let left = Command::new("virsh")
        .args(["-c", &xen.uri, "list", "--all", "--name"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&left.stdout).contains("xv"),
        "xv left on the Xen host"
    );
    lab.run(&["host", "remove", "xh"]).ok();
    drop(xen);
}
