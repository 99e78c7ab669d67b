//! libvirt's network filters and filter bindings (virt-sys: the virt crate
//! wraps neither their definition nor bindings). Every call names what it
//! was for in its error.

use std::ffi::CString;

use virt::connect::Connect;
use virt::nwfilter::NWFilter;
use virt::sys;

use crate::backend::libvirt::map_error;
use crate::error::{Error, Kind, Result};

fn c(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("{s:?} contains a NUL byte")))
}

fn missing(e: &virt::error::Error) -> bool {
    matches!(
        e.code(),
        virt::error::ErrorNumberEnum::Known(
            virt::error::ErrorNumber::NoNwfilter | virt::error::ErrorNumber::NoNwfilterBinding
        )
    )
}

/// Define (or redefine: libvirt then updates every NIC using it, live).
pub fn define(conn: &Connect, name: &str, xml: &str) -> Result<()> {
    let x = c(xml)?;
    crate::trace::text(&format!("nwfilter {name}"), xml);
    // SAFETY: conn is open, x a valid C string; the returned handle is
    // owned by the NWFilter and freed when it drops.
    let p = unsafe { sys::virNWFilterDefineXML(conn.as_ptr(), x.as_ptr()) };
    if p.is_null() {
        return Err(map_error(
            format!("cannot define network filter {name}"),
            virt::error::Error::last_error(),
        ));
    }
    drop(unsafe { NWFilter::from_ptr(p) });
    Ok(())
}

/// Remove a filter; one that is not there is fine.
pub fn undefine(conn: &Connect, name: &str) -> Result<()> {
    let n = c(name)?;
    // SAFETY: as in define.
    let p = unsafe { sys::virNWFilterLookupByName(conn.as_ptr(), n.as_ptr()) };
    if p.is_null() {
        let e = virt::error::Error::last_error();
        return if missing(&e) {
            Ok(())
        } else {
            Err(map_error(format!("cannot find network filter {name}"), e))
        };
    }
    let f = unsafe { NWFilter::from_ptr(p) };
    f.undefine()
        .map_err(|e| map_error(format!("cannot remove network filter {name}"), e))
}

/// Whether a filter exists.
pub fn exists(conn: &Connect, name: &str) -> Result<bool> {
    let n = c(name)?;
    // SAFETY: as in define.
    let p = unsafe { sys::virNWFilterLookupByName(conn.as_ptr(), n.as_ptr()) };
    if p.is_null() {
        let e = virt::error::Error::last_error();
        return if missing(&e) {
            Ok(false)
        } else {
            Err(map_error(format!("cannot find network filter {name}"), e))
        };
    }
    drop(unsafe { NWFilter::from_ptr(p) });
    Ok(true)
}

/// Put a filter on a host interface by name (a container's veth).
pub fn bind(conn: &Connect, portdev: &str, xml: &str) -> Result<()> {
    let x = c(xml)?;
    crate::trace::text(&format!("nwfilter binding on {portdev}"), xml);
    // SAFETY: conn is open, x a valid C string; the handle is freed here.
    let p = unsafe { sys::virNWFilterBindingCreateXML(conn.as_ptr(), x.as_ptr(), 0) };
    if p.is_null() {
        return Err(map_error(
            format!("cannot bind a network filter to {portdev}"),
            virt::error::Error::last_error(),
        ));
    }
    unsafe { sys::virNWFilterBindingFree(p) };
    Ok(())
}

/// Remove the binding of `portdev`; none is fine.
pub fn unbind(conn: &Connect, portdev: &str) -> Result<()> {
    let d = c(portdev)?;
    // SAFETY: as in bind.
    let p = unsafe { sys::virNWFilterBindingLookupByPortDev(conn.as_ptr(), d.as_ptr()) };
    if p.is_null() {
        let e = virt::error::Error::last_error();
        return if missing(&e) {
            Ok(())
        } else {
            Err(map_error(
                format!("cannot find the filter binding of {portdev}"),
                e,
            ))
        };
    }
    let r = unsafe { sys::virNWFilterBindingDelete(p) };
    let e = (r < 0).then(virt::error::Error::last_error);
    unsafe { sys::virNWFilterBindingFree(p) };
    match e {
        Some(e) if !missing(&e) => Err(map_error(
            format!("cannot remove the filter binding of {portdev}"),
            e,
        )),
        _ => Ok(()),
    }
}

/// The filters of one scope (a state directory) that exist, for `repair`.
pub fn of_scope(conn: &Connect, scope: &str) -> Result<Vec<String>> {
    let prefix = format!("{scope}.");
    let mut v: Vec<String> = conn
        .list_nw_filters()
        .map_err(|e| map_error("cannot list network filters", e))?
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    v.sort();
    Ok(v)
}

/// Refuse a filter that is not there (libvirt would only say so at start).
pub fn require(conn: &Connect, name: &str) -> Result<()> {
    if exists(conn, name)? {
        Ok(())
    } else {
        Err(Error::new(
            Kind::NotFound,
            format!(
                "network filter {name} is not defined in libvirt (`creature repair` redefines it)"
            ),
        ))
    }
}

/// Every filter binding: (port device, filter name).
pub fn bindings(conn: &Connect) -> Result<Vec<(String, String)>> {
    let mut list: *mut sys::virNWFilterBindingPtr = std::ptr::null_mut();
    // SAFETY: conn is open; libvirt allocates `list` with `n` handles, each
    // freed below, then the array itself.
    let n = unsafe { sys::virConnectListAllNWFilterBindings(conn.as_ptr(), &mut list, 0) };
    if n < 0 {
        return Err(map_error(
            "cannot list network filter bindings",
            virt::error::Error::last_error(),
        ));
    }
    let text = |p: *const std::os::raw::c_char| {
        if p.is_null() {
            String::new()
        } else {
            // SAFETY: libvirt returns a NUL-terminated string it owns.
            unsafe { std::ffi::CStr::from_ptr(p) }
                .to_string_lossy()
                .into_owned()
        }
    };
    let mut out = Vec::new();
    for i in 0..n as usize {
        // SAFETY: i < n, each element a valid binding handle.
        let b = unsafe { *list.add(i) };
        let dev = text(unsafe { sys::virNWFilterBindingGetPortDev(b) });
        let filter = text(unsafe { sys::virNWFilterBindingGetFilterName(b) });
        unsafe { sys::virNWFilterBindingFree(b) };
        out.push((dev, filter));
    }
    if !list.is_null() {
        // SAFETY: the array libvirt allocated with malloc.
        unsafe { libc::free(list.cast()) };
    }
    Ok(out)
}
