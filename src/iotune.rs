//! Disk I/O limits (#22): bytes and operations per second, total or split
//! into read and write, as QEMU's throttling takes them. Pure: the template
//! keys and flags become one `Limits`, checked here; the libvirt calls are
//! in backend/libvirt/iotune.rs.

use serde::Serialize;

use crate::error::{Error, Result};

/// One disk's limits; None leaves a limit as it is, 0 removes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    pub total_bytes_sec: Option<u64>,
    pub read_bytes_sec: Option<u64>,
    pub write_bytes_sec: Option<u64>,
    pub total_iops_sec: Option<u64>,
    pub read_iops_sec: Option<u64>,
    pub write_iops_sec: Option<u64>,
}

/// libvirt's parameter names (VIR_DOMAIN_BLOCK_IOTUNE_*), in Limits' order.
pub const FIELDS: [&str; 6] = [
    "total_bytes_sec",
    "read_bytes_sec",
    "write_bytes_sec",
    "total_iops_sec",
    "read_iops_sec",
    "write_iops_sec",
];

impl Limits {
    pub fn values(&self) -> [Option<u64>; 6] {
        [
            self.total_bytes_sec,
            self.read_bytes_sec,
            self.write_bytes_sec,
            self.total_iops_sec,
            self.read_iops_sec,
            self.write_iops_sec,
        ]
    }

    pub fn from_values(v: [Option<u64>; 6]) -> Limits {
        Limits {
            total_bytes_sec: v[0],
            read_bytes_sec: v[1],
            write_bytes_sec: v[2],
            total_iops_sec: v[3],
            read_iops_sec: v[4],
            write_iops_sec: v[5],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values().iter().all(Option::is_none)
    }

    /// Only the limits that are set to something (0 is no limit).
    pub fn active(&self) -> Vec<(&'static str, u64)> {
        FIELDS
            .iter()
            .zip(self.values())
            .filter_map(|(f, v)| v.filter(|n| *n > 0).map(|n| (*f, n)))
            .collect()
    }

    /// `self` laid over `old`: what the disk has after a change.
    pub fn over(&self, old: &Limits) -> Limits {
        let (a, b) = (self.values(), old.values());
        Limits::from_values(std::array::from_fn(|i| a[i].or(b[i])))
    }

    /// QEMU refuses a total limit beside a read or write one of the same
    /// kind; say so before anything is sent. `what` names where they came from.
    pub fn check(&self, what: &str) -> Result<()> {
        let both = |t: Option<u64>, r: Option<u64>, w: Option<u64>| {
            t.is_some_and(|t| t > 0) && (r.is_some_and(|r| r > 0) || w.is_some_and(|w| w > 0))
        };
        if both(
            self.total_bytes_sec,
            self.read_bytes_sec,
            self.write_bytes_sec,
        ) {
            return Err(Error::invalid(format!(
                "{what}: a total bytes limit cannot be set beside a read or write bytes limit (QEMU takes one or the other)"
            )));
        }
        if both(self.total_iops_sec, self.read_iops_sec, self.write_iops_sec) {
            return Err(Error::invalid(format!(
                "{what}: a total IOPS limit cannot be set beside a read or write IOPS limit (QEMU takes one or the other)"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_exclude_splits_of_their_kind() {
        let ok = Limits {
            total_bytes_sec: Some(1 << 20),
            read_iops_sec: Some(100),
            ..Default::default()
        };
        ok.check("x").unwrap();
        let bad = Limits {
            total_bytes_sec: Some(1),
            write_bytes_sec: Some(2),
            ..Default::default()
        };
        assert!(bad
            .check("x")
            .unwrap_err()
            .message()
            .contains("total bytes"));
        // 0 removes a limit, so it never conflicts.
        let clear = Limits {
            total_bytes_sec: Some(0),
            write_bytes_sec: Some(2),
            ..Default::default()
        };
        clear.check("x").unwrap();
    }

    #[test]
    fn a_change_lays_over_what_was_there() {
        let old = Limits {
            read_bytes_sec: Some(5),
            total_iops_sec: Some(9),
            ..Default::default()
        };
        let new = Limits {
            read_bytes_sec: Some(0),
            write_bytes_sec: Some(7),
            ..Default::default()
        };
        let got = new.over(&old);
        assert_eq!(
            got.active(),
            [("write_bytes_sec", 7), ("total_iops_sec", 9)]
        );
        assert!(Limits::default().is_empty());
    }
}
