//! The one place that calls liblxc's C API. Everything above it sees safe
//! Rust values and creature errors.

use std::ffi::{CStr, CString};

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
