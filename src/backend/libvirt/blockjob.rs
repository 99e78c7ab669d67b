//! Block jobs of a running domain (virt-sys: the virt crate has no
//! wrappers): a commit and a copy, each waited for, switched to when asked
//! (pivot), and cancelled when interrupted or out of time, which leaves
//! the chain as it was.

use std::ffi::CString;
use std::time::{Duration, Instant};

use virt::domain::Domain;
use virt::sys;

use crate::backend::libvirt::map_error;
use crate::error::{Error, Kind, Result};

/// How long a block job may run before creature gives up on it.
const BLOCK_JOB_LIMIT: Duration = Duration::from_secs(3600);

fn c(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("{s:?} contains a NUL byte")))
}

/// Whether a block job runs on `disk`; Err when libvirt cannot say.
fn job_of(d: &Domain, disk: &CString) -> Result<Option<sys::virDomainBlockJobInfo>> {
    // SAFETY: d is a live domain handle, disk a valid C string, info a
    // plain struct libvirt fills.
    let mut info: sys::virDomainBlockJobInfo = unsafe { std::mem::zeroed() };
    let r = unsafe { sys::virDomainGetBlockJobInfo(d.as_ptr(), disk.as_ptr(), &mut info, 0) };
    match r {
        0 => Ok(None),
        r if r > 0 => Ok(Some(info)),
        _ => Err(map_error(
            "cannot read the block job",
            virt::error::Error::last_error(),
        )),
    }
}

fn abort_job(
    d: &Domain,
    disk: &CString,
    flags: u32,
) -> std::result::Result<(), virt::error::Error> {
    // SAFETY: as in job_of.
    let r = unsafe { sys::virDomainBlockJobAbort(d.as_ptr(), disk.as_ptr(), flags) };
    if r < 0 {
        Err(virt::error::Error::last_error())
    } else {
        Ok(())
    }
}

/// Commit `top` (None: the active file, then pivot onto `base`) into
/// `base` on the running machine, and wait for it.
pub fn commit(d: &Domain, disk: &str, base: &str, top: Option<&str>) -> Result<()> {
    let (cdisk, cbase) = (c(disk)?, c(base)?);
    let ctop = top.map(c).transpose()?;
    let flags = if top.is_none() {
        sys::VIR_DOMAIN_BLOCK_COMMIT_ACTIVE
    } else {
        0
    };
    // SAFETY: valid handle and C strings; a null top means the active file.
    let r = unsafe {
        sys::virDomainBlockCommit(
            d.as_ptr(),
            cdisk.as_ptr(),
            cbase.as_ptr(),
            ctop.as_ref().map_or(std::ptr::null(), |t| t.as_ptr()),
            0,
            flags,
        )
    };
    if r < 0 {
        return Err(map_error(
            format!(
                "cannot merge {} into {base}",
                top.unwrap_or("the active file")
            ),
            virt::error::Error::last_error(),
        ));
    }
    wait(d, &cdisk, &format!("merge into {base}"), top.is_none())
}

/// Copy everything `disk` reads into the existing file of `dest_xml` (a
/// `<disk>`), then switch the machine onto it.
pub fn copy(d: &Domain, disk: &str, dest_xml: &str) -> Result<()> {
    let (cdisk, cdest) = (c(disk)?, c(dest_xml)?);
    // SAFETY: valid handle and C strings; no typed parameters.
    let r = unsafe {
        sys::virDomainBlockCopy(
            d.as_ptr(),
            cdisk.as_ptr(),
            cdest.as_ptr(),
            std::ptr::null_mut(),
            0,
            // A persistent domain's copy must be a transient job: a libvirtd
            // restart mid-copy cancels it, the machine still on its old disk.
            sys::VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | sys::VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB,
        )
    };
    if r < 0 {
        return Err(map_error(
            format!("cannot copy {disk}"),
            virt::error::Error::last_error(),
        ));
    }
    wait(d, &cdisk, &format!("copy of {disk}"), true)
}

/// Wait for the job on `disk`; with `pivot`, switch onto its target once
/// it is ready. Interrupted or out of time, the job is cancelled and the
/// machine left on what it had.
fn wait(d: &Domain, cdisk: &CString, what: &str, pivot: bool) -> Result<()> {
    let started = Instant::now();
    let mut pivot_asked = false;
    loop {
        if crate::interrupt::requested() || started.elapsed() > BLOCK_JOB_LIMIT {
            let _ = abort_job(d, cdisk, 0);
            return Err(Error::new(
                Kind::Interrupted,
                format!("{what} cancelled: the machine's disks are as they were"),
            ));
        }
        match job_of(d, cdisk)? {
            None if !pivot || pivot_asked => return Ok(()),
            None => {
                return Err(Error::other(format!(
                    "the {what} ended before it could be switched to"
                )))
            }
            Some(info) if pivot && !pivot_asked && info.end > 0 && info.cur == info.end => {
                // Ready: switch the machine over. Not ready after all is
                // libvirt's "not ready" error: poll again.
                if abort_job(d, cdisk, sys::VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT).is_ok() {
                    pivot_asked = true;
                }
            }
            Some(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
