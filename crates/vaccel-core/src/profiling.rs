//! Per-op profiling regions (`VACCEL_PROFILING_ENABLED=1`).
//!
//! Each session keeps, per op, a count and the total, minimum and maximum
//! time spent in the plugin. Updates are lock-free atomics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::OpType;

/// Statistics of one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegionStats {
    /// Number of samples.
    pub count: u64,
    /// Sum of all samples.
    pub total: Duration,
    /// Shortest sample.
    pub min: Duration,
    /// Longest sample.
    pub max: Duration,
}

impl RegionStats {
    /// Mean sample, or zero with no samples.
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            Duration::ZERO
        } else {
            self.total / self.count as u32
        }
    }
}

/// A named region with lock-free statistics.
#[derive(Debug)]
pub struct Region {
    count: AtomicU64,
    total_ns: AtomicU64,
    min_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Region {
    fn default() -> Self {
        Region {
            count: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
            min_ns: AtomicU64::new(u64::MAX),
            max_ns: AtomicU64::new(0),
        }
    }
}

impl Region {
    /// Add one sample.
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_ns.fetch_add(ns, Ordering::Relaxed);
        self.min_ns.fetch_min(ns, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Current statistics.
    pub fn stats(&self) -> RegionStats {
        let count = self.count.load(Ordering::Relaxed);
        let min = self.min_ns.load(Ordering::Relaxed);
        RegionStats {
            count,
            total: Duration::from_nanos(self.total_ns.load(Ordering::Relaxed)),
            min: Duration::from_nanos(if count == 0 { 0 } else { min }),
            max: Duration::from_nanos(self.max_ns.load(Ordering::Relaxed)),
        }
    }
}

/// One region per op id.
#[derive(Debug)]
pub struct OpProfile {
    regions: Box<[Region]>,
}

impl Default for OpProfile {
    fn default() -> Self {
        OpProfile {
            regions: (0..128).map(|_| Region::default()).collect(),
        }
    }
}

impl OpProfile {
    /// Record a sample for `op`.
    pub fn record(&self, op: OpType, d: Duration) {
        if let Some(r) = self.regions.get(op.id() as usize) {
            r.record(d);
        }
    }

    /// Statistics of every op that ran at least once, named like upstream
    /// regions (`vaccel_noop_op`).
    pub fn stats(&self) -> Vec<(OpType, RegionStats)> {
        OpType::ALL
            .iter()
            .filter_map(|op| {
                let s = self.regions[op.id() as usize].stats();
                (s.count > 0).then_some((*op, s))
            })
            .collect()
    }
}

/// Upstream-style region name for an op: `vaccel_image_classify_op`.
pub fn region_name(op: OpType) -> String {
    format!("vaccel_{}_op", op.name().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_stats() {
        let r = Region::default();
        assert_eq!(r.stats(), RegionStats::default());
        r.record(Duration::from_micros(3));
        r.record(Duration::from_micros(1));
        r.record(Duration::from_micros(5));
        let s = r.stats();
        assert_eq!(s.count, 3);
        assert_eq!(s.total, Duration::from_micros(9));
        assert_eq!(s.min, Duration::from_micros(1));
        assert_eq!(s.max, Duration::from_micros(5));
        assert_eq!(s.mean(), Duration::from_micros(3));
    }

    #[test]
    fn op_profile_lists_only_used_ops() {
        let p = OpProfile::default();
        p.record(OpType::BlasSgemm, Duration::from_millis(1));
        let s = p.stats();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].0, OpType::BlasSgemm);
        assert_eq!(region_name(OpType::BlasSgemm), "vaccel_blas_sgemm_op");
    }
}
