//! The shared vocabulary of a load test: what one configuration of a study
//! is, how a request ended, and the aggregate the engine builds live and the
//! report rebuilds from a JTL file. Histograms hold **microseconds**.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest value the histograms track: 1 hour in µs (3 significant digits).
pub const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// A new histogram for µs values up to [`MAX_TRACKABLE_US`], 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 3).expect("valid histogram bounds")
}

/// One configuration of a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigKey {
    /// Folder and label name, e.g. `t4-think1s` or `rate50`.
    pub label: String,
    /// Client threads (closed model) or the connection cap (open model).
    pub threads: usize,
    /// Mean think time between a thread's requests, seconds (closed model).
    pub think_s: f64,
    /// Target arrival rate, requests per second (open model).
    pub rate: Option<f64>,
}

/// How one request ended. Each class is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Any 2xx status.
    #[serde(rename = "2xx")]
    Success,
    /// 429 Too Many Requests (watchdog `max_inflight`).
    #[serde(rename = "429")]
    TooMany,
    /// 500.
    #[serde(rename = "500")]
    ServerError,
    /// 502.
    #[serde(rename = "502")]
    BadGateway,
    /// 504 (gateway or watchdog timeout).
    #[serde(rename = "504")]
    GatewayTimeout,
    /// Any other status.
    #[serde(rename = "other_status")]
    OtherStatus,
    /// No complete response within the client's timeout.
    #[serde(rename = "timeout")]
    Timeout,
    /// Connect failed, or the connection was reset / closed mid-request.
    #[serde(rename = "connection_error")]
    ConnectionError,
}

impl Outcome {
    /// Every class, in report order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Success,
        Outcome::TooMany,
        Outcome::ServerError,
        Outcome::BadGateway,
        Outcome::GatewayTimeout,
        Outcome::OtherStatus,
        Outcome::Timeout,
        Outcome::ConnectionError,
    ];

    /// The class of an HTTP status.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=299 => Outcome::Success,
            429 => Outcome::TooMany,
            500 => Outcome::ServerError,
            502 => Outcome::BadGateway,
            504 => Outcome::GatewayTimeout,
            _ => Outcome::OtherStatus,
        }
    }

    /// The name used in JSON, JTL and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "2xx",
            Outcome::TooMany => "429",
            Outcome::ServerError => "500",
            Outcome::BadGateway => "502",
            Outcome::GatewayTimeout => "504",
            Outcome::OtherStatus => "other_status",
            Outcome::Timeout => "timeout",
            Outcome::ConnectionError => "connection_error",
        }
    }
}

/// One second of a run (seconds since the configuration started).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds since the start of the configuration.
    pub t: u64,
    /// Requests that completed (any outcome) in this second.
    pub completed: u64,
    /// Of which successful (2xx).
    pub ok: u64,
    /// Sum of RTTs of the completed requests, µs (mean = sum / completed).
    pub rtt_sum_us: u64,
    /// Largest RTT, µs.
    pub rtt_max_us: u64,
    /// Active client threads at the end of the second (ramp-up).
    pub threads: u64,
}

/// The aggregate of one configuration: built live by the engine, rebuilt
/// from a JTL by `vaccel bench report`, combined by `vaccel bench merge`.
#[derive(Debug, Clone)]
pub struct ConfigResult {
    /// Which configuration.
    pub key: ConfigKey,
    /// Start, Unix epoch milliseconds.
    pub started_ms: u64,
    /// Measured duration, seconds.
    pub duration_s: f64,
    /// Round-trip time of requests that got a response, µs.
    pub rtt: Histogram<u64>,
    /// Open model: latency from the intended send time (coordinated-omission corrected), µs.
    pub rtt_corrected: Option<Histogram<u64>>,
    /// Time to first byte, µs.
    pub ttfb: Histogram<u64>,
    /// Connect time (new connections only), µs.
    pub connect: Histogram<u64>,
    /// `X-Duration-Seconds` (handler time), µs, when the server sent it.
    pub handler: Histogram<u64>,
    /// `X-Vaccel-Op-Seconds` (op / ML time), µs, when the server sent it.
    pub op: Histogram<u64>,
    /// Requests per outcome class.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Open model: requests sent later than their intended time by more than the tolerance.
    pub late: u64,
    /// Open model: requests dropped (no free connection within the tolerance).
    pub dropped: u64,
    /// Per-second timeline.
    pub timeline: Vec<Second>,
}

impl ConfigResult {
    /// Empty aggregate for `key`.
    pub fn new(key: ConfigKey, started_ms: u64) -> ConfigResult {
        ConfigResult {
            key,
            started_ms,
            duration_s: 0.0,
            rtt: histogram(),
            rtt_corrected: None,
            ttfb: histogram(),
            connect: histogram(),
            handler: histogram(),
            op: histogram(),
            outcomes: BTreeMap::new(),
            late: 0,
            dropped: 0,
            timeline: Vec::new(),
        }
    }

    /// Requests of every outcome.
    pub fn count(&self) -> u64 {
        self.outcomes.values().sum()
    }

    /// Share of 2xx among all requests (1.0 when there were none).
    pub fn success_rate(&self) -> f64 {
        let n = self.count();
        if n == 0 {
            return 1.0;
        }
        *self.outcomes.get(&Outcome::Success).unwrap_or(&0) as f64 / n as f64
    }
}
