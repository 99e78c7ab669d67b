//! Where `log --since` begins, and finding that place in a console log whose
//! lines carry timestamps (xenconsoled's `--timestamp`: `[YYYY-MM-DD HH:MM:SS] `
//! in the local time of the host that writes it).
//!
//! A time is kept as local civil time, `YYYY-MM-DD HH:MM:SS`, the form the log
//! writes: fixed width, so comparing strings compares instants, and a time the
//! user typed without a zone needs no zone database to be compared.

use std::io::{BufRead, BufReader, Read};

/// Where `log --since` begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// The machine's last start by creature (start, launch, autostart).
    Start,
    /// A local time, `YYYY-MM-DD HH:MM:SS`.
    Time(String),
}

/// What `--since` takes, for help and errors.
pub const FORMS: &str = "`start`, a local time `YYYY-MM-DD [HH:MM[:SS]]`, an RFC 3339 time with \
                         its zone, `today`, `yesterday`, or an age such as `10m`, `2h`, `1d` (ago)";

/// Parses WHEN as of `now` (seconds since the epoch).
pub fn parse(s: &str, now: u64) -> Result<Since, String> {
    let t = s.trim();
    if t == "start" || t == "last-start" {
        return Ok(Since::Start);
    }
    let bad = || format!("must be {FORMS}, got {s:?}");
    match t {
        "today" => return Ok(Since::Time(midnight(&local(now)))),
        "yesterday" => return Ok(Since::Time(midnight(&local(now.saturating_sub(86_400))))),
        "now" => return Ok(Since::Time(local(now))),
        _ => {}
    }
    if let Some(age) = age(t) {
        return Ok(Since::Time(local(now.saturating_sub(age))));
    }
    if let Some(at) = rfc3339(t) {
        return Ok(Since::Time(local(at)));
    }
    civil(t).map(Since::Time).ok_or_else(bad)
}

/// `10m`, `10m ago`, `-10m`, `90s`, `2h`, `1d`: seconds.
fn age(s: &str) -> Option<u64> {
    let s = s.strip_prefix('-').unwrap_or(s);
    let s = s.strip_suffix("ago").map(str::trim_end).unwrap_or(s);
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].trim().parse().ok()?;
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(per)
}

/// `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS` (a `T` may stand
/// for the space), checked field by field.
fn civil(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    if !matches!(b.len(), 10 | 16 | 19) || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (mut h, mut mi, mut sec) = (0, 0, 0);
    if b.len() > 10 {
        if !matches!(b[10], b' ' | b'T') || b[13] != b':' {
            return None;
        }
        h = digits(11..13)?;
        mi = digits(14..16)?;
        if b.len() == 19 {
            if b[16] != b':' {
                return None;
            }
            sec = digits(17..19)?;
        }
    }
    let ok = y >= 1970
        && (1..=12).contains(&mo)
        && (1..=days_in(y, mo)).contains(&d)
        && h < 24
        && mi < 60
        && sec < 60;
    ok.then(|| format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{sec:02}"))
}

fn days_in(y: u32, mo: u32) -> u32 {
    match mo {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An RFC 3339 time with its zone (`Z` or `±HH:MM`): seconds since the epoch.
fn rfc3339(s: &str) -> Option<u64> {
    let (body, offset) = if let Some(b) = s.strip_suffix(['Z', 'z']) {
        (b, 0i64)
    } else {
        let at = s.len().checked_sub(6)?;
        let (b, z) = s.split_at(at);
        let sign = match z.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (hh, mm) = z[1..].split_once(':')?;
        let (hh, mm): (i64, i64) = (hh.parse().ok()?, mm.parse().ok()?);
        (b, sign * (hh * 3600 + mm * 60))
    };
    // Fractions of a second do not matter to a log stamped in seconds.
    let body = body.split_once('.').map_or(body, |(b, _)| b);
    if body.len() != 19 {
        return None;
    }
    let c = civil(body)?;
    let (y, mo, d) = (
        c[0..4].parse::<i64>().ok()?,
        c[5..7].parse::<i64>().ok()?,
        c[8..10].parse::<i64>().ok()?,
    );
    let (h, mi, sec) = (
        c[11..13].parse::<i64>().ok()?,
        c[14..16].parse::<i64>().ok()?,
        c[17..19].parse::<i64>().ok()?,
    );
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 (H. Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn midnight(local: &str) -> String {
    format!("{} 00:00:00", &local[..10])
}

/// An instant as this host's local civil time (the zone the C library reads
/// from TZ and /etc/localtime, as xenconsoled does on its host).
pub fn local(secs: u64) -> String {
    let t = libc::time_t::try_from(secs).unwrap_or(libc::time_t::MAX);
    // SAFETY: localtime_r writes only into the tm it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return crate::time::rfc3339(secs)[..19].replace('T', " ");
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// A line's stamp, `[YYYY-MM-DD HH:MM:SS] ` (or with milliseconds), as the
/// civil time it says.
fn stamp(line: &[u8]) -> Option<&str> {
    let inner = line.strip_prefix(b"[")?;
    let time = std::str::from_utf8(inner.get(..19)?).ok()?;
    let rest = &inner[19..];
    let closes =
        rest.first() == Some(&b']') || (rest.first() == Some(&b'.') && rest.contains(&b']'));
    (closes && civil(time).as_deref() == Some(time)).then_some(time)
}

/// The byte offset of the first line stamped at or after `time` (the
/// length of the log when none is). An unstamped line belongs with the line
/// before it.
pub fn offset_of(log: impl Read, time: &str) -> std::io::Result<u64> {
    let mut r = BufReader::new(log);
    let mut at = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(at);
        }
        if stamp(&line).is_some_and(|t| t >= time) {
            return Ok(at);
        }
        at += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_386_800; // 2026-12-04T12:20:00Z

    // Times come out in this machine's zone, whatever it is: the expected
    // values go through the same conversion.
    #[test]
    fn whens_a_sysadmin_types() {
        let t = |s: &str| match parse(s, NOW) {
            Ok(Since::Time(t)) => t,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(parse("start", NOW), Ok(Since::Start));
        assert_eq!(t("2026-12-04 09:30"), "2026-12-04 09:30:00");
        assert_eq!(t("2026-12-04T09:30:15"), "2026-12-04 09:30:15");
        assert_eq!(t("2026-12-04"), "2026-12-04 00:00:00");
        assert_eq!(t("2024-02-29 23:59:59"), "2024-02-29 23:59:59");
        let nine_thirty = NOW - 2 * 3600 - 50 * 60 + 15; // 09:30:15Z
        assert_eq!(t("2026-12-04T09:30:15Z"), local(nine_thirty));
        assert_eq!(t("2026-12-04T10:30:15.250+01:00"), local(nine_thirty));
        assert_eq!(t("2026-12-04T04:00:15-05:30"), local(nine_thirty));
        assert_eq!(t("10m"), local(NOW - 600));
        assert_eq!(t("10m ago"), local(NOW - 600));
        assert_eq!(t("-2h"), local(NOW - 7200));
        assert_eq!(t("1d"), local(NOW - 86_400));
        assert_eq!(t("today"), midnight(&local(NOW)));
        assert_eq!(t("yesterday"), midnight(&local(NOW - 86_400)));
        for bad in [
            "",
            "soon",
            "2026-13-01",
            "2026-02-29",
            "2026-12-04 24:00",
            "2026-12-04 9:30",
            "2026/12/04",
            "10 minutes",
            "10x",
            "2026-12-04T09:30:15+0100",
        ] {
            let e = parse(bad, NOW).unwrap_err();
            assert!(
                e.contains(FORMS) && e.contains(&format!("{bad:?}")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn instants_and_local_time() {
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(rfc3339("2026-12-04T12:20:00Z"), Some(NOW));
        assert_eq!(rfc3339("2026-12-04T13:20:00+01:00"), Some(NOW));
        let l = local(NOW);
        assert_eq!(civil(&l).as_deref(), Some(l.as_str()), "{l}");
    }

    #[test]
    fn the_first_line_at_or_after_a_time() {
        let log = b"early\n\
            [2026-12-04 09:00:00] creature-test-guest: booted\n\
            [2026-12-04 09:00:01] ~ # \n\
            continued\n\
            [2026-12-04 09:05:00.120] creature-test-guest: booted\n\
            [2026-12-04 09:05:02] last\n";
        let from = |t: &str| {
            let at = offset_of(&log[..], t).unwrap() as usize;
            String::from_utf8_lossy(&log[at..]).into_owned()
        };
        assert!(from("2026-12-04 08:00:00").starts_with("[2026-12-04 09:00:00]"));
        assert!(from("2026-12-04 09:00:01").starts_with("[2026-12-04 09:00:01]"));
        assert!(from("2026-12-04 09:03:00").starts_with("[2026-12-04 09:05:00.120]"));
        assert_eq!(from("2026-12-04 09:05:02"), "[2026-12-04 09:05:02] last\n");
        assert_eq!(from("2026-12-05 00:00:00"), "");
        // A guest's own bracketed text is no stamp.
        assert_eq!(stamp(b"[    0.000000] Linux version"), None);
        assert_eq!(stamp(b"[2026-12-04 09:00:00 oops"), None);
    }
}
