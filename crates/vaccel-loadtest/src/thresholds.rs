//! Pass/fail criteria: `--fail-if 'p95<500ms'`, `--fail-if 'success>=0.99'`.
//!
//! Grammar: `METRIC OP VALUE`, spaces allowed.
//!
//! - Latency metrics: `[SERIES_]STAT`. SERIES is `rtt` (the default),
//!   `ttfb`, `connect`, `handler` (`X-Duration-Seconds`), `op`
//!   (`X-Vaccel-Op-Seconds`) or `corrected` (open model, from the intended
//!   send time). STAT is `min`, `max`, `mean` (`avg`), `median`, or a
//!   percentile `pN`: `p50`, `p90`, `p95`, `p99`, `p999` (99.9), `p99.9`.
//!   VALUE is a time with a unit `us`, `ms` or `s` (no unit: ms).
//!   A series without samples fails the threshold.
//! - `success`: the share of 2xx, `0.99` or `99%`.
//! - `rps`: completed requests per second.
//! - `errors` (requests that were not 2xx), `count`, `timeouts`, `late`, `dropped`: counts.
//!
//! OP is `<`, `<=`, `>`, `>=`, `==` or `!=`. A threshold states what must
//! hold: `p95<500ms` passes when p95 is under 500 ms.

use std::fmt;
use std::str::FromStr;

use hdrhistogram::Histogram;

use crate::model::{ConfigResult, Outcome};

/// A malformed threshold expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold '{expr}': {reason}")]
pub struct ThresholdError {
    /// The expression.
    pub expr: String,
    /// What is wrong, with the accepted forms.
    pub reason: String,
}

/// A latency series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Round-trip time.
    Rtt,
    /// Time to first byte.
    Ttfb,
    /// Connect time.
    Connect,
    /// Handler time.
    Handler,
    /// Op / ML time.
    Op,
    /// Open model: from the intended send time.
    Corrected,
}

/// What a latency threshold looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// Smallest.
    Min,
    /// Largest.
    Max,
    /// Mean.
    Mean,
    /// A percentile, 0..=100.
    Percentile(f64),
}

/// The quantity a threshold checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A latency statistic, compared in µs.
    Latency(Series, Stat),
    /// Share of 2xx, 0..=1.
    Success,
    /// Requests per second.
    Rps,
    /// Non-2xx requests.
    Errors,
    /// All requests.
    Count,
    /// Client timeouts.
    Timeouts,
    /// Late requests (open model).
    Late,
    /// Dropped requests (open model).
    Dropped,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            Op::Ne => (a - b).abs() > 1e-9 * b.abs().max(1.0),
        }
    }
}

/// A parsed `--fail-if` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written.
    pub expr: String,
    /// What is measured.
    pub metric: Metric,
    /// How it is compared.
    pub op: Op,
    /// The bound (µs for latencies, a ratio for `success`).
    pub value: f64,
}

const FORMS: &str = "expected METRIC OP VALUE, e.g. p95<500ms, handler_p99<=2s, success>=0.99, rps>100, errors==0; \
METRIC: [rtt_|ttfb_|connect_|handler_|op_|corrected_](min|max|mean|median|pN), success, rps, errors, count, timeouts, late, dropped; \
OP: < <= > >= == !=; times take us, ms or s";

impl FromStr for Threshold {
    type Err = ThresholdError;
    fn from_str(s: &str) -> Result<Threshold, ThresholdError> {
        let bad = |reason: &str| ThresholdError {
            expr: s.to_string(),
            reason: format!("{reason}; {FORMS}"),
        };
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let i = compact
            .find(['<', '>', '=', '!'])
            .ok_or_else(|| bad("no comparison"))?;
        let (name, rest) = compact.split_at(i);
        let (op, value) = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .into_iter()
        .find_map(|(t, op)| rest.strip_prefix(t).map(|v| (op, v)))
        .ok_or_else(|| bad("unknown comparison"))?;
        if value.is_empty() {
            return Err(bad("no value"));
        }
        let name = name.to_ascii_lowercase();
        let metric = parse_metric(&name).ok_or_else(|| bad(&format!("unknown metric '{name}'")))?;
        let value = match metric {
            Metric::Latency(..) => parse_time_us(value).ok_or_else(|| bad("bad time value"))?,
            Metric::Success => match value.strip_suffix('%') {
                Some(p) => p.parse::<f64>().ok().map(|p| p / 100.0),
                None => value.parse::<f64>().ok(),
            }
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad("bad success value (a ratio such as 0.99, or 99%)"))?,
            _ => value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad("bad number"))?,
        };
        Ok(Threshold {
            expr: s.trim().to_string(),
            metric,
            op,
            value,
        })
    }
}

fn parse_metric(name: &str) -> Option<Metric> {
    Some(match name {
        "success" | "success_rate" => Metric::Success,
        "rps" | "throughput" => Metric::Rps,
        "errors" => Metric::Errors,
        "count" | "requests" => Metric::Count,
        "timeouts" => Metric::Timeouts,
        "late" => Metric::Late,
        "dropped" => Metric::Dropped,
        _ => {
            let (series, stat) = match name.split_once('_') {
                Some((s, st)) => (
                    match s {
                        "rtt" => Series::Rtt,
                        "ttfb" | "latency" => Series::Ttfb,
                        "connect" => Series::Connect,
                        "handler" => Series::Handler,
                        "op" | "ml" => Series::Op,
                        "corrected" => Series::Corrected,
                        _ => return None,
                    },
                    st,
                ),
                None => (Series::Rtt, name),
            };
            Metric::Latency(series, parse_stat(stat)?)
        }
    })
}

fn parse_stat(s: &str) -> Option<Stat> {
    Some(match s {
        "min" => Stat::Min,
        "max" => Stat::Max,
        "mean" | "avg" => Stat::Mean,
        "median" => Stat::Percentile(50.0),
        _ => {
            let digits = s.strip_prefix('p')?;
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return None;
            }
            let p: f64 = if digits.contains('.') || digits.len() <= 2 || digits == "100" {
                digits.parse().ok()?
            } else if let Some(rest) = digits.strip_prefix("99") {
                // p999 -> 99.9, p9999 -> 99.99
                format!("99.{rest}").parse().ok()?
            } else {
                return None;
            };
            if !(0.0..=100.0).contains(&p) {
                return None;
            }
            Stat::Percentile(p)
        }
    })
}

fn parse_time_us(v: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = v.strip_suffix("us").or_else(|| v.strip_suffix("µs")) {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        (v, 1e3)
    };
    num.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .map(|x| x * scale)
}

/// A threshold that did not hold for one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The configuration label.
    pub config: String,
    /// The expression.
    pub expr: String,
    /// The measured value, formatted (`612.3 ms`), or why there is none.
    pub actual: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "threshold '{}' failed for {}: {}",
            self.expr, self.config, self.actual
        )
    }
}

fn series(r: &ConfigResult, s: Series) -> Option<&Histogram<u64>> {
    match s {
        Series::Rtt => Some(&r.rtt),
        Series::Ttfb => Some(&r.ttfb),
        Series::Connect => Some(&r.connect),
        Series::Handler => Some(&r.handler),
        Series::Op => Some(&r.op),
        Series::Corrected => r.rtt_corrected.as_ref(),
    }
}

impl Threshold {
    /// The measured value (µs for latencies), `None` when there are no samples.
    pub fn measure(&self, r: &ConfigResult) -> Option<f64> {
        let count = r.count();
        let of = |o: Outcome| r.outcomes.get(&o).copied().unwrap_or(0);
        Some(match self.metric {
            Metric::Latency(s, stat) => {
                let h = series(r, s).filter(|h| !h.is_empty())?;
                match stat {
                    Stat::Min => h.min() as f64,
                    Stat::Max => h.max() as f64,
                    Stat::Mean => h.mean(),
                    Stat::Percentile(p) => h.value_at_quantile(p / 100.0) as f64,
                }
            }
            Metric::Success => r.success_rate(),
            Metric::Rps => {
                if r.duration_s > 0.0 {
                    count as f64 / r.duration_s
                } else {
                    0.0
                }
            }
            Metric::Errors => (count - of(Outcome::Success)) as f64,
            Metric::Count => count as f64,
            Metric::Timeouts => of(Outcome::Timeout) as f64,
            Metric::Late => r.late as f64,
            Metric::Dropped => r.dropped as f64,
        })
    }

    /// Check one configuration: `None` when the threshold holds.
    pub fn check(&self, r: &ConfigResult) -> Option<Failure> {
        let fail = |actual: String| Failure {
            config: r.key.label.clone(),
            expr: self.expr.clone(),
            actual,
        };
        match self.measure(r) {
            None => Some(fail("no samples".into())),
            Some(v) if self.op.holds(v, self.value) => None,
            Some(v) => Some(fail(match self.metric {
                Metric::Latency(..) => format!("{} ms", round3(v / 1000.0)),
                Metric::Success => format!("{}", round3(v)),
                Metric::Rps => format!("{} req/s", round3(v)),
                _ => format!("{v}"),
            })),
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Check every threshold against every configuration.
pub fn check_all<'a>(
    thresholds: &[Threshold],
    results: impl IntoIterator<Item = &'a ConfigResult>,
) -> Vec<Failure> {
    results
        .into_iter()
        .flat_map(|r| thresholds.iter().filter_map(move |t| t.check(r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConfigKey;

    fn result() -> ConfigResult {
        let mut r = ConfigResult::new(
            ConfigKey {
                label: "t1-think0s".into(),
                threads: 1,
                think_s: 0.0,
                rate: None,
            },
            0,
        );
        for ms in 1..=100u64 {
            r.rtt.record(ms * 1000).unwrap();
        }
        r.outcomes.insert(Outcome::Success, 99);
        r.outcomes.insert(Outcome::GatewayTimeout, 1);
        r.duration_s = 10.0;
        r
    }

    #[test]
    fn parse_and_check() {
        let r = result();
        let ok = |e: &str| e.parse::<Threshold>().unwrap().check(&r).is_none();
        assert!(ok("p95<500ms"));
        assert!(ok("rtt_p95 < 0.5s"));
        assert!(!ok("p95<90ms"));
        assert!(ok("p50<=50.1ms"));
        assert!(ok("median>=49ms"));
        assert!(ok("p999<=101ms"));
        assert!(ok("max<101"));
        assert!(ok("mean<60000us"));
        assert!(ok("success>=0.99"));
        assert!(!ok("success>99.5%"));
        assert!(ok("errors==1"));
        assert!(!ok("errors==0"));
        assert!(ok("rps>=10"));
        assert!(ok("count==100"));
        assert!(ok("timeouts==0"));
        // No samples fail.
        let f = "handler_p95<100ms"
            .parse::<Threshold>()
            .unwrap()
            .check(&r)
            .unwrap();
        assert_eq!(f.actual, "no samples");
        let f = "p95<90ms".parse::<Threshold>().unwrap().check(&r).unwrap();
        assert!(f.to_string().contains("t1-think0s"), "{f}");
        assert!(f.actual.starts_with("95"), "{f}");
        assert_eq!(
            "p999<1s".parse::<Threshold>().unwrap().metric,
            Metric::Latency(Series::Rtt, Stat::Percentile(99.9))
        );
        assert_eq!(
            "op_p99.9<1s".parse::<Threshold>().unwrap().metric,
            Metric::Latency(Series::Op, Stat::Percentile(99.9))
        );
    }

    #[test]
    fn bad_expressions() {
        for e in [
            "",
            "p95",
            "p95<",
            "p95<abc",
            "p95<5h",
            "latency",
            "foo<1",
            "p95=1",
            "p95<<1",
            "success>=x",
            "p101<1",
            "rtt_foo<1",
            "x_p95<1",
            "p95<-1ms",
        ] {
            let err = e.parse::<Threshold>().unwrap_err().to_string();
            assert!(err.starts_with("threshold"), "{e}: {err}");
            assert!(err.contains("expected METRIC OP VALUE"), "{e}: {err}");
        }
    }
}
