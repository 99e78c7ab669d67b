//! Progress of long byte transfers (downloads, uploads to a remote host):
//! a bar on a terminal, a line every few seconds otherwise, nothing when
//! quiet.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Reports progress: a bar on a terminal, a few log lines otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    quiet: bool,
    what: String,
    last_log: Instant,
}

impl Progress {
    pub fn new(what: &str, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.set_message(what.to_string());
            b
        });
        Progress {
            bar,
            quiet,
            what: what.to_string(),
            last_log: Instant::now(),
        }
    }

    pub fn update(&mut self, done: u64, total: Option<u64>) {
        if let Some(b) = &self.bar {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(done);
        } else if !self.quiet && self.last_log.elapsed() >= Duration::from_secs(5) {
            self.last_log = Instant::now();
            match total {
                Some(t) if t > 0 => {
                    eprintln!("{}: {}% ({done} of {t} bytes)", self.what, done * 100 / t)
                }
                _ => eprintln!("{}: {done} bytes", self.what),
            }
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
