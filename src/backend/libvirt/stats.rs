//! `virConnectGetAllDomainStats`: state, vCPUs, memory and CPU time of every
//! domain in one call, made here directly: reading the records' typed
//! parameters and freeing them is the only unsafe code.

use std::collections::HashMap;
use std::ffi::CStr;

use virt::connect::Connect;
use virt::sys;

use crate::backend::libvirt::map_error;
use crate::error::Result;

#[derive(Debug, Clone, Default)]
pub struct DomStats {
    pub name: String,
    pub state: Option<i32>,
    pub reason: Option<i32>,
    pub vcpus: Option<u32>,
    pub balloon_kib: Option<u64>,
    pub cpu_time_ns: Option<u64>,
}

/// libvirt's record array, freed with the records in it: the virt crate's
/// `all_domain_stats` frees only the array and leaks every record (and its
/// domain reference), so the call is made here.
struct Records {
    list: *mut sys::virDomainStatsRecordPtr,
    len: usize,
}

impl Records {
    fn get(&self) -> &[sys::virDomainStatsRecordPtr] {
        if self.list.is_null() {
            return &[];
        }
        // SAFETY: libvirt returned `len` record pointers in `list`, which
        // lives until drop.
        unsafe { std::slice::from_raw_parts(self.list, self.len) }
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        if !self.list.is_null() {
            // SAFETY: the NULL-terminated array from virConnectGetAllDomainStats,
            // freed once; it frees each record's domain and parameters too.
            unsafe { sys::virDomainStatsRecordListFree(self.list) }
        }
    }
}

pub fn all(conn: &Connect) -> Result<Vec<DomStats>> {
    let kinds = sys::VIR_DOMAIN_STATS_STATE
        | sys::VIR_DOMAIN_STATS_CPU_TOTAL
        | sys::VIR_DOMAIN_STATS_BALLOON
        | sys::VIR_DOMAIN_STATS_VCPU;
    let mut list: *mut sys::virDomainStatsRecordPtr = std::ptr::null_mut();
    // SAFETY: a live connection and an out-pointer libvirt fills on success.
    let n = unsafe { sys::virConnectGetAllDomainStats(conn.as_ptr(), kinds, &mut list, 0) };
    if n < 0 {
        let e = virt::error::Error::last_error();
        if matches!(
            e.code(),
            virt::error::ErrorNumberEnum::Known(virt::error::ErrorNumber::NoSupport)
        ) {
            return one_by_one(conn);
        }
        return Err(map_error("cannot read domain statistics", e));
    }
    let records = Records {
        list,
        len: n as usize,
    };
    let mut out = Vec::with_capacity(records.len);
    for &rec in records.get() {
        // SAFETY: each record has a domain and `nparams` typed parameters,
        // valid until `records` is dropped; nothing read here outlives it
        // (names and fields are copied).
        unsafe {
            let r = &*rec;
            let name_ptr = sys::virDomainGetName(r.dom);
            let name = if name_ptr.is_null() {
                continue;
            } else {
                CStr::from_ptr(name_ptr).to_string_lossy().into_owned()
            };
            let mut fields: HashMap<String, &sys::virTypedParameter> = HashMap::new();
            for i in 0..r.nparams as isize {
                let p = &*r.params.offset(i);
                let f = CStr::from_ptr(p.field.as_ptr())
                    .to_string_lossy()
                    .into_owned();
                fields.insert(f, p);
            }
            let int = |k: &str| fields.get(k).map(|p| p.value.i);
            let uint = |k: &str| fields.get(k).map(|p| p.value.ui);
            let ull = |k: &str| fields.get(k).map(|p| p.value.ul);
            out.push(DomStats {
                name,
                state: int("state.state"),
                reason: int("state.reason"),
                vcpus: uint("vcpu.current"),
                balloon_kib: ull("balloon.current").or_else(|| ull("balloon.maximum")),
                cpu_time_ns: ull("cpu.time"),
            });
        }
    }
    Ok(out)
}

/// Drivers without the bulk call (libvirt's libxl): each domain's info.
/// Xen's own Domain-0 is the host, not a machine.
fn one_by_one(conn: &Connect) -> Result<Vec<DomStats>> {
    let doms = conn
        .list_all_domains(0)
        .map_err(|e| map_error("cannot list domains", e))?;
    let mut out = Vec::with_capacity(doms.len());
    for d in doms {
        if d.id() == Some(0) {
            continue;
        }
        let (Ok(name), Ok(info)) = (d.name(), d.info()) else {
            continue; // gone meanwhile
        };
        let (mut state, mut reason) = (-1, -1);
        // SAFETY: a live domain and two out-integers.
        if unsafe { sys::virDomainGetState(d.as_ptr(), &mut state, &mut reason, 0) } < 0 {
            continue;
        }
        out.push(DomStats {
            name,
            state: Some(state),
            reason: Some(reason),
            vcpus: Some(info.nr_virt_cpu),
            balloon_kib: Some(info.memory),
            cpu_time_ns: Some(info.cpu_time),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the connection still holds after `f` and the caller's own
    /// reference are gone: every leaked domain keeps one.
    fn refs_left_after(f: impl FnOnce(&Connect)) -> i32 {
        let conn = Connect::open(Some("test:///default")).expect("libvirt's test driver");
        // SAFETY: an extra reference on a live connection, released below.
        let ptr = unsafe { conn.as_ptr() };
        assert_eq!(unsafe { sys::virConnectRef(ptr) }, 0);
        f(&conn);
        drop(conn);
        // SAFETY: the extra reference taken above; the return value is the
        // number of references left after it.
        unsafe { sys::virConnectClose(ptr) }
    }

    #[test]
    fn all_reads_the_test_domain_and_frees_its_records() {
        let left = refs_left_after(|conn| {
            let stats = all(conn).unwrap();
            let test = stats
                .iter()
                .find(|s| s.name == "test")
                .expect("the test driver's domain");
            assert_eq!(test.state, Some(sys::VIR_DOMAIN_RUNNING as i32));
        });
        assert_eq!(left, 0, "domain references leaked by the stats records");
    }
}
