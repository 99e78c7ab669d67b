//! Steps to take back when a multi-step operation fails or is interrupted:
//! each side effect registers its undo right after it succeeds, and a
//! failure runs them newest first.

use crate::error::Error;

/// What an interrupted create reports: its undo removes everything it made.
pub const CREATE_INTERRUPTED: &str = "create; everything it made was removed";

type Step = Box<dyn FnOnce() -> Result<(), Error>>;

#[derive(Default)]
pub struct Undo {
    steps: Vec<(String, Step)>,
}

impl Undo {
    pub fn new() -> Undo {
        Undo::default()
    }

    pub fn push(
        &mut self,
        what: impl Into<String>,
        step: impl FnOnce() -> Result<(), Error> + 'static,
    ) {
        self.steps.push((what.into(), Box::new(step)));
    }

    /// Forget the steps: the operation succeeded.
    pub fn commit(mut self) {
        self.steps.clear();
    }

    /// Run every step, newest first. Returns the ones that failed, so the
    /// caller can say what may be left behind.
    pub fn rollback(mut self) -> Vec<String> {
        let mut failed = Vec::new();
        while let Some((what, step)) = self.steps.pop() {
            if let Err(e) = step() {
                failed.push(format!("{what}: {}", e.message()));
            }
        }
        failed
    }
}

/// Test hooks at each step of a create: `CREATURE_TEST_FAIL_AT=<step>`
/// makes that step fail, and `CREATURE_TEST_STALL_AT=<step>` waits there
/// (up to 60 s) for a Ctrl-C, to prove rollback leaves nothing behind.
/// Without the `test-hooks` feature (release builds) it does nothing.
pub fn fail_point(step: &str) -> Result<(), Error> {
    if !cfg!(feature = "test-hooks") {
        return Ok(());
    }
    if std::env::var("CREATURE_TEST_FAIL_AT").is_ok_and(|s| s == step) {
        return Err(Error::other(format!(
            "injected failure at step {step:?} (CREATURE_TEST_FAIL_AT)"
        )));
    }
    if std::env::var("CREATURE_TEST_STALL_AT").is_ok_and(|s| s == step) {
        eprintln!("CREATURE_TEST_STALL_AT: stalled at step {step:?}");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < until {
            if crate::interrupt::requested() {
                return Err(crate::interrupt::error(&format!(
                    "create, at step {step:?}; everything it made was removed"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    #[test]
    fn rolls_back_newest_first_and_reports_failures() {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut u = Undo::new();
        for i in 0..3 {
            let l = log.clone();
            u.push(format!("step {i}"), move || {
                l.borrow_mut().push(i);
                if i == 1 {
                    Err(Error::other("stuck"))
                } else {
                    Ok(())
                }
            });
        }
        assert_eq!(u.rollback(), ["step 1: stuck"]);
        assert_eq!(*log.borrow(), [2, 1, 0]);
    }
}
