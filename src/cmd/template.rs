//! `creature template list|show|validate|new`.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::cli::TemplateCommand;
use crate::cmd::Ctx;
use crate::error::{Error, Kind, Result};
use crate::names::{self, What};
use crate::output::Format;
use crate::output::{self, Table};
use crate::template::load::{self, Library, Source};
use crate::template::{resolve, HostLimits};

#[derive(Serialize)]
struct ListRow {
    name: String,
    backend: Option<String>,
    description: String,
    origin: String,
    valid: bool,
}

#[derive(Serialize)]
struct Shown<'a> {
    name: &'a str,
    origin: &'a str,
    chain: &'a [String],
    template: &'a crate::template::schema::Template,
}

pub fn run(ctx: &Ctx, cmd: TemplateCommand) -> Result<()> {
    let format = ctx.global.format;
    match cmd {
        TemplateCommand::List { template_dir } => {
            list(format, &Library::new(template_dir.as_deref()))
        }
        TemplateCommand::Show {
            name,
            resolved,
            set,
            template_dir,
        } => {
            names::check(What::Template, &name)?;
            let lib = Library::new(template_dir.as_deref());
            if resolved || !set.is_empty() {
                let r = resolve::resolve(&lib, &name, &set, HostLimits::local())?;
                let shown = Shown {
                    name: &r.name,
                    origin: &r.chain[0],
                    chain: &r.chain,
                    template: &r.template,
                };
                match format {
                    Format::Json => output::emit(format, &shown, Table::default),
                    _ => output::write_stdout(&format!(
                        "# {} resolved from {}\n{}",
                        r.name,
                        r.chain.join(" <- "),
                        toml::to_string_pretty(&r.template)
                            .map_err(|e| Error::other("cannot render the template").caused_by(e))?
                    )),
                }
            } else {
                let src = lib.find(&name)?;
                match format {
                    Format::Json => output::emit(
                        format,
                        &serde_json::json!({"name": src.name, "origin": src.origin, "text": src.text}),
                        Table::default,
                    ),
                    _ => output::write_stdout(&src.text),
                }
            }
        }
        TemplateCommand::Validate { file } => validate(ctx, &file),
        TemplateCommand::New {
            name,
            from,
            template_dir,
        } => {
            names::check(What::Template, &name)?;
            names::check(What::Template, &from)?;
            let lib = Library::new(template_dir.as_deref());
            let parent = resolve::resolve(&lib, &from, &[], HostLimits::local())?;
            let dir = template_dir.unwrap_or_else(load::system_dir);
            new_template(&dir, &name, &from, &parent.template)
        }
    }
}

fn list(format: Format, lib: &Library) -> Result<()> {
    let rows: Vec<ListRow> = lib
        .names()
        .into_iter()
        .map(
            |(name, origin)| match resolve::resolve(lib, &name, &[], HostLimits::local()) {
                Ok(r) => ListRow {
                    name,
                    backend: Some(r.backend.to_string()),
                    description: r.template.description.clone().unwrap_or_default(),
                    origin,
                    valid: true,
                },
                Err(e) => ListRow {
                    name,
                    backend: None,
                    description: format!("invalid: {}", e.message().lines().next().unwrap_or("")),
                    origin,
                    valid: false,
                },
            },
        )
        .collect();
    output::emit(format, &rows, || {
        let mut t = Table::new(["NAME", "BACKEND", "DESCRIPTION", "FROM"]);
        for r in &rows {
            t.row([
                r.name.clone(),
                r.backend.clone().unwrap_or_else(|| "-".into()),
                r.description.clone(),
                r.origin.clone(),
            ]);
        }
        t
    })
}

fn validate(ctx: &Ctx, file: &Path) -> Result<()> {
    let text = load::read_template_file(file, false)?.expect("missing_ok is false");
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("template")
        .to_string();
    let lib = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => Library::new(None).with_first(dir),
        _ => Library::new(None).with_first(Path::new(".")),
    };
    let src = Source {
        name: stem,
        origin: file.display().to_string(),
        text,
    };
    let r = resolve::resolve_source(&lib, src, &[], HostLimits::local())?;
    if !ctx.global.quiet {
        output::emit(
            ctx.global.format,
            &serde_json::json!({"file": file, "valid": true, "backend": r.backend, "chain": r.chain}),
            || {
                let mut t = Table::new(["FILE", "VALID", "BACKEND", "CHAIN"]);
                t.row([
                    file.display().to_string(),
                    "yes".into(),
                    r.backend.to_string(),
                    r.chain.join(" <- "),
                ]);
                t
            },
        )?;
    }
    Ok(())
}

fn new_template(
    dir: &Path,
    name: &str,
    from: &str,
    parent: &crate::template::schema::Template,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::other(format!("cannot create {}", dir.display())).caused_by(e))?;
    let path = dir.join(format!("{name}.toml"));
    let mut body = toml::Table::new();
    body.insert(
        "description".into(),
        toml::Value::String(format!(
            "Based on {from}: {}",
            parent.description.clone().unwrap_or_default()
        )),
    );
    body.insert("extends".into(), toml::Value::String(from.into()));
    let text = format!(
        "# Created by `creature template new {name} --from {from}`.\n# Keys set here override {from}'s; see creature-template(5).\n{}",
        toml::to_string(&body).map_err(|e| Error::other("cannot render the template").caused_by(e))?
    );
    // create_new: never overwrite an existing template.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                Error::conflict(format!("template {} already exists", path.display()))
            }
            _ => Error::new(Kind::Other, format!("cannot create {}", path.display())).caused_by(e),
        })?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::other(format!("cannot write {}", path.display())).caused_by(e))?;
    output::write_stdout(&format!("{}\n", path.display()))
}
