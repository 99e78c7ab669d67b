//! Run a blocking call with a deadline. libvirt and liblxc calls can hang on a
//! wedged daemon; a read verb must still answer, so the call runs on its own
//! thread and is abandoned (not killed) when its time is up.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::error::{Error, Kind, Result};

pub fn run<T, F>(what: &str, limit: Duration, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name(format!("deadline: {what}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| Error::other(format!("cannot start a thread for {what}")).caused_by(e))?;
    match rx.recv_timeout(limit) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::new(
            Kind::Timeout,
            format!("{what} did not answer within {} s", limit.as_secs_f32()),
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::other(format!(
            "{what} failed without an answer (thread panicked)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_value_in_time() {
        assert_eq!(run("quick", Duration::from_secs(5), || Ok(7)).unwrap(), 7);
    }

    #[test]
    fn abandons_a_hung_call() {
        let e = run("hung", Duration::from_millis(50), || {
            thread::sleep(Duration::from_secs(5));
            Ok(())
        })
        .unwrap_err();
        assert_eq!(e.kind(), Kind::Timeout);
    }
}
