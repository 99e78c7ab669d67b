//! Fibre Channel volumes (#32): an NPIV vHBA made by libvirt from the
//! user's WWNN/WWPN (a `scsi` pool with an `fc_host` adapter), its LUN the
//! volume. Refused before any change on a host without an FC HBA. Not
//! proven on FC hardware: none exists where creature is tested.

use std::path::Path;

use virt::connect::Connect;

use crate::backend::libvirt::fc_xml::{self, Fc};
use crate::backend::libvirt::volume::{forget, Registered};
use crate::backend::libvirt::{map_error, storage};
use crate::error::{Error, Kind, Result};

/// The host's FC HBAs, as the kernel lists them.
pub fn host_has_hba(sysfs: &Path) -> bool {
    std::fs::read_dir(sysfs.join("class/fc_host")).is_ok_and(|mut d| d.next().is_some())
}

/// Exit 6 on a host without an FC HBA, before anything is asked of libvirt.
pub fn require_hba() -> Result<()> {
    if host_has_hba(Path::new("/sys")) {
        return Ok(());
    }
    Err(Error::new(
        Kind::Unavailable,
        "this host has no Fibre Channel HBA (/sys/class/fc_host is empty): an FC volume needs \
         an NPIV-capable HBA on a fabric",
    ))
}

/// Exit 6 on another host without an FC HBA: its libvirt lists no
/// `fc_host` device (this host's sysfs says nothing of that one's).
pub fn require_hba_on(conn: &Connect, host: &str) -> Result<()> {
    let hbas = conn
        .list_all_node_devices(virt::sys::VIR_CONNECT_LIST_NODE_DEVICES_CAP_FC_HOST)
        .map_err(|e| map_error(format!("cannot list the devices of host {host}"), e))?;
    if !hbas.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        Kind::Unavailable,
        format!(
            "host {host} has no Fibre Channel HBA (its libvirt lists no fc_host device): an FC \
             volume needs an NPIV-capable HBA on a fabric"
        ),
    ))
}

/// Make the vHBA and find its LUN; the caller has checked `require_hba`
/// (or `require_hba_on`) before.
pub fn register(conn: &Connect, state_dir: &Path, name: &str, fc: &Fc) -> Result<Registered> {
    let pool = format!("{}-fc-{name}", storage::pool_name(state_dir));
    let p = conn
        .define_storage_pool_xml(&fc_xml::pool(&pool, fc), 0)
        .map_err(|e| map_error(format!("cannot define storage pool {pool}"), e))?;
    let undo = || {
        let _ = forget(conn, &pool);
    };
    if let Err(e) = p.create(0) {
        undo();
        return Err(Error::new(
            Kind::Unavailable,
            format!(
                "cannot create the vHBA {}/{} for {name:?}: {}",
                fc.wwnn,
                fc.wwpn,
                e.message().trim()
            ),
        ));
    }
    let suffix = format!(":{}", fc.lun);
    let found = p
        .list_volumes()
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.ends_with(&suffix));
    let Some(vol) = found else {
        undo();
        return Err(Error::not_found(format!(
            "the vHBA {} sees no LUN {}",
            fc.wwpn, fc.lun
        )));
    };
    let capacity = p
        .lookup_storage_vol_by_name(&vol)
        .and_then(|v| v.info())
        .map(|i| i.capacity)
        .unwrap_or(0);
    Ok(Registered {
        path: format!("{pool}/{vol}"),
        pool,
        capacity,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_hba_is_an_entry_of_fc_host() {
        let d = tempfile::tempdir().unwrap();
        assert!(!super::host_has_hba(d.path()));
        std::fs::create_dir_all(d.path().join("class/fc_host")).unwrap();
        assert!(!super::host_has_hba(d.path()));
        std::fs::create_dir_all(d.path().join("class/fc_host/host3")).unwrap();
        assert!(super::host_has_hba(d.path()));
    }
}
