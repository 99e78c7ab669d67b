//! The one place that calls liblxc's C API. It owns `lxc_container`
//! pointers (get/put), converts strings, and turns failures into creature
//! errors carrying liblxc's own message. Everything above it is safe Rust.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::path::Path;

use crate::error::{Error, Kind, Result};

/// liblxc's version string, e.g. "5.0.2".
pub fn version() -> String {
    // SAFETY: lxc_get_version returns a pointer to a static NUL-terminated string.
    unsafe {
        let p = lxc_sys::lxc_get_version();
        if p.is_null() {
            return "unknown".into();
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// A global liblxc configuration item such as `lxc.lxcpath`.
pub fn global_config_item(key: &str) -> Option<String> {
    let k = CString::new(key).ok()?;
    // SAFETY: the key is a valid C string; liblxc returns a pointer it owns
    // (static or cached) or NULL.
    unsafe {
        let p = lxc_sys::lxc_get_global_config_item(k.as_ptr());
        if p.is_null() {
            None
        } else {
            Some(CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }
}

/// Where containers live (`lxc.lxcpath`, /var/lib/lxc on Debian).
pub fn lxcpath() -> String {
    global_config_item("lxc.lxcpath").unwrap_or_else(|| "/var/lib/lxc".into())
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("{s:?} contains a NUL byte")))
}

/// Take ownership of a malloc'ed C string.
///
/// SAFETY: `p` is NULL or a NUL-terminated string allocated with malloc.
unsafe fn owned_string(p: *mut c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let s = CStr::from_ptr(p).to_string_lossy().into_owned();
    libc::free(p.cast());
    Some(s)
}

/// A reference to one container (lxc_container_new / lxc_container_put).
pub struct Container {
    ptr: *mut lxc_sys::lxc_container,
    name: String,
}

// liblxc containers are used from one thread at a time here; the console
// hands the pointer to no other thread.
unsafe impl Send for Container {}

macro_rules! call {
    ($self:ident . $f:ident ( $($arg:expr),* )) => {{
        // SAFETY: `ptr` is a live container from lxc_container_new; every
        // method pointer liblxc fills in is non-null for its lifetime.
        unsafe {
            let f = (*$self.ptr).$f.expect(concat!("liblxc method ", stringify!($f)));
            f($self.ptr $(, $arg)*)
        }
    }};
}

impl Container {
    pub fn open(name: &str, lxcpath: &str) -> Result<Container> {
        let n = cstr(name)?;
        let p = cstr(lxcpath)?;
        // SAFETY: valid C strings; NULL means failure.
        let ptr = unsafe { lxc_sys::lxc_container_new(n.as_ptr(), p.as_ptr()) };
        if ptr.is_null() {
            return Err(Error::unavailable(format!(
                "liblxc cannot open container {name:?} in {lxcpath}"
            )));
        }
        Ok(Container {
            ptr,
            name: name.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// liblxc's last error for this container, if it set one.
    fn last_error(&self) -> Option<String> {
        // SAFETY: error_string is NULL or a string liblxc owns.
        unsafe {
            let p = (*self.ptr).error_string;
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        }
    }

    fn fail(&self, kind: Kind, what: &str) -> Error {
        let mut e = Error::new(kind, format!("{what} container {:?}", self.name));
        if let Some(m) = self.last_error() {
            e = e.caused_by(m);
        }
        e
    }

    pub fn is_defined(&self) -> bool {
        call!(self.is_defined())
    }

    /// STOPPED, STARTING, RUNNING, STOPPING, ABORTING, FREEZING, FROZEN, THAWED.
    pub fn state(&self) -> String {
        let p = call!(self.state());
        if p.is_null() {
            return "UNKNOWN".into();
        }
        // SAFETY: a static string from liblxc's state table.
        unsafe { CStr::from_ptr(p).to_string_lossy().into_owned() }
    }

    pub fn init_pid(&self) -> Option<i32> {
        let pid = call!(self.init_pid());
        (pid > 0).then_some(pid)
    }

    pub fn load_config(&self, path: &Path) -> Result<()> {
        let p = cstr(&path.display().to_string())?;
        if call!(self.load_config(p.as_ptr())) {
            Ok(())
        } else {
            Err(self.fail(Kind::Invalid, "cannot load the configuration of"))
        }
    }

    /// Start the container's init, daemonized.
    pub fn start(&self) -> Result<()> {
        call!(self.want_daemonize(true));
        if call!(self.start(0, std::ptr::null())) {
            Ok(())
        } else {
            Err(self.fail(Kind::Other, "cannot start"))
        }
    }

    /// Send the halt signal; with `timeout` 0, return at once.
    pub fn shutdown(&self, timeout: i32) -> bool {
        call!(self.shutdown(timeout))
    }

    pub fn stop(&self) -> Result<()> {
        if call!(self.stop()) {
            Ok(())
        } else {
            Err(self.fail(Kind::Other, "cannot kill"))
        }
    }

    pub fn reboot(&self) -> Result<()> {
        if call!(self.reboot()) {
            Ok(())
        } else {
            Err(self.fail(Kind::Other, "cannot reboot"))
        }
    }

    pub fn freeze(&self) -> Result<()> {
        if call!(self.freeze()) {
            Ok(())
        } else {
            Err(self.fail(Kind::Other, "cannot freeze"))
        }
    }

    pub fn unfreeze(&self) -> Result<()> {
        if call!(self.unfreeze()) {
            Ok(())
        } else {
            Err(self.fail(Kind::Other, "cannot unfreeze"))
        }
    }

    /// Remove the container: its directory, configuration and root filesystem.
    pub fn destroy(&self) -> Result<()> {
        if call!(self.destroy()) {
            Ok(())
        } else {
            Err(self.fail(Kind::Other, "cannot destroy"))
        }
    }

    /// Set a configuration item in memory only (this start's, not saved).
    pub fn set_config_item(&self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (cstr(key)?, cstr(value)?);
        if call!(self.set_config_item(k.as_ptr(), v.as_ptr())) {
            Ok(())
        } else {
            Err(self.fail(Kind::Invalid, &format!("cannot set {key} of")))
        }
    }

    pub fn config_item(&self, key: &str) -> Option<String> {
        let k = cstr(key).ok()?;
        let len = call!(self.get_config_item(k.as_ptr(), std::ptr::null_mut(), 0));
        if len <= 0 {
            return None;
        }
        let mut buf = vec![0u8; len as usize + 1];
        let n = call!(self.get_config_item(k.as_ptr(), buf.as_mut_ptr().cast(), buf.len() as i32));
        if n < 0 {
            return None;
        }
        buf.truncate(n as usize);
        Some(
            String::from_utf8_lossy(&buf)
                .trim_end_matches('\n')
                .to_string(),
        )
    }

    pub fn cgroup_item(&self, key: &str) -> Option<String> {
        let k = cstr(key).ok()?;
        let mut buf = vec![0u8; 256];
        let n = call!(self.get_cgroup_item(k.as_ptr(), buf.as_mut_ptr().cast(), buf.len() as i32));
        if n <= 0 {
            return None;
        }
        buf.truncate((n as usize).min(255));
        Some(String::from_utf8_lossy(&buf).trim().to_string())
    }

    /// A file descriptor on tty `tty` (or the first free one with -1).
    pub fn console_fd(&self, tty: i32) -> Result<std::fs::File> {
        let mut ttynum = tty;
        let mut ptx: i32 = -1;
        let fd = call!(self.console_getfd(&mut ttynum, &mut ptx));
        if fd < 0 || ptx < 0 {
            return Err(self.fail(Kind::Conflict, "no free console on"));
        }
        // SAFETY: liblxc handed us this descriptor; we own it from now on.
        Ok(unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(ptx) })
    }
}

impl Container {
    /// Run `req` inside the running container as lxc-attach does (every
    /// namespace, the container's cgroup and LSM profile, capabilities
    /// dropped as its init's), with our stdin/stdout/stderr or, with `tty`,
    /// a terminal liblxc allocates and proxies until it closes. Returns
    /// the command's wait status.
    pub fn attach_wait(&self, req: &crate::exec::ExecRequest) -> Result<i32> {
        let owned = |v: &[String]| -> Result<Vec<CString>> { v.iter().map(|s| cstr(s)).collect() };
        let argv = owned(&req.argv)?;
        let env = owned(&req.env)?;
        let cwd = req.cwd.as_deref().map(cstr).transpose()?;
        let mut argv_p: Vec<*mut c_char> = argv.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        argv_p.push(std::ptr::null_mut());
        let mut env_p: Vec<*mut c_char> = env.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        env_p.push(std::ptr::null_mut());
        let mut command = lxc_sys::lxc_attach_command_t {
            program: argv_p[0],
            argv: argv_p.as_mut_ptr(),
        };
        let mut flags = lxc_sys::LXC_ATTACH_DEFAULT as i32;
        if req.tty {
            flags |= lxc_sys::LXC_ATTACH_TERMINAL as i32;
        }
        let (uid, gid) = match &req.user {
            Some(u) => (u.uid, u.gid),
            None => (u32::MAX, u32::MAX), // (uid_t)-1: the init's
        };
        let mut opts = lxc_sys::lxc_attach_options_t {
            attach_flags: flags,
            namespaces: -1,
            personality: -1,
            initial_cwd: cwd
                .as_ref()
                .map_or(std::ptr::null_mut(), |c| c.as_ptr() as *mut c_char),
            uid,
            gid,
            env_policy: lxc_sys::lxc_attach_env_policy_t_LXC_ATTACH_CLEAR_ENV,
            extra_env_vars: env_p.as_mut_ptr(),
            extra_keep_env: std::ptr::null_mut(),
            stdin_fd: 0,
            stdout_fd: 1,
            stderr_fd: 2,
            log_fd: -libc::EBADF,
            lsm_label: std::ptr::null_mut(),
            groups: lxc_sys::lxc_groups_t {
                size: 0,
                list: std::ptr::null_mut(),
            },
        };
        let mut pid: libc::pid_t = -1;
        // SAFETY: every pointer in `opts` and `command` points into the
        // CStrings and vectors above, which outlive the call; liblxc forks
        // and execs in the child and only reads them in this process.
        let ret = call!(self.attach(
            Some(lxc_sys::lxc_attach_run_command),
            (&mut command as *mut lxc_sys::lxc_attach_command_t).cast(),
            &mut opts,
            &mut pid
        ));
        if ret < 0 || pid <= 0 {
            return Err(self.fail(Kind::Other, "cannot attach to"));
        }
        let mut status = 0;
        loop {
            // SAFETY: pid is our child, from attach.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r == pid {
                return Ok(status);
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::other(format!(
                    "cannot wait for the command in container {:?}",
                    self.name
                ))
                .caused_by(err));
            }
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // SAFETY: the reference taken by lxc_container_new.
        unsafe {
            lxc_sys::lxc_container_put(self.ptr);
        }
    }
}

/// Names of every container under `lxcpath`, defined or running.
pub fn list_all(lxcpath: &str) -> Vec<String> {
    let Ok(p) = cstr(lxcpath) else {
        return Vec::new();
    };
    let mut names: *mut *mut c_char = std::ptr::null_mut();
    // SAFETY: liblxc fills `names` with `n` malloc'ed strings in a malloc'ed array.
    unsafe {
        let n = lxc_sys::list_all_containers(p.as_ptr(), &mut names, std::ptr::null_mut());
        let mut out = Vec::new();
        if n > 0 && !names.is_null() {
            for i in 0..n as isize {
                out.extend(owned_string(*names.offset(i)));
            }
        }
        if !names.is_null() {
            libc::free(names.cast());
        }
        out
    }
}
