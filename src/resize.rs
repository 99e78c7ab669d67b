//! `creature resize` (#12) as a plan: what changes in the persistent
//! definition, what changes in the running machine (up to its maximum),
//! what waits for the next start, and what is refused. Pure; the libvirt
//! driver reads the sizes and carries the steps out.

use crate::error::{Error, Result};
use crate::size::Size;

/// vCPUs and memory of one definition (live or persistent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizing {
    pub cpus: u32,
    pub max_cpus: u32,
    pub memory: u64,
    pub max_memory: u64,
    /// A virtio balloon: memory can change while the machine runs.
    pub balloon: bool,
}

/// What was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub cpus: Option<u32>,
    pub memory: Option<u64>,
    /// (device or None for the first disk, new size in bytes).
    pub disks: Vec<(Option<String>, u64)>,
}

impl Request {
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none() && self.memory.is_none() && self.disks.is_empty()
    }
}

/// One change, in the order it is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    ConfigMaxCpus(u32),
    ConfigCpus(u32),
    ConfigMaxMemory(u64),
    ConfigMemory(u64),
    LiveCpus(u32),
    LiveMemory(u64),
    /// Device, from, to (bytes); live when the machine runs.
    GrowDisk(String, u64, u64),
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// What the running machine does not take now: it comes at the next start.
    pub at_restart: Vec<String>,
}

pub const MIN_MEMORY: u64 = 16 << 20;

/// `disks`: each disk's device and current size, in order.
pub fn plan(
    req: &Request,
    config: Sizing,
    live: Option<Sizing>,
    disks: &[(String, u64)],
) -> Result<Plan> {
    let mut p = Plan::default();
    if let Some(n) = req.cpus {
        if n == 0 {
            return Err(Error::invalid("--cpus must be at least 1"));
        }
        if n > config.max_cpus {
            p.steps.push(Step::ConfigMaxCpus(n));
        }
        if n != config.cpus {
            p.steps.push(Step::ConfigCpus(n));
        }
    }
    if let Some(m) = req.memory {
        if m < MIN_MEMORY {
            return Err(Error::invalid(format!(
                "--memory {} is below the minimum of {}",
                Size(m),
                Size(MIN_MEMORY).human()
            )));
        }
        if m > config.max_memory {
            p.steps.push(Step::ConfigMaxMemory(m));
        }
        if m != config.memory {
            p.steps.push(Step::ConfigMemory(m));
        }
    }
    if let Some(l) = live {
        if let Some(n) = req.cpus.filter(|n| *n != l.cpus) {
            if n <= l.max_cpus {
                p.steps.push(Step::LiveCpus(n));
            } else {
                p.at_restart.push(format!(
                    "{n} vCPUs (the running machine takes at most {}: template key max_cpus)",
                    l.max_cpus
                ));
            }
        }
        if let Some(m) = req.memory.filter(|m| *m != l.memory) {
            if !l.balloon {
                p.at_restart.push(format!(
                    "{} of memory (the running machine has no balloon: template key max_memory)",
                    Size(m)
                ));
            } else if m <= l.max_memory {
                p.steps.push(Step::LiveMemory(m));
            } else {
                p.at_restart.push(format!(
                    "{} of memory (the running machine takes at most {}: template key max_memory)",
                    Size(m),
                    Size(l.max_memory)
                ));
            }
        }
    }
    for (dev, size) in &req.disks {
        let (name, now) = match dev {
            Some(d) => disks.iter().find(|(x, _)| x == d).cloned().ok_or_else(|| {
                Error::not_found(format!(
                    "no disk {d} (its disks: {})",
                    if disks.is_empty() {
                        "none".to_string()
                    } else {
                        disks
                            .iter()
                            .map(|(x, _)| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ))
            })?,
            None => disks
                .first()
                .cloned()
                .ok_or_else(|| Error::not_found("it has no disks to resize"))?,
        };
        if *size < now {
            return Err(Error::invalid(format!(
                "disks only grow: {name} is {}, asked for {} (shrinking would cut the guest's filesystem)",
                Size(now),
                Size(*size)
            )));
        }
        if *size > now {
            p.steps.push(Step::GrowDisk(name, now, *size));
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn sizing(cpus: u32, max_cpus: u32, memory: u64, max_memory: u64) -> Sizing {
        Sizing {
            cpus,
            max_cpus,
            memory,
            max_memory,
            balloon: max_memory > memory,
        }
    }

    #[test]
    fn a_running_machine_grows_up_to_its_maximum_and_the_rest_waits() {
        let s = sizing(1, 2, 256 * MIB, 512 * MIB);
        let req = Request {
            cpus: Some(2),
            memory: Some(400 * MIB),
            disks: vec![],
        };
        let p = plan(&req, s, Some(s), &[]).unwrap();
        assert_eq!(
            p.steps,
            [
                Step::ConfigCpus(2),
                Step::ConfigMemory(400 * MIB),
                Step::LiveCpus(2),
                Step::LiveMemory(400 * MIB)
            ]
        );
        assert!(p.at_restart.is_empty());
        let req = Request {
            cpus: Some(4),
            memory: Some(1024 * MIB),
            disks: vec![],
        };
        let p = plan(&req, s, Some(s), &[]).unwrap();
        assert_eq!(
            p.steps,
            [
                Step::ConfigMaxCpus(4),
                Step::ConfigCpus(4),
                Step::ConfigMaxMemory(1024 * MIB),
                Step::ConfigMemory(1024 * MIB)
            ]
        );
        assert_eq!(p.at_restart.len(), 2, "{:?}", p.at_restart);
    }

    #[test]
    fn without_a_balloon_memory_waits_for_the_restart() {
        let s = sizing(1, 1, 256 * MIB, 256 * MIB);
        let req = Request {
            memory: Some(128 * MIB),
            ..Default::default()
        };
        let p = plan(&req, s, Some(s), &[]).unwrap();
        assert_eq!(p.steps, [Step::ConfigMemory(128 * MIB)]);
        assert!(p.at_restart[0].contains("no balloon"));
    }

    #[test]
    fn disks_only_grow() {
        let disks = [("vda".to_string(), 32 * MIB), ("vdb".to_string(), 8 * MIB)];
        let s = sizing(1, 1, 256 * MIB, 256 * MIB);
        let grow = Request {
            disks: vec![(None, 48 * MIB), (Some("vdb".into()), 16 * MIB)],
            ..Default::default()
        };
        assert_eq!(
            plan(&grow, s, None, &disks).unwrap().steps,
            [
                Step::GrowDisk("vda".into(), 32 * MIB, 48 * MIB),
                Step::GrowDisk("vdb".into(), 8 * MIB, 16 * MIB)
            ]
        );
        let shrink = Request {
            disks: vec![(None, 16 * MIB)],
            ..Default::default()
        };
        let e = plan(&shrink, s, None, &disks).unwrap_err();
        assert!(e.message().contains("disks only grow"), "{}", e.message());
        let nosuch = Request {
            disks: vec![(Some("vdz".into()), 16 * MIB)],
            ..Default::default()
        };
        assert_eq!(
            plan(&nosuch, s, None, &disks).unwrap_err().kind(),
            crate::error::Kind::NotFound
        );
        // The same size changes nothing.
        assert!(plan(
            &Request {
                disks: vec![(None, 32 * MIB)],
                ..Default::default()
            },
            s,
            None,
            &disks
        )
        .unwrap()
        .steps
        .is_empty());
    }

    #[test]
    fn nonsense_is_refused() {
        let s = sizing(1, 1, 256 * MIB, 256 * MIB);
        assert!(plan(
            &Request {
                cpus: Some(0),
                ..Default::default()
            },
            s,
            None,
            &[]
        )
        .is_err());
        assert!(plan(
            &Request {
                memory: Some(MIB),
                ..Default::default()
            },
            s,
            None,
            &[]
        )
        .is_err());
    }
}
