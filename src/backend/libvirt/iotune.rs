//! virDomainSetBlockIoTune / virDomainGetBlockIoTune, which the virt crate
//! does not wrap: typed parameters built with libvirt's own helpers and
//! freed by them; the only unsafe code is here.

use std::ffi::{CStr, CString};

use virt::domain::Domain;
use virt::sys;

use crate::backend::libvirt::map_error;
use crate::error::{Error, Result};
use crate::iotune::{Limits, FIELDS};

/// Live (the running guest) or the persistent definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Live,
    Config,
}

fn flag(scope: Scope) -> u32 {
    match scope {
        Scope::Live => sys::VIR_DOMAIN_AFFECT_LIVE,
        Scope::Config => sys::VIR_DOMAIN_AFFECT_CONFIG,
    }
}

/// Set the given limits of `disk` (the others stay as they are).
pub fn set(dom: &Domain, name: &str, disk: &str, limits: &Limits, scope: Scope) -> Result<()> {
    let disk_c = CString::new(disk).map_err(|_| Error::invalid("a disk name with a NUL byte"))?;
    let mut params: sys::virTypedParameterPtr = std::ptr::null_mut();
    let mut n: i32 = 0;
    let mut max: i32 = 0;
    let result = (|| {
        for (field, v) in FIELDS.iter().zip(limits.values()) {
            let Some(v) = v else { continue };
            let f = CString::new(*field).expect("no NUL in a field name");
            // SAFETY: libvirt grows `params` (n of max used) and copies the name.
            let rc = unsafe {
                sys::virTypedParamsAddULLong(&mut params, &mut n, &mut max, f.as_ptr(), v)
            };
            if rc < 0 {
                return Err(map_error(
                    "cannot build I/O limits",
                    virt::error::Error::last_error(),
                ));
            }
        }
        // SAFETY: a live domain, a C string and the parameters built above.
        let rc = unsafe {
            sys::virDomainSetBlockIoTune(dom.as_ptr(), disk_c.as_ptr(), params, n, flag(scope))
        };
        if rc < 0 {
            return Err(map_error(
                format!("cannot set the I/O limits of disk {disk} of {name:?}"),
                virt::error::Error::last_error(),
            ));
        }
        Ok(())
    })();
    // SAFETY: the array libvirt allocated (NULL when nothing was added).
    unsafe { sys::virTypedParamsFree(params, n) };
    result
}

/// The limits of `disk` now (0 where there is none).
pub fn get(dom: &Domain, name: &str, disk: &str, scope: Scope) -> Result<Limits> {
    let disk_c = CString::new(disk).map_err(|_| Error::invalid("a disk name with a NUL byte"))?;
    let err = |what: &str| {
        map_error(
            format!("cannot read the I/O limits of disk {disk} of {name:?}: {what}"),
            virt::error::Error::last_error(),
        )
    };
    let mut n: i32 = 0;
    // SAFETY: with no array, libvirt says how many parameters there are.
    if unsafe {
        sys::virDomainGetBlockIoTune(
            dom.as_ptr(),
            disk_c.as_ptr(),
            std::ptr::null_mut(),
            &mut n,
            flag(scope),
        )
    } < 0
    {
        return Err(err("count"));
    }
    // SAFETY: virTypedParameter is plain data; zeroed is a valid empty value.
    let mut params: Vec<sys::virTypedParameter> =
        vec![unsafe { std::mem::zeroed() }; n.max(0) as usize];
    // SAFETY: an array of `n` parameters for libvirt to fill.
    let rc = unsafe {
        sys::virDomainGetBlockIoTune(
            dom.as_ptr(),
            disk_c.as_ptr(),
            params.as_mut_ptr(),
            &mut n,
            flag(scope),
        )
    };
    if rc < 0 {
        return Err(err("values"));
    }
    let mut values: [Option<u64>; 6] = [Some(0); 6];
    for p in &params[..n.max(0) as usize] {
        // SAFETY: libvirt NUL-terminates the field name within its array.
        let field = unsafe { CStr::from_ptr(p.field.as_ptr()) }.to_string_lossy();
        if let Some(i) = FIELDS.iter().position(|f| *f == field) {
            if p.type_ == sys::VIR_TYPED_PARAM_ULLONG as i32 {
                // SAFETY: the type says the union holds an unsigned long long.
                values[i] = Some(unsafe { p.value.ul });
            }
        }
    }
    // SAFETY: frees strings libvirt may have put in the parameters (none here, but the
    // contract is to clear), not the Vec's memory.
    unsafe { sys::virTypedParamsClear(params.as_mut_ptr(), n) };
    Ok(Limits::from_values(values))
}
