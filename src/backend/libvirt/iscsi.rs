//! iSCSI volumes (#33, #34) through libvirt: a private secret for the CHAP
//! password (its value handed over through the API, never an argument or
//! a file), an `iscsi-direct` pool per volume, and its LUN as the volume.
//! Nothing is left defined when a step fails.

use std::path::Path;
use std::time::Duration;

use virt::connect::Connect;

use crate::backend::libvirt::iscsi_xml::{self, Initiator, Target};
use crate::backend::libvirt::volume::{forget, Registered};
use crate::backend::libvirt::{map_error, storage};
use crate::error::{Error, Kind, Result};

pub fn pool_name(state_dir: &Path, volume: &str) -> String {
    format!("{}-iscsi-{volume}", storage::pool_name(state_dir))
}

pub(crate) fn secret_usage(pool: &str) -> String {
    format!("creature-{pool}")
}

/// This host's initiator name: creature's, with the host name.
fn initiator() -> String {
    let host: String = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    format!(
        "iqn.2026-12.org.creature:{}",
        if host.is_empty() { "host" } else { &host }
    )
}

pub fn register(
    conn: &Connect,
    state_dir: &Path,
    name: &str,
    t: &Target,
    chap_secret: Option<&[u8]>,
) -> Result<Registered> {
    let pool = pool_name(state_dir, name);
    if conn.lookup_storage_pool_by_name(&pool).is_ok() {
        return Err(Error::conflict(format!(
            "a libvirt storage pool {pool} exists already (left by an earlier creature?); \
             `virsh pool-undefine {pool}` if it is not in use"
        )));
    }
    let usage = secret_usage(&pool);
    let undo = || forget(conn, &pool);
    if let Some(value) = chap_secret {
        let s = conn
            .define_secret_xml(&iscsi_xml::secret(&usage), 0)
            .map_err(|e| map_error("cannot define the CHAP secret in libvirt", e))?;
        if let Err(e) = s.set_value(value, 0) {
            let _ = s.undefine();
            return Err(map_error("cannot store the CHAP secret in libvirt", e));
        }
    }
    // libxl has no network disks: a Xen host logs in with its kernel.
    let own = initiator();
    let by = match conn.driver_type() {
        Ok(t) if t.eq_ignore_ascii_case("xen") => Initiator::Kernel,
        _ => Initiator::Userspace(&own),
    };
    let x = iscsi_xml::pool(&pool, t, by, chap_secret.map(|_| usage.as_str()));
    crate::trace::text(&format!("iSCSI pool of volume {name}"), &x);
    let p = match conn.define_storage_pool_xml(&x, 0) {
        Ok(p) => p,
        Err(e) => {
            let _ = undo();
            return Err(map_error(format!("cannot define storage pool {pool}"), e));
        }
    };
    if let Err(e) = p.create(0) {
        let _ = undo();
        return Err(Error::new(
            Kind::Unavailable,
            format!(
                "cannot log in to iSCSI target {} at {}: {} (a wrong CHAP user or secret, or a target \
                 that is down or does not admit this initiator, {})",
                t.iqn,
                t.portal,
                e.message().trim(),
                match by {
                    Initiator::Userspace(iqn) => iqn,
                    Initiator::Kernel => "the host's own, in its /etc/iscsi/initiatorname.iscsi",
                }
            ),
        ));
    }
    let vol = t.volume();
    let found = || p.lookup_storage_vol_by_name(&vol).and_then(|v| v.info());
    if by == Initiator::Kernel {
        // The kernel scans the target after the login, in the background:
        // the LUN's block device may come a moment after the pool started.
        let seen = crate::wait::poll("waiting for the LUN", Duration::from_secs(20), || {
            if found().is_ok() {
                return Ok(true);
            }
            let _ = p.refresh(0);
            Ok(false)
        });
        if let Err(e) = seen {
            if e.kind() != Kind::Timeout {
                let _ = undo();
                return Err(e);
            }
        }
    }
    let capacity = match found() {
        Ok(i) => i.capacity,
        Err(_) => {
            let _ = undo();
            return Err(Error::not_found(format!(
                "iSCSI target {} at {} has no LUN {}",
                t.iqn, t.portal, t.lun
            )));
        }
    };
    Ok(Registered {
        path: format!("{pool}/{vol}"),
        pool,
        capacity,
    })
}
