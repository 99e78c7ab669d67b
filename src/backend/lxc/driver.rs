//! lxc machines as liblxc containers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::lxc::sys::{self, Container};
use crate::backend::Backend;
use crate::backend::{
    wrong_state, Console, CreateJob, Details, Driver, ExecSpec, Limit, Observed, Owner, PowerState,
};
use crate::error::{Error, Kind, Result};
use crate::store::Store;
use crate::undo::Undo;

/// What creature writes beside a container's config to know it as its own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    pub owner: String,
    pub state_dir: String,
    pub template: String,
    pub created: String,
}

pub const MARKER: &str = "creature-machine.toml";

pub struct LxcDriver {
    pub lxcpath: String,
    pub state_dir: PathBuf,
}

impl LxcDriver {
    /// (file, mount point) of each volume attached to the container.
    fn volumes(&self, name: &str) -> Result<Vec<(String, String)>> {
        let Some(store) = crate::store::Store::open_read_only(&self.state_dir)? else {
            return Ok(Vec::new());
        };
        Ok(store
            .volumes_of(crate::config::LOCAL, name)?
            .into_iter()
            .map(|(v, a)| (v.path, a.target))
            .collect())
    }

    /// Unmount the container's volumes on the host and free their loop devices.
    fn release_volumes(&self, name: &str) -> Result<()> {
        crate::backend::lxc::volumes::unmount_all(&self.state_dir.join("mounts").join(name))?;
        for (file, _) in self.volumes(name)? {
            crate::backend::lxc::volumes::release(&file)?;
        }
        Ok(())
    }

    /// The directory the container's root filesystem is (its upper layer
    /// when an overlay): its owner is the container's root.
    /// Bind each NIC's filter to its host-side veth before the container
    /// runs (libvirt's bindings live in /run: gone after a host reboot or
    /// a libvirtd restart without the veth, so made at every start).
    fn bind_filters(&self, name: &str) -> Result<()> {
        let Some(store) = crate::store::Store::open_read_only(&self.state_dir)? else {
            return Ok(());
        };
        let host = crate::config::LOCAL;
        let nics = crate::backend::firewall::filtered_nics(&store, host, name)?;
        if nics.is_empty() {
            return Ok(());
        }
        let uri = crate::backend::libvirt::Uri::local(Backend::Qemu)
            .ok_or_else(|| Error::other("no local libvirt URI"))?;
        let conn = crate::backend::libvirt::open(&uri, std::time::Duration::from_secs(30))?;
        let scope = crate::backend::firewall::scope(&self.state_dir);
        // Its NIC filters, in case libvirt lost them (they are in its
        // configuration, so only a hand removed them).
        crate::backend::firewall::sync_machine(&conn, &scope, &store, host, name)?;
        crate::backend::firewall::bind_container(&conn, &scope, name, &nics)
    }

    fn rootfs_dir(&self, c: &Container) -> PathBuf {
        use crate::backend::lxc::config::RootfsPath;
        match RootfsPath::parse(&c.config_item("lxc.rootfs.path").unwrap_or_default()) {
            RootfsPath::Dir(p) if !p.is_empty() => PathBuf::from(p),
            RootfsPath::Overlay { upper, .. } => PathBuf::from(upper),
            RootfsPath::Dir(_) => PathBuf::from(&self.lxcpath).join(c.name()).join("rootfs"),
        }
    }

    pub fn new(state_dir: &Path) -> LxcDriver {
        LxcDriver {
            lxcpath: sys::lxcpath(),
            state_dir: state_dir.to_path_buf(),
        }
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        Path::new(&self.lxcpath).join(name)
    }

    fn marker(&self, name: &str) -> Option<Marker> {
        let text = std::fs::read_to_string(self.dir(name).join(MARKER)).ok()?;
        toml::from_str::<Marker>(&text)
            .ok()
            .filter(|m| m.owner == "creature")
    }

    pub fn owner(&self, name: &str) -> Owner {
        match self.marker(name) {
            Some(m) if Path::new(&m.state_dir) == self.state_dir => Owner::Ours,
            Some(m) => Owner::OtherState(m.state_dir),
            None => Owner::Foreign,
        }
    }

    pub fn open(&self, name: &str) -> Result<Container> {
        let c = Container::open(name, &self.lxcpath)?;
        if !c.is_defined() {
            return Err(Error::not_found(format!(
                "machine {name:?} has no container in {}",
                self.lxcpath
            )));
        }
        Ok(c)
    }

    /// The container, only if creature made it with this state directory.
    pub fn ours(&self, name: &str) -> Result<Container> {
        let c = self.open(name)?;
        match self.owner(name) {
            Owner::Ours => Ok(c),
            Owner::OtherState(s) => Err(Error::conflict(format!(
                "container {name:?} belongs to another creature state directory ({s}); not touching it"
            ))),
            Owner::Foreign => Err(Error::conflict(format!(
                "container {name:?} was not created by creature; not touching it"
            ))),
        }
    }

    /// The last errors liblxc logged for a container, for error messages.
    fn log_tail(&self, name: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.dir(name).join("lxc.log")).ok()?;
        let errors: Vec<&str> = text.lines().filter(|l| l.contains(" ERROR ")).collect();
        let tail = errors
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(|l| l.split_once(" - ").map(|(_, m)| m).unwrap_or(l).to_string());
        let s: Vec<String> = tail.collect();
        (!s.is_empty()).then(|| s.join("; "))
    }
}

pub fn power_state(s: &str) -> PowerState {
    match s {
        "RUNNING" | "THAWED" | "STARTING" => PowerState::Running,
        "FROZEN" | "FREEZING" => PowerState::Paused,
        "STOPPING" => PowerState::ShuttingDown,
        "STOPPED" => PowerState::ShutOff,
        "ABORTING" => PowerState::Crashed,
        _ => PowerState::Unknown,
    }
}

impl Driver for LxcDriver {
    fn backend(&self) -> Backend {
        Backend::Lxc
    }

    fn state(&self, name: &str) -> Result<PowerState> {
        Ok(power_state(&self.ours(name)?.state()))
    }

    fn ensure_free(&self, name: &str) -> Result<()> {
        if self.dir(name).exists() {
            return Err(Error::conflict(format!(
                "a container named {name:?} already exists in {} (see `creature list`); choose another name",
                self.lxcpath
            )));
        }
        Ok(())
    }

    fn create(&self, job: &CreateJob<'_>, store: &mut Store, undo: &mut Undo) -> Result<()> {
        crate::backend::lxc::create::create(self, store, job, undo)
    }

    fn start(&self, name: &str) -> Result<()> {
        let c = self.ours(name)?;
        match power_state(&c.state()) {
            PowerState::ShutOff | PowerState::Crashed => {}
            st => return Err(wrong_state(name, "start", st)),
        }
        // Its volumes: each on a loop device mounted on the host, bound in
        // by liblxc for this start, its top directory the container root's.
        let vols = self.volumes(name)?;
        if !vols.is_empty() {
            use std::os::unix::fs::MetadataExt;
            let root = std::fs::metadata(self.rootfs_dir(&c)).map_err(|e| {
                Error::other(format!("cannot read the root filesystem of {name:?}")).caused_by(e)
            })?;
            let mounts =
                crate::statedir::subdir(&self.state_dir, &format!("mounts/{name}"), 0o711)?;
            for (i, (file, path)) in vols.into_iter().enumerate() {
                let dev = crate::backend::lxc::volumes::loop_of(&file)?;
                let dir = mounts.join(i.to_string());
                std::fs::create_dir_all(&dir).map_err(|e| {
                    Error::other(format!("cannot make {}", dir.display())).caused_by(e)
                })?;
                crate::backend::lxc::volumes::mount(&dev, &dir)?;
                std::os::unix::fs::chown(&dir, Some(root.uid()), Some(root.gid())).map_err(
                    |e| {
                        Error::other(format!("cannot hand {} to the container", dir.display()))
                            .caused_by(e)
                    },
                )?;
                c.set_config_item(
                    "lxc.mount.entry",
                    &crate::backend::lxc::volumes::mount_entry(&dir, &path),
                )?;
            }
        }
        self.bind_filters(name)?;
        c.start().map_err(|e| match self.log_tail(name) {
            Some(t) => e.caused_by(t),
            None => e,
        })
    }

    fn request_shutdown(&self, name: &str) -> Result<()> {
        let c = self.ours(name)?;
        match power_state(&c.state()) {
            PowerState::Running | PowerState::ShuttingDown => {}
            st => return Err(wrong_state(name, "stop", st)),
        }
        // Timeout 0: send the halt signal and return; the caller waits.
        c.shutdown(0);
        Ok(())
    }

    fn force_off(&self, name: &str) -> Result<()> {
        let c = self.ours(name)?;
        if !power_state(&c.state()).is_active() {
            return Ok(());
        }
        c.stop()
    }

    fn reboot(&self, name: &str) -> Result<()> {
        let c = self.ours(name)?;
        match power_state(&c.state()) {
            PowerState::Running => c.reboot(),
            st => Err(wrong_state(name, "reboot", st)),
        }
    }

    fn pause(&self, name: &str) -> Result<()> {
        let c = self.ours(name)?;
        match power_state(&c.state()) {
            PowerState::Running => c.freeze(),
            st => Err(wrong_state(name, "pause", st)),
        }
    }

    fn unpause(&self, name: &str) -> Result<()> {
        let c = self.ours(name)?;
        match power_state(&c.state()) {
            PowerState::Paused => c.unfreeze(),
            st => Err(wrong_state(name, "unpause", st)),
        }
    }

    fn write_seed(&self, name: &str, seed: &crate::seed::Rendered) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let c = self.open(name)?;
        let root = self.rootfs_dir(&c);
        let m = std::fs::metadata(&root).map_err(|e| {
            Error::other(format!("cannot read the root filesystem of {name:?}")).caused_by(e)
        })?;
        crate::backend::lxc::seed::write(&root, (m.uid(), m.gid()), seed)
    }

    fn remove(&self, name: &str) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        let c = match self.ours(name) {
            Ok(c) => c,
            Err(e) if e.kind() == Kind::NotFound => {
                // A create interrupted before the config existed leaves a bare directory.
                let dir = self.dir(name);
                if self.owner(name) == Owner::Ours && dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| {
                        Error::other(format!("cannot remove {}", dir.display())).caused_by(e)
                    })?;
                    removed.push(format!("container directory {}", dir.display()));
                }
                return Ok(removed);
            }
            Err(e) => return Err(e),
        };
        if power_state(&c.state()).is_active() {
            c.stop()?;
        }
        self.release_volumes(name)?;
        let rootfs = c.config_item("lxc.rootfs.path").unwrap_or_default();
        c.destroy()?;
        removed.push(format!("container {name}"));
        use crate::backend::lxc::config::RootfsPath;
        match RootfsPath::parse(&rootfs) {
            RootfsPath::Dir(p) if p.is_empty() => {}
            RootfsPath::Dir(p) => removed.push(format!("root filesystem {p}")),
            RootfsPath::Overlay { upper, .. } => removed.push(format!(
                "root filesystem changes {upper} (the cached tree stays)"
            )),
        }
        Ok(removed)
    }

    fn swap_volume(
        &self,
        name: &str,
        old: &str,
        new: &str,
        _new_format: &str,
        _quiet: bool,
    ) -> Result<String> {
        let c = self.ours(name)?;
        let st = power_state(&c.state());
        if st.is_active() {
            return Err(Error::conflict(format!(
                "container {name:?} is {}: its volume is mounted; stop it to swap the volume",
                st.as_str()
            )));
        }
        self.release_volumes(name)?;
        crate::tool::copy_disk(old, "raw", new, "raw")?;
        Ok(String::new())
    }

    fn details(&self, name: &str) -> Result<Details> {
        let c = self.ours(name)?;
        let state = power_state(&c.state());
        let (cpus, memory) = limits(&c);
        let active = state.is_active();
        let used = if active {
            c.cgroup_item("memory.usage_in_bytes")
                .or_else(|| c.cgroup_item("memory.current"))
                .and_then(|v| v.parse().ok())
        } else {
            None
        };
        let cpu_ns = if active {
            c.cgroup_item("cpuacct.usage")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        } else {
            0
        };
        Ok(Details {
            state,
            cpus,
            memory_bytes: memory,
            cpu_time_ns: cpu_ns,
            disks: Vec::new(),
            pid: if active { c.init_pid() } else { None },
            has_saved_state: false,
            memory_used_bytes: used,
            rescued: None,
        })
    }

    fn observe(&self, _known: &BTreeSet<String>) -> Result<Vec<Observed>> {
        let mut out = Vec::new();
        let listed = sys::list_all(&self.lxcpath);
        // A create killed before the config existed leaves a directory with
        // creature's marker that liblxc does not list: it is ours, shut off.
        for e in std::fs::read_dir(&self.lxcpath)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !listed.contains(&name)
                && crate::names::is_valid(&name)
                && self.owner(&name) == Owner::Ours
            {
                out.push(Observed {
                    state: PowerState::ShutOff,
                    owner: Owner::Ours,
                    backend: Backend::Lxc,
                    cpus: None,
                    memory_bytes: None,
                    cpu_time_ns: None,
                    name,
                });
            }
        }
        for name in listed {
            let Ok(c) = Container::open(&name, &self.lxcpath) else {
                continue;
            };
            let (cpus, memory) = limits(&c);
            out.push(Observed {
                state: power_state(&c.state()),
                owner: self.owner(&name),
                backend: Backend::Lxc,
                cpus: Some(cpus),
                memory_bytes: Some(memory),
                cpu_time_ns: None,
                name,
            });
        }
        Ok(out)
    }

    fn exec(&self, name: &str, spec: &ExecSpec) -> Result<i32> {
        use crate::exec;
        let c = self.ours(name)?;
        let st = power_state(&c.state());
        if st != PowerState::Running {
            return Err(wrong_state(name, "run a command in", st));
        }
        let pid = c
            .init_pid()
            .ok_or_else(|| Error::conflict(format!("container {name:?} has no init process")))?;
        // The guest's own users, read through its init's root.
        let passwd =
            std::fs::read_to_string(format!("/proc/{pid}/root/etc/passwd")).unwrap_or_default();
        let user = spec
            .user
            .as_deref()
            .map(|u| exec::resolve_user(u, &passwd))
            .transpose()?;
        let root = exec::resolve_user("0", &passwd).ok();
        let home = user
            .as_ref()
            .or(root.as_ref())
            .map_or("/root".to_string(), |u| u.home.clone());
        let argv = if spec.argv.is_empty() {
            let uid = user.as_ref().map_or(0, |u| u.uid).to_string();
            let shell = passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() >= 7 && f[2] == uid)
                .map(|f| f[6].to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "/bin/sh".into());
            vec![shell, "-l".into()]
        } else {
            spec.argv.clone()
        };
        let req = exec::ExecRequest {
            argv,
            env: exec::environment(&spec.env, &home, spec.term.as_deref()),
            user,
            cwd: spec.cwd.clone(),
            tty: spec.tty,
        };
        Ok(exec::exit_status(c.attach_wait(&req)?))
    }

    fn console(&self, name: &str) -> Result<Console> {
        let c = self.ours(name)?;
        let st = power_state(&c.state());
        if !st.is_active() {
            return Err(wrong_state(name, "attach to the console of", st));
        }
        // tty1 runs the container's login shell (see its inittab).
        Ok(Console::Pty(c.console_fd(1)?))
    }
}

/// A container's CPU and memory limits from its configuration (cgroup v1
/// or v2 keys); `host` where it has none.
fn limits(c: &Container) -> (Limit, Limit) {
    let nums = |k: &str| -> Vec<u64> {
        c.config_item(k)
            .map(|v| v.split_whitespace().map_while(|w| w.parse().ok()).collect())
            .unwrap_or_default()
    };
    let first = |k: &str| nums(k).first().copied();
    let memory = first("lxc.cgroup.memory.limit_in_bytes")
        .or_else(|| first("lxc.cgroup2.memory.max"))
        .map_or(Limit::Host, Limit::Count);
    // v2: "QUOTA PERIOD" (or "max PERIOD": no limit); v1: two keys.
    let v2 = nums("lxc.cgroup2.cpu.max");
    let (quota, period) = match v2.as_slice() {
        [q, p] => (Some(*q), *p),
        [q] => (Some(*q), 100_000),
        _ => (
            first("lxc.cgroup.cpu.cfs_quota_us"),
            first("lxc.cgroup.cpu.cfs_period_us").unwrap_or(100_000),
        ),
    };
    let cpus = quota
        .filter(|q| *q > 0)
        .map_or(Limit::Host, |q| Limit::Count(q.div_ceil(period.max(1))));
    (cpus, memory)
}
