//! A small HTTP server on 127.0.0.1 for download tests: serves one body,
//! honours `Range: bytes=N-`, and can drop the first connection halfway or
//! send slowly.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    Normal,
    /// The first response promises the whole body and stops halfway.
    DropFirst,
    /// 16 KiB every 20 ms.
    Slow,
}

pub struct Server {
    pub url: String,
    /// The Range header of each request ("" for none).
    pub ranges: Arc<Mutex<Vec<String>>>,
}

pub fn serve(body: Vec<u8>, mode: Mode) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let r = ranges.clone();
    let body = Arc::new(body);
    thread::spawn(move || {
        for (i, conn) in listener.incoming().take(32).enumerate() {
            let Ok(conn) = conn else { continue };
            let body = body.clone();
            let r = r.clone();
            thread::spawn(move || {
                let _ = handle(conn, &body, mode, i == 0, &r);
            });
        }
    });
    Server {
        url: format!("http://{addr}/img.raw"),
        ranges,
    }
}

fn handle(
    mut conn: TcpStream,
    body: &[u8],
    mode: Mode,
    first: bool,
    ranges: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut range = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range:") {
            range = v.trim().to_string();
        }
    }
    ranges.lock().unwrap().push(range.clone());
    let start: usize = range
        .strip_prefix("bytes=")
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap_or(0);
    let part = &body[start.min(body.len())..];
    let head = if start > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
            part.len(),
            body.len() - 1,
            body.len()
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n", part.len())
    };
    conn.write_all(head.as_bytes())?;
    match mode {
        Mode::DropFirst if first => {
            conn.write_all(&part[..part.len() / 2])?;
            conn.flush()?;
            conn.shutdown(std::net::Shutdown::Both)?;
        }
        Mode::Slow => {
            for chunk in part.chunks(16 << 10) {
                conn.write_all(chunk)?;
                thread::sleep(Duration::from_millis(20));
            }
        }
        _ => conn.write_all(part)?,
    }
    Ok(())
}
