//! `summary.json`: the numbers of one configuration, with a versioned schema.
//!
//! ```json
//! {
//!   "schema": "vaccel-bench-summary/1",
//!   "config": {"label": "t4-think1s", "threads": 4, "think_s": 1.0, "rate": null},
//!   "started_ms": 1700000000000,
//!   "count": 240, "success_rate": 0.9958, "throughput_rps": 3.98, "duration_s": 60.3,
//!   "outcomes": {"2xx": 239, "429": 0, "500": 0, "502": 0, "504": 1,
//!                "other_status": 0, "timeout": 0, "connection_error": 0},
//!   "errors": 1,
//!   "rtt_ms": {"count": 240, "min": 41.2, "mean": 55.0, "stddev": 9.1, "median": 52.3,
//!              "p90": 66.1, "p95": 70.2, "p99": 95.0, "p999": 120.3, "max": 120.3},
//!   "ttfb_ms": {...}, "connect_ms": {...}, "handler_ms": {...}, "op_ms": {...},
//!   "rtt_corrected_ms": null,
//!   "late": 0, "dropped": 0
//! }
//! ```
//!
//! Rules: times are milliseconds (floats, µs precision, 3 significant
//! digits from the histograms); a statistic with no samples is `null`
//! (e.g. `handler_ms` when the server sent no `X-Duration-Seconds`,
//! `rtt_corrected_ms` in the closed model); `outcomes` lists every class;
//! `errors` = `count` − 2xx. New fields may be added within a schema
//! version; renaming or removing one bumps it.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::model::{ConfigKey, ConfigResult, Outcome};

/// The schema id written in every summary.
pub const SCHEMA: &str = "vaccel-bench-summary/1";

/// Statistics of one histogram, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
    /// 50th percentile.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Stats {
    /// Statistics of a µs histogram, in ms; `None` when it is empty.
    pub fn from_us(h: &Histogram<u64>) -> Option<Stats> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Stats {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            stddev: h.stdev() / 1000.0,
            median: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

/// The summary of one configuration (`summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Which configuration.
    pub config: ConfigKey,
    /// Start, Unix epoch ms.
    pub started_ms: u64,
    /// Requests, every outcome.
    pub count: u64,
    /// Share of 2xx (1.0 when there were no requests).
    pub success_rate: f64,
    /// Completed requests per second over `duration_s`.
    pub throughput_rps: f64,
    /// Measured duration, seconds.
    pub duration_s: f64,
    /// Requests per outcome class ([`Outcome::as_str`]), every class listed.
    pub outcomes: BTreeMap<String, u64>,
    /// Requests that were not 2xx.
    pub errors: u64,
    /// Round-trip time of requests that got a response.
    pub rtt_ms: Option<Stats>,
    /// Time to first byte.
    pub ttfb_ms: Option<Stats>,
    /// Connect time, new connections only.
    pub connect_ms: Option<Stats>,
    /// Handler time (`X-Duration-Seconds`).
    pub handler_ms: Option<Stats>,
    /// Op / ML time (`X-Vaccel-Op-Seconds`).
    pub op_ms: Option<Stats>,
    /// Open model: latency from the intended send time (coordinated-omission corrected).
    pub rtt_corrected_ms: Option<Stats>,
    /// Open model: requests sent later than intended by more than the tolerance.
    pub late: u64,
    /// Open model: requests never sent (no free connection in time).
    pub dropped: u64,
}

impl Summary {
    /// Summarise an aggregate.
    pub fn from_result(r: &ConfigResult) -> Summary {
        let count = r.count();
        let ok = r.outcomes.get(&Outcome::Success).copied().unwrap_or(0);
        let outcomes = Outcome::ALL
            .iter()
            .map(|o| {
                (
                    o.as_str().to_string(),
                    r.outcomes.get(o).copied().unwrap_or(0),
                )
            })
            .collect();
        Summary {
            schema: SCHEMA.to_string(),
            config: r.key.clone(),
            started_ms: r.started_ms,
            count,
            success_rate: r.success_rate(),
            throughput_rps: if r.duration_s > 0.0 {
                count as f64 / r.duration_s
            } else {
                0.0
            },
            duration_s: r.duration_s,
            outcomes,
            errors: count - ok,
            rtt_ms: Stats::from_us(&r.rtt),
            ttfb_ms: Stats::from_us(&r.ttfb),
            connect_ms: Stats::from_us(&r.connect),
            handler_ms: Stats::from_us(&r.handler),
            op_ms: Stats::from_us(&r.op),
            rtt_corrected_ms: r.rtt_corrected.as_ref().and_then(Stats::from_us),
            late: r.late,
            dropped: r.dropped,
        }
    }

    /// Requests of one class.
    pub fn outcome(&self, o: Outcome) -> u64 {
        self.outcomes.get(o.as_str()).copied().unwrap_or(0)
    }
}
