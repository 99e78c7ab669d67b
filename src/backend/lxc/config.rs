//! The LXC configuration of a container: a pure function of a spec,
//! golden-tested. LXC config has no quoting, so every value is checked:
//! no newline, carriage return, NUL or other control character can start a
//! line of its own.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cgroups {
    /// Memory and CPU controllers on cgroup v1 hierarchies.
    V1,
    /// The unified hierarchy.
    V2,
}

impl Cgroups {
    /// What this host mounts.
    pub fn detect() -> Cgroups {
        let controllers =
            std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "memory") {
            Cgroups::V2
        } else {
            Cgroups::V1
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Veth {
    pub bridge: String,
    pub mac: String,
    pub name: String,
    /// The host side's name, fixed so its filter binding can name it.
    pub pair: String,
}

/// An idmap: container ids 0.. map to host ids `host_start`.. (`count` of them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdMap {
    pub uid_start: u32,
    pub gid_start: u32,
    pub count: u32,
}

/// The init the root filesystem runs decides which signals stop and reboot it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// busybox init: SIGUSR2 powers off, SIGTERM reboots.
    Busybox,
    /// systemd: SIGRTMIN+3 halts, SIGINT reboots.
    Systemd,
}

/// Where the root filesystem is: a directory of its own, or an overlay whose
/// changes go to `upper` over a cached tree.
#[derive(Debug, Clone, PartialEq)]
pub enum RootfsPath {
    Dir(String),
    Overlay { lower: String, upper: String },
}

impl RootfsPath {
    fn value(&self) -> Result<String> {
        match self {
            RootfsPath::Dir(p) => Ok(format!("dir:{p}")),
            RootfsPath::Overlay { lower, upper } => {
                // liblxc splits an overlay path at ':', with no escape.
                if let Some(p) = [lower, upper].into_iter().find(|p| p.contains(':')) {
                    return Err(Error::invalid(format!(
                        "{p:?} cannot be part of an overlay root filesystem: it contains ':'"
                    )));
                }
                Ok(format!("overlay:{lower}:{upper}"))
            }
        }
    }

    /// Read back from `lxc.rootfs.path`, which liblxc may return without
    /// its type prefix: a ':' left means two layers (a creature directory
    /// path never holds one).
    pub fn parse(value: &str) -> RootfsPath {
        let rest = value
            .strip_prefix("overlay:")
            .or_else(|| value.strip_prefix("overlayfs:"))
            .or_else(|| value.strip_prefix("dir:"))
            .unwrap_or(value);
        match rest.rsplit_once(':') {
            Some((lower, upper)) => RootfsPath::Overlay {
                lower: lower.to_string(),
                upper: upper.to_string(),
            },
            None => RootfsPath::Dir(rest.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub rootfs: RootfsPath,
    pub memory_bytes: u64,
    pub cpus: u32,
    pub cgroups: Cgroups,
    pub apparmor: bool,
    pub init: Init,
    pub nics: Vec<Veth>,
    pub idmap: Option<IdMap>,
    pub log_file: String,
    /// lxc.console.logfile: the console's output.
    pub console_log: String,
}

struct Conf(String);

impl Conf {
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(Error::invalid(format!(
                "LXC config key {key:?} is not a key"
            )));
        }
        if value.is_empty() || value.chars().any(|c| c.is_control()) || value.trim() != value {
            return Err(Error::invalid(format!(
                "LXC config {key}: value {value:?} is empty, has control characters or surrounding spaces"
            )));
        }
        self.0.push_str(key);
        self.0.push_str(" = ");
        self.0.push_str(value);
        self.0.push('\n');
        Ok(())
    }
}

pub fn render(s: &ContainerSpec) -> Result<String> {
    let mut c = Conf(format!(
        "# creature container {} -- written by creature; changes are lost on re-create\n",
        s.name.replace(|ch: char| ch.is_control(), "?")
    ));
    c.set("lxc.include", "/usr/share/lxc/config/common.conf")?;
    if s.idmap.is_some() {
        c.set("lxc.include", "/usr/share/lxc/config/userns.conf")?;
    }
    c.set("lxc.arch", "linux64")?;
    c.set("lxc.uts.name", &s.name)?;
    c.set("lxc.rootfs.path", &s.rootfs.value()?)?;
    c.set("lxc.mount.auto", "proc:mixed sys:mixed cgroup:mixed")?;
    c.set("lxc.autodev", "1")?;
    match s.init {
        Init::Busybox => {
            c.set("lxc.signal.halt", "SIGUSR2")?;
            c.set("lxc.signal.reboot", "SIGTERM")?;
        }
        Init::Systemd => {
            c.set("lxc.signal.halt", "SIGRTMIN+3")?;
            c.set("lxc.signal.reboot", "SIGINT")?;
        }
    }
    if !s.apparmor {
        // Without AppArmor on the host, a profile cannot be loaded; with it,
        // liblxc's generated profile stays in force.
        c.set("lxc.apparmor.profile", "unconfined")?;
    }
    let period = 100_000u64;
    match s.cgroups {
        Cgroups::V1 => {
            c.set(
                "lxc.cgroup.memory.limit_in_bytes",
                &s.memory_bytes.to_string(),
            )?;
            c.set("lxc.cgroup.cpu.cfs_period_us", &period.to_string())?;
            c.set(
                "lxc.cgroup.cpu.cfs_quota_us",
                &(period * u64::from(s.cpus)).to_string(),
            )?;
        }
        Cgroups::V2 => {
            c.set("lxc.cgroup2.memory.max", &s.memory_bytes.to_string())?;
            c.set(
                "lxc.cgroup2.cpu.max",
                &format!("{} {period}", period * u64::from(s.cpus)),
            )?;
        }
    }
    if let Some(m) = s.idmap {
        c.set("lxc.idmap", &format!("u 0 {} {}", m.uid_start, m.count))?;
        c.set("lxc.idmap", &format!("g 0 {} {}", m.gid_start, m.count))?;
    }
    if s.nics.is_empty() {
        c.set("lxc.net.0.type", "empty")?;
    }
    for (i, n) in s.nics.iter().enumerate() {
        let key = |k: &str| format!("lxc.net.{i}.{k}");
        c.set(&key("type"), "veth")?;
        c.set(&key("link"), &n.bridge)?;
        c.set(&key("flags"), "up")?;
        c.set(&key("hwaddr"), &n.mac)?;
        c.set(&key("name"), &n.name)?;
        c.set(&key("veth.pair"), &n.pair)?;
    }
    c.set("lxc.log.file", &s.log_file)?;
    // What the container prints on its console, kept beside its config
    // (`creature log` is refused for lxc by the matrix; its refusal names this file).
    c.set("lxc.console.logfile", &s.console_log)?;
    c.set("lxc.log.level", "WARN")?;
    Ok(c.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "box-1".into(),
            rootfs: RootfsPath::Dir("/var/lib/lxc/box-1/rootfs".into()),
            memory_bytes: 64 << 20,
            cpus: 2,
            cgroups: Cgroups::V1,
            apparmor: false,
            init: Init::Busybox,
            nics: vec![Veth {
                bridge: "crbr-lan".into(),
                mac: "00:16:3e:12:34:56".into(),
                name: "eth0".into(),
                pair: "crv0123456789a0".into(),
            }],
            idmap: None,
            log_file: "/var/lib/lxc/box-1/lxc.log".into(),
            console_log: "/var/lib/lxc/box-1/console.log".into(),
        }
    }

    #[test]
    fn golden() {
        crate::golden::check("lxc/box-1.conf", &render(&spec()).unwrap());
    }

    #[test]
    fn v2_unprivileged_systemd_with_apparmor() {
        let mut s = spec();
        s.cgroups = Cgroups::V2;
        s.idmap = Some(IdMap {
            uid_start: 100000,
            gid_start: 100000,
            count: 65536,
        });
        s.init = Init::Systemd;
        s.apparmor = true;
        let c = render(&s).unwrap();
        assert!(c.contains("lxc.cgroup2.memory.max = 67108864\n"));
        assert!(c.contains("lxc.cgroup2.cpu.max = 200000 100000\n"));
        assert!(c.contains("lxc.idmap = u 0 100000 65536\n"));
        assert!(c.contains("lxc.include = /usr/share/lxc/config/userns.conf\n"));
        assert!(c.contains("lxc.signal.halt = SIGRTMIN+3\n"));
        assert!(!c.contains("apparmor"));
    }

    #[test]
    fn overlay_rootfs_names_both_layers_and_refuses_a_colon() {
        let mut s = spec();
        s.rootfs = RootfsPath::Overlay {
            lower: "/var/lib/creature/images/rootfs/k/tree".into(),
            upper: "/var/lib/lxc/box-1/delta".into(),
        };
        let c = render(&s).unwrap();
        let line = "lxc.rootfs.path = overlay:/var/lib/creature/images/rootfs/k/tree:/var/lib/lxc/box-1/delta\n";
        assert!(c.contains(line), "{c}");
        let value = line.trim_end().split(" = ").nth(1).unwrap();
        assert_eq!(RootfsPath::parse(value), s.rootfs);
        // As liblxc hands it back: without the type.
        assert_eq!(
            RootfsPath::parse(value.strip_prefix("overlay:").unwrap()),
            s.rootfs
        );
        let dir = RootfsPath::Dir("/var/lib/lxc/a/rootfs".into());
        assert_eq!(RootfsPath::parse("dir:/var/lib/lxc/a/rootfs"), dir);
        assert_eq!(RootfsPath::parse("/var/lib/lxc/a/rootfs"), dir);
        s.rootfs = RootfsPath::Overlay {
            lower: "/srv/a:b/tree".into(),
            upper: "/var/lib/lxc/box-1/delta".into(),
        };
        let e = render(&s).unwrap_err();
        assert!(e.message().contains("contains ':'"), "{}", e.message());
    }

    #[test]
    fn no_value_can_inject_a_line() {
        for bad in [
            "crbr\nlxc.hook.pre-start = /bin/evil",
            "x\r",
            "a\0b",
            " lead",
            "",
        ] {
            let mut s = spec();
            s.nics[0].bridge = bad.into();
            assert!(render(&s).is_err(), "{bad:?}");
        }
    }
}
