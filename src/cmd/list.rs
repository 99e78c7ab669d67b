//! `creature list`: every machine creature knows, with its record state.
//! Backend reconciliation (running state, foreign and untracked domains)
//! joins as each backend lands; until then the power state is `unknown`.

use serde::Serialize;

use crate::cli::ListArgs;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::matrix::Backend;
use crate::output::{self, Table};
use crate::store::{RecordState, Store};

/// One row of `creature list --format json` (stable shape, docs/json.md).
#[derive(Debug, Serialize)]
pub struct ListRow {
    pub name: String,
    pub host: String,
    pub backend: Backend,
    /// Power state from the backend: running, paused, shut-off, … or unknown.
    pub state: String,
    /// ok, incomplete (create interrupted), missing, untracked or foreign.
    pub record: &'static str,
    pub template: Option<String>,
    pub created_at: String,
}

pub fn run(ctx: &Ctx, args: &ListArgs) -> Result<()> {
    if args.all_hosts {
        return Err(Error::other(
            "`creature list --all-hosts` is not implemented yet",
        ));
    }
    let records = match Store::open_read_only(&ctx.global.state_dir)? {
        Some(s) => s.machines(Some(ctx.host_name()))?,
        None => Vec::new(),
    };
    let rows: Vec<ListRow> = records
        .into_iter()
        .map(|m| ListRow {
            // Filled in by each backend's reconciliation once it lands.
            state: "unknown".into(),
            record: match m.state {
                RecordState::Ready => "ok",
                RecordState::Creating | RecordState::Deleting => "incomplete",
            },
            name: m.name,
            host: m.host,
            backend: m.backend,
            template: m.template,
            created_at: m.created_at,
        })
        .collect();
    output::emit(ctx.global.format, &rows, || {
        let mut t = Table::new(["NAME", "BACKEND", "STATE", "RECORD", "TEMPLATE"]);
        for r in &rows {
            t.row([
                r.name.clone(),
                r.backend.to_string(),
                r.state.clone(),
                r.record.to_string(),
                r.template.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        t
    })
}
