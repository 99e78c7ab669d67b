//! Rendering of read verbs' results: the same serde structs become an aligned
//! table or JSON. Colors only on a terminal and never with NO_COLOR.

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::error::{Error, Kind, Result};

/// How a read verb prints its result (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    // Only `creature matrix` renders it: the Markdown of docs/support-matrix.md.
    Markdown,
}

/// An aligned text table.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Table {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self, bold_header: bool) -> String {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String, bold: bool| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate().take(cols) {
                // Control characters from backends must not reach the terminal.
                let c: String = c
                    .chars()
                    .map(|ch| if ch.is_control() { '?' } else { ch })
                    .collect();
                if i + 1 < cols {
                    let pad = widths[i] - c.chars().count();
                    l.push_str(&c);
                    l.push_str(&" ".repeat(pad + 2));
                } else {
                    l.push_str(&c);
                }
            }
            let l = l.trim_end();
            if bold {
                out.push_str("\x1b[1m");
                out.push_str(l);
                out.push_str("\x1b[0m");
            } else {
                out.push_str(l);
            }
            out.push('\n');
        };
        line(&self.headers, &mut out, bold_header);
        for r in &self.rows {
            line(r, &mut out, false);
        }
        out
    }
}

/// Whether stdout may carry colors: a terminal and no NO_COLOR.
pub fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Print a result as a table or JSON.
pub fn emit<T: Serialize>(format: Format, value: &T, table: impl FnOnce() -> Table) -> Result<()> {
    let text = match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(value)
                .map_err(|e| Error::other("cannot render JSON").caused_by(e))?;
            s.push('\n');
            s
        }
        Format::Table => table().render(color()),
        Format::Markdown => {
            return Err(Error::invalid(
                "--format markdown is only for `creature matrix`; use table or json",
            ))
        }
    };
    write_stdout(&text)
}

/// Write to stdout; a closed pipe (`creature list | head`) is not an error.
pub fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::new(Kind::Other, "cannot write to stdout").caused_by(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_trailing_space_is_trimmed() {
        let mut t = Table::new(["NAME", "STATE"]);
        t.row(["a", "running"]);
        t.row(["longer-name", ""]);
        assert_eq!(
            t.render(false),
            "NAME         STATE\na            running\nlonger-name\n"
        );
    }

    #[test]
    fn control_characters_are_neutralised() {
        let mut t = Table::new(["X"]);
        t.row(["a\x1b[31mb"]);
        assert_eq!(t.render(false), "X\na?[31mb\n");
    }
}
