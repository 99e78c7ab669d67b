//! Boot and shutdown plans: pure functions from machines' settings to
//! batches in order, with each batch's worst-case duration.

use std::time::Duration;

use serde::Serialize;

use crate::autostart::settings::{Settings, Wait};
use crate::backend::Backend;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry {
    pub name: String,
    pub backend: Backend,
    #[serde(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Batch {
    pub priority: i32,
    pub machines: Vec<Entry>,
    /// Worst case for the batch, in seconds.
    pub worst_case_s: u64,
}

/// Start attempts per machine before it counts as failed.
pub const ATTEMPTS: u64 = 3;
/// What one start call may take, at worst, before the wait begins.
pub const START_CALL_S: u64 = 30;
/// After a forced stop, how long the backend may take to report it.
pub const FORCE_MARGIN_S: u64 = 10;

fn group(mut entries: Vec<Entry>, descending: bool) -> Vec<Vec<Entry>> {
    entries.sort_by(|a, b| {
        let p = if descending {
            b.settings.priority.cmp(&a.settings.priority)
        } else {
            a.settings.priority.cmp(&b.settings.priority)
        };
        p.then_with(|| a.name.cmp(&b.name))
    });
    let mut out: Vec<Vec<Entry>> = Vec::new();
    for e in entries {
        match out.last_mut() {
            Some(b) if b[0].settings.priority == e.settings.priority => b.push(e),
            _ => out.push(vec![e]),
        }
    }
    out
}

/// Worst case of machines run `concurrency` at a time: the slowest of each wave.
fn waves(costs: &mut [u64], concurrency: usize) -> u64 {
    costs.sort_unstable_by(|a, b| b.cmp(a));
    costs.chunks(concurrency.max(1)).map(|w| w[0]).sum()
}

/// Boot: higher priority first; within a batch in parallel.
pub fn start(entries: Vec<Entry>, concurrency: usize) -> Vec<Batch> {
    group(
        entries.into_iter().filter(|e| e.settings.enabled).collect(),
        true,
    )
    .into_iter()
    .map(|machines| {
        let mut costs: Vec<u64> = machines
            .iter()
            .map(|m| {
                let wait = if m.settings.wait == Wait::None {
                    0
                } else {
                    m.settings.wait_timeout
                };
                ATTEMPTS * START_CALL_S + wait + m.settings.delay
            })
            .collect();
        Batch {
            priority: machines[0].settings.priority,
            worst_case_s: waves(&mut costs, concurrency),
            machines,
        }
    })
    .collect()
}

/// Shutdown: lower priority first (the reverse of boot); every machine of a
/// batch at once, each forced when its own timeout runs out.
pub fn stop(entries: Vec<Entry>) -> Vec<Batch> {
    group(entries, false)
        .into_iter()
        .map(|machines| {
            let worst = machines
                .iter()
                .map(|m| m.settings.stop_timeout + FORCE_MARGIN_S)
                .max()
                .unwrap_or(0);
            Batch {
                priority: machines[0].settings.priority,
                worst_case_s: worst,
                machines,
            }
        })
        .collect()
}

pub fn total(batches: &[Batch]) -> Duration {
    Duration::from_secs(batches.iter().map(|b| b.worst_case_s).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, priority: i32, enabled: bool) -> Entry {
        Entry {
            name: name.into(),
            backend: Backend::Qemu,
            settings: Settings {
                enabled,
                priority,
                ..Settings::default()
            },
        }
    }

    #[test]
    fn start_batches_by_priority_descending_and_skips_disabled() {
        let p = start(
            vec![
                e("b", 1, true),
                e("a", 10, true),
                e("c", 1, true),
                e("off", 50, false),
            ],
            2,
        );
        let names: Vec<Vec<&str>> = p
            .iter()
            .map(|b| b.machines.iter().map(|m| m.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["a"], vec!["b", "c"]]);
        // Two machines, two at a time: one wave of 3*30 + 120.
        assert_eq!(p[1].worst_case_s, 210);
    }

    #[test]
    fn stop_is_the_reverse_and_bounded_by_the_slowest() {
        let mut slow = e("slow", 1, false);
        slow.settings.stop_timeout = 300;
        let p = stop(vec![e("a", 10, true), slow, e("b", 1, true)]);
        assert_eq!(p[0].priority, 1);
        assert_eq!(p[0].worst_case_s, 310);
        assert_eq!(p[1].machines[0].name, "a");
        assert_eq!(total(&p).as_secs(), 310 + 70);
    }

    #[test]
    fn waves_bound_concurrency() {
        assert_eq!(waves(&mut [10, 50, 20, 40], 2), 50 + 20);
        assert_eq!(waves(&mut [10, 50, 20, 40], 1), 120);
    }
}
