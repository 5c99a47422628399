//! The watchdog: one function behind `/`, plus `/_/health`, `/_/ready` and
//! the metrics listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::HeaderValue;
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use prometheus_client::registry::Registry as PromRegistry;

use crate::body::Body;
use crate::config::{Config, Mode, normalize_path, parse_upstream};
use crate::fork::ForkRunner;
use crate::invoke::{Limits, X_CALL_ID, call_inproc, finish, text};
use crate::limit::{InflightGuard, limit_message, limit_met};
use crate::logs::LogOptions;
use crate::metrics::{HttpMetrics, Metrics, MetricsApp, method_label};
use crate::proxy::{Proxy, Upstream};
use crate::server::{App, Fatal, ServeOptions, Server, ShutdownHandle, bind, serve};
use crate::{Error, Function, Registry};

/// Builds a running watchdog from a [`Config`]. See the crate docs.
#[derive(Debug)]
pub struct Watchdog(());

impl Watchdog {
    /// Bind the function port (and the metrics port), write the lock file,
    /// start the upstream process in http mode, and start serving.
    ///
    /// `functions` is where `mode=inproc` looks up `fprocess` by name; the
    /// other modes ignore it (pass `&Registry::new()`).
    pub async fn bind(config: Config, functions: &Registry) -> Result<Server, Error> {
        config.validate()?;
        let logs = LogOptions {
            prefix: config.prefix_logs,
            max_line: config.log_buffer_size,
        };
        let runner = match config.mode {
            Mode::InProc => {
                let name = config
                    .function_process
                    .as_deref()
                    .unwrap_or_default()
                    .trim();
                let f = functions
                    .get(name)
                    .cloned()
                    .ok_or_else(|| Error::UnknownFunction {
                        name: name.to_string(),
                        available: functions.describe_names(),
                    })?;
                Runner::InProc(f)
            }
            Mode::Streaming | Mode::Serializing => Runner::Fork(ForkRunner::new(
                config.command()?.unwrap_or_default(),
                config.mode == Mode::Streaming,
                &config.content_type,
                logs,
            )),
            Mode::Http => {
                let (authority, base) =
                    parse_upstream(config.upstream_url.as_deref().unwrap_or_default())?;
                Runner::Http(Proxy::new(authority, base, config.buffer_http_body))
            }
        };

        let listener = bind(SocketAddr::new(config.bind_address, config.port)).await?;
        let local_addr = listener.local_addr().map_err(Error::Io)?;
        let metrics_listener = match config.metrics_port {
            Some(p) => Some(bind(SocketAddr::new(config.bind_address, p)).await?),
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(l) => Some(l.local_addr().map_err(Error::Io)?),
            None => None,
        };

        let (shutdown, stop_rx) = ShutdownHandle::new();
        let fatal: Fatal = Arc::new(Mutex::new(None));
        let upstream = match (config.mode, config.command()?) {
            (Mode::Http, Some(cmd)) => Some(Upstream::start(
                &cmd,
                logs,
                shutdown.clone(),
                fatal.clone(),
            )?),
            _ => None,
        };

        let mut reg = PromRegistry::default();
        let http = HttpMetrics::register(&mut reg);
        let metrics = Arc::new(Metrics::new(reg));

        let lock = if config.suppress_lock {
            tracing::warn!(
                "\"suppress_lock\" is enabled. No automated health-checks will be in place for your function."
            );
            None
        } else {
            let path = config.lock_path.clone();
            if let Err(source) = write_lock(&path) {
                if let Some(u) = upstream {
                    u.stop(Duration::ZERO).await;
                }
                return Err(Error::LockFile { path, source });
            }
            Some(path)
        };

        let ready_path = match &config.ready_path {
            Some(p) => Some(
                normalize_path(p)
                    .parse::<Uri>()
                    .map_err(|_| Error::Io(std::io::Error::other("bad ready_path")))?,
            ),
            None => None,
        };

        tracing::info!(
            "Watchdog mode: {}\tfprocess: {:?}",
            config.mode,
            config.function_process.as_deref().unwrap_or("")
        );
        tracing::info!(
            "Timeouts: read: {} write: {} hard: {} health: {}",
            crate::config::format_duration(config.read_timeout),
            crate::config::format_duration(config.write_timeout),
            crate::config::format_duration(config.exec_timeout),
            crate::config::format_duration(config.healthcheck_interval),
        );
        tracing::info!("Listening on {local_addr}");

        let app = Arc::new(WatchdogApp {
            runner,
            http,
            max_inflight: config.max_inflight,
            limits: Limits {
                read_timeout: nonzero(config.read_timeout),
                deadline: config.call_deadline(),
            },
            accepting: AtomicBool::new(true),
            lock,
            ready_path,
        });
        let opts = ServeOptions {
            read_timeout: nonzero(config.read_timeout),
            grace: config.healthcheck_interval,
            drain: config.write_timeout,
        };
        let write_timeout = config.write_timeout;
        let task = tokio::spawn(async move {
            let (mstop_tx, mstop_rx) = tokio::sync::watch::channel(false);
            let metrics_task = metrics_listener.map(|l| {
                let mopts = ServeOptions {
                    read_timeout: Some(Duration::from_secs(5)),
                    grace: Duration::ZERO,
                    drain: Duration::from_secs(1),
                };
                tokio::spawn(serve(l, Arc::new(MetricsApp(metrics)), mopts, mstop_rx))
            });
            let report = serve(listener, app.clone(), opts, stop_rx).await;
            app.begin_shutdown();
            if let Some(u) = upstream {
                u.stop(write_timeout).await;
            }
            mstop_tx.send_replace(true);
            if let Some(t) = metrics_task {
                let _ = t.await;
            }
            tracing::info!("Exiting. Drained: {}", report.drained);
            let err = fatal.lock().unwrap_or_else(|e| e.into_inner()).take();
            match err {
                Some(e) => Err(e),
                None => Ok(report),
            }
        });
        Ok(Server {
            local_addr,
            metrics_addr,
            shutdown,
            task,
        })
    }
}

fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

fn write_lock(path: &PathBuf) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, b"")?;
    tracing::info!("Writing lock-file to: {}", path.display());
    Ok(())
}

/// How the function is reached.
enum Runner {
    InProc(Arc<dyn Function>),
    Fork(ForkRunner),
    Http(Proxy),
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Runner::InProc(func) => write!(f, "InProc({})", func.name()),
            Runner::Fork(r) => r.fmt(f),
            Runner::Http(p) => p.fmt(f),
        }
    }
}

impl Runner {
    async fn run(
        &self,
        req: Request<Body>,
        limits: &Limits,
        guard: InflightGuard,
    ) -> Response<Body> {
        match self {
            Runner::InProc(f) => call_inproc(f, req, limits, guard).await,
            Runner::Fork(f) => f.run(req, limits, guard).await,
            Runner::Http(p) => p.run(req, limits, guard).await,
        }
    }
}

#[derive(Debug)]
struct WatchdogApp {
    runner: Runner,
    http: HttpMetrics,
    max_inflight: usize,
    limits: Limits,
    accepting: AtomicBool,
    lock: Option<PathBuf>,
    ready_path: Option<Uri>,
}

impl WatchdogApp {
    fn healthy(&self) -> bool {
        self.accepting.load(Ordering::Acquire) && self.lock.as_ref().is_none_or(|p| p.exists())
    }

    fn health(&self, req: &Request<Incoming>) -> Response<Body> {
        if req.method() != Method::GET {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        if self.healthy() {
            Response::new(Body::full("OK"))
        } else {
            status(StatusCode::SERVICE_UNAVAILABLE)
        }
    }

    async fn ready(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::GET {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        if !self.healthy() {
            return status(StatusCode::SERVICE_UNAVAILABLE);
        }
        if limit_met(&self.http.in_flight, self.max_inflight) {
            return status(StatusCode::TOO_MANY_REQUESTS);
        }
        match &self.ready_path {
            Some(path) => {
                let (mut parts, _) = req.into_parts();
                parts.uri = path.clone();
                let req = Request::from_parts(parts, Body::empty());
                self.runner
                    .run(req, &self.limits, InflightGuard::untracked())
                    .await
            }
            None => Response::new(Body::full("OK")),
        }
    }

    async fn invoke(&self, req: Request<Incoming>) -> Response<Body> {
        let start = Instant::now();
        let method = method_label(req.method());
        let call_id: Option<HeaderValue> = req.headers().get(X_CALL_ID).cloned();
        let mut resp = match InflightGuard::acquire(&self.http.in_flight, self.max_inflight) {
            Some(guard) => {
                self.runner
                    .run(req.map(Body::incoming), &self.limits, guard)
                    .await
            }
            None => text(
                StatusCode::TOO_MANY_REQUESTS,
                limit_message(self.max_inflight),
            ),
        };
        let secs = finish(&mut resp, start, call_id);
        self.http.record(resp.status().as_u16(), method, secs);
        resp
    }
}

fn status(s: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = s;
    r
}

impl App for WatchdogApp {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        match req.uri().path() {
            "/_/health" => self.health(&req),
            "/_/ready" => self.ready(req).await,
            _ => self.invoke(req).await,
        }
    }

    fn begin_shutdown(&self) {
        if self.accepting.swap(false, Ordering::AcqRel) {
            if let Some(p) = &self.lock {
                tracing::info!("Removing lock-file : {}", p.display());
                if let Err(e) = std::fs::remove_file(p) {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        tracing::warn!("Unable to mark server as unhealthy: {e}");
                    }
                }
            }
        }
    }
}
