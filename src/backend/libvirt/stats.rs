//! `virConnectGetAllDomainStats`: state, vCPUs, memory and CPU time of every
//! domain in one call. The virt crate returns raw records; reading their
//! typed parameters is the only unsafe code here.

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

pub fn all(conn: &Connect) -> Result<Vec<DomStats>> {
    let kinds = sys::VIR_DOMAIN_STATS_STATE
        | sys::VIR_DOMAIN_STATS_CPU_TOTAL
        | sys::VIR_DOMAIN_STATS_BALLOON
        | sys::VIR_DOMAIN_STATS_VCPU;
    let records = conn
        .all_domain_stats(kinds, 0)
        .map_err(|e| map_error("cannot read domain statistics", e))?;
    let mut out = Vec::with_capacity(records.len());
    for rec in records {
        // SAFETY: libvirt returned these records; each has a domain and
        // `nparams` typed parameters, valid until the record is freed (the
        // virt crate never frees them).
        unsafe {
            let r = &*rec.ptr;
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
