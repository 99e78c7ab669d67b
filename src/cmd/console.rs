//! `creature console`: the machine's serial console on this terminal.
//! Raw mode on a terminal, Ctrl-] to leave, and the terminal restored on
//! every way out (return, error, panic, the guest closing the console).

use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;

use crate::backend::Driver;
use crate::cmd::Ctx;
use crate::error::{Error, Result};
use crate::store::MachineRecord;

const ESCAPE: u8 = 0x1d; // Ctrl-]

/// The terminal settings to put back, shared with the output thread, which
/// may end the process when the guest closes the console.
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

fn restore_terminal() {
    if let Ok(mut saved) = SAVED.lock() {
        if let Some(t) = saved.take() {
            // SAFETY: fd 0 and a termios read from it earlier.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

struct RawMode;

impl RawMode {
    fn enter() -> Result<Option<RawMode>> {
        if !std::io::stdin().is_terminal() {
            return Ok(None);
        }
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
            return Err(Error::other("cannot read the terminal's settings")
                .caused_by(std::io::Error::last_os_error()));
        }
        *SAVED.lock().expect("not poisoned") = Some(t);
        let mut raw = t;
        // SAFETY: cfmakeraw edits the struct in place; tcsetattr applies it to fd 0.
        unsafe {
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSANOW, &raw);
        }
        Ok(Some(RawMode))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore_terminal();
    }
}

pub fn run(ctx: &Ctx, drv: &dyn Driver, rec: &MachineRecord) -> Result<()> {
    let mut stream = drv.console(&rec.name)?;
    let tty = std::io::stdin().is_terminal();
    if tty && !ctx.global.quiet {
        eprint!("Connected to {} (Ctrl-] to leave)\r\n", rec.name);
    }
    let raw = RawMode::enter()?;
    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev_hook(info);
    }));

    let mut out = stream.duplicate()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdout = std::io::stdout();
        // Until the console closes (machine stopped) or fails.
        while let Some(n) = out.recv(&mut buf) {
            if stdout
                .write_all(&buf[..n])
                .and_then(|_| stdout.flush())
                .is_err()
            {
                break;
            }
        }
        restore_terminal();
        eprint!("\r\nconsole closed\r\n");
        std::process::exit(0);
    });

    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 1024];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => break, // end of input: leave
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::other("cannot read the terminal").caused_by(e)),
        };
        let (data, leave) = match buf[..n].iter().position(|b| *b == ESCAPE) {
            Some(i) => (&buf[..i], true),
            None => (&buf[..n], false),
        };
        let mut sent = 0;
        while sent < data.len() {
            sent += stream.send(&data[sent..])?;
        }
        if leave {
            break;
        }
    }
    drop(raw);
    if tty && !ctx.global.quiet {
        eprintln!("\nleft the console of {}", rec.name);
    }
    Ok(())
}
