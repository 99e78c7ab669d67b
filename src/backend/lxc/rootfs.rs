//! Root filesystems for containers. `busybox` is built offline from the
//! host's busybox-static: one binary, its applet links, and an init that
//! brings up networking and powers off on SIGUSR2.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::error::{Context, Error, Kind, Result};
use crate::statedir::IoContext;

const INITTAB: &str = "::sysinit:/etc/init.d/rcS
tty1::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/echo creature-container: shutting down
";

const RCS: &str = "#!/bin/sh
ip link set lo up
for dev in /sys/class/net/*; do
  n=${dev##*/}
  [ \"$n\" = lo ] && continue
  ip link set \"$n\" up
  udhcpc -b -q -t 30 -T 1 -i \"$n\" -s /usr/share/udhcpc/default.script >/dev/null 2>&1 &
done
echo creature-container: booted
";

const DHCP: &str = "#!/bin/sh
case \"$1\" in
  deconfig) ip addr flush dev \"$interface\"; ip link set \"$interface\" up ;;
  bound|renew)
    ip addr flush dev \"$interface\"
    ip addr add \"$ip/${mask:-24}\" dev \"$interface\"
    [ -n \"$router\" ] && ip route replace default via \"${router%% *}\" dev \"$interface\" ;;
esac
";

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    fs::write(path, text).io_context(path, || format!("cannot write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).context(Kind::Other, || {
        format!("cannot set the mode of {}", path.display())
    })
}

/// Build a busybox root filesystem in `root` (which must not exist yet).
pub fn build_busybox(root: &Path, hostname: &str) -> Result<()> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or_else(|| {
            Error::unavailable("busybox is not installed (apt-get install busybox-static)")
        })?;
    for d in [
        "bin",
        "sbin",
        "etc/init.d",
        "dev",
        "proc",
        "sys",
        "tmp",
        "run",
        "root",
        "var/log",
        "usr/bin",
        "usr/sbin",
        "usr/share/udhcpc",
    ] {
        fs::create_dir_all(root.join(d)).io_context(&root.join(d), || {
            format!("cannot create {}", root.join(d).display())
        })?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
        .context(Kind::Other, || "cannot set the mode of /tmp".into())?;
    fs::copy(busybox, root.join("bin/busybox"))
        .io_context(root, || "cannot copy busybox".into())?;
    // busybox --list names its applets; each becomes a link in /bin.
    let out = Command::new(busybox)
        .arg("--list")
        .output()
        .context(Kind::Unavailable, || "cannot run busybox".into())?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet.is_empty() || applet.contains('/') || applet == "busybox" {
            continue;
        }
        let link = root.join("bin").join(applet);
        if !link.exists() {
            symlink("busybox", &link).io_context(&link, || format!("cannot link {applet}"))?;
        }
    }
    symlink("../bin/busybox", root.join("sbin/init"))
        .io_context(root, || "cannot link init".into())?;
    write(&root.join("etc/inittab"), INITTAB, 0o644)?;
    write(&root.join("etc/init.d/rcS"), RCS, 0o755)?;
    write(&root.join("usr/share/udhcpc/default.script"), DHCP, 0o755)?;
    write(
        &root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
        0o644,
    )?;
    write(&root.join("etc/group"), "root:x:0:\n", 0o644)?;
    write(&root.join("etc/hostname"), &format!("{hostname}\n"), 0o644)?;
    write(
        &root.join("etc/profile"),
        "PS1='box# '\nexport PATH=/bin:/sbin:/usr/bin:/usr/sbin\n",
        0o644,
    )?;
    Ok(())
}

/// Unpack a root filesystem tarball (gzip, xz, zstd or plain) into `root`,
/// keeping owners and modes. GNU tar refuses `..` members and strips
/// leading slashes, so nothing lands outside `root`.
pub fn unpack_tarball(tarball: &Path, root: &Path) -> Result<()> {
    fs::create_dir_all(root).io_context(root, || format!("cannot create {}", root.display()))?;
    let out = Command::new("tar")
        .args(["--numeric-owner", "--same-permissions", "-x", "-f"])
        .arg(tarball)
        .arg("-C")
        .arg(root)
        .output()
        .context(Kind::Unavailable, || "cannot run tar".into())?;
    if !out.status.success() {
        return Err(
            Error::invalid(format!("cannot unpack {}", tarball.display()))
                .caused_by(String::from_utf8_lossy(&out.stderr).trim()),
        );
    }
    if !root.join("sbin/init").exists() && !root.join("lib/systemd/systemd").exists() {
        return Err(Error::invalid(format!(
            "{} has no /sbin/init: not a root filesystem",
            tarball.display()
        )));
    }
    Ok(())
}

/// Which init a root filesystem runs, from its /sbin/init.
pub fn init_of(root: &Path) -> crate::backend::lxc::config::Init {
    use crate::backend::lxc::config::Init;
    match fs::read_link(root.join("sbin/init")) {
        Ok(t) if t.to_string_lossy().contains("busybox") => Init::Busybox,
        _ => Init::Systemd,
    }
}

/// An overlay root filesystem on a cached tree: `upper` takes the
/// container's changes, `work` is overlayfs's own (liblxc looks for it next
/// to `upper`). Both belong to the tree's root, so an unprivileged
/// container's root owns its changes; the container's hostname is its first.
pub fn overlay_on(tree: &Path, upper: &Path, work: &Path, hostname: &str) -> Result<()> {
    use std::os::unix::fs::{chown, MetadataExt};
    let owned = |path: &Path, m: &fs::Metadata| {
        chown(path, Some(m.uid()), Some(m.gid())).context(Kind::Other, || {
            format!("cannot set the owner of {}", path.display())
        })
    };
    // A new directory with the owner and mode of `model`'s: the merged
    // directory takes the upper one's.
    let like = |dir: &Path, model: &Path| -> Result<fs::Metadata> {
        let m = fs::metadata(model)
            .context(Kind::Other, || format!("cannot read {}", model.display()))?;
        fs::create_dir(dir).io_context(dir, || format!("cannot create {}", dir.display()))?;
        owned(dir, &m)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(m.mode() & 0o7777))
            .context(Kind::Other, || {
                format!("cannot set the mode of {}", dir.display())
            })?;
        Ok(m)
    };
    like(upper, tree)?;
    like(work, tree)?;
    let etc = like(&upper.join("etc"), &tree.join("etc"))?;
    let host = upper.join("etc/hostname");
    write(&host, &format!("{hostname}\n"), 0o644)?;
    owned(&host, &etc)
}
