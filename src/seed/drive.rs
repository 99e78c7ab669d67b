//! A machine's seed on its way to the guest: recorded at create, rendered
//! with the machine's NICs as creature has them now, and written by the
//! backend's driver; at each start it is rendered again and rewritten only
//! when what it says changed.

use std::path::Path;

use super::{build, render, store, Rendered, Seed};
use crate::backend::{Backend, Driver};
use crate::error::Result;
use crate::matrix::Feature;
use crate::store::Store;
use crate::undo::Undo;

/// Whether the backend's guests are told their network configuration (#25;
/// elsewhere the guest sets up its NICs by itself).
pub fn injects_network(backend: Backend) -> bool {
    Feature::InjectNetworking.effective(backend).allowed()
}

fn rendered(
    store: &Store,
    host: &str,
    name: &str,
    backend: Backend,
    seed: &Seed,
) -> Result<Rendered> {
    let nics = if injects_network(backend) {
        Some(build::nics(store, host, &store.nics(host, name)?)?)
    } else {
        None
    };
    Ok(render(name, seed, nics.as_deref()))
}

fn id_file(state_dir: &Path, name: &str) -> std::path::PathBuf {
    store::dir(state_dir, name).join("instance-id")
}

/// The instance-id the guest was last given.
pub fn written_id(state_dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(id_file(state_dir, name))
        .ok()
        .map(|s| s.trim().to_string())
}

fn write(drv: &dyn Driver, state_dir: &Path, name: &str, r: &Rendered) -> Result<()> {
    drv.write_seed(name, r)?;
    // A new instance makes new host keys: what ssh learnt of the old ones goes.
    let _ = std::fs::remove_file(known_hosts(state_dir, name));
    let p = id_file(state_dir, name);
    let mut f = crate::statedir::rewrite(&p, 0o600)?;
    std::io::Write::write_all(&mut f, r.instance_id.as_bytes()).map_err(|e| {
        crate::statedir::io_error(
            crate::error::Kind::Other,
            &p,
            format!("cannot write {}", p.display()),
            e,
        )
    })
}

/// At create: record the seed and write it; undone with the machine.
#[allow(clippy::too_many_arguments)]
pub fn install(
    drv: &dyn Driver,
    state_dir: &Path,
    store: &Store,
    host: &str,
    name: &str,
    seed: &Seed,
    undo: &mut Undo,
) -> Result<Rendered> {
    store::save(state_dir, name, seed)?;
    let (dir, n) = (state_dir.to_path_buf(), name.to_string());
    undo.push(format!("remove the seed of {name}"), move || {
        store::remove(&dir, &n)
    });
    let mut seed = seed.clone();
    if seed.default_user.is_some() && drv.backend() != Backend::Lxc {
        seed.creature_key = Some(make_key(state_dir, name)?);
        store::save(state_dir, name, &seed)?;
    }
    let r = rendered(store, host, name, drv.backend(), &seed)?;
    write(drv, state_dir, name, &r)?;
    Ok(r)
}

/// creature's own key for the machine (`exec`/`shell` over ssh).
pub fn key_path(state_dir: &Path, name: &str) -> std::path::PathBuf {
    store::dir(state_dir, name).join("ssh_key")
}

/// What ssh learnt of the guest's host keys.
pub fn known_hosts(state_dir: &Path, name: &str) -> std::path::PathBuf {
    store::dir(state_dir, name).join("known_hosts")
}

/// A new key pair for the machine (ssh-keygen, no passphrase: it is 0600 in
/// a directory only root reaches); its public half.
fn make_key(state_dir: &Path, name: &str) -> Result<String> {
    let key = key_path(state_dir, name);
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    let k = key
        .to_str()
        .ok_or_else(|| crate::error::Error::invalid("the state directory's path is not UTF-8"))?;
    crate::tool::run(
        "cannot make the machine's ssh key",
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            &format!("creature@{name}"),
            "-f",
            k,
        ],
    )?;
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).map_err(|e| {
        crate::error::Error::other("cannot read the machine's ssh key").caused_by(e)
    })?;
    Ok(pubkey.trim().to_string())
}

/// Before a start: rewrite the seed when what it says changed (the
/// machine's addresses, say). True when it was rewritten.
pub fn refresh(drv: &dyn Driver, state_dir: &Path, host: &str, name: &str) -> Result<bool> {
    let Some(seed) = store::load(state_dir, name)? else {
        return Ok(false);
    };
    let Some(st) = Store::open_read_only(state_dir)? else {
        return Ok(false);
    };
    let r = rendered(&st, host, name, drv.backend(), &seed)?;
    if written_id(state_dir, name).as_deref() == Some(r.instance_id.as_str())
        && drive_present(drv.backend(), state_dir, name)
    {
        return Ok(false);
    }
    write(drv, state_dir, name, &r)?;
    Ok(true)
}

/// Write the recorded seed again, whatever was written before (a machine
/// rebuilt on another host). False when it has none.
pub fn rewrite(
    drv: &dyn Driver,
    state_dir: &Path,
    store: &Store,
    host: &str,
    name: &str,
) -> Result<bool> {
    let Some(seed) = store::load(state_dir, name)? else {
        return Ok(false);
    };
    let r = rendered(store, host, name, drv.backend(), &seed)?;
    write(drv, state_dir, name, &r)?;
    Ok(true)
}

/// A VM's drive is a file creature keeps; a container's seed lives in its
/// root filesystem, checked by its driver.
fn drive_present(backend: Backend, state_dir: &Path, name: &str) -> bool {
    backend == Backend::Lxc || store::iso(state_dir, name).exists()
}
