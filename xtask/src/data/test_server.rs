//! A tiny HTTP/1.1 file server on 127.0.0.1 for the download tests: `GET` with `Range`, 404 for
//! unknown paths, a log of every request, and scripted faults (a body cut short, ranges
//! ignored). One connection at a time, each closed after its response.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the server misbehaves for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Serves the file properly.
    None,
    /// The first `n` responses promise the whole remaining length but send half and close.
    TruncateFirst(usize),
    /// Answers every request with the whole file (200), as servers without range support do.
    IgnoreRange,
}

/// One request the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// The request path (`/tiny/a.gz`).
    pub path: String,
    /// The first byte of a `Range: bytes=N-` header, if any.
    pub range_start: Option<u64>,
}

struct Route {
    body: Vec<u8>,
    fault: Fault,
    served: usize,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    log: Vec<Logged>,
}

/// The server; dropping it stops its thread.
pub struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on a free loopback port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(stream) = stream {
                    // A broken connection only fails the test that caused it.
                    let _ = handle(stream, &s);
                }
            }
        });
        Self {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The URL of directory `dir` on this server, ending in `/`.
    pub fn url(&self, dir: &str) -> String {
        format!("http://127.0.0.1:{}/{dir}/", self.port)
    }

    /// Serves `body` at `path` (`/tiny/a.gz`).
    pub fn serve(&self, path: &str, body: &[u8]) {
        self.serve_with(path, body, Fault::None);
    }

    /// Serves `body` at `path` with a fault.
    pub fn serve_with(&self, path: &str, body: &[u8], fault: Fault) {
        let route = Route {
            body: body.to_vec(),
            fault,
            served: 0,
        };
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), route);
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(mut stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range_start = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range:") {
            range_start = v
                .trim()
                .strip_prefix("bytes=")
                .and_then(|r| r.split('-').next())
                .and_then(|n| n.parse::<u64>().ok());
        }
    }
    let (head, body, cut) = {
        let mut st = state.lock().unwrap();
        st.log.push(Logged {
            path: path.clone(),
            range_start,
        });
        match st.routes.get_mut(&path) {
            None => (status(404, "Not Found", 0, ""), Vec::new(), None),
            Some(route) => {
                route.served += 1;
                let len = route.body.len() as u64;
                let start = match route.fault {
                    Fault::IgnoreRange => None,
                    _ => range_start,
                };
                let truncate = matches!(route.fault, Fault::TruncateFirst(n) if route.served <= n);
                match start {
                    Some(s) if s >= len => {
                        let extra = format!("Content-Range: bytes */{len}\r\n");
                        (
                            status(416, "Range Not Satisfiable", 0, &extra),
                            Vec::new(),
                            None,
                        )
                    }
                    Some(s) => {
                        let body = route.body[s as usize..].to_vec();
                        let extra = format!("Content-Range: bytes {s}-{}/{len}\r\n", len - 1);
                        let cut = truncate.then_some(body.len() / 2);
                        (
                            status(206, "Partial Content", body.len(), &extra),
                            body,
                            cut,
                        )
                    }
                    None => {
                        let body = route.body.clone();
                        let cut = truncate.then_some(body.len() / 2);
                        (status(200, "OK", body.len(), ""), body, cut)
                    }
                }
            }
        }
    };
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body[..cut.unwrap_or(body.len())])?;
    stream.flush()?;
    stream.shutdown(Shutdown::Both)
}

fn status(code: u16, reason: &str, length: usize, extra: &str) -> String {
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {length}\r\nAccept-Ranges: bytes\r\n\
         Content-Type: application/octet-stream\r\n{extra}Connection: close\r\n\r\n"
    )
}
