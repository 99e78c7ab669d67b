//! Makes generated man pages pass `mandoc -Tlint` with nothing to say:
//! clap_mangen writes `.br` around blank lines (which roff reads as `.sp`),
//! trailing blanks and text lines of any length. This rewrites only layout:
//! line breaks between words and paragraph macros, never a word.

const WIDTH: usize = 80;

/// The page with blank-line breaks collapsed, trailing blanks gone and
/// text lines wrapped at 80 bytes.
pub fn clean(page: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut pending: Option<&'static str> = None; // a break waiting for text
    for raw in page.lines() {
        let line = raw.trim_end();
        if line.is_empty() || line == ".br" || line == ".sp" {
            // A blank line is a paragraph space; several breaks are one.
            pending = Some(if line == ".br" && pending != Some(".sp") {
                ".br"
            } else {
                ".sp"
            });
            continue;
        }
        if let Some(b) = pending.take() {
            // A break right before a macro that breaks anyway says nothing.
            let breaks = [
                ".TP", ".IP", ".PP", ".SH", ".SS", ".RS", ".RE", ".TH", ".LP", ".P",
            ];
            let next_breaks = breaks
                .iter()
                .any(|m| line == *m || line.starts_with(&format!("{m} ")));
            let after_break = out.last().is_some_and(|l| {
                breaks
                    .iter()
                    .any(|m| l == m || l.starts_with(&format!("{m} ")))
            });
            if !next_breaks && !after_break && !out.is_empty() {
                out.push(b.to_string());
            }
        }
        if line.starts_with('.') || line.starts_with('\'') {
            out.push(line.to_string());
        } else {
            wrap(line, &mut out);
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// Split a text line at spaces so no piece is longer than WIDTH (a word
/// longer than that stays whole); a piece that would read as a macro is
/// escaped with `\&`.
fn wrap(line: &str, out: &mut Vec<String>) {
    let mut cur = String::new();
    for word in line.split(' ').filter(|w| !w.is_empty()) {
        if !cur.is_empty() && cur.len() + 1 + word.len() > WIDTH {
            out.push(std::mem::take(&mut cur));
        }
        if cur.is_empty() {
            if word.starts_with('.') || word.starts_with('\'') {
                cur.push_str("\\&");
            }
        } else {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaks_collapse_and_lines_wrap_without_losing_a_word() {
        let long = "word ".repeat(40);
        let page = format!(
            ".TH X 1\n.SH NAME\nx \n.TP\nhelp\n.br\n\n.br\n.IP a\n{long}.end\n\n\n.PP\ntext\n"
        );
        let got = clean(&page);
        assert!(
            !got.contains(".br\n.sp") && !got.contains(".sp\n.IP"),
            "{got}"
        );
        assert!(got.lines().all(|l| l.len() <= WIDTH), "{got}");
        assert!(got.lines().all(|l| l == l.trim_end()));
        assert!(got.contains("\\&.end") || got.contains(" .end"), "{got}");
        // The same words in the same order, macros aside.
        let words = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.starts_with('.'))
                .flat_map(|l| l.split_whitespace())
                .map(|w| w.trim_start_matches("\\&").to_string())
                .collect()
        };
        assert_eq!(words(&got), words(&page));
    }
}
