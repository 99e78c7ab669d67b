//! One disk chain read into a single standalone qcow2 file (`snapshot
//! export`), with qemu-img's own progress shown as a bar.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Kind, Result};
use crate::interrupt;

/// qemu-img's `-p` progress, `    (12.34/100%)`, as a fraction.
fn progress(chunk: &str) -> Option<f64> {
    let inner = chunk.trim().strip_prefix('(')?.split('/').next()?;
    inner.trim().parse::<f64>().ok().map(|p| p / 100.0)
}

/// Read `src` (and everything under it) into `dest`, a new qcow2 file.
/// `src` is a frozen file: read without taking QEMU's lock (-U).
pub fn flatten(src: &str, dest: &Path, quiet: bool) -> Result<()> {
    let mut child = Command::new("qemu-img")
        .args(["convert", "-p", "-U", "-O", "qcow2", "--", src])
        .arg(dest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::unavailable("cannot run qemu-img").caused_by(e))?;
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(1000);
        b.set_message(format!("exporting {src}"));
        b
    });
    let mut out = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut last = 0.0;
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            for part in String::from_utf8_lossy(&buf[..n]).split('\r') {
                if let Some(p) = progress(part) {
                    last = p;
                }
            }
            if let Some(b) = &bar {
                b.set_position((last * 1000.0) as u64);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    });
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| Error::other("cannot wait for qemu-img").caused_by(e))?
        {
            break s;
        }
        if interrupt::requested() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = reader.join();
            return Err(interrupt::error("export"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = reader.join();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        return Err(Error::new(
            Kind::Other,
            format!("cannot export {src}: qemu-img convert: {}", err.trim()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_qemu_img_progress() {
        assert_eq!(super::progress("    (12.50/100%)"), Some(0.125));
        assert_eq!(super::progress("(100.00/100%)"), Some(1.0));
        assert_eq!(super::progress("junk"), None);
    }
}
