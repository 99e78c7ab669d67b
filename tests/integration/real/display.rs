//! Graphical consoles proven with clients nobody here wrote: gvnccapture
//! (gtk-vnc) takes a VNC frame with the machine's password and is refused
//! with a wrong one; spicy-screenshot (spice-gtk) does the same over
//! SPICE. Both frames show the guest's text console. The displays listen on
//! loopback only, and their passwords are in no process's argv and no
//! `info` or `list`.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use super::vm::Lab;

/// Distinct byte values among a frame's pixels (1: a blank screen).
fn colours(pixels: &[u8]) -> usize {
    let mut seen = [false; 256];
    for b in pixels {
        seen[*b as usize] = true;
    }
    seen.iter().filter(|s| **s).count()
}

/// A BMP's pixel bytes (its header says where they start).
fn bmp_pixels(b: &[u8]) -> &[u8] {
    assert!(b.starts_with(b"BM"), "not a BMP");
    let at = u32::from_le_bytes(b[10..14].try_into().unwrap()) as usize;
    &b[at..]
}

/// A binary PPM's (P6) pixel bytes.
fn ppm_pixels(b: &[u8]) -> &[u8] {
    assert!(b.starts_with(b"P6"), "not a PPM");
    // Magic, width, height, maxval: four tokens, then one whitespace byte.
    let (mut tokens, mut i, mut in_tok) = (0, 0, false);
    while tokens < 4 {
        let ws = b[i].is_ascii_whitespace();
        if !ws && !in_tok {
            in_tok = true;
        } else if ws && in_tok {
            in_tok = false;
            tokens += 1;
        }
        i += 1;
    }
    &b[i..]
}

/// gvnccapture with `password` typed at its prompt (it reads it from a
/// terminal only); whether it saved a frame, and what it printed.
fn vnc_capture(port: u16, password: &str, out: &std::path::Path) -> (bool, String) {
    let mut cmd = Command::new("gvnccapture");
    cmd.arg(format!("127.0.0.1:{}", port - 5900)).arg(out);
    let (mut child, mut master) = crate::util::spawn_on_pty(cmd);
    let mut seen = String::new();
    crate::util::read_until(&mut master, &mut seen, "Password:");
    master
        .write_all(format!("{password}\r").as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    crate::util::read_until(&mut master, &mut seen, "\u{0}never");
    (status.success(), seen)
}

#[test]
fn vnc_and_spice_consoles_answer_real_clients() {
    let Some(lab) = Lab::if_available("vnc_and_spice_consoles_answer_real_clients") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    for (m, kind) in [("dp-vnc", "vnc"), ("dp-spice", "spice")] {
        lab.run(&[
            "create",
            m,
            "-t",
            "tiny",
            "--set",
            "disk.0.size=16MiB",
            "--set",
            &format!("display.type={kind}"),
            // The kernel writes on the screen too, so a frame has text.
            "--set",
            "boot.cmdline=console=tty0 console=ttyS0",
        ])
        .ok();
    }
    lab.run(&[
        "create",
        "dp-none",
        "-t",
        "tiny",
        "--set",
        "disk.0.size=16MiB",
    ])
    .ok();
    lab.run(&["display", "dp-none"])
        .code(5)
        .stderr_has("has no display");
    lab.run(&["display", "dp-vnc"])
        .code(5)
        .stderr_has("creature start dp-vnc");
    for m in ["dp-vnc", "dp-spice"] {
        lab.run(&["start", m]).ok();
        lab.wait_log(m, "boot line", |l| {
            l.contains("creature-test-guest: booted")
        });
    }
    lab.run(&["display", "dp-vnc", "--protocol", "spice"])
        .code(5)
        .stderr_has("is vnc");
    let shown = |m: &str| {
        let j = lab
            .run(&["display", m, "--show-password", "--format", "json"])
            .ok()
            .json();
        let port = j["port"].as_u64().unwrap() as u16;
        let pw = j["password"].as_str().unwrap().to_string();
        assert_eq!(
            j["uri"],
            format!("{}://127.0.0.1:{port}", j["type"].as_str().unwrap())
        );
        assert_eq!(pw.len(), 8, "{j}");
        (port, pw)
    };
    let (vport, vpw) = shown("dp-vnc");
    let (sport, spw) = shown("dp-spice");
    assert_ne!(vpw, spw);
    // The password only on request.
    let j = lab
        .run(&["display", "dp-vnc", "--format", "json"])
        .ok()
        .json();
    assert!(j.get("password").is_none(), "{j}");
    for args in [
        &["info", "dp-vnc"][..],
        &["info", "dp-vnc", "--format", "json"],
        &["list", "--format", "json"],
    ] {
        let out = lab.run(args).ok().stdout;
        assert!(
            !out.contains(&vpw) && !out.contains(&spw),
            "{args:?} shows a password"
        );
    }
    // In no process's argv (libvirt hands it to QEMU over its monitor).
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd);
            assert!(
                !cmd.contains(&vpw) && !cmd.contains(&spw),
                "a password in argv: {cmd}"
            );
        }
    }
    // Listening on loopback only.
    let ss = Command::new("ss").args(["-ltnH"]).output().unwrap();
    let ss = String::from_utf8_lossy(&ss.stdout);
    for p in [vport, sport] {
        let lines: Vec<&str> = ss
            .lines()
            .filter(|l| l.contains(&format!(":{p} ")))
            .collect();
        assert!(
            !lines.is_empty() && lines.iter().all(|l| l.contains("127.0.0.1:")),
            "{ss}"
        );
    }

    // VNC: a frame with the password, none with a wrong one.
    let shot = work.path().join("vnc.bmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, said) = vnc_capture(vport, &vpw, &shot);
        assert!(ok, "gvnccapture: {said}");
        let c = colours(bmp_pixels(&std::fs::read(&shot).unwrap()));
        if c > 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the VNC frame stays blank");
        std::thread::sleep(Duration::from_secs(2));
    }
    let wrong = work.path().join("wrong.bmp");
    let (ok, said) = vnc_capture(vport, "wrongpw1", &wrong);
    assert!(
        !ok && !wrong.exists(),
        "a wrong VNC password was taken: {said}"
    );

    // The same screen through libvirt, as a PNG of the guest's size.
    let bmp = std::fs::read(&shot).unwrap();
    let size =
        |b: &[u8], at: usize| i32::from_le_bytes(b[at..at + 4].try_into().unwrap()).unsigned_abs();
    let png = work.path().join("screen.png");
    lab.c()
        .args(["display", "dp-vnc", "--screenshot"])
        .arg_path(&png)
        .run()
        .ok()
        .stdout_has("saved the");
    let p = std::fs::read(&png).unwrap();
    assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
    let be = |at: usize| u32::from_be_bytes(p[at..at + 4].try_into().unwrap());
    assert_eq!(
        (be(16), be(20)),
        (size(&bmp, 18), size(&bmp, 22)),
        "PNG and VNC frame sizes"
    );

    // A new password, live: the old one is refused from now on.
    let r = lab.run(&["display", "dp-vnc", "--set-password"]).ok();
    assert!(
        r.stdout.contains("live and from its next start"),
        "{}",
        r.stdout
    );
    let (port2, vpw2) = shown("dp-vnc");
    assert!(port2 == vport && vpw2 != vpw && !r.stdout.contains(&vpw2));
    let (ok, said) = vnc_capture(vport, &vpw, &work.path().join("old.bmp"));
    assert!(!ok, "the old password still works: {said}");
    let (ok, said) = vnc_capture(vport, &vpw2, &work.path().join("new.bmp"));
    assert!(ok, "the new password does not work: {said}");

    // SPICE: the same with its own client.
    let shot = work.path().join("spice.ppm");
    let spicy = |pw: &str, out: &std::path::Path| {
        Command::new("spicy-screenshot")
            .args(["-h", "127.0.0.1", "-p", &sport.to_string(), "-w", pw, "-o"])
            .arg(out)
            .output()
            .expect("spicy-screenshot (Debian's spice-client-gtk)")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = spicy(&spw, &shot);
        assert!(
            out.status.success(),
            "spicy-screenshot: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if colours(ppm_pixels(&std::fs::read(&shot).unwrap())) > 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the SPICE frame stays blank");
        std::thread::sleep(Duration::from_secs(2));
    }
    let wrong = work.path().join("wrong.ppm");
    let out = spicy("wrongpw1", &wrong);
    assert!(
        !out.status.success() || !wrong.exists(),
        "a wrong SPICE password was taken"
    );

    lab.run(&[
        "delete", "dp-vnc", "dp-spice", "dp-none", "--force", "--yes",
    ])
    .ok();
}

/// An installer ISO made as Debian's netinst is (isolinux, El Torito, no
/// emulation) around the test guest's kernel and initramfs, so the machine's
/// firmware really boots a cdrom; the kernel writes on the screen too.
fn installer_iso(dir: &std::path::Path) -> std::path::PathBuf {
    let tree = dir.join("iso-tree");
    std::fs::create_dir_all(tree.join("isolinux")).unwrap();
    for (from, to) in [
        ("/usr/lib/ISOLINUX/isolinux.bin", "isolinux/isolinux.bin"),
        (
            "/usr/lib/syslinux/modules/bios/ldlinux.c32",
            "isolinux/ldlinux.c32",
        ),
    ] {
        std::fs::copy(from, tree.join(to))
            .unwrap_or_else(|e| panic!("{from} (Debian's isolinux, syslinux-common): {e}"));
    }
    let g = super::vm::guest_dir();
    std::fs::copy(g.join("vmlinuz"), tree.join("vmlinuz")).unwrap();
    std::fs::copy(g.join("initrd.img"), tree.join("initrd.img")).unwrap();
    std::fs::write(
        tree.join("isolinux/isolinux.cfg"),
        "DEFAULT guest\nPROMPT 0\nTIMEOUT 1\nLABEL guest\n  KERNEL /vmlinuz\n  \
         APPEND initrd=/initrd.img console=tty0 console=ttyS0\n",
    )
    .unwrap();
    let iso = dir.join("installer.iso");
    let out = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-o"])
        .arg(&iso)
        .args([
            "-b",
            "isolinux/isolinux.bin",
            "-c",
            "isolinux/boot.cat",
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            "-boot-info-table",
            "-V",
            "CREATURE_TEST",
        ])
        .arg(&tree)
        .output()
        .expect("xorriso");
    assert!(
        out.status.success(),
        "xorriso: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    iso
}

#[test]
fn an_installer_iso_boots_from_its_cdrom_on_a_screen() {
    let Some(lab) = Lab::if_available("an_installer_iso_boots_from_its_cdrom_on_a_screen") else {
        return;
    };
    // In the lab (0711): QEMU reaches it there.
    let work = lab.path().join("iso");
    std::fs::create_dir(&work).unwrap();
    let iso = installer_iso(&work);
    let small = [
        "--set",
        "backend=qemu",
        "--set",
        "cpus=1",
        "--set",
        "memory=256MiB",
        "--set",
        "disk.0.size=16MiB",
    ];
    let create = |m: &str, iso: &str| {
        let mut args = vec!["create", m, "-t", "installer", "--iso", iso];
        args.extend(small);
        lab.run(&args)
    };

    // Refused before anything exists: no installer, and one that is not.
    let mut args = vec!["create", "in-none", "-t", "installer"];
    args.extend(small);
    lab.run(&args)
        .code(2)
        .stderr_has("give an installer with `--iso FILE`");
    create("in-bad", "/etc/hostname")
        .code(2)
        .stderr_has("/etc/hostname is not an ISO 9660 installer image");
    assert!(
        lab.run(&["list", "--format", "json"]).ok().json() == serde_json::json!([]),
        "a refused create left a machine"
    );

    create("in-cd", iso.to_str().unwrap())
        .ok()
        .stdout_has("created in-cd");
    let xml = String::from_utf8(super::vm::virsh(&["dumpxml", "in-cd"]).stdout).unwrap();
    assert!(
        xml.contains("device='cdrom'")
            && xml.contains(&format!("<source file='{}'", iso.display())),
        "{xml}"
    );
    // The empty disk boots nothing, so the firmware falls through to the
    // cdrom: isolinux, then the guest's kernel, with no kernel given.
    lab.run(&["start", "in-cd"]).ok();
    lab.wait_log("in-cd", "boot line from the ISO's kernel", |l| {
        l.contains("creature-test-guest: booted")
    });
    // The installer's screen, taken by a client nobody here wrote.
    let j = lab
        .run(&["display", "in-cd", "--show-password", "--format", "json"])
        .ok()
        .json();
    assert_eq!(j["type"], "vnc", "an installer gets a screen: {j}");
    let (port, pw) = (
        j["port"].as_u64().unwrap() as u16,
        j["password"].as_str().unwrap().to_string(),
    );
    let shot = work.join("installer.bmp");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, said) = vnc_capture(port, &pw, &shot);
        assert!(ok, "gvnccapture: {said}");
        if colours(bmp_pixels(&std::fs::read(&shot).unwrap())) > 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the installer's screen stays blank"
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // The same installer from the image cache: `--iso NAME`.
    lab.c()
        .args(["image", "import", "--name", "test-installer"])
        .arg_path(&iso)
        .run()
        .ok();
    create("in-img", "test-installer").ok();
    let xml = String::from_utf8(super::vm::virsh(&["dumpxml", "in-img"]).stdout).unwrap();
    assert!(
        xml.contains("device='cdrom'")
            && xml.contains(&lab.path().join("images").display().to_string()),
        "{xml}"
    );
    lab.run(&["image", "rm", "test-installer"])
        .code(5)
        .stderr_has("in-img");

    lab.run(&["delete", "in-cd", "in-img", "--force", "--yes"])
        .ok();
    assert!(iso.exists(), "the user's installer image is never removed");
}
