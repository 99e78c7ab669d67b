//! Keeps libvirt's network filters in step with the store: a filter per
//! security group, one per NIC, the closing rules, and for containers the
//! bindings on their host-side veths. The store says what should be; these
//! functions make libvirt say the same (each is safe to repeat).

use virt::connect::Connect;

use crate::backend::libvirt::nwfilter;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::secgroup::filter;
use crate::store::{Nic, Store};
use crate::template::Resolved;
use crate::undo::Undo;

/// The scope of a state directory's filters: its storage pool's name.
pub fn scope(state_dir: &std::path::Path) -> String {
    crate::backend::libvirt::storage::pool_name(state_dir)
}

/// Whether a NIC's filter is put on its host-side device by a binding
/// rather than referenced from the domain: libvirt serves a qemu domain's
/// `<filterref>` itself, but creates no veth for a container, and libxl
/// applies no filter at all (a xen vif is named, then bound, by creature).
pub fn bound(backend: Backend) -> bool {
    matches!(backend, Backend::Lxc | Backend::Xen)
}

/// Security groups are libvirt's filters, which see the ports of Linux
/// bridges only: a machine with a NIC on a VLAN of an Open vSwitch bridge
/// cannot be in one (its filter would hold nothing back).
pub fn require_filterable(store: &Store, host: &str, machine: &str, nics: &[Nic]) -> Result<()> {
    for n in nics {
        if store.network(host, &n.network)?.is_some_and(|r| r.on_ovs()) {
            return Err(Error::conflict(format!(
                "machine {machine:?} has a NIC on network {}, a VLAN of an Open vSwitch bridge, \
                 whose ports libvirt's filters do not see: it cannot be in a security group",
                n.network
            )));
        }
    }
    Ok(())
}

/// At create, before the machine exists: record how each NIC is filtered
/// (anti-spoofing unless its template or its network turns it off; each
/// NIC has a filter of its own), put the machine in its template's groups,
/// and define its NIC filters, so the domain or the bindings find them.
/// Undone with the create.
#[allow(clippy::too_many_arguments)]
pub fn setup(
    conn: &Connect,
    scope: &str,
    store: &mut Store,
    host: &str,
    name: &str,
    r: &Resolved,
    nics: &[Nic],
    undo: &mut Undo,
) -> Result<()> {
    if !r.template.security_groups.is_empty() {
        require_filterable(store, host, name, nics)?;
    }
    for (n, want) in nics.iter().zip(r.template.nics.iter()) {
        let net_antispoof = store
            .network(host, &n.network)?
            .is_none_or(|net| net.antispoof);
        store.set_nic_filtering(
            host,
            name,
            n.index,
            net_antispoof && want.antispoof != Some(false),
            true,
        )?;
    }
    for g in &r.template.security_groups {
        store.attach_secgroup(host, name, g)?;
    }
    if nics.is_empty() {
        return Ok(());
    }
    {
        let (c, s, m, count) = (
            conn.clone(),
            scope.to_string(),
            name.to_string(),
            nics.len(),
        );
        undo.push("its network filters", move || {
            remove_machine(&c, &s, &m, count)
        });
    }
    sync_machine(conn, scope, store, host, name)?;
    sync_referencing(conn, scope, store, &r.template.security_groups)
}

/// Define a group's filter from its rules, remote groups made addresses.
pub fn sync_group(conn: &Connect, scope: &str, store: &Store, group: &str) -> Result<()> {
    let rec = store
        .secgroup(group)?
        .ok_or_else(|| crate::store::group_not_found(group))?;
    let mut members = std::collections::BTreeMap::new();
    for r in &rec.rules {
        if let crate::secgroup::Remote::Group(g) = &r.remote {
            if !members.contains_key(g) {
                members.insert(g.clone(), store.secgroup_member_ips(g)?);
            }
        }
    }
    let resolved: Vec<filter::Resolved<'_>> = rec
        .rules
        .iter()
        .map(|r| filter::resolve(r, |g| members.get(g).cloned().unwrap_or_default()))
        .collect();
    nwfilter::define(
        conn,
        &filter::group_filter_name(scope, group),
        &filter::group_filter(scope, group, &resolved),
    )
}

/// Groups whose rules admit members of `groups`: their filters list the
/// members' addresses, which just changed.
pub fn sync_referencing(
    conn: &Connect,
    scope: &str,
    store: &Store,
    groups: &[String],
) -> Result<()> {
    let mut done = std::collections::BTreeSet::new();
    for g in groups {
        for r in store.secgroups_referencing(g)? {
            if done.insert(r.clone()) {
                sync_group(conn, scope, store, &r)?;
            }
        }
    }
    Ok(())
}

pub fn ensure_closing(conn: &Connect) -> Result<()> {
    nwfilter::define(conn, filter::CLOSING, &filter::closing_filter())
}

/// Define the filter of each of the machine's NICs that references its own:
/// anti-spoofing as recorded, then its groups (each group's filter and the
/// closing rules defined first, so nothing references what is missing).
pub fn sync_machine(
    conn: &Connect,
    scope: &str,
    store: &Store,
    host: &str,
    machine: &str,
) -> Result<()> {
    let groups = store.machine_secgroups(host, machine)?;
    if !groups.is_empty() {
        ensure_closing(conn)?;
        for g in &groups {
            if !nwfilter::exists(conn, &filter::group_filter_name(scope, g))? {
                sync_group(conn, scope, store, g)?;
            }
        }
    }
    for (i, antispoof, own) in store.nic_filtering(host, machine)? {
        if own {
            let i = i as usize;
            nwfilter::define(
                conn,
                &filter::nic_filter_name(scope, machine, i),
                &filter::nic_filter(scope, machine, i, antispoof, &groups),
            )?;
        }
    }
    Ok(())
}

/// Remove the NIC filters of a machine being deleted.
pub fn remove_machine(conn: &Connect, scope: &str, machine: &str, nics: usize) -> Result<()> {
    for i in 0..nics {
        nwfilter::undefine(conn, &filter::nic_filter_name(scope, machine, i))?;
    }
    Ok(())
}

/// Bind each NIC filter of a container to its host-side veth before the
/// container starts, so its first frame is already filtered. libvirt puts
/// rules on an interface that exists, by its name; the rules then hold for
/// whatever interface has that name. So a placeholder of that name stands
/// in while the binding is made, and liblxc's veth takes the name after.
/// Called for a stopped container only: an interface of that name is then a
/// placeholder left by a killed start, and is replaced.
pub fn bind_container(conn: &Connect, scope: &str, machine: &str, nics: &[Nic]) -> Result<()> {
    let del = |dev: &str| {
        crate::tool::run(
            "removing the placeholder of the container's veth",
            "ip",
            &["link", "del", dev],
        )
        .map(|_| ())
    };
    for n in nics {
        let i = n.index as usize;
        let dev = filter::veth_name(scope, machine, i);
        nwfilter::unbind(conn, &dev)?;
        if std::path::Path::new("/sys/class/net").join(&dev).exists() {
            del(&dev)?;
        }
        // A veth pair: these hosts' kernels have no dummy interfaces.
        let peer = format!("{dev}p");
        crate::tool::run(
            "a placeholder for the container's veth",
            "ip",
            &["link", "add", &dev, "type", "veth", "peer", "name", &peer],
        )?;
        let bound = nwfilter::bind(
            conn,
            &dev,
            &filter::binding(scope, machine, i, &dev, &n.mac, n.ip.as_deref()),
        );
        del(&dev)?;
        bound?;
    }
    Ok(())
}

/// The machine's NICs that have a filter of their own, from the records.
pub fn filtered_nics(store: &Store, host: &str, machine: &str) -> Result<Vec<Nic>> {
    let own: Vec<u32> = store
        .nic_filtering(host, machine)?
        .into_iter()
        .filter(|(_, _, own)| *own)
        .map(|(i, _, _)| i)
        .collect();
    Ok(store
        .nics(host, machine)?
        .into_iter()
        .filter(|n| own.contains(&n.index))
        .collect())
}

/// Bind each NIC filter of a xen domU to its vif in dom0, while the domU is
/// paused before its first instruction: libxl made the vifs with the names
/// creature gave them (`<target dev>`), and the rules, made by name, hold
/// for those names across reboots. A binding left by an earlier run is
/// replaced.
pub fn bind_vifs(conn: &Connect, scope: &str, machine: &str, nics: &[Nic]) -> Result<()> {
    for n in nics {
        let i = n.index as usize;
        let dev = filter::veth_name(scope, machine, i);
        nwfilter::unbind(conn, &dev)?;
        nwfilter::bind(
            conn,
            &dev,
            &filter::binding(scope, machine, i, &dev, &n.mac, n.ip.as_deref()),
        )?;
    }
    Ok(())
}

/// Remove a container's or a xen domU's bindings (its host-side devices
/// may be gone already).
pub fn unbind_container(conn: &Connect, scope: &str, machine: &str, nics: usize) -> Result<()> {
    for i in 0..nics {
        nwfilter::unbind(conn, &filter::veth_name(scope, machine, i))?;
    }
    Ok(())
}
