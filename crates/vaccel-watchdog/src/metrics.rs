//! Prometheus metrics: of-watchdog's `http_*` set, and the OpenFaaS
//! gateway's `gateway_*` set for the gateway. Recording a request looks up
//! cached handles under a read lock; nothing is allocated once a
//! (code, method) pair has been seen.

use std::sync::{Arc, RwLock};

use http::{Method, Request, Response, StatusCode, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::body::Body;
use crate::server::App;

/// Prometheus client_golang's default buckets (what of-watchdog uses).
const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The `method` label: lower case like client_golang's promhttp; methods
/// outside RFC 9110 and PATCH are `other`, so clients cannot grow the label
/// set without bound.
pub(crate) fn method_label(m: &Method) -> &'static str {
    match m.as_str() {
        "GET" => "get",
        "POST" => "post",
        "PUT" => "put",
        "DELETE" => "delete",
        "HEAD" => "head",
        "OPTIONS" => "options",
        "PATCH" => "patch",
        "CONNECT" => "connect",
        "TRACE" => "trace",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    code: u16,
    method: &'static str,
}

/// `http_requests_total{code,method}`, `http_request_duration_seconds`
/// (histogram, same labels) and `http_requests_in_flight`.
#[derive(Debug)]
pub(crate) struct HttpMetrics {
    requests: Family<HttpLabels, Counter>,
    duration: Histograms<HttpLabels>,
    pub(crate) in_flight: Gauge,
    cache: RwLock<Vec<(HttpLabels, Counter, Histogram)>>,
}

impl HttpMetrics {
    pub(crate) fn register(reg: &mut Registry) -> Self {
        let m = HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram as fn() -> Histogram),
            in_flight: Gauge::default(),
            cache: RwLock::new(Vec::new()),
        };
        reg.register(
            "http_requests",
            "total HTTP requests processed",
            m.requests.clone(),
        );
        reg.register(
            "http_request_duration_seconds",
            "Seconds spent serving HTTP requests",
            m.duration.clone(),
        );
        reg.register(
            "http_requests_in_flight",
            "total HTTP requests in-flight",
            m.in_flight.clone(),
        );
        m
    }

    /// Count one answered request.
    pub(crate) fn record(&self, code: u16, method: &'static str, secs: f64) {
        {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, c, h)) = cache
                .iter()
                .find(|(l, ..)| l.code == code && l.method == method)
            {
                c.inc();
                h.observe(secs);
                return;
            }
        }
        let labels = HttpLabels { code, method };
        let c = self.requests.get_or_create_owned(&labels);
        let h = self.duration.get_or_create_owned(&labels);
        c.inc();
        h.observe(secs);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if !cache.iter().any(|(l, ..)| *l == labels) {
            cache.push((labels, c, h));
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FnCodeLabels {
    function_name: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FnLabels {
    function_name: String,
}

/// The OpenFaaS gateway's per-function metrics:
/// `gateway_function_invocation_total{function_name,code}`,
/// `gateway_functions_seconds{function_name,code}`,
/// `gateway_function_invocation_started_total{function_name}`,
/// `gateway_service_count{function_name}`.
#[derive(Debug)]
pub(crate) struct GatewayMetrics {
    invocations: Family<FnCodeLabels, Counter>,
    seconds: Histograms<FnCodeLabels>,
    started: Family<FnLabels, Counter>,
    replicas: Family<FnLabels, Gauge>,
}

impl GatewayMetrics {
    pub(crate) fn register(reg: &mut Registry) -> Self {
        let m = GatewayMetrics {
            invocations: Family::default(),
            seconds: Family::new_with_constructor(histogram as fn() -> Histogram),
            started: Family::default(),
            replicas: Family::default(),
        };
        reg.register(
            "gateway_function_invocation",
            "Function metrics",
            m.invocations.clone(),
        );
        reg.register(
            "gateway_functions_seconds",
            "Function time taken",
            m.seconds.clone(),
        );
        reg.register(
            "gateway_function_invocation_started",
            "The total number of function HTTP requests started",
            m.started.clone(),
        );
        reg.register(
            "gateway_service_count",
            "Current count of replicas for function",
            m.replicas.clone(),
        );
        m
    }

    /// The handles for one function (one replica: it runs in-process).
    pub(crate) fn function(&self, name: &str) -> FnMetrics {
        let l = FnLabels {
            function_name: name.to_string(),
        };
        self.replicas.get_or_create(&l).set(1);
        FnMetrics {
            name: name.to_string(),
            started: self.started.get_or_create_owned(&l),
            invocations: self.invocations.clone(),
            seconds: self.seconds.clone(),
            by_code: RwLock::new(Vec::new()),
        }
    }
}

/// One function's gateway metrics, with handles cached per status code.
#[derive(Debug)]
pub(crate) struct FnMetrics {
    name: String,
    started: Counter,
    invocations: Family<FnCodeLabels, Counter>,
    seconds: Histograms<FnCodeLabels>,
    by_code: RwLock<Vec<(u16, Counter, Histogram)>>,
}

impl FnMetrics {
    pub(crate) fn started(&self) {
        self.started.inc();
    }

    pub(crate) fn record(&self, code: u16, secs: f64) {
        {
            let cache = self.by_code.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, c, h)) = cache.iter().find(|(k, ..)| *k == code) {
                c.inc();
                h.observe(secs);
                return;
            }
        }
        let labels = FnCodeLabels {
            function_name: self.name.clone(),
            code,
        };
        let c = self.invocations.get_or_create_owned(&labels);
        let h = self.seconds.get_or_create_owned(&labels);
        c.inc();
        h.observe(secs);
        let mut cache = self.by_code.write().unwrap_or_else(|e| e.into_inner());
        if !cache.iter().any(|(k, ..)| *k == code) {
            cache.push((code, c, h));
        }
    }

    /// Invocations answered so far, every status code.
    pub(crate) fn invocations(&self) -> u64 {
        let cache = self.by_code.read().unwrap_or_else(|e| e.into_inner());
        cache.iter().map(|(_, c, _)| c.get()).sum()
    }
}

/// A registry rendered in the Prometheus/OpenMetrics text format.
#[derive(Debug)]
pub(crate) struct Metrics(Registry);

impl Metrics {
    pub(crate) fn new(reg: Registry) -> Self {
        Metrics(reg)
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        if prometheus_client::encoding::text::encode(&mut out, &self.0).is_err() {
            out.clear();
        }
        out
    }

    /// `GET /metrics`.
    pub(crate) fn response(&self, req: &Request<hyper::body::Incoming>) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return crate::invoke::text(
                StatusCode::METHOD_NOT_ALLOWED,
                "metrics are read with GET\n".to_string(),
            );
        }
        let mut r = Response::new(Body::full(self.render()));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
        );
        r
    }
}

/// The metrics listener: `/metrics` and nothing else.
#[derive(Debug)]
pub(crate) struct MetricsApp(pub(crate) Arc<Metrics>);

impl App for MetricsApp {
    async fn handle(self: Arc<Self>, req: Request<hyper::body::Incoming>) -> Response<Body> {
        if req.uri().path() == "/metrics" {
            self.0.response(&req)
        } else {
            crate::invoke::text(
                StatusCode::NOT_FOUND,
                "not found: metrics are at /metrics\n".to_string(),
            )
        }
    }
}
