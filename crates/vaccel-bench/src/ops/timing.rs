//! The timing harness: warm-up, calibration, interleaved repeats, median.
//!
//! Every variant of one comparison (local, unix, tcp, the floors) is timed
//! in the same loop: each repeat runs a batch of each variant, in an order
//! shuffled per repeat, so drift and noise from other processes on a shared
//! machine fall on all of them alike, and so does whatever one variant
//! leaves behind for the next (cache contents). Between batches the harness
//! pauses briefly ([`SETTLE`]), so thread pools that keep spinning after an
//! op (ONNX Runtime's do) stop before the next variant is timed.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Result;

/// Pause between batches (at most; a fifth of a repeat when repeats are shorter).
pub const SETTLE: Duration = Duration::from_millis(10);

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Time spent per variant and point, over all repeats (warm-up not counted).
    pub per_point: Duration,
    /// Repeats per point; the median is reported.
    pub repeats: usize,
}

impl Budget {
    /// Time per variant and repeat.
    pub fn per_repeat(&self) -> Duration {
        self.per_point / self.repeats.max(1) as u32
    }

    /// The pause before each batch.
    pub fn settle(&self) -> Duration {
        SETTLE.min(self.per_repeat() / 5)
    }
}

/// One thing to time: a call that does one operation.
pub struct Runner<'a> {
    /// Series name (`local`, `unix`, `tcp`, `floor unix`, …).
    pub name: String,
    /// One operation.
    pub call: Box<dyn FnMut() -> Result<()> + 'a>,
}

impl std::fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("name", &self.name).finish()
    }
}

impl<'a> Runner<'a> {
    /// A runner named `name`.
    pub fn new(name: impl Into<String>, call: impl FnMut() -> Result<()> + 'a) -> Runner<'a> {
        Runner {
            name: name.into(),
            call: Box::new(call),
        }
    }
}

/// Seconds per operation of one variant at one point.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    /// Median over repeats, seconds per operation.
    pub median_s: f64,
    /// Fastest repeat.
    pub min_s: f64,
    /// Slowest repeat.
    pub max_s: f64,
    /// Operations per repeat.
    pub iters: u64,
    /// Repeats.
    pub repeats: usize,
    /// Warm-up operations (not counted).
    pub warmup_iters: u64,
    /// Every repeat's seconds per operation, in run order.
    pub samples_s: Vec<f64>,
}

/// Median of a non-empty slice (mean of the middle two for even lengths).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Warm up and calibrate every runner, then time `budget.repeats`
/// interleaved rounds. Returns one [`Stat`] per runner, in order.
pub fn compare(runners: &mut [Runner<'_>], budget: Budget) -> Result<Vec<Stat>> {
    let per_repeat = budget.per_repeat();
    let repeats = budget.repeats.max(1);
    // Warm-up: the first call (connection set-up, model load, page faults)
    // is not used for the estimate; then call until a repeat's worth of time.
    let mut plan = Vec::with_capacity(runners.len());
    for r in runners.iter_mut() {
        (r.call)()?;
        let mut n = 0u64;
        let t0 = Instant::now();
        while n < 2 || t0.elapsed() < per_repeat {
            (r.call)()?;
            n += 1;
        }
        let est = t0.elapsed().as_secs_f64() / n as f64;
        let iters = (per_repeat.as_secs_f64() / est.max(1e-9)).ceil();
        plan.push((iters.clamp(1.0, 1e8) as u64, n + 1));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(repeats); runners.len()];
    let mut order: Vec<usize> = (0..runners.len()).collect();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let settle = budget.settle();
    for _ in 0..repeats {
        shuffle(&mut order, &mut rng);
        for &i in &order {
            std::thread::sleep(settle);
            let iters = plan[i].0;
            let call = &mut runners[i].call;
            let t0 = Instant::now();
            for _ in 0..iters {
                call()?;
            }
            samples[i].push(t0.elapsed().as_secs_f64() / iters as f64);
        }
    }
    Ok(samples
        .into_iter()
        .zip(plan)
        .map(|(s, (iters, warmup_iters))| Stat {
            median_s: median(&s),
            min_s: s.iter().copied().fold(f64::INFINITY, f64::min),
            max_s: s.iter().copied().fold(0.0, f64::max),
            iters,
            repeats,
            warmup_iters,
            samples_s: s,
        })
        .collect())
}

/// Fisher–Yates shuffle with a xorshift generator (deterministic per run).
fn shuffle(v: &mut [usize], state: &mut u64) {
    for i in (1..v.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let j = (*state % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Time `f` `repeats` times once (no calibration): for bulk transfers that
/// are one operation each. Returns seconds per call, in run order.
pub fn repeat_once(repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    f()?; // warm-up
    (0..repeats.max(1))
        .map(|_| {
            let t0 = Instant::now();
            f()?;
            Ok(t0.elapsed().as_secs_f64())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn compare_runs_every_runner_interleaved() {
        let mut a = 0u64;
        let mut b = 0u64;
        let stats = {
            let mut rs = [
                Runner::new("a", || {
                    a += 1;
                    Ok(())
                }),
                Runner::new("b", || {
                    b += 1;
                    std::thread::sleep(Duration::from_micros(50));
                    Ok(())
                }),
            ];
            compare(
                &mut rs,
                Budget {
                    per_point: Duration::from_millis(5),
                    repeats: 5,
                },
            )
            .unwrap()
        };
        assert_eq!(stats.len(), 2);
        for s in &stats {
            assert_eq!(s.samples_s.len(), 5);
            assert!(s.iters >= 1);
            assert!(s.min_s <= s.median_s && s.median_s <= s.max_s);
        }
        assert!(stats[1].median_s > stats[0].median_s);
        assert_eq!(a, stats[0].warmup_iters + 5 * stats[0].iters);
        assert_eq!(b, stats[1].warmup_iters + 5 * stats[1].iters);
    }

    #[test]
    fn shuffles_are_permutations_that_vary() {
        let mut state = 1u64;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let mut v: Vec<usize> = (0..5).collect();
            shuffle(&mut v, &mut state);
            let mut sorted = v.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3, 4]);
            seen.insert(v);
        }
        assert!(seen.len() > 5, "{seen:?}");
    }

    #[test]
    fn errors_stop_the_comparison() {
        let mut rs = [Runner::new("bad", || {
            Err(crate::Error::Options("boom".into()))
        })];
        let e = compare(
            &mut rs,
            Budget {
                per_point: Duration::from_millis(1),
                repeats: 5,
            },
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "boom");
    }
}
