//! `creature matrix`: Nova's cell beside creature's effective cell, as a
//! table, JSON or the Markdown of docs/support-matrix.md.

use crate::backend::Backend;
use crate::cli::MatrixArgs;
use crate::error::{Error, Result};
use crate::matrix::view::{markdown, rows, show};
use crate::matrix::Feature;
use crate::output::{self, Format, Table};

pub fn run(args: &MatrixArgs, format: Format) -> Result<()> {
    let backends: Vec<Backend> = match args.backend {
        Some(b) => vec![b],
        None => Backend::ALL.to_vec(),
    };
    let features: Vec<Feature> = match &args.feature {
        Some(f) => {
            let found = Feature::parse(f).or_else(|| {
                f.parse::<u8>()
                    .ok()
                    .and_then(|n| Feature::ALL.iter().copied().find(|x| x.number() == n))
            });
            vec![found.ok_or_else(|| {
                Error::invalid(format!(
                    "unknown feature {f:?}: use an id such as `suspend` or a row number 1-40 (see `creature matrix`)"
                ))
            })?]
        }
        None => Feature::ALL.to_vec(),
    };
    if format == Format::Markdown {
        if args.backend.is_some() || args.feature.is_some() {
            return Err(Error::invalid(
                "--format markdown renders the whole matrix; drop --backend/--feature",
            ));
        }
        return output::write_stdout(&markdown());
    }
    let rows = rows(&features, &backends);
    output::emit(format, &rows, || {
        let mut headers = vec!["#".to_string(), "FEATURE".into(), "STATUS".into()];
        headers.extend(backends.iter().map(|b| b.as_str().to_uppercase()));
        let mut t = Table::new(headers);
        for r in &rows {
            let mut cells = vec![r.number.to_string(), r.id.to_string(), r.status.clone()];
            cells.extend(r.cells.iter().map(show));
            t.row(cells);
        }
        t
    })
}
