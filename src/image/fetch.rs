//! Downloads into the cache: progress, resume with HTTP ranges when the
//! connection drops, the checksum checked before the file enters the cache,
//! and no partial file left after a failure or Ctrl-C.

use std::fs;
use std::io::{Read, Write};
use std::time::Duration;

use crate::error::{Error, Kind, Result};
use crate::image::cache::{Cache, TempFile};
use crate::interrupt;
use crate::progress::Progress;

/// What the downloaded bytes must hash to.
#[derive(Debug, Clone)]
pub enum Expected {
    Sha256(String),
    Sha512(String),
}

impl Expected {
    /// The digest a template source names, if any.
    pub fn of(src: &crate::template::schema::Source) -> Option<Expected> {
        src.sha256
            .clone()
            .map(Expected::Sha256)
            .or_else(|| src.sha512.clone().map(Expected::Sha512))
    }

    /// Compare with a file's digests; on a mismatch, the message fragment
    /// "expected ALGO WANT, got GOT".
    pub fn verify(&self, sha256: &str, sha512: &str) -> std::result::Result<(), String> {
        let (algo, want, got) = match self {
            Expected::Sha256(w) => ("sha256", w, sha256),
            Expected::Sha512(w) => ("sha512", w, sha512),
        };
        if want.eq_ignore_ascii_case(got) {
            Ok(())
        } else {
            Err(format!("expected {algo} {want}, got {got}"))
        }
    }
}

const ATTEMPTS: u32 = 6;

/// Download `url` into a temporary file of the cache and check it.
/// Returns the file and its sha256.
pub fn download(
    cache: &Cache,
    url: &str,
    expected: &Expected,
    quiet: bool,
) -> Result<(TempFile, String)> {
    let tmp = cache.temp("pull");
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut progress = Progress::new(&format!("pulling {url}"), quiet);
    let mut attempts = 0;
    let mut total: Option<u64> = None;
    loop {
        attempts += 1;
        let have = fs::symlink_metadata(&tmp.path)
            .map(|m| m.len())
            .unwrap_or(0);
        if total.is_some_and(|t| have >= t) {
            break;
        }
        let mut req = agent.get(url);
        if have > 0 {
            req = req.set("Range", &format!("bytes={have}-"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, _)) => {
                return Err(Error::new(
                    if code == 404 {
                        Kind::NotFound
                    } else {
                        Kind::Unavailable
                    },
                    format!("cannot download {url}: HTTP {code}"),
                ))
            }
            Err(e) if attempts < ATTEMPTS => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200 * u64::from(attempts)));
                continue;
            }
            Err(e) => return Err(Error::unavailable(format!("cannot download {url}")).caused_by(e)),
        };
        let resumed = resp.status() == 206;
        let len: Option<u64> = resp.header("Content-Length").and_then(|v| v.parse().ok());
        let mut file = if resumed {
            let mut f = crate::statedir::open_nofollow(&tmp.path, 0o600)?;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(|e| {
                Error::other(format!("cannot write {}", tmp.path.display())).caused_by(e)
            })?;
            f
        } else {
            crate::statedir::rewrite(&tmp.path, 0o600)?
        };
        let mut done = if resumed { have } else { 0 };
        total = len.map(|l| l + done).or(total);
        let mut body = resp.into_reader();
        let mut buf = vec![0u8; 256 << 10];
        let dropped = loop {
            if interrupt::requested() {
                progress.finish();
                return Err(interrupt::error(&format!(
                    "download of {url}; the partial file was removed"
                )));
            }
            match body.read(&mut buf) {
                Ok(0) => break total.is_some_and(|t| done < t),
                Ok(n) => {
                    file.write_all(&buf[..n]).map_err(|e| {
                        let what = format!("cannot write {}", tmp.path.display());
                        crate::statedir::io_error(Kind::Other, &tmp.path, what, e)
                    })?;
                    done += n as u64;
                    progress.update(done, total);
                }
                Err(_) => break true,
            }
        };
        if !dropped {
            break;
        }
        if attempts >= ATTEMPTS {
            progress.finish();
            return Err(Error::unavailable(format!(
                "download of {url} kept failing after {ATTEMPTS} attempts ({done} bytes received)"
            )));
        }
    }
    progress.finish();
    let (sha256, sha512) = crate::image::cache::digests(&tmp.path)?;
    expected.verify(&sha256, &sha512).map_err(|m| {
        Error::other(format!(
            "checksum mismatch for {url}: {m}; nothing was cached"
        ))
    })?;
    Ok((tmp, sha256))
}
