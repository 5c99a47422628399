//! A scriptable HTTP/1.1 server for tests (feature `test-utils`).
//!
//! Each request's query string says how to answer:
//!
//! | parameter | effect |
//! |---|---|
//! | `delay_ms=N` | wait N ms before answering |
//! | `status=N` | answer with status N (default 200) |
//! | `hang=1` | never answer (the connection stays open) |
//! | `reset=1` | reset the connection (RST) instead of answering |
//! | `close=1` | answer with `Connection: close`, then close |
//! | `handler_ms=N` | send `X-Duration-Seconds: N/1000` |
//! | `op_ms=N` | send `X-Vaccel-Op-Seconds: N/1000` |
//! | `bytes=N` | a body of N bytes (default `ok`) |
//! | `cycle=200,429,reset,hang,...` | the server-wide n-th request of this kind takes the n-th entry (round-robin): a status, `reset` or `hang` |
//!
//! The server counts connections and requests, and records when each
//! connection was accepted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    requests: AtomicU64,
    cycle: AtomicU64,
    accepted: Mutex<Vec<Instant>>,
    bodies: Mutex<Vec<usize>>,
}

/// A running test server; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Start on 127.0.0.1, any free port.
    pub fn start() -> TestServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a test port");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local addr");
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("test server runtime");
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener).expect("listener");
                    let mut stop_rx = stop_rx;
                    loop {
                        tokio::select! {
                            _ = &mut stop_rx => break,
                            r = listener.accept() => {
                                let Ok((stream, _)) = r else { continue };
                                let _ = stream.set_nodelay(true);
                                c.connections.fetch_add(1, Ordering::Relaxed);
                                c.accepted.lock().unwrap().push(Instant::now());
                                tokio::spawn(serve(stream, c.clone()));
                            }
                        }
                    }
                });
                // Dropping the runtime drops hanging connections.
                drop(rt);
            })
            .expect("spawn the test server");
        TestServer {
            addr,
            counters,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` + `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// Connections accepted.
    pub fn connections(&self) -> u64 {
        self.counters.connections.load(Ordering::Relaxed)
    }

    /// Requests read.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// When each connection was accepted, in order.
    pub fn accept_times(&self) -> Vec<Instant> {
        self.counters.accepted.lock().unwrap().clone()
    }

    /// The body length of each request, in arrival order.
    pub fn body_lengths(&self) -> Vec<usize> {
        self.counters.bodies.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

async fn serve(mut stream: TcpStream, c: Arc<Counters>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        // Read a request head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let target = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let mut content_length = 0usize;
        let mut client_close = false;
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    content_length = v.trim().parse().unwrap_or(0);
                } else if k == "connection" && v.trim().eq_ignore_ascii_case("close") {
                    client_close = true;
                }
            }
        }
        while buf.len() < head_end + content_length {
            let mut chunk = [0u8; 65536];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + content_length);
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.bodies.lock().unwrap().push(content_length);

        let q: HashMap<String, String> = target
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let num = |k: &str| q.get(k).and_then(|v| v.parse::<u64>().ok());
        let mut status = num("status").unwrap_or(200) as u16;
        let mut hang = num("hang") == Some(1);
        let mut reset = num("reset") == Some(1);
        if let Some(cycle) = q.get("cycle") {
            let items: Vec<&str> = cycle.split(',').collect();
            let i = c.cycle.fetch_add(1, Ordering::Relaxed) as usize % items.len();
            match items[i] {
                "hang" => hang = true,
                "reset" => reset = true,
                s => status = s.parse().unwrap_or(200),
            }
        }
        if let Some(d) = num("delay_ms") {
            tokio::time::sleep(Duration::from_millis(d)).await;
        }
        if hang {
            // Hold the connection until the client goes away.
            let mut sink = [0u8; 1024];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
            return;
        }
        if reset {
            let _ = stream.set_zero_linger();
            return;
        }
        let close = num("close") == Some(1) || client_close;
        let body: Vec<u8> = match num("bytes") {
            Some(n) => vec![b'x'; n as usize],
            None => b"ok".to_vec(),
        };
        let mut resp = format!(
            "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n",
            reason(status),
            body.len()
        );
        if let Some(ms) = num("handler_ms") {
            resp += &format!("x-duration-seconds: {:.6}\r\n", ms as f64 / 1000.0);
        }
        if let Some(ms) = num("op_ms") {
            resp += &format!("x-vaccel-op-seconds: {:.6}\r\n", ms as f64 / 1000.0);
        }
        if close {
            resp += "connection: close\r\n";
        }
        resp += "\r\n";
        let mut out = resp.into_bytes();
        out.extend_from_slice(&body);
        if stream.write_all(&out).await.is_err() {
            return;
        }
        if close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}
