//! Helpers shared by the integration tests: a real HTTP client, test
//! configurations on ephemeral ports, and small in-process functions.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use vaccel_watchdog::{Config, Function};

/// Generous bound for anything a test waits on (a loaded 2-core machine).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `X-Duration-Seconds`, parsed.
    pub fn duration(&self) -> f64 {
        let v = self
            .header("x-duration-seconds")
            .unwrap_or_else(|| panic!("no X-Duration-Seconds in {:?}", self.headers));
        v.parse()
            .unwrap_or_else(|_| panic!("X-Duration-Seconds {v:?} is not a number"))
    }
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Send one request with a fresh client (its own connection).
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    send_with(&client(), addr, method, path, headers, body).await
}

pub async fn send_with(
    client: &HttpClient,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(body.into())).unwrap();
    let resp = tokio::time::timeout(PATIENCE, client.request(req))
        .await
        .expect("no response in time")
        .expect("request failed");
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .expect("body not received in time")
        .expect("reading the body")
        .to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, Method::GET, path, &[], Bytes::new()).await
}

pub async fn post(addr: SocketAddr, path: &str, body: impl Into<Bytes>) -> Reply {
    send(addr, Method::POST, path, &[], body).await
}

/// A map of environment variables.
pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A configuration for tests: ephemeral ports on 127.0.0.1, the lock file
/// in `dir`, no grace period at shutdown (unless `pairs` set one).
pub fn config(dir: &Path, pairs: &[(&str, &str)]) -> Config {
    let mut m = env(&[
        ("port", "0"),
        ("metrics_port", "0"),
        ("healthcheck_interval", "0"),
        ("prefix_logs", "true"),
        ("TMPDIR", dir.to_str().unwrap()),
    ]);
    m.extend(env(pairs));
    let mut c = Config::from_env_map(&m).expect("test configuration");
    c.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    c
}

/// Poll `cond` until true or [`PATIENCE`] runs out.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn response(status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r
}

/// Returns the body; adds `X-Vaccel-Op-Seconds`. Inline.
#[derive(Debug)]
pub struct Echo;

impl Function for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn inline(&self) -> bool {
        true
    }
    fn call(&self, req: Request<Bytes>) -> Response<Bytes> {
        let mut r = response(StatusCode::OK, req.into_body());
        r.headers_mut()
            .insert("x-vaccel-op-seconds", "0.000042".parse().unwrap());
        r
    }
}

/// Answers `METHOD PATH?QUERY call-id` (blocking pool).
#[derive(Debug)]
pub struct Info;

impl Function for Info {
    fn name(&self) -> &str {
        "info"
    }
    fn call(&self, req: Request<Bytes>) -> Response<Bytes> {
        let id = req
            .headers()
            .get("x-call-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        let pq = req.uri().path_and_query().map_or("", |p| p.as_str());
        response(StatusCode::OK, format!("{} {pq} {id}", req.method()))
    }
}

/// Accepts at most 16 bytes.
#[derive(Debug)]
pub struct Small;

impl Function for Small {
    fn name(&self) -> &str {
        "small"
    }
    fn max_body(&self) -> usize {
        16
    }
    fn inline(&self) -> bool {
        true
    }
    fn call(&self, req: Request<Bytes>) -> Response<Bytes> {
        response(StatusCode::OK, req.into_body())
    }
}

/// Panics.
#[derive(Debug)]
pub struct Panics;

impl Function for Panics {
    fn name(&self) -> &str {
        "panics"
    }
    fn call(&self, _: Request<Bytes>) -> Response<Bytes> {
        panic!("deliberate test panic")
    }
}

/// Blocks each call until the gate opens; counts calls that entered.
#[derive(Debug, Default)]
pub struct Gate {
    pub entered: AtomicUsize,
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    pub fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }
}

/// A function that waits at a [`Gate`] (blocking pool).
#[derive(Debug)]
pub struct Gated(pub Arc<Gate>);

impl Function for Gated {
    fn name(&self) -> &str {
        "gated"
    }
    fn call(&self, req: Request<Bytes>) -> Response<Bytes> {
        let g = &self.0;
        g.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = g.open.lock().unwrap();
        while !*open {
            open = g.cv.wait(open).unwrap();
        }
        response(StatusCode::OK, req.into_body())
    }
}

/// Sleeps, then answers "slept" (blocking pool).
#[derive(Debug)]
pub struct Sleepy(pub Duration);

impl Function for Sleepy {
    fn name(&self) -> &str {
        "sleepy"
    }
    fn call(&self, _: Request<Bytes>) -> Response<Bytes> {
        std::thread::sleep(self.0);
        response(StatusCode::OK, "slept")
    }
}

/// True when no live process has this pid: gone, or a zombie that is not
/// ours to reap.
pub fn process_gone(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    // "pid (comm) S ppid ..." — comm may contain spaces; split after ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return false;
    };
    let mut f = rest.split_whitespace();
    let state = f.next().unwrap_or("");
    let ppid: i32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    state == "Z" && ppid != std::process::id() as i32
}

/// Read a pid a test script wrote to `path`.
pub async fn read_pid(path: &Path) -> i32 {
    let t0 = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(p) = s.trim().parse() {
                return p;
            }
        }
        assert!(t0.elapsed() < PATIENCE, "no pid in {}", path.display());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
