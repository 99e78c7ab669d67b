//! Security groups (#38) and firewall rules (#36), pure: what a rule is,
//! how it is parsed from the command line, and (in `filter`) the libvirt
//! nwfilter documents that enforce it. Semantics as in OpenStack and AWS:
//! a machine in a group takes inbound traffic only as a rule allows it,
//! sends outbound only as a rule allows it (a new group allows all
//! outbound), and answers to allowed traffic always pass (stateful).

pub mod filter;

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic to the machine.
    In,
    /// Traffic from the machine.
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Any,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Any => "any",
        }
    }

    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "icmp" => Some(Proto::Icmp),
            "any" => Some(Proto::Any),
            _ => None,
        }
    }

    fn has_ports(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Udp)
    }
}

/// An IPv4 block in CIDR notation, any prefix from /0 to /32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub const ANY: Cidr = Cidr {
        addr: Ipv4Addr::UNSPECIFIED,
        prefix: 0,
    };

    pub fn host(addr: Ipv4Addr) -> Cidr {
        Cidr { addr, prefix: 32 }
    }
}

impl FromStr for Cidr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Cidr> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "{s:?} is not an IPv4 CIDR block such as 10.0.0.0/24: {why}"
            ))
        };
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an address"))?;
        let prefix = match p {
            None => 32,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 32)
                .ok_or_else(|| bad("the prefix is from 0 to 32"))?,
        };
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        if u32::from(addr) & !mask != 0 {
            let net = Ipv4Addr::from(u32::from(addr) & mask);
            return Err(bad(&format!(
                "host bits are set; did you mean {net}/{prefix}?"
            )));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Who is at the other end of a rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Remote {
    Cidr(Cidr),
    /// The machines in this group, by their reserved addresses.
    Group(String),
}

/// A port or a range of them, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ports {
    pub min: u16,
    pub max: u16,
}

impl FromStr for Ports {
    type Err = Error;

    fn from_str(s: &str) -> Result<Ports> {
        let bad = || {
            Error::invalid(format!(
                "--port {s:?}: a port (1-65535) or a range N-M with N <= M"
            ))
        };
        let one = |x: &str| x.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
        let (min, max) = match s.split_once('-') {
            Some((a, b)) => (one(a)?, one(b)?),
            None => (one(s)?, one(s)?),
        };
        if min > max {
            return Err(bad());
        }
        Ok(Ports { min, max })
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// One rule of a group: traffic it allows (a group only ever allows).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub direction: Direction,
    pub proto: Proto,
    pub ports: Option<Ports>,
    pub remote: Remote,
}

impl Rule {
    /// The rule every new group starts with: all outbound traffic.
    pub fn egress_all() -> Rule {
        Rule {
            direction: Direction::Out,
            proto: Proto::Any,
            ports: None,
            remote: Remote::Cidr(Cidr::ANY),
        }
    }

    /// Ports only where the protocol has them.
    pub fn check(&self) -> Result<()> {
        if self.ports.is_some() && !self.proto.has_ports() {
            return Err(Error::invalid(format!(
                "--port is for tcp and udp; {} has no ports",
                self.proto.as_str()
            )));
        }
        if let Remote::Group(g) = &self.remote {
            crate::names::check(crate::names::What::SecGroup, g)?;
        }
        Ok(())
    }

    /// One line, as `show` prints it and `rule rm` takes it back.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {}", self.direction.as_str(), self.proto.as_str());
        if let Some(p) = self.ports {
            s.push_str(&format!(" port {p}"));
        }
        match &self.remote {
            Remote::Cidr(c) => s.push_str(&format!(
                " {} {c}",
                if self.direction == Direction::In {
                    "from"
                } else {
                    "to"
                }
            )),
            Remote::Group(g) => s.push_str(&format!(
                " {} group {g}",
                if self.direction == Direction::In {
                    "from"
                } else {
                    "to"
                }
            )),
        }
        s
    }
}

#[cfg(test)]
mod tests;
