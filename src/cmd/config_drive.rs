//! `creature config-drive`: what a machine's config drive says, shown (never
//! its contents) or changed. The change is recorded now and written at the
//! machine's next start (`seed::drive::refresh`), with a new instance-id.

use serde::Serialize;

use crate::cli::ConfigDriveArgs;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::output::{self, Table};
use crate::seed::{self, build, store};
use crate::store::MachineRecord;

#[derive(Serialize)]
struct View {
    machine: String,
    format: &'static str,
    hostname: String,
    instance_id: Option<String>,
    /// Keys of the default user (counted, not shown).
    default_keys: usize,
    users: Vec<String>,
    /// Paths in the guest of the files it writes.
    files: Vec<String>,
    /// "generated" from the settings, or "file" (a user-data file given whole).
    user_data: &'static str,
    network: bool,
    /// The default user creature's own key reaches (`exec`/`shell` over ssh).
    ssh_user: Option<String>,
}

pub fn run(ctx: &Ctx, rec: &MachineRecord, a: &ConfigDriveArgs) -> Result<()> {
    let dir = &ctx.global.state_dir;
    let name = &rec.name;
    let mut s = store::load(dir, name)?.ok_or_else(|| {
        Error::not_found(format!(
            "machine {name:?} has no config drive (its template had no [cloud_init] or [config_drive], \
             and create had no --ssh-key, --user-data or --inject-file)"
        ))
    })?;
    let change =
        a.hostname.is_some() || !a.ssh_key.is_empty() || a.user_data.is_some() || a.no_user_data;
    if change {
        if let Some(h) = &a.hostname {
            if !crate::names::is_valid(h) {
                return Err(Error::invalid(format!(
                    "--hostname {h:?}: not a valid host name (lower-case letters, digits and '-', at most 63)"
                )));
            }
            s.hostname = h.clone();
        }
        if !a.ssh_key.is_empty() {
            s.default_keys = build::key_files(&a.ssh_key)?;
        }
        if a.no_user_data {
            s.user_data = None;
        }
        if let Some(p) = &a.user_data {
            let what = format!("--user-data {}", p.display());
            s.user_data = Some(build::user_data_file(&what, p, &mut s)?);
        }
        store::save(dir, name, &s)?;
        ctx.say(&format!(
            "changed the config drive of {name}: written at its next start, as a new instance to cloud-init"
        ));
        return Ok(());
    }
    let v = View {
        machine: name.clone(),
        format: s.format.as_str(),
        hostname: s.hostname.clone(),
        instance_id: seed::drive::written_id(dir, name),
        default_keys: s.default_keys.len(),
        users: s.users.iter().map(|u| u.name.clone()).collect(),
        files: s.files.iter().map(|f| f.path.clone()).collect(),
        user_data: if s.user_data.is_some() {
            "file"
        } else {
            "generated"
        },
        network: seed::drive::injects_network(rec.backend),
        ssh_user: s.creature_key.as_ref().and(s.default_user.clone()),
    };
    output::emit(ctx.global.format, &v, || {
        let mut t = Table::new(["KEY", "VALUE"]);
        t.row(["format", v.format]);
        t.row(["hostname", v.hostname.as_str()]);
        t.row(["instance-id", v.instance_id.as_deref().unwrap_or("-")]);
        t.row([
            "default user's keys".to_string(),
            v.default_keys.to_string(),
        ]);
        t.row([
            "users".to_string(),
            if v.users.is_empty() {
                "-".into()
            } else {
                v.users.join(", ")
            },
        ]);
        t.row([
            "files".to_string(),
            if v.files.is_empty() {
                "-".into()
            } else {
                v.files.join(", ")
            },
        ]);
        t.row(["user-data", v.user_data]);
        t.row([
            "exec and shell over ssh".to_string(),
            match &v.ssh_user {
                Some(u) => format!("as {u}, with creature's key for this machine"),
                None => "no (no default user, or a container)".into(),
            },
        ]);
        t.row([
            "network configuration",
            if v.network {
                "yes"
            } else {
                "no (the guest sets up its NICs)"
            },
        ]);
        t
    })
}
