//! kvm, qemu and xen machines as libvirt domains.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::sys;

use crate::backend::libvirt::domain_xml::{self, ParsedMeta, META_NS};
use crate::backend::libvirt::{agent, iotune, map_error, open, rescue_xml, stats, storage, Uri};
use crate::backend::Backend;
use crate::backend::{
    wrong_state, Console, CreateJob, Details, DiskInfo, Driver, ExecSpec, Limit, Observed, Owner,
    PowerState,
};
use crate::error::{Error, Kind, Result};
use crate::store::Store;
use crate::undo::Undo;

pub struct LibvirtDriver {
    pub conn: Connect,
    pub backend: Backend,
    pub state_dir: PathBuf,
    /// Another host: what its VMs need from this host's files is shipped
    /// through libvirt (`ship`), never read from a path here.
    pub remote: bool,
    /// The host's name in creature's records (its machines' key there).
    pub host: String,
}

const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// Where xenconsoled logs each domU's console in dom0 (its `--log=guest`).
const XEN_CONSOLE_LOGS: &str = "/var/log/xen/console";

impl LibvirtDriver {
    pub fn open(backend: Backend, uri: &Uri, state_dir: &Path) -> Result<LibvirtDriver> {
        let conn = open(uri, CONNECT_LIMIT)?;
        Ok(LibvirtDriver {
            conn,
            backend,
            state_dir: state_dir.to_path_buf(),
            remote: Uri::local(backend).as_ref() != Some(uri),
            host: crate::config::LOCAL.to_string(),
        })
    }

    /// The driver of a named host's machines.
    pub fn on(mut self, host: &str) -> Self {
        self.host = host.to_string();
        self
    }

    pub fn logs_dir(state_dir: &Path) -> PathBuf {
        state_dir.join("logs")
    }

    /// Where a machine's serial console is logged.
    pub fn serial_log_path(state_dir: &Path, name: &str) -> PathBuf {
        Self::logs_dir(state_dir).join(format!("{name}.serial.log"))
    }

    fn lookup(&self, name: &str) -> Result<Domain> {
        self.conn
            .lookup_domain_by_name(name)
            .map_err(|e| map_error(format!("machine {name:?} has no libvirt domain"), e))
    }

    /// The domain, only if creature made it with this state directory:
    /// anything else is never changed.
    pub(crate) fn ours(&self, name: &str) -> Result<Domain> {
        let d = self.lookup(name)?;
        match owner_of(&d, &self.state_dir) {
            (Owner::Ours, _) => Ok(d),
            (Owner::OtherState(s), _) => Err(Error::conflict(format!(
                "domain {name:?} belongs to another creature state directory ({s}); not touching it"
            ))),
            (Owner::Foreign, _) => Err(Error::conflict(format!(
                "domain {name:?} was not created by creature; not touching it"
            ))),
        }
    }

    fn meta(&self, d: &Domain) -> Option<ParsedMeta> {
        owner_of(d, &self.state_dir).1
    }
}

pub fn owner_of(d: &Domain, state_dir: &Path) -> (Owner, Option<ParsedMeta>) {
    match d
        .metadata(sys::VIR_DOMAIN_METADATA_ELEMENT as i32, Some(META_NS), 0)
        .ok()
        .and_then(|x| domain_xml::parse_metadata(&x))
    {
        Some(m) if Path::new(&m.state_dir) == state_dir => (Owner::Ours, Some(m)),
        Some(m) => (Owner::OtherState(m.state_dir.clone()), Some(m)),
        None => (Owner::Foreign, None),
    }
}

pub fn power_state(state: i32, has_saved: bool) -> PowerState {
    match state as u32 {
        sys::VIR_DOMAIN_RUNNING | sys::VIR_DOMAIN_BLOCKED => PowerState::Running,
        sys::VIR_DOMAIN_PAUSED => PowerState::Paused,
        sys::VIR_DOMAIN_SHUTDOWN => PowerState::ShuttingDown,
        sys::VIR_DOMAIN_SHUTOFF if has_saved => PowerState::Saved,
        sys::VIR_DOMAIN_SHUTOFF => PowerState::ShutOff,
        sys::VIR_DOMAIN_CRASHED => PowerState::Crashed,
        sys::VIR_DOMAIN_PMSUSPENDED => PowerState::Paused,
        _ => PowerState::Unknown,
    }
}

pub(crate) fn dom_state(d: &Domain) -> Result<PowerState> {
    let (st, _) = d
        .state()
        .map_err(|e| map_error("cannot read the domain's state", e))?;
    let raw = match st {
        virt::enumutil::Enum::Known(DomainState::Running) => sys::VIR_DOMAIN_RUNNING,
        virt::enumutil::Enum::Known(DomainState::Blocked) => sys::VIR_DOMAIN_BLOCKED,
        virt::enumutil::Enum::Known(DomainState::Paused) => sys::VIR_DOMAIN_PAUSED,
        virt::enumutil::Enum::Known(DomainState::Shutdown) => sys::VIR_DOMAIN_SHUTDOWN,
        virt::enumutil::Enum::Known(DomainState::Shutoff) => sys::VIR_DOMAIN_SHUTOFF,
        virt::enumutil::Enum::Known(DomainState::Crashed) => sys::VIR_DOMAIN_CRASHED,
        virt::enumutil::Enum::Known(DomainState::PMSuspended) => sys::VIR_DOMAIN_PMSUSPENDED,
        _ => sys::VIR_DOMAIN_NOSTATE,
    };
    let saved = raw == sys::VIR_DOMAIN_SHUTOFF && d.has_managed_save(0).unwrap_or(false);
    Ok(power_state(raw as i32, saved))
}

impl Driver for LibvirtDriver {
    fn backend(&self) -> Backend {
        self.backend
    }

    fn state(&self, name: &str) -> Result<PowerState> {
        dom_state(&self.ours(name)?)
    }

    fn ensure_free(&self, name: &str) -> Result<()> {
        match self.conn.lookup_domain_by_name(name) {
            Ok(_) => Err(Error::conflict(format!(
                "a libvirt domain named {name:?} already exists (see `creature list`); choose another name"
            ))),
            Err(_) => Ok(()),
        }
    }

    fn create(&self, job: &CreateJob<'_>, store: &mut Store, undo: &mut Undo) -> Result<()> {
        crate::backend::libvirt::create::create(self, store, job, undo)
    }

    fn start(&self, name: &str) -> Result<()> {
        let d = self.ours(name)?;
        match dom_state(&d)? {
            PowerState::ShutOff | PowerState::Crashed => {}
            PowerState::Saved => {
                return Err(Error::conflict(format!(
                    "machine {name:?} is suspended; use `creature restore {name}`"
                )))
            }
            st => return Err(wrong_state(name, "start", st)),
        }
        // Where this run's console output will begin: `log --since start`.
        // Its length here, where QEMU writes it; its time, for a log that
        // stamps its lines (xen's, written in dom0).
        let log = Self::serial_log_path(&self.state_dir, name);
        let len = match self.remote {
            false => std::fs::metadata(&log)
                .map(|m| m.len())
                .unwrap_or(0)
                .to_string(),
            true => "-".to_string(),
        };
        if crate::statedir::subdir(&self.state_dir, "logs", 0o700).is_ok() {
            use std::io::Write;
            if let Ok(mut f) = crate::statedir::rewrite(&start_mark(&log), 0o600) {
                let _ = write!(f, "{len} {}", crate::time::unix_now());
            }
        }
        self.boot(&d, name, &format!("cannot start {name:?}"))
    }

    fn request_shutdown(&self, name: &str) -> Result<()> {
        let d = self.ours(name)?;
        match dom_state(&d)? {
            PowerState::Running | PowerState::ShuttingDown => {}
            st => return Err(wrong_state(name, "stop", st)),
        }
        if self.backend == Backend::Xen {
            // A PV guest has no ACPI: Xen asks its kernel through xenstore.
            return d
                .shutdown_flags(sys::VIR_DOMAIN_SHUTDOWN_PARAVIRT)
                .map_err(|e| map_error(format!("cannot ask {name:?} to shut down"), e));
        }
        d.shutdown_flags(sys::VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
            .map_err(|e| map_error(format!("cannot send the power button to {name:?}"), e))
    }

    fn force_off(&self, name: &str) -> Result<()> {
        let d = self.ours(name)?;
        if !dom_state(&d)?.is_active() {
            return Ok(());
        }
        d.destroy()
            .map_err(|e| map_error(format!("cannot power off {name:?}"), e))
    }

    fn reboot(&self, name: &str) -> Result<()> {
        let d = self.ours(name)?;
        match dom_state(&d)? {
            PowerState::Running => {}
            st => return Err(wrong_state(name, "reboot", st)),
        }
        // A PV guest has no ACPI: Xen asks its kernel through xenstore.
        let how = if self.backend == Backend::Xen {
            sys::VIR_DOMAIN_REBOOT_PARAVIRT
        } else {
            sys::VIR_DOMAIN_REBOOT_ACPI_POWER_BTN
        };
        d.reboot(how)
            .map_err(|e| map_error(format!("cannot reboot {name:?}"), e))
    }

    fn pause(&self, name: &str) -> Result<()> {
        let d = self.ours(name)?;
        match dom_state(&d)? {
            PowerState::Running => {}
            st => return Err(wrong_state(name, "pause", st)),
        }
        d.suspend()
            .map_err(|e| map_error(format!("cannot pause {name:?}"), e))
    }

    fn unpause(&self, name: &str) -> Result<()> {
        let d = self.ours(name)?;
        match dom_state(&d)? {
            PowerState::Paused => {}
            st => return Err(wrong_state(name, "unpause", st)),
        }
        d.resume()
            .map_err(|e| map_error(format!("cannot unpause {name:?}"), e))
    }

    fn suspend(&self, name: &str) -> Result<()> {
        let d = self.ours(name)?;
        match dom_state(&d)? {
            PowerState::Running | PowerState::Paused => {}
            st => return Err(wrong_state(name, "suspend", st)),
        }
        d.managed_save(0)
            .map_err(|e| map_error(format!("cannot suspend {name:?}"), e))
    }

    fn restore(&self, name: &str) -> Result<()> {
        let d = self.ours(name)?;
        match dom_state(&d)? {
            PowerState::Saved => {}
            st => return Err(wrong_state(name, "restore", st)),
        }
        // A defined domain with a managed-save image resumes from it.
        d.create()
            .map(|_| ())
            .map_err(|e| map_error(format!("cannot restore {name:?}"), e))
    }

    fn screenshot(&self, name: &str) -> Result<(String, Vec<u8>)> {
        // Big enough for any screen; a stream that goes on past it is not one.
        const MAX: usize = 256 << 20;
        let d = self.ours(name)?;
        let st = virt::stream::Stream::new(&self.conn, 0)
            .map_err(|e| map_error("cannot open a stream to libvirt", e))?;
        let mime = d
            .screenshot(&st, 0, 0)
            .map_err(|e| map_error(format!("cannot take a screenshot of {name:?}"), e))?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = st
                .recv(&mut buf)
                .map_err(|e| map_error("cannot read the screenshot", e))?;
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
            if out.len() > MAX {
                let _ = st.abort();
                return Err(Error::other("the screenshot stream does not end"));
            }
        }
        let _ = st.finish();
        Ok((mime, out))
    }

    fn set_display_password(
        &self,
        name: &str,
        display: &crate::store::DisplayRecord,
    ) -> Result<bool> {
        let d = self.ours(name)?;
        let live = dom_state(&d)?.is_active();
        let g = domain_xml::GraphicsSpec::of(display);
        let mut flags = sys::VIR_DOMAIN_AFFECT_CONFIG;
        if live {
            flags |= sys::VIR_DOMAIN_AFFECT_LIVE;
        }
        d.update_device_flags(&domain_xml::graphics(&g).render(), flags)
            .map_err(|e| map_error(format!("cannot change the display password of {name:?}"), e))?;
        Ok(live)
    }

    fn live_xml(&self, name: &str) -> Result<String> {
        self.ours(name)?
            .xml_desc(0)
            .map_err(|e| map_error(format!("cannot read the definition of {name:?}"), e))
    }

    fn write_seed(&self, name: &str, seed: &crate::seed::Rendered) -> Result<()> {
        let dir = crate::seed::store::make_dir(&self.state_dir, name)?;
        let iso = dir.join(crate::seed::store::ISO);
        crate::seed::iso::write(seed, &iso)?;
        if self.remote {
            use crate::backend::libvirt::ship;
            let pool = ship::disks_pool(&self.conn, &self.state_dir)?;
            ship::ship(
                &self.conn,
                &pool,
                &ship::seed_volume(name),
                &iso,
                true,
                true,
            )?;
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        let d = match self.ours(name) {
            Ok(d) => Some(d),
            Err(e) if e.kind() == Kind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Some(d) = d {
            if dom_state(&d)?.is_active() {
                d.destroy()
                    .map_err(|e| map_error(format!("cannot power off {name:?}"), e))?;
            }
            let meta = self.meta(&d).unwrap_or_default();
            if d.has_managed_save(0).unwrap_or(false) {
                removed.push("managed-save image".to_string());
            }
            d.undefine_flags(undefine_flags(self.backend))
                .map_err(|e| map_error(format!("cannot undefine {name:?}"), e))?;
            removed.push(format!("domain {name}"));
            if !meta.volumes.is_empty() {
                let pool = self
                    .conn
                    .lookup_storage_pool_by_name(&meta.pool)
                    .map_err(|e| map_error(format!("cannot find storage pool {}", meta.pool), e))?;
                let _ = pool.refresh(0);
                for v in &meta.volumes {
                    if storage::delete_volume(&pool, v)? {
                        removed.push(format!("volume {v}"));
                    }
                }
            }
        }
        // Disks an interrupted create made before its domain existed: in
        // creature's own pool, named for this machine.
        if let Ok(pool) = self.pool() {
            for v in storage::volumes(&pool).unwrap_or_default() {
                if storage::is_volume_of(&v, name) && storage::delete_volume(&pool, &v)? {
                    removed.push(format!("volume {v}"));
                }
            }
        }
        let log = Self::serial_log_path(&self.state_dir, name);
        if self.remote {
            let vol = log
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if let Ok(pool) = crate::backend::libvirt::ship::logs_pool(&self.conn, &self.state_dir)
            {
                if storage::delete_volume(&pool, &vol)? {
                    removed.push(format!("serial log {}", log.display()));
                }
            }
        }
        if std::fs::remove_file(&log).is_ok() && !self.remote {
            removed.push(format!("serial log {}", log.display()));
        }
        let _ = std::fs::remove_file(start_mark(&log));
        // A rescue's kept definition and scratch disk (listed in the rescue
        // definition's volumes too; a rescue killed before it was defined
        // left them unlisted).
        if std::fs::remove_file(self.rescue_file(name)).is_ok() {
            removed.push("the definition kept for unrescue".into());
        }
        // Snapshots' memory images (their disk files went with the volumes).
        if std::fs::remove_dir_all(self.memory_dir(name)).is_ok() {
            removed.push("snapshot memory images".into());
        }
        // Snapshots' memory images (their disk files went with the volumes).
        if std::fs::remove_dir_all(self.memory_dir(name)).is_ok() {
            removed.push("snapshot memory images".into());
        }
        if let Ok(pool) = self.pool() {
            if storage::delete_volume(&pool, &storage::rescue_volume(name, self.backend))
                .unwrap_or(false)
            {
                removed.push(format!(
                    "volume {}",
                    storage::rescue_volume(name, self.backend)
                ));
            }
        }
        Ok(removed)
    }

    fn details(&self, name: &str) -> Result<Details> {
        let d = self.ours(name)?;
        let info = d
            .info()
            .map_err(|e| map_error(format!("cannot read {name:?}"), e))?;
        let xml = d
            .xml_desc(0)
            .map_err(|e| map_error(format!("cannot read {name:?}"), e))?;
        let (disks, _) = parse_devices(&xml);
        let disks = disks
            .into_iter()
            .map(|mut disk| {
                disk.backing = backing_of(&disk.path);
                disk
            })
            .collect();
        Ok(Details {
            state: dom_state(&d)?,
            cpus: Limit::Count(info.nr_virt_cpu.into()),
            memory_bytes: Limit::Count(info.memory * 1024),
            cpu_time_ns: info.cpu_time,
            disks,
            pid: None,
            has_saved_state: d.has_managed_save(0).unwrap_or(false),
            memory_used_bytes: None,
            rescued: rescue_xml::rescued(&xml),
        })
    }

    fn observe(&self, known: &BTreeSet<String>) -> Result<Vec<Observed>> {
        let all = stats::all(&self.conn)?;
        let saved = if all
            .iter()
            .any(|s| s.state == Some(sys::VIR_DOMAIN_SHUTOFF as i32))
        {
            self.saved_names()?
        } else {
            Default::default()
        };
        let mut out = Vec::with_capacity(all.len());
        for s in all {
            let mut o = Observed {
                state: power_state(s.state.unwrap_or(0), false),
                owner: Owner::Ours,
                cpus: s.vcpus.map(|n| Limit::Count(n.into())),
                memory_bytes: s.balloon_kib.map(|k| Limit::Count(k * 1024)),
                cpu_time_ns: s.cpu_time_ns,
                backend: self.backend,
                name: s.name,
            };
            if known.contains(&o.name) {
                if o.state == PowerState::ShutOff && saved.contains(&o.name) {
                    o.state = PowerState::Saved;
                }
            } else {
                // Two calls, made only for domains creature has no record of.
                let (owner, ty) = self.owner_and_type(&o.name);
                o.owner = owner;
                o.backend = ty.unwrap_or(self.backend);
            }
            out.push(o);
        }
        Ok(out)
    }

    fn console(&self, name: &str) -> Result<Console> {
        self.open_console(name).map(Console::Stream)
    }

    fn exec(&self, name: &str, spec: &ExecSpec) -> Result<i32> {
        use std::io::{IsTerminal, Read};
        let d = self.ours(name)?;
        let st = self.state(name)?;
        if st != PowerState::Running {
            return Err(wrong_state(name, "run a command in", st));
        }
        let xml = d
            .xml_desc(0)
            .map_err(|e| map_error(format!("cannot read the definition of {name:?}"), e))?;
        if !agent::has_channel(&xml) {
            return Err(Error::unavailable(format!(
                "machine {name:?} has no guest agent channel: creature runs commands in a VM through \
                 the QEMU guest agent (template key guest_agent = true, and qemu-ga in the guest)"
            )));
        }
        if spec.argv.is_empty() {
            return Err(Error::unavailable(format!(
                "an interactive shell needs a terminal, which the guest agent does not give; \
                 use `creature console {name}` (or `creature exec {name} -- CMD`)"
            )));
        }
        if spec.user.is_some() {
            return Err(Error::invalid(
                "--user is not available on a VM: the guest agent runs commands as its own user (root)",
            ));
        }
        // What the caller pipes in goes to the command; a terminal has
        // nothing to give (the agent has no terminal of its own).
        let input = if std::io::stdin().is_terminal() {
            None
        } else {
            let mut buf = Vec::new();
            std::io::stdin()
                .take(agent::MAX_INPUT as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|e| Error::other("cannot read standard input").caused_by(e))?;
            if buf.len() > agent::MAX_INPUT {
                return Err(Error::new(
                    Kind::Exhausted,
                    format!(
                        "standard input is larger than the {} MiB the guest agent takes",
                        agent::MAX_INPUT >> 20
                    ),
                ));
            }
            Some(buf)
        };
        let req = crate::exec::ExecRequest {
            argv: spec.argv.clone(),
            env: crate::exec::environment(&spec.env, "/root", None),
            user: None,
            cwd: spec.cwd.clone(),
            tty: false,
        };
        agent::exec(&d, name, &req, input.as_deref())
    }

    fn resize(
        &self,
        name: &str,
        req: &crate::resize::Request,
    ) -> Result<(Vec<String>, Vec<String>)> {
        use crate::resize::{plan, Step};
        use crate::size::Size;
        let d = self.ours(name)?;
        let active = self.state(name)?.is_active();
        let xml_of = |flags: u32| {
            d.xml_desc(flags)
                .map_err(|e| map_error(format!("cannot read the definition of {name:?}"), e))
        };
        let sizing = |xml: &str| {
            domain_xml::sizing(xml).ok_or_else(|| {
                Error::other(format!(
                    "cannot read vCPUs and memory from the definition of {name:?}"
                ))
            })
        };
        let config = sizing(&xml_of(sys::VIR_DOMAIN_XML_INACTIVE)?)?;
        let live_xml = if active { Some(xml_of(0)?) } else { None };
        let live = live_xml.as_deref().map(sizing).transpose()?;
        let has_agent = live_xml.as_deref().is_some_and(agent::has_channel);
        // Each disk's device, size and volume (the one a stopped machine grows).
        let mut disks = Vec::new();
        let mut vols = std::collections::HashMap::new();
        for disk in self.details(name)?.disks {
            let vol = self
                .conn
                .lookup_storage_vol_by_path(&disk.path)
                .map_err(|e| {
                    map_error(
                        format!(
                            "disk {} of {name:?} is not a volume creature can resize",
                            disk.target
                        ),
                        e,
                    )
                })?;
            let cap = vol
                .info()
                .map_err(|e| map_error(format!("cannot read the size of disk {}", disk.target), e))?
                .capacity;
            vols.insert(disk.target.clone(), vol);
            disks.push((disk.target, cap));
        }
        let p = plan(req, config, live, &disks).map_err(|e| {
            Error::new(e.kind(), format!("cannot resize {name:?}: {}", e.message()))
        })?;
        // libxl cannot resize a disk in use (no virDomainBlockResize): a xen
        // machine's raw file grows in dom0's pool while it is stopped.
        if active
            && self.backend == Backend::Xen
            && p.steps.iter().any(|s| matches!(s, Step::GrowDisk(..)))
        {
            return Err(Error::conflict(format!(
                "cannot resize {name:?}: a running xen machine's disks cannot grow (libvirt's \
                 libxl driver has no live disk resize); stop it, resize --disk, start it"
            )));
        }
        let apply = |s: &Step| -> Result<String> {
            let fail = |what: &str| {
                let what = what.to_string();
                move |e: virt::error::Error| map_error(format!("cannot {what} of {name:?}"), e)
            };
            let config_only = sys::VIR_DOMAIN_AFFECT_CONFIG;
            if matches!(s, Step::LiveCpus(_) | Step::LiveMemory(_)) {
                crate::undo::fail_point("resize-live")?;
            }
            Ok(match s {
                Step::ConfigMaxCpus(n) => {
                    d.set_vcpus_flags(*n, sys::VIR_DOMAIN_VCPU_MAXIMUM | config_only)
                        .map_err(fail("raise the vCPU maximum"))?;
                    format!("vCPU maximum {} -> {n}", config.max_cpus)
                }
                Step::ConfigCpus(n) => {
                    d.set_vcpus_flags(*n, config_only)
                        .map_err(fail("set the vCPUs"))?;
                    format!("vCPUs {} -> {n} (persistent)", config.cpus)
                }
                Step::ConfigMaxMemory(b) => {
                    d.set_memory_flags(b / 1024, sys::VIR_DOMAIN_MEM_MAXIMUM | config_only)
                        .map_err(fail("raise the memory maximum"))?;
                    format!("memory maximum {} -> {}", Size(config.max_memory), Size(*b))
                }
                Step::ConfigMemory(b) => {
                    d.set_memory_flags(b / 1024, config_only)
                        .map_err(fail("set the memory"))?;
                    format!(
                        "memory {} -> {} (persistent)",
                        Size(config.memory),
                        Size(*b)
                    )
                }
                Step::LiveCpus(n) => {
                    d.set_vcpus_flags(*n, sys::VIR_DOMAIN_AFFECT_LIVE)
                        .map_err(fail("change the running vCPUs"))?;
                    // New vCPUs arrive offline; the guest agent brings them
                    // up once the guest has seen them (a moment after the plug).
                    let online = has_agent
                        && (0..40).any(|_| {
                            d.set_vcpus_flags(*n, sys::VIR_DOMAIN_VCPU_GUEST).is_ok() || {
                                std::thread::sleep(Duration::from_millis(250));
                                false
                            }
                        });
                    format!(
                        "vCPUs {} -> {n} (live{})",
                        live.map_or(0, |l| l.cpus),
                        if online {
                            ", onlined by the guest agent"
                        } else {
                            ""
                        }
                    )
                }
                Step::LiveMemory(b) => {
                    d.set_memory_flags(b / 1024, sys::VIR_DOMAIN_AFFECT_LIVE)
                        .map_err(fail("change the running memory"))?;
                    format!(
                        "memory {} -> {} (live, balloon)",
                        Size(live.map_or(0, |l| l.memory)),
                        Size(*b)
                    )
                }
                Step::GrowDisk(dev, from, to) => {
                    if active {
                        d.block_resize(dev, *to, sys::VIR_DOMAIN_BLOCK_RESIZE_BYTES)
                            .map_err(fail(&format!("grow disk {dev}")))?;
                    } else {
                        vols[dev]
                            .resize(*to, 0)
                            .map_err(fail(&format!("grow disk {dev}")))?;
                    }
                    format!("disk {dev} {} -> {}", Size(*from), Size(*to))
                }
            })
        };
        // Undo in reverse what was done, so a failure leaves the machine as
        // it was (a grown disk cannot shrink: disks come last).
        let undo = |s: &Step| {
            let c = sys::VIR_DOMAIN_AFFECT_CONFIG;
            let _ = match s {
                Step::ConfigCpus(_) => d.set_vcpus_flags(config.cpus, c),
                Step::ConfigMaxCpus(_) => {
                    d.set_vcpus_flags(config.max_cpus, sys::VIR_DOMAIN_VCPU_MAXIMUM | c)
                }
                Step::ConfigMemory(_) => d.set_memory_flags(config.memory / 1024, c),
                Step::ConfigMaxMemory(_) => {
                    d.set_memory_flags(config.max_memory / 1024, sys::VIR_DOMAIN_MEM_MAXIMUM | c)
                }
                Step::LiveCpus(_) => {
                    d.set_vcpus_flags(live.map_or(1, |l| l.cpus), sys::VIR_DOMAIN_AFFECT_LIVE)
                }
                Step::LiveMemory(_) => d.set_memory_flags(
                    live.map_or(0, |l| l.memory) / 1024,
                    sys::VIR_DOMAIN_AFFECT_LIVE,
                ),
                Step::GrowDisk(..) => Ok(()),
            };
        };
        let mut done = Vec::new();
        let mut said = Vec::new();
        for s in &p.steps {
            match apply(s) {
                Ok(line) => {
                    said.push(line);
                    done.push(s.clone());
                }
                Err(e) => {
                    for s in done.iter().rev() {
                        undo(s);
                    }
                    return Err(e.caused_by("nothing was changed: the steps before it were undone"));
                }
            }
        }
        Ok((said, p.at_restart))
    }

    fn rescue(&self, name: &str, boot: &crate::backend::RescueBoot) -> Result<()> {
        let d = self.ours(name)?;
        let inactive = |d: &Domain| {
            d.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE | sys::VIR_DOMAIN_XML_SECURE)
                .map_err(|e| map_error(format!("cannot read the definition of {name:?}"), e))
        };
        let original = inactive(&d)?;
        if let Some(img) = rescue_xml::rescued(&original) {
            return Err(Error::conflict(format!(
                "machine {name:?} is already rescued (from image {img}); `creature unrescue {name}` first"
            )));
        }
        let st = dom_state(&d)?;
        if st == PowerState::Saved || d.has_managed_save(0).unwrap_or(false) {
            return Err(Error::conflict(format!(
                "machine {name:?} is suspended; restore or stop it before a rescue"
            )));
        }
        // The definition to go back to, kept before anything changes: a
        // rescue killed half-way can still be undone.
        let keep = self.rescue_file(name);
        crate::statedir::subdir(&self.state_dir, "rescue", 0o700)?;
        {
            use std::io::Write;
            let mut f = crate::statedir::rewrite(&keep, 0o600)?;
            f.write_all(original.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| {
                    Error::other(format!("cannot write {}", keep.display())).caused_by(e)
                })?;
        }
        crate::undo::fail_point("rescue-kept")?;
        let pool = self.pool()?;
        let vol_name = storage::rescue_volume(name, self.backend);
        let _ = storage::delete_volume(&pool, &vol_name);
        let cleanup = |why: Error| -> Error {
            let _ = storage::delete_volume(&pool, &vol_name);
            let _ = std::fs::remove_file(&keep);
            why
        };
        let xen = self.backend == Backend::Xen;
        let vol = storage::create_volume(
            &pool,
            &storage::empty_xml(&vol_name, 1 << 20, rescue_xml::scratch_format(xen)),
            &vol_name,
        )
        .map_err(cleanup)?;
        // On another host the rescue kernel and initramfs are read from its
        // image pool, shipped there as a create ships a machine's.
        let there = |f: &str| {
            crate::backend::libvirt::create::there(self, Path::new(f), true)
                .map(|p| p.display().to_string())
        };
        let (kernel, initrd) = match there(&boot.kernel).and_then(|k| Ok((k, there(&boot.initrd)?)))
        {
            Ok(b) => b,
            Err(e) => return Err(cleanup(e)),
        };
        let scratch = vol
            .path()
            .map_err(|e| cleanup(map_error("cannot find the rescue scratch disk", e)))?;
        let xml = rescue_xml::render(
            &original,
            &rescue_xml::Rescue {
                kernel: &kernel,
                initrd: &initrd,
                scratch_path: &scratch,
                scratch_volume: &vol_name,
                image: &boot.image,
            },
        )
        .map_err(|e| {
            cleanup(Error::new(
                e.kind(),
                format!("cannot rescue {name:?}: {}", e.message()),
            ))
        })?;
        crate::trace::text(&format!("rescue domain XML of {name}"), &xml);
        let was_running = st.is_active();
        if was_running {
            d.destroy()
                .map_err(|e| cleanup(map_error(format!("cannot power off {name:?}"), e)))?;
        }
        if let Err(e) = self.conn.define_domain_xml(&xml) {
            let err = cleanup(map_error(
                format!("cannot define the rescue of {name:?}"),
                e,
            ));
            if was_running {
                let _ = d.create();
            }
            return Err(err);
        }
        crate::undo::fail_point("rescue-defined")?;
        self.boot(
            &d,
            name,
            &format!("cannot start the rescue of {name:?} (`creature unrescue {name}` goes back)"),
        )
    }

    fn unrescue(&self, name: &str) -> Result<()> {
        let d = self.ours(name)?;
        let now = d
            .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
            .map_err(|e| map_error(format!("cannot read the definition of {name:?}"), e))?;
        if rescue_xml::rescued(&now).is_none() {
            return Err(Error::conflict(format!("machine {name:?} is not rescued")));
        }
        let keep = self.rescue_file(name);
        let original = std::fs::read_to_string(&keep).map_err(|e| {
            Error::corrupt(format!(
                "machine {name:?} is rescued but its own definition, kept in {}, cannot be read",
                keep.display()
            ))
            .caused_by(e)
        })?;
        if dom_state(&d)?.is_active() {
            d.destroy()
                .map_err(|e| map_error(format!("cannot power off the rescue of {name:?}"), e))?;
        }
        self.conn
            .define_domain_xml(&original)
            .map_err(|e| map_error(format!("cannot define {name:?} again"), e))?;
        if let Ok(pool) = self.pool() {
            storage::delete_volume(&pool, &storage::rescue_volume(name, self.backend))?;
        }
        let _ = std::fs::remove_file(&keep);
        self.boot(&d, name, &format!("cannot start {name:?}"))
    }

    fn io_limits(&self, name: &str) -> Result<Vec<(String, crate::iotune::Limits)>> {
        let d = self.ours(name)?;
        let scope = if self.state(name)?.is_active() {
            iotune::Scope::Live
        } else {
            iotune::Scope::Config
        };
        self.details(name)?
            .disks
            .into_iter()
            .map(|disk| {
                Ok((
                    disk.target.clone(),
                    iotune::get(&d, name, &disk.target, scope)?,
                ))
            })
            .collect()
    }

    fn set_io_limits(
        &self,
        name: &str,
        disk: Option<&str>,
        limits: &crate::iotune::Limits,
    ) -> Result<Vec<String>> {
        let d = self.ours(name)?;
        let disks: Vec<String> = self
            .details(name)?
            .disks
            .into_iter()
            .map(|x| x.target)
            .collect();
        let chosen: Vec<String> = match disk {
            Some(one) if disks.iter().any(|x| x == one) => vec![one.to_string()],
            Some(one) => {
                return Err(Error::not_found(format!(
                    "machine {name:?} has no disk {one} (its disks: {})",
                    if disks.is_empty() {
                        "none".into()
                    } else {
                        disks.join(", ")
                    }
                )))
            }
            None if disks.is_empty() => {
                return Err(Error::not_found(format!(
                    "machine {name:?} has no disks to limit"
                )))
            }
            None => disks,
        };
        let live = self.state(name)?.is_active();
        for dev in &chosen {
            // What the disk ends with must be a set QEMU takes.
            let now = iotune::get(
                &d,
                name,
                dev,
                if live {
                    iotune::Scope::Live
                } else {
                    iotune::Scope::Config
                },
            )?;
            limits
                .over(&now)
                .check(&format!("disk {dev} of {name:?}"))?;
        }
        for dev in &chosen {
            if live {
                iotune::set(&d, name, dev, limits, iotune::Scope::Live)?;
            }
            iotune::set(&d, name, dev, limits, iotune::Scope::Config)?;
        }
        Ok(chosen)
    }

    fn snapshot_graph(&self, name: &str) -> Result<crate::snapshot::Graph> {
        self.snapshot_graph_of(name)
    }
    fn snapshot_take(
        &self,
        name: &str,
        snap: &str,
        memory: Option<&Path>,
    ) -> Result<Vec<(String, String)>> {
        self.snapshot_take_of(name, snap, memory)
    }
    fn snapshot_steps(&self, name: &str, steps: &[crate::snapshot::Step]) -> Result<()> {
        self.snapshot_steps_of(name, steps)
    }
    fn snapshot_revert(
        &self,
        name: &str,
        points: &[(String, String)],
        memory: Option<&Path>,
        paused: bool,
        start: bool,
    ) -> Result<()> {
        self.snapshot_revert_of(name, points, memory, paused, start)
    }

    fn used_targets(&self, name: &str) -> Result<Vec<String>> {
        self.used_targets_of(name)
    }
    fn attach_volume(&self, name: &str, disk: &crate::backend::VolumeDisk) -> Result<String> {
        self.attach_volume_of(name, disk)
    }
    fn detach_volume(&self, name: &str, path: &str) -> Result<String> {
        self.detach_volume_of(name, path)
    }
    fn swap_volume(
        &self,
        name: &str,
        old: &str,
        new: &str,
        new_format: &str,
        quiet: bool,
    ) -> Result<String> {
        self.swap_volume_of(name, old, new, new_format, quiet)
    }

    fn serial_log(&self, name: &str) -> Result<PathBuf> {
        self.ours(name)?;
        let local = Self::serial_log_path(&self.state_dir, name);
        if self.backend == Backend::Xen {
            // xenconsoled logs a PV guest's console in dom0.
            let there = Path::new(XEN_CONSOLE_LOGS).join(format!("guest-{name}.log"));
            if !self.remote {
                return Ok(there);
            }
            use crate::backend::libvirt::ship;
            crate::statedir::subdir(&self.state_dir, "logs", 0o700)?;
            let pool = storage::ensure_pool(
                &self.conn,
                &format!("{}-xenconsole", storage::pool_name(&self.state_dir)),
                Path::new(XEN_CONSOLE_LOGS),
                &self.state_dir.join("pool.lock"),
            )?;
            if !ship::fetch(&self.conn, &pool, &format!("guest-{name}.log"), &local)? {
                let _ = std::fs::remove_file(&local);
            }
            return Ok(local);
        }
        if self.remote {
            // QEMU writes it on its host: this host reads a fresh copy.
            use crate::backend::libvirt::ship;
            crate::statedir::subdir(&self.state_dir, "logs", 0o700)?;
            let pool = ship::logs_pool(&self.conn, &self.state_dir)?;
            let vol = local
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if !ship::fetch(&self.conn, &pool, &vol, &local)? {
                let _ = std::fs::remove_file(&local);
            }
        }
        Ok(local)
    }
}

impl LibvirtDriver {
    /// creature's disk pool (its volume list: `storage::volumes`, refreshed).
    pub(crate) fn pool(&self) -> Result<virt::storage_pool::StoragePool> {
        self.conn
            .lookup_storage_pool_by_name(&storage::pool_name(&self.state_dir))
            .map_err(|e| map_error("cannot find creature's storage pool", e))
    }

    /// Where `snapshot create --memory` puts a machine's memory images.
    pub fn memory_dir(&self, name: &str) -> PathBuf {
        crate::snapshot::memory_dir(&self.state_dir, name)
    }

    /// Where a rescued machine's own definition is kept.
    pub(crate) fn rescue_file(&self, name: &str) -> PathBuf {
        self.state_dir.join("rescue").join(format!("{name}.xml"))
    }
}

impl LibvirtDriver {
    /// Start a defined domain. A xen domU's NIC filters are bound to its
    /// vifs before it runs an instruction: created paused, bound, then
    /// unpaused (libxl applies no filter itself). A failure leaves it shut
    /// off.
    pub(crate) fn boot(&self, d: &Domain, name: &str, what: &str) -> Result<()> {
        let nics = if self.backend == Backend::Xen {
            self.filtered_nics(name)?
        } else {
            Vec::new()
        };
        let flags = if nics.is_empty() {
            0
        } else {
            sys::VIR_DOMAIN_START_PAUSED
        };
        d.create_with_flags(flags).map_err(|e| map_error(what, e))?;
        if nics.is_empty() {
            return Ok(());
        }
        let scope = crate::backend::firewall::scope(&self.state_dir);
        let bound = crate::store::Store::open_read_only(&self.state_dir)
            .and_then(|s| {
                let s = s.ok_or_else(|| Error::other("the state database is gone"))?;
                // Its filters, in case this host lost them.
                crate::backend::firewall::sync_machine(&self.conn, &scope, &s, &self.host, name)
            })
            .and_then(|_| crate::backend::firewall::bind_vifs(&self.conn, &scope, name, &nics))
            .and_then(|_| {
                d.resume()
                    .map(|_| ())
                    .map_err(|e| map_error(format!("cannot unpause {name:?}"), e))
            });
        if let Err(e) = bound {
            let _ = d.destroy();
            let mut err = Error::new(
                e.kind(),
                format!(
                    "{what}: its network filters could not be bound ({})",
                    e.message()
                ),
            );
            for c in e.causes() {
                err = err.caused_by(c);
            }
            return Err(err);
        }
        Ok(())
    }

    /// The machine's NICs that have a filter of their own, from the records.
    fn filtered_nics(&self, name: &str) -> Result<Vec<crate::store::Nic>> {
        let Some(store) = crate::store::Store::open_read_only(&self.state_dir)? else {
            return Ok(Vec::new());
        };
        crate::backend::firewall::filtered_nics(&store, &self.host, name)
    }
}

/// The file beside a serial log holding its length when creature last
/// started the machine (`log --since start`).
pub fn start_mark(serial_log: &Path) -> PathBuf {
    serial_log.with_extension("start")
}

/// A start mark's log length (when creature could see it) and time (absent
/// from marks written before creature kept it).
pub fn read_start_mark(serial_log: &Path) -> Option<(Option<u64>, Option<u64>)> {
    let text = std::fs::read_to_string(start_mark(serial_log)).ok()?;
    let mut words = text.split_whitespace();
    let len = words.next()?;
    Some((len.parse().ok(), words.next().and_then(|t| t.parse().ok())))
}

impl LibvirtDriver {
    /// Whose a domain is and its type (kvm, qemu, xen).
    fn owner_and_type(&self, name: &str) -> (Owner, Option<Backend>) {
        match self.lookup(name) {
            Ok(d) => {
                let ty = d.xml_desc(0).ok().and_then(|x| domain_type_of(&x));
                (owner_of(&d, &self.state_dir).0, ty)
            }
            Err(_) => (Owner::Foreign, None),
        }
    }

    /// A blocking stream on the running machine's serial console.
    fn open_console(&self, name: &str) -> Result<virt::stream::Stream> {
        let d = self.ours(name)?;
        match dom_state(&d)? {
            PowerState::Running | PowerState::Paused => {}
            st => return Err(wrong_state(name, "attach to the console of", st)),
        }
        let stream = virt::stream::Stream::new(&self.conn, 0)
            .map_err(|e| map_error("cannot create a libvirt stream", e))?;
        // libxl takes no SAFE flag (it refuses a second session all the same).
        let flags = if self.backend == Backend::Xen {
            0
        } else {
            sys::VIR_DOMAIN_CONSOLE_SAFE
        };
        d.open_console(None, &stream, flags).map_err(|e| {
            let err = map_error(format!("cannot open the console of {name:?}"), e);
            if err
                .causes()
                .iter()
                .any(|c| c.contains("Active console session"))
            {
                Error::conflict(format!(
                    "someone else is attached to the console of {name:?}"
                ))
            } else {
                err
            }
        })?;
        Ok(stream)
    }

    /// The names of every domain with a managed-save image, in one call
    /// (`list` would otherwise need two per shut-off domain).
    fn saved_names(&self) -> Result<std::collections::HashSet<String>> {
        let doms = self
            .conn
            .list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE)
            .map_err(|e| map_error("cannot list saved domains", e))?;
        Ok(doms.iter().filter_map(|d| d.name().ok()).collect())
    }
}

fn domain_type_of(xml: &str) -> Option<Backend> {
    Backend::parse(crate::xml::attrs_of(xml, "domain").first()?.get("type")?)
}

/// Disks (target, path, format) and MACs from domain XML.
pub fn parse_devices(xml: &str) -> (Vec<DiskInfo>, Vec<String>) {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let (mut disks, mut macs) = (Vec::new(), Vec::new());
    let mut cur: Option<DiskInfo> = None;
    let mut in_iface = false;
    let attr = |e: &quick_xml::events::BytesStart, k: &str| {
        e.try_get_attribute(k)
            .ok()
            .flatten()
            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
    };
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.name().as_ref() {
                b"disk" => {
                    cur = Some(DiskInfo {
                        target: String::new(),
                        path: String::new(),
                        format: String::new(),
                        backing: None,
                    })
                }
                b"interface" => in_iface = true,
                b"driver" => {
                    if let (Some(d), Some(t)) = (cur.as_mut(), attr(&e, "type")) {
                        d.format = t;
                    }
                }
                b"source" => {
                    // A file, a block device, or a pool's volume (an
                    // iSCSI LUN): `pool/volume`.
                    let path = attr(&e, "file")
                        .or_else(|| attr(&e, "dev"))
                        .or_else(|| Some(format!("{}/{}", attr(&e, "pool")?, attr(&e, "volume")?)));
                    if let (Some(d), Some(f)) = (cur.as_mut(), path) {
                        if d.path.is_empty() {
                            d.path = f;
                        }
                    }
                }
                b"target" => {
                    if let (Some(d), Some(t)) = (cur.as_mut(), attr(&e, "dev")) {
                        d.target = t;
                    }
                }
                b"mac" if in_iface => {
                    if let Some(a) = attr(&e, "address") {
                        macs.push(a);
                    }
                }
                b"backingStore" => {
                    // The first backingStore belongs to the disk itself; stop
                    // reading sources so the overlay's own path is kept.
                }
                _ => {}
            },
            Ok(Event::End(e)) => match e.name().as_ref() {
                b"disk" => {
                    if let Some(d) = cur.take() {
                        disks.push(d);
                    }
                }
                b"interface" => in_iface = false,
                _ => {}
            },
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    (disks, macs)
}

/// The backing file of a qcow2 overlay, read with qemu-img (local hosts).
fn backing_of(path: &str) -> Option<String> {
    let out = std::process::Command::new("qemu-img")
        .args(["info", "--output=json", "-U", "--", path])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["backing-filename"].as_str().map(str::to_string)
}

/// What goes with a domain's definition. libxl takes only the managed save
/// (it has neither snapshot metadata nor NVRAM to drop).
pub fn undefine_flags(backend: Backend) -> u32 {
    match backend {
        Backend::Xen => sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE,
        _ => {
            sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                | sys::VIR_DOMAIN_UNDEFINE_NVRAM
        }
    }
}

/// Power off and undefine a domain of creature's, leaving its disks (a
/// stale copy whose disks another host's copy uses).
pub fn undefine_only(host: &crate::backend::Host, backend: Backend, name: &str) -> Result<()> {
    let drv = LibvirtDriver::open(backend, &host.uri(backend)?, host.state_dir())?;
    let d = drv.ours(name)?;
    if dom_state(&d)?.is_active() {
        d.destroy()
            .map_err(|e| map_error(format!("cannot power off {name:?}"), e))?;
    }
    d.undefine_flags(undefine_flags(backend))
        .map_err(|e| map_error(format!("cannot undefine {name:?}"), e))
}
