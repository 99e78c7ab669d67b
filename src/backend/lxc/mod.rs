//! System containers through liblxc. Only `sys` touches FFI.

pub mod config;
pub mod create;
pub mod debootstrap;
pub mod driver;
pub mod idmap;
pub mod rootfs;
pub mod seed;
pub mod sys;
pub mod volumes;

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::template::schema::{Rootfs, RootfsKind};

/// `image pull TEMPLATE` for a container template: download a debootstrap
/// root filesystem's packages into its cache, so a later create needs no
/// network. None when the root filesystem has nothing to download.
pub fn prefetch(state_dir: &Path, rootfs: &Rootfs, quiet: bool) -> Result<Option<PathBuf>> {
    if rootfs.kind != RootfsKind::Debootstrap {
        return Ok(None);
    }
    let cache = debootstrap::Cache::new(state_dir, debootstrap::Key::of(rootfs));
    cache.download(quiet).map(Some)
}

/// Where a container's console output is kept (`lxc.console.logfile`).
pub fn console_log(container_dir: &Path) -> PathBuf {
    container_dir.join("console.log")
}
