//! Creating an lxc machine: its directory, root filesystem, configuration
//! and marker. Every step registers its undo.

use std::os::unix::fs::DirBuilderExt;

use crate::backend::lxc::config::{self, Cgroups, ContainerSpec, Init, RootfsPath};
use crate::backend::lxc::driver::{LxcDriver, Marker, MARKER};
use crate::backend::lxc::{debootstrap, rootfs};
use crate::backend::CreateJob;
use crate::error::{Error, Result};
use crate::interrupt;
use crate::statedir::IoContext;
use crate::store::Store;
use crate::template::schema::RootfsKind;
use crate::undo::{fail_point, Undo};

pub fn create(
    drv: &LxcDriver,
    store: &mut Store,
    job: &CreateJob<'_>,
    undo: &mut Undo,
) -> Result<()> {
    let (name, r, nics, quiet) = (job.name, job.resolved, job.nics, job.quiet);
    let t = &r.template;
    let rootfs_spec = t
        .rootfs
        .as_ref()
        .ok_or_else(|| Error::invalid("an lxc template needs [rootfs]"))?;
    let dir = drv.dir(name);
    // 0711: an unprivileged container's mapped root must traverse it.
    std::fs::DirBuilder::new()
        .mode(0o711)
        .create(&dir)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::conflict(format!(
                "a container named {name:?} already exists in {} (see `creature list`)",
                drv.lxcpath
            )),
            _ => Error::other(format!("cannot create {}", dir.display())).caused_by(e),
        })?;
    {
        let dir = dir.clone();
        undo.push(format!("remove {}", dir.display()), move || {
            std::fs::remove_dir_all(&dir)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| Error::other("cannot remove the container directory").caused_by(e))
        });
    }
    let marker = Marker {
        owner: "creature".into(),
        state_dir: drv.state_dir.display().to_string(),
        template: r.name.clone(),
        created: crate::time::rfc3339_now(),
    };
    let marker_text = toml::to_string(&marker)
        .map_err(|e| Error::other("cannot render the marker").caused_by(e))?;
    std::fs::write(dir.join(MARKER), marker_text)
        .io_context(&dir, || "cannot write the marker".into())?;

    let idmap = match rootfs_spec.unprivileged {
        Some(true) => Some(crate::backend::lxc::idmap::for_root()?),
        _ => None,
    };
    let root = dir.join("rootfs");
    let own_dir = RootfsPath::Dir(root.display().to_string());
    let (init, rootfs_path) = match rootfs_spec.kind {
        RootfsKind::Busybox => {
            rootfs::build_busybox(&root, name)?;
            if let Some(m) = &idmap {
                crate::backend::lxc::idmap::shift_tree(&root, m)?;
            }
            (Init::Busybox, own_dir)
        }
        RootfsKind::Debootstrap => {
            let cache = debootstrap::Cache::new(&drv.state_dir, debootstrap::Key::of(rootfs_spec));
            let started = std::time::Instant::now();
            let (tree, origin) = cache.tree_for(idmap.as_ref(), quiet)?;
            let overlay = rootfs_spec.overlay == Some(true);
            let rootfs_path = if overlay {
                let upper = dir.join("delta");
                rootfs::overlay_on(&tree, &upper, &dir.join("work"), name)?;
                RootfsPath::Overlay {
                    lower: tree.display().to_string(),
                    upper: upper.display().to_string(),
                }
            } else {
                debootstrap::copy_tree(&tree, &root)?;
                std::fs::write(root.join("etc/hostname"), format!("{name}\n"))
                    .io_context(&root, || "cannot write /etc/hostname".into())?;
                own_dir
            };
            if !quiet {
                eprintln!(
                    "root filesystem: {} in {:.1} s",
                    match (origin, overlay) {
                        (debootstrap::Origin::Built, _) => "built with debootstrap and cached",
                        (debootstrap::Origin::Cached, false) => "copied from the cache",
                        (debootstrap::Origin::Cached, true) => "an overlay on the cache",
                    },
                    started.elapsed().as_secs_f64()
                );
            }
            (Init::Systemd, rootfs_path)
        }
        RootfsKind::Tarball | RootfsKind::Dir => {
            let src = rootfs_spec
                .source
                .as_ref()
                .ok_or_else(|| Error::invalid("rootfs.source is required"))?;
            let path =
                crate::image::source::locate(store, &drv.state_dir, &r.name, src, quiet)?.path;
            if rootfs_spec.kind == RootfsKind::Tarball {
                rootfs::unpack_tarball(&path, &root)?;
            } else {
                if !path.join("sbin/init").exists() && !path.join("lib/systemd/systemd").exists() {
                    return Err(Error::invalid(format!(
                        "{} has no /sbin/init: not a root filesystem",
                        path.display()
                    )));
                }
                debootstrap::copy_tree(&path, &root)?;
            }
            if let Some(m) = &idmap {
                crate::backend::lxc::idmap::shift_tree(&root, m)?;
            }
            (rootfs::init_of(&root), own_dir)
        }
    };
    interrupt::check(crate::undo::CREATE_INTERRUPTED)?;
    fail_point("rootfs")?;

    let spec = ContainerSpec {
        name: name.to_string(),
        rootfs: rootfs_path,
        memory_bytes: r.memory.0,
        cpus: r.cpus,
        cgroups: Cgroups::detect(),
        apparmor: std::path::Path::new("/sys/kernel/security/apparmor").exists(),
        init,
        nics: nics
            .iter()
            .map(|n| config::Veth {
                bridge: n.bridge.clone(),
                mac: n.mac.clone(),
                name: format!("eth{}", n.index),
                pair: crate::secgroup::filter::veth_name(
                    &crate::backend::firewall::scope(&drv.state_dir),
                    name,
                    n.index as usize,
                ),
            })
            .collect(),
        idmap,
        log_file: dir.join("lxc.log").display().to_string(),
        console_log: super::console_log(&dir).display().to_string(),
    };
    let text = config::render(&spec)?;
    crate::trace::text(&format!("lxc config of {}", spec.name), &text);
    std::fs::write(dir.join("config"), text)
        .io_context(&dir, || "cannot write the container config".into())?;
    fail_point("define")?;
    // liblxc must accept what was written.
    let c = drv.open(name)?;
    drop(c);
    interrupt::check(crate::undo::CREATE_INTERRUPTED)?;
    fail_point("ready")?;
    Ok(())
}
