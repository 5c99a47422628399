//! A local OpenFaaS-style gateway: many in-process functions on one
//! listener, at the gateway's paths, with the watchdog's call logic.
//!
//! | path | what |
//! |---|---|
//! | `/function/<name>`, `/function/<name>/<rest>` | call `<name>` with path `/<rest>` (any method) |
//! | `GET /system/functions` | the functions, as OpenFaaS's `FunctionStatus` JSON array |
//! | `GET /system/function/<name>` | one of them |
//! | `/healthz` | 200 `OK` (503 while shutting down) |
//! | `GET /metrics` | Prometheus metrics |

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher as _, Hasher as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use prometheus_client::registry::Registry as PromRegistry;
use serde::Serialize;

use crate::body::Body;
use crate::invoke::{Limits, X_CALL_ID, X_START_TIME, call_inproc, finish, text};
use crate::limit::{InflightGuard, limit_message};
use crate::logs::rfc3339;
use crate::metrics::{FnMetrics, GatewayMetrics, HttpMetrics, Metrics, method_label};
use crate::server::{App, ServeOptions, Server, ShutdownHandle, bind, serve};
use crate::{Error, Function, Registry};

/// How the gateway listens and limits calls.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// Address to listen on. Default `127.0.0.1`.
    pub bind_address: IpAddr,
    /// Port. Default 8080 (OpenFaaS's gateway port); 0 picks a free one.
    pub port: u16,
    /// Time to read a request head and body. Default 10 s; 0 disables it.
    pub read_timeout: Duration,
    /// Bound on draining in-flight calls at shutdown, and on each call.
    /// Default 60 s.
    pub write_timeout: Duration,
    /// The longest a (non-inline) call may run before the client gets 504.
    /// Default 60 s; 0 leaves only `write_timeout`.
    pub exec_timeout: Duration,
    /// Concurrent calls allowed over all functions; over it, 429. Default 0
    /// (no limit).
    pub max_inflight: usize,
    /// The namespace reported in `/system/functions`. Default `openfaas-fn`.
    pub namespace: String,
    /// After shutdown begins, how long to keep serving (with `/healthz`
    /// answering 503) before accepting stops. Default 0.
    pub healthcheck_interval: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8080,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(60),
            exec_timeout: Duration::from_secs(60),
            max_inflight: 0,
            namespace: "openfaas-fn".to_string(),
            healthcheck_interval: Duration::ZERO,
        }
    }
}

/// Builds a running gateway. See the [module docs](self).
#[derive(Debug)]
pub struct Gateway(());

impl Gateway {
    /// Bind and serve `functions`. Metrics are served on the same listener,
    /// at `/metrics` ([`Server::metrics_addr`] is the same address).
    pub async fn bind(config: GatewayConfig, functions: &Registry) -> Result<Server, Error> {
        if config.write_timeout.is_zero() {
            return Err(crate::ConfigError::ZeroWriteTimeout.into());
        }
        let listener = bind(SocketAddr::new(config.bind_address, config.port)).await?;
        let local_addr = listener.local_addr().map_err(Error::Io)?;

        let mut reg = PromRegistry::default();
        let http = HttpMetrics::register(&mut reg);
        let gw = GatewayMetrics::register(&mut reg);
        let mut entries = HashMap::with_capacity(functions.len());
        for f in functions.iter() {
            let name = f.name().to_string();
            let metrics = gw.function(&name);
            entries.insert(
                name,
                Entry {
                    f: f.clone(),
                    metrics,
                },
            );
        }
        let metrics = Metrics::new(reg);
        let read_timeout = (!config.read_timeout.is_zero()).then_some(config.read_timeout);
        let deadline = if config.exec_timeout.is_zero() {
            config.write_timeout
        } else {
            config.exec_timeout.min(config.write_timeout)
        };
        let app = Arc::new(GatewayApp {
            names: functions.names().map(str::to_string).collect(),
            functions: entries,
            http,
            metrics,
            max_inflight: config.max_inflight,
            limits: Limits {
                read_timeout,
                deadline,
            },
            namespace: config.namespace.clone(),
            created_at: rfc3339(SystemTime::now()),
            accepting: AtomicBool::new(true),
        });
        tracing::info!(
            "gateway listening on {local_addr}: {}",
            functions.describe_names()
        );
        let (shutdown, stop_rx) = ShutdownHandle::new();
        let opts = ServeOptions {
            read_timeout,
            grace: config.healthcheck_interval,
            drain: config.write_timeout,
        };
        let task = tokio::spawn(async move { Ok(serve(listener, app, opts, stop_rx).await) });
        Ok(Server {
            local_addr,
            metrics_addr: Some(local_addr),
            shutdown,
            task,
        })
    }
}

struct Entry {
    f: Arc<dyn Function>,
    metrics: FnMetrics,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.f.name())
            .finish()
    }
}

#[derive(Debug)]
struct GatewayApp {
    functions: HashMap<String, Entry>,
    names: Vec<String>,
    http: HttpMetrics,
    metrics: Metrics,
    max_inflight: usize,
    limits: Limits,
    namespace: String,
    created_at: String,
    accepting: AtomicBool,
}

/// OpenFaaS's `FunctionStatus` (faas-provider `types.FunctionStatus`), the
/// fields that mean something here.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionStatus<'a> {
    name: &'a str,
    image: String,
    namespace: &'a str,
    env_process: &'a str,
    labels: BTreeMap<&'static str, &'a str>,
    annotations: BTreeMap<&'static str, String>,
    invocation_count: u64,
    replicas: u64,
    available_replicas: u64,
    created_at: &'a str,
}

impl GatewayApp {
    fn status<'a>(&'a self, name: &'a str, e: &Entry) -> FunctionStatus<'a> {
        let mut labels = BTreeMap::new();
        labels.insert("faas_function", name);
        labels.insert("com.vaccel.runtime", "inproc");
        let mut annotations = BTreeMap::new();
        annotations.insert("com.vaccel.inline", e.f.inline().to_string());
        annotations.insert("com.vaccel.max_body", e.f.max_body().to_string());
        FunctionStatus {
            name,
            image: format!("vaccel/{name}:inproc"),
            namespace: &self.namespace,
            env_process: name,
            labels,
            annotations,
            invocation_count: e.metrics.invocations(),
            replicas: 1,
            available_replicas: 1,
            created_at: &self.created_at,
        }
    }

    fn list(&self, req: &Request<Incoming>) -> Response<Body> {
        if req.method() != Method::GET {
            return not_allowed("GET");
        }
        let all: Vec<FunctionStatus<'_>> = self
            .names
            .iter()
            .filter_map(|n| self.functions.get(n).map(|e| self.status(n, e)))
            .collect();
        json(&all)
    }

    fn one(&self, req: &Request<Incoming>, name: &str) -> Response<Body> {
        if req.method() != Method::GET {
            return not_allowed("GET");
        }
        match self.functions.get_key_value(name) {
            Some((n, e)) => json(&self.status(n, e)),
            None => self.unknown(name),
        }
    }

    fn unknown(&self, name: &str) -> Response<Body> {
        let known = if self.names.is_empty() {
            "(none)".to_string()
        } else {
            self.names.join(", ")
        };
        text(
            StatusCode::NOT_FOUND,
            format!("function '{name}' not found; deployed functions: {known}\n"),
        )
    }

    async fn call(&self, req: Request<Incoming>) -> Response<Body> {
        let start = Instant::now();
        // "/function/<name>[/<rest>]"
        let path = &req.uri().path()["/function/".len()..];
        let name_len = path.find('/').unwrap_or(path.len());
        let (name, tail) = path.split_at(name_len);
        let Some((name, e)) = self.functions.get_key_value(name) else {
            return if name.is_empty() {
                text(
                    StatusCode::NOT_FOUND,
                    "no function named: call /function/<name>\n".to_string(),
                )
            } else {
                self.unknown(name)
            };
        };
        let tail = if tail.is_empty() { "/" } else { tail };
        let uri = match req.uri().query() {
            Some(q) => Uri::try_from(format!("{tail}?{q}")),
            None => Uri::try_from(tail),
        };
        let (mut parts, body) = req.into_parts();
        match uri {
            Ok(u) => parts.uri = u,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("bad path: {e}\n")),
        }
        e.metrics.started();
        let call_id = match parts.headers.get(X_CALL_ID) {
            Some(v) => v.clone(),
            None => {
                let v = new_call_id();
                parts.headers.insert(X_CALL_ID, v.clone());
                v
            }
        };
        if !parts.headers.contains_key(X_START_TIME) {
            let ns = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            if let Ok(v) = HeaderValue::try_from(ns.to_string()) {
                parts.headers.insert(X_START_TIME, v);
            }
        }
        let method = method_label(&parts.method);
        let req = Request::from_parts(parts, Body::incoming(body));
        let mut resp = match InflightGuard::acquire(&self.http.in_flight, self.max_inflight) {
            Some(guard) => call_inproc(&e.f, req, &self.limits, guard).await,
            None => text(
                StatusCode::TOO_MANY_REQUESTS,
                limit_message(self.max_inflight),
            ),
        };
        let secs = finish(&mut resp, start, Some(call_id));
        let code = resp.status().as_u16();
        self.http.record(code, method, secs);
        e.metrics.record(code, secs);
        tracing::debug!("{name}: {code} in {secs:.6}s");
        resp
    }
}

impl App for GatewayApp {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path();
        if path.starts_with("/function/") {
            return self.call(req).await;
        }
        if let Some(name) = path.strip_prefix("/system/function/") {
            let name = name.to_string();
            return self.one(&req, &name);
        }
        match path {
            "/system/functions" => self.list(&req),
            "/healthz" => {
                if self.accepting.load(Ordering::Acquire) {
                    Response::new(Body::full("OK"))
                } else {
                    let mut r = Response::new(Body::empty());
                    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    r
                }
            }
            "/metrics" => self.metrics.response(&req),
            _ => text(
                StatusCode::NOT_FOUND,
                format!(
                    "not found: {path}; functions are called at /function/<name> and listed at /system/functions\n"
                ),
            ),
        }
    }

    fn begin_shutdown(&self) {
        self.accepting.store(false, Ordering::Release);
    }
}

fn not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed: use {allow}\n"),
    );
    r.headers_mut()
        .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn json<T: Serialize>(v: &T) -> Response<Body> {
    match serde_json::to_vec(v) {
        Ok(b) => {
            let mut r = Response::new(Body::full(b));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// A random (version 4 style) id for a call that came without one.
fn new_call_id() -> HeaderValue {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let word = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(seq);
        h.write_u128(nanos);
        h.write_u64(salt);
        h.finish()
    };
    let (a, b) = (word(1), word(2));
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    );
    HeaderValue::try_from(id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}
