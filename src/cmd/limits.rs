//! `creature limits`: a machine's disk I/O limits (#22), shown or changed
//! live and persistently.

use serde::Serialize;

use crate::backend::Driver;
use crate::cli::LimitsArgs;
use crate::cmd::Ctx;
use crate::error::Result;
use crate::iotune::Limits;
use crate::output::{self, Table};
use crate::store::MachineRecord;

#[derive(Serialize)]
struct Row {
    disk: String,
    #[serde(flatten)]
    limits: Limits,
}

fn rate(v: Option<u64>, bytes: bool) -> String {
    match v {
        None | Some(0) => "-".into(),
        Some(n) if bytes => format!("{}/s", crate::size::Size(n)),
        Some(n) => format!("{n}/s"),
    }
}

pub fn run(ctx: &Ctx, drv: &dyn Driver, rec: &MachineRecord, a: &LimitsArgs) -> Result<()> {
    let change = a.limits();
    if !change.is_empty() {
        let live = drv.state(&rec.name)?.is_active();
        let disks = drv.set_io_limits(&rec.name, a.disk.as_deref(), &change)?;
        ctx.say(&format!(
            "limited {} ({}): {}",
            rec.name,
            disks.join(", "),
            if live {
                "live and persistent"
            } else {
                "persistent; in force from the next start"
            }
        ));
        return Ok(());
    }
    let rows: Vec<Row> = drv
        .io_limits(&rec.name)?
        .into_iter()
        .filter(|(d, _)| a.disk.as_deref().is_none_or(|x| x == d))
        .map(|(disk, limits)| Row { disk, limits })
        .collect();
    output::emit(ctx.global.format, &rows, || {
        let mut t = Table::new([
            "DISK",
            "TOTAL B/S",
            "READ B/S",
            "WRITE B/S",
            "TOTAL IOPS",
            "READ IOPS",
            "WRITE IOPS",
        ]);
        for r in &rows {
            let l = &r.limits;
            t.row([
                r.disk.clone(),
                rate(l.total_bytes_sec, true),
                rate(l.read_bytes_sec, true),
                rate(l.write_bytes_sec, true),
                rate(l.total_iops_sec, false),
                rate(l.read_iops_sec, false),
                rate(l.write_iops_sec, false),
            ]);
        }
        t
    })
}
