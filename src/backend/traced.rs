//! A driver that tells (`-v`) each call it passes on to the real one, with
//! its duration: one place for every backend, so no call is missed.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::backend::{
    Backend, Console, CreateJob, Details, Driver, ExecSpec, Observed, PowerState,
};
use crate::error::Result;
use crate::store::Store;
use crate::trace;
use crate::undo::Undo;

pub struct Traced(pub Box<dyn Driver>);

impl Traced {
    fn t<T>(&self, op: &str, name: &str, f: impl FnOnce(&dyn Driver) -> Result<T>) -> Result<T> {
        let b = self.0.backend();
        trace::call(|| format!("{b}: {op} {name}"), || f(self.0.as_ref()))
    }
}

impl Driver for Traced {
    fn backend(&self) -> Backend {
        self.0.backend()
    }
    fn state(&self, name: &str) -> Result<PowerState> {
        self.t("state", name, |d| d.state(name))
    }
    fn ensure_free(&self, name: &str) -> Result<()> {
        self.t("ensure_free", name, |d| d.ensure_free(name))
    }
    fn create(&self, job: &CreateJob<'_>, store: &mut Store, undo: &mut Undo) -> Result<()> {
        self.t("create", job.name, |d| d.create(job, store, undo))
    }
    fn start(&self, name: &str) -> Result<()> {
        self.t("start", name, |d| d.start(name))
    }
    fn screenshot(&self, name: &str) -> Result<(String, Vec<u8>)> {
        self.t("screenshot", name, |d| d.screenshot(name))
    }
    fn set_display_password(
        &self,
        name: &str,
        display: &crate::store::DisplayRecord,
    ) -> Result<bool> {
        self.t("set_display_password", name, |d| {
            d.set_display_password(name, display)
        })
    }
    fn live_xml(&self, name: &str) -> Result<String> {
        self.t("live_xml", name, |d| d.live_xml(name))
    }
    fn write_seed(&self, name: &str, seed: &crate::seed::Rendered) -> Result<()> {
        self.t("write_seed", name, |d| d.write_seed(name, seed))
    }
    fn request_shutdown(&self, name: &str) -> Result<()> {
        self.t("request_shutdown", name, |d| d.request_shutdown(name))
    }
    fn force_off(&self, name: &str) -> Result<()> {
        self.t("force_off", name, |d| d.force_off(name))
    }
    fn reboot(&self, name: &str) -> Result<()> {
        self.t("reboot", name, |d| d.reboot(name))
    }
    fn pause(&self, name: &str) -> Result<()> {
        self.t("pause", name, |d| d.pause(name))
    }
    fn unpause(&self, name: &str) -> Result<()> {
        self.t("unpause", name, |d| d.unpause(name))
    }
    fn suspend(&self, name: &str) -> Result<()> {
        self.t("suspend", name, |d| d.suspend(name))
    }
    fn restore(&self, name: &str) -> Result<()> {
        self.t("restore", name, |d| d.restore(name))
    }
    fn remove(&self, name: &str) -> Result<Vec<String>> {
        self.t("remove", name, |d| d.remove(name))
    }
    fn details(&self, name: &str) -> Result<Details> {
        self.t("details", name, |d| d.details(name))
    }
    fn observe(&self, known: &BTreeSet<String>) -> Result<Vec<Observed>> {
        self.t("observe", "(all)", |d| d.observe(known))
    }
    fn console(&self, name: &str) -> Result<Console> {
        self.t("console", name, |d| d.console(name))
    }
    fn exec(&self, name: &str, spec: &ExecSpec) -> Result<i32> {
        self.t("exec", name, |d| d.exec(name, spec))
    }
    fn resize(
        &self,
        name: &str,
        req: &crate::resize::Request,
    ) -> Result<(Vec<String>, Vec<String>)> {
        self.t("resize", name, |d| d.resize(name, req))
    }
    fn snapshot_graph(&self, name: &str) -> Result<crate::snapshot::Graph> {
        self.t("snapshot_graph", name, |d| d.snapshot_graph(name))
    }
    fn snapshot_take(
        &self,
        name: &str,
        snap: &str,
        memory: Option<&std::path::Path>,
    ) -> Result<Vec<(String, String)>> {
        self.t("snapshot_take", name, |d| {
            d.snapshot_take(name, snap, memory)
        })
    }
    fn snapshot_steps(&self, name: &str, steps: &[crate::snapshot::Step]) -> Result<()> {
        self.t("snapshot_steps", name, |d| d.snapshot_steps(name, steps))
    }
    fn snapshot_revert(
        &self,
        name: &str,
        points: &[(String, String)],
        memory: Option<&std::path::Path>,
        paused: bool,
        start: bool,
    ) -> Result<()> {
        self.t("snapshot_revert", name, |d| {
            d.snapshot_revert(name, points, memory, paused, start)
        })
    }
    fn used_targets(&self, name: &str) -> Result<Vec<String>> {
        self.t("used_targets", name, |d| d.used_targets(name))
    }
    fn attach_volume(&self, name: &str, disk: &crate::backend::VolumeDisk) -> Result<String> {
        self.t("attach_volume", name, |d| d.attach_volume(name, disk))
    }
    fn detach_volume(&self, name: &str, path: &str) -> Result<String> {
        self.t("detach_volume", name, |d| d.detach_volume(name, path))
    }
    fn swap_volume(
        &self,
        name: &str,
        old: &str,
        new: &str,
        new_format: &str,
        quiet: bool,
    ) -> Result<String> {
        self.t("swap_volume", name, |d| {
            d.swap_volume(name, old, new, new_format, quiet)
        })
    }
    fn rescue(&self, name: &str, boot: &crate::backend::RescueBoot) -> Result<()> {
        self.t("rescue", name, |d| d.rescue(name, boot))
    }
    fn unrescue(&self, name: &str) -> Result<()> {
        self.t("unrescue", name, |d| d.unrescue(name))
    }
    fn io_limits(&self, name: &str) -> Result<Vec<(String, crate::iotune::Limits)>> {
        self.t("io_limits", name, |d| d.io_limits(name))
    }
    fn set_io_limits(
        &self,
        name: &str,
        disk: Option<&str>,
        limits: &crate::iotune::Limits,
    ) -> Result<Vec<String>> {
        self.t("set_io_limits", name, |d| {
            d.set_io_limits(name, disk, limits)
        })
    }
    fn serial_log(&self, name: &str) -> Result<PathBuf> {
        self.t("serial_log", name, |d| d.serial_log(name))
    }
}
