//! The two ends a machine's console can have: a libvirt stream (VMs) or a
//! pty master (containers). `cmd/console.rs` owns the terminal side.

use std::io::{Read, Write};

use crate::error::{Error, Result};

pub enum Console {
    Stream(virt::stream::Stream),
    Pty(std::fs::File),
}

impl Console {
    /// A second handle on the same console, for the output thread.
    pub fn duplicate(&self) -> Result<Console> {
        Ok(match self {
            Console::Stream(s) => Console::Stream(s.clone()),
            Console::Pty(f) => Console::Pty(
                f.try_clone()
                    .map_err(|e| Error::other("cannot duplicate the console").caused_by(e))?,
            ),
        })
    }

    /// Bytes from the machine; None once the console closed.
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
        match self {
            Console::Stream(s) => s.recv(buf).ok().filter(|n| *n > 0).map(|n| n as usize),
            Console::Pty(f) => f.read(buf).ok().filter(|n| *n > 0),
        }
    }

    pub fn send(&mut self, data: &[u8]) -> Result<usize> {
        match self {
            Console::Stream(s) => s
                .send(data)
                .map(|n| n.max(0) as usize)
                .map_err(|e| Error::other("cannot write to the console").caused_by(e.message())),
            Console::Pty(f) => f
                .write(data)
                .map_err(|e| Error::other("cannot write to the console").caused_by(e)),
        }
    }
}
