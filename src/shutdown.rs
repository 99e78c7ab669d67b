//! A graceful shutdown request that is repeated until the machine is down.
//!
//! A guest that is still booting when the power button is pressed (or, for
//! a container, when init has not yet installed its halt handler) loses the
//! request: nothing in it listens yet, and it would then sit until the stop
//! timeout forces it off. At host shutdown that is the common case for
//! machines that autostart brought up a moment before. So the request is
//! sent again every `RESEND` until the machine stops; a guest already
//! shutting down ignores the extra presses.

use std::time::{Duration, Instant};

use crate::backend::Driver;
use crate::error::Result;

const RESEND: Duration = Duration::from_secs(5);

pub struct Shutdown<'a> {
    drv: &'a dyn Driver,
    name: &'a str,
    sent: Instant,
}

impl<'a> Shutdown<'a> {
    /// Send the first request; its errors (wrong state, no such machine)
    /// are the caller's.
    pub fn request(drv: &'a dyn Driver, name: &'a str) -> Result<Shutdown<'a>> {
        drv.request_shutdown(name)?;
        Ok(Shutdown {
            drv,
            name,
            sent: Instant::now(),
        })
    }

    /// Whether the machine is down; repeats the request when it is due.
    pub fn done(&mut self) -> Result<bool> {
        if !self.drv.state(self.name)?.is_active() {
            return Ok(true);
        }
        if self.sent.elapsed() >= RESEND {
            self.sent = Instant::now();
            if let Err(e) = self.drv.request_shutdown(self.name) {
                // It may have stopped between the two calls; that is success.
                if self.drv.state(self.name)?.is_active() {
                    return Err(e);
                }
                return Ok(true);
            }
        }
        Ok(false)
    }
}
