//! The `max_inflight` limiter: the in-flight gauge doubles as the counter.

use prometheus_client::metrics::gauge::Gauge;

/// One request counted as in flight; uncounted on drop.
#[derive(Debug)]
pub(crate) struct InflightGuard(Option<Gauge>);

impl InflightGuard {
    /// Count one more request on `gauge`, unless `max` (> 0) are already in
    /// flight.
    pub(crate) fn acquire(gauge: &Gauge, max: usize) -> Option<Self> {
        let before = gauge.inc();
        if max > 0 && before >= max as i64 {
            gauge.dec();
            return None;
        }
        Some(InflightGuard(Some(gauge.clone())))
    }

    /// A guard that counts nothing (readiness probes calling the function).
    pub(crate) fn untracked() -> Self {
        InflightGuard(None)
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if let Some(g) = &self.0 {
            g.dec();
        }
    }
}

/// True when `max` (> 0) requests are in flight.
pub(crate) fn limit_met(gauge: &Gauge, max: usize) -> bool {
    max > 0 && gauge.get() >= max as i64
}

/// The 429 body, as OpenFaaS's concurrency limiter words it (without the
/// trailing newline it adds).
pub(crate) fn limit_message(max: usize) -> String {
    format!("Concurrent request limit exceeded. Max concurrent requests: {max}")
}
