//! Sizes with units ("512MiB", "2GiB", "10G"), as templates and flags write them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Size(pub u64);

const UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("T", 1 << 40),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
    ("B", 1),
];

impl FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Size, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{s:?} needs a unit (B, KiB, MiB, GiB, TiB)"))?;
        let (num, unit) = t.split_at(split);
        let unit = unit.trim();
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a size such as 512MiB or 2GiB"))?;
        let mult = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, m)| *m)
            .ok_or_else(|| format!("{s:?}: unknown unit {unit:?} (use B, KiB, MiB, GiB or TiB)"))?;
        n.checked_mul(mult)
            .map(Size)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (u, m) in &UNITS[..4] {
            if self.0 >= *m && self.0 % m == 0 {
                return write!(f, "{}{u}", self.0 / m);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl Size {
    /// Rounded for people: "14.8MiB".
    pub fn human(self) -> String {
        for (u, m) in &UNITS[..4] {
            if self.0 >= *m {
                return format!("{:.1}{u}", self.0 as f64 / *m as f64);
            }
        }
        format!("{}B", self.0)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Size;

    #[test]
    fn parses_and_prints() {
        assert_eq!("512MiB".parse::<Size>().unwrap(), Size(512 << 20));
        assert_eq!("2GiB".parse::<Size>().unwrap().to_string(), "2GiB");
        assert_eq!("10G".parse::<Size>().unwrap(), Size(10 << 30));
        assert_eq!(Size(1536 << 20).to_string(), "1536MiB");
        assert_eq!(Size(100).to_string(), "100B");
        assert!("512".parse::<Size>().unwrap_err().contains("needs a unit"));
        assert!("5 parsecs".parse::<Size>().is_err());
        assert!("99999999999TiB".parse::<Size>().is_err());
    }
}
