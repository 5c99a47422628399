//! Prometheus metrics, served over HTTP at `/metrics`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::Stats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpOnly {
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollResult {
    result: &'static str,
}

/// The agent's metrics.
pub struct Metrics {
    registry: Registry,
    ops: Family<OpLabels, Counter>,
    latency: Family<OpOnly, Histogram>,
    connections: Gauge,
    sessions: Gauge,
    resources: Gauge,
    bytes_in: Counter,
    bytes_out: Counter,
    busy_polls: Family<PollResult, Counter>,
    /// The series of each (op, status) pair seen, found by the names'
    /// addresses: recording an op then allocates nothing.
    series: std::sync::RwLock<Vec<Series>>,
}

struct Series {
    op: &'static str,
    status: &'static str,
    count: Counter,
    latency: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("vaccel_agent");
        let ops = Family::<OpLabels, Counter>::default();
        let latency = Family::<OpOnly, Histogram>::new_with_constructor(|| {
            // 10 µs … ~80 s.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                1e-5, 2.0, 24,
            ))
        });
        let (connections, sessions, resources) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        let (bytes_in, bytes_out) = (Counter::default(), Counter::default());
        registry.register(
            "ops",
            "Ops answered, by op and status (ok or error code)",
            ops.clone(),
        );
        registry.register(
            "op_duration_seconds",
            "Time from request to reply, by op",
            latency.clone(),
        );
        registry.register(
            "connections",
            "Open client connections",
            connections.clone(),
        );
        registry.register("sessions", "Live sessions", sessions.clone());
        registry.register("resources", "Live resources", resources.clone());
        registry.register(
            "received_bytes",
            "Bytes received from clients",
            bytes_in.clone(),
        );
        registry.register("sent_bytes", "Bytes sent to clients", bytes_out.clone());
        let busy_polls = Family::<PollResult, Counter>::default();
        registry.register(
            "busy_polls",
            "Socket reads by busy-polling outcome: hit (data came while polling), miss (the window ended; the reader blocked), full (blocked at once: --busy-pollers already polling)",
            busy_polls.clone(),
        );
        Metrics {
            registry,
            ops,
            latency,
            connections,
            sessions,
            resources,
            bytes_in,
            bytes_out,
            busy_polls,
            series: std::sync::RwLock::new(Vec::new()),
        }
    }
}

impl Metrics {
    /// Record one answered op.
    pub fn op(&self, op: &str, status: &str, took: Duration) {
        self.ops
            .get_or_create(&OpLabels {
                op: op.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&OpOnly { op: op.to_string() })
            .observe(took.as_secs_f64());
    }

    /// Record one answered op whose names live for the process (the hot
    /// path: no allocation once the pair has been seen).
    pub(crate) fn op_static(&self, op: &'static str, status: &'static str, took: Duration) {
        let same = |s: &Series| std::ptr::eq(s.op, op) && std::ptr::eq(s.status, status);
        {
            let series = self.series.read().unwrap_or_else(|p| p.into_inner());
            if let Some(s) = series.iter().find(|s| same(s)) {
                s.count.inc();
                s.latency.observe(took.as_secs_f64());
                return;
            }
        }
        let count = self
            .ops
            .get_or_create(&OpLabels {
                op: op.to_string(),
                status: status.to_string(),
            })
            .clone();
        let latency = self
            .latency
            .get_or_create(&OpOnly { op: op.to_string() })
            .clone();
        count.inc();
        latency.observe(took.as_secs_f64());
        let mut series = self.series.write().unwrap_or_else(|p| p.into_inner());
        if !series.iter().any(same) {
            series.push(Series {
                op,
                status,
                count,
                latency,
            });
        }
    }

    /// Render the text exposition format, refreshing gauges from `stats`.
    pub fn render(&self, stats: &Stats) -> String {
        let (c, s, r) = stats.live();
        self.connections.set(c as i64);
        self.sessions.set(s as i64);
        self.resources.set(r as i64);
        let bin = stats.bytes_in.load(Ordering::Relaxed);
        let bout = stats.bytes_out.load(Ordering::Relaxed);
        self.bytes_in
            .inc_by(bin.saturating_sub(self.bytes_in.get()));
        self.bytes_out
            .inc_by(bout.saturating_sub(self.bytes_out.get()));
        for (result, n) in [
            ("hit", &stats.busy_poll_hits),
            ("miss", &stats.busy_poll_misses),
            ("full", &stats.busy_poll_full),
        ] {
            let c = self.busy_polls.get_or_create(&PollResult { result });
            c.inc_by(n.load(Ordering::Relaxed).saturating_sub(c.get()));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Serve `GET /metrics` on `listener` until `stop` fires.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    stats: Arc<Stats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = stop.changed() => return Ok(()),
        };
        let (metrics, stats) = (metrics.clone(), stats.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (metrics, stats) = (metrics.clone(), stats.clone());
                async move {
                    let resp = if req.uri().path() == "/metrics" {
                        Response::builder()
                            .header(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )
                            .body(Full::new(Bytes::from(metrics.render(&stats))))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(
                                b"not found: metrics are at /metrics\n",
                            )))
                    };
                    Ok::<_, Infallible>(resp.expect("static response parts"))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}
