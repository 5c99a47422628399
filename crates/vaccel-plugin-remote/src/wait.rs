//! How a caller waits for its reply: poll, or block.
//!
//! Blocking in `read` until the reply arrives costs a thread wake-up, 5–20
//! µs on a small VM (more than a whole NOOP round trip when both sides
//! poll). A caller that polls the socket instead (non-blocking reads,
//! yielding the CPU between them) sees the reply at once, but keeps its
//! core busy while it polls. So each connection learns how long each
//! *shape* of request (op type and argument sizes) usually waits, and a
//! caller polls for up to the busy-poll window only when its reply is
//! expected within that window (or nothing is known yet), and otherwise
//! blocks at once. Long ops (an SGEMM of n = 256 and up, an inference) then
//! leave every core to the agent, which matters when client and agent
//! share a machine; short ones (NOOP, small AES, control requests) skip
//! the wake-up.
//!
//! Predictions only change latency and CPU use, never results.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vaccel_proto::Request;

/// Shapes remembered per connection; the table is cleared when full.
const MAX_SHAPES: usize = 256;

/// The shape of a request: what makes two requests take about as long.
/// Op type, number of arguments, scalar arguments (≤ 8 bytes, such as
/// matrix dimensions) by value, shared-memory references by value, and
/// other arguments (keys, IVs, data) by length rounded to two significant
/// bits, so that a fresh IV per call does not make every call new.
pub(crate) fn shape(req: &Request<'_>) -> Option<u64> {
    let Request::Op {
        op, read, write, ..
    } = req
    else {
        return None;
    };
    let mut h = std::hash::DefaultHasher::new();
    op.hash(&mut h);
    read.len().hash(&mut h);
    write.len().hash(&mut h);
    for a in read {
        if a.data.len() <= 8 || a.flags & vaccel_proto::ARG_FLAG_SHM != 0 {
            a.data.hash(&mut h);
        } else {
            bucket(a.data.len()).hash(&mut h);
        }
    }
    for o in write {
        if o.flags & vaccel_proto::ARG_FLAG_SHM != 0 {
            o.data.hash(&mut h);
        } else {
            bucket(o.capacity as usize + o.data.len()).hash(&mut h);
        }
    }
    Some(h.finish())
}

/// `n` rounded down to its two most significant bits.
fn bucket(n: usize) -> usize {
    if n < 4 {
        return n;
    }
    let top = usize::BITS - 1 - n.leading_zeros();
    n & (0b11 << (top - 1))
}

/// What a caller does before it blocks in `read`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Poll until then.
    pub poll_until: Option<Instant>,
}

/// Per-connection expected waits by shape.
#[derive(Debug)]
pub(crate) struct Waits {
    window: Duration,
    expected: Mutex<HashMap<u64, Duration>>,
}

impl Waits {
    pub fn new(window: Duration) -> Waits {
        Waits {
            window,
            expected: Mutex::new(HashMap::new()),
        }
    }

    /// The busy-poll window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How to wait for a request of `shape` sent at `sent`.
    pub fn plan(&self, shape: Option<u64>, sent: Instant) -> Plan {
        let w = self.window;
        if w.is_zero() {
            return Plan::default();
        }
        let expected = shape.and_then(|s| {
            self.expected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&s)
                .copied()
        });
        match expected {
            Some(e) if e > w => Plan::default(),
            _ => Plan {
                poll_until: Some(sent + w),
            },
        }
    }

    /// Learn from a reply that took `took`.
    pub fn observe(&self, shape: Option<u64>, took: Duration) {
        let Some(s) = shape else { return };
        if self.window.is_zero() {
            return;
        }
        let mut m = self.expected.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= MAX_SHAPES && !m.contains_key(&s) {
            m.clear();
        }
        // A moving average that follows a change within a few calls.
        m.entry(s)
            .and_modify(|e| *e = (*e * 3 + took) / 4)
            .or_insert(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaccel_proto::{ArgWire, OutWire};

    fn op<'a>(op: u32, reads: &'a [&'a [u8]], cap: u64) -> Request<'a> {
        Request::Op {
            session: 1,
            op,
            read: reads
                .iter()
                .map(|d| ArgWire {
                    ty: 0,
                    flags: 0,
                    data: d,
                })
                .collect(),
            write: vec![OutWire {
                ty: 0,
                flags: 0,
                capacity: cap,
                growable: false,
                data: &[],
            }],
        }
    }

    #[test]
    fn shapes_follow_op_scalars_and_rough_sizes() {
        let big_a = vec![1u8; 1000];
        let big_b = vec![2u8; 1010];
        let big_c = vec![2u8; 4000];
        let s = |o, r: &[&[u8]], cap| shape(&op(o, r, cap)).unwrap();
        // Same op, same scalars, data of about the same size: same shape.
        assert_eq!(s(3, &[&[0, 1], &big_a], 64), s(3, &[&[0, 1], &big_b], 64));
        // A different scalar (a dimension), size class, op or output.
        assert_ne!(s(3, &[&[0, 1], &big_a], 64), s(3, &[&[0, 2], &big_a], 64));
        assert_ne!(s(3, &[&[0, 1], &big_a], 64), s(3, &[&[0, 1], &big_c], 64));
        assert_ne!(s(3, &[&[0, 1], &big_a], 64), s(4, &[&[0, 1], &big_a], 64));
        assert_ne!(s(3, &[&[0, 1], &big_a], 64), s(3, &[&[0, 1], &big_a], 4096));
        // Keys and IVs (16 bytes) go by length: a fresh IV is the same shape.
        assert_eq!(s(9, &[&[1; 16], &big_a], 64), s(9, &[&[2; 16], &big_a], 64));
        assert_eq!(shape(&Request::SessionCreate { hint: 0 }), None);
    }

    #[test]
    fn buckets_keep_two_significant_bits() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(3), 3);
        assert_eq!(bucket(4), 4);
        assert_eq!(bucket(7), 6);
        assert_eq!(bucket(1000), 768);
        assert_eq!(bucket(1023), 768);
        assert_eq!(bucket(1024), 1024);
    }

    #[test]
    fn plans_poll_short_waits_and_block_for_long_ones() {
        let w = Duration::from_micros(50);
        let waits = Waits::new(w);
        let t = Instant::now();
        let poll = Plan {
            poll_until: Some(t + w),
        };
        // Unknown: poll for the window.
        assert_eq!(waits.plan(Some(7), t), poll);
        assert_eq!(waits.plan(None, t), poll);
        // Learned 1 ms: block at once.
        waits.observe(Some(7), Duration::from_millis(1));
        assert_eq!(waits.plan(Some(7), t), Plan::default());
        // Other shapes are unaffected.
        assert_eq!(waits.plan(Some(8), t), poll);
        // It follows a change: after a few 20 µs replies it polls again.
        for _ in 0..20 {
            waits.observe(Some(7), Duration::from_micros(20));
        }
        assert_eq!(waits.plan(Some(7), t), poll);
        // A zero window never polls.
        let off = Waits::new(Duration::ZERO);
        assert_eq!(off.plan(Some(9), t), Plan::default());
        off.observe(Some(9), Duration::from_micros(1));
        assert_eq!(off.plan(Some(9), t), Plan::default());
    }

    #[test]
    fn the_table_stays_bounded() {
        let waits = Waits::new(Duration::from_micros(50));
        for s in 0..(MAX_SHAPES as u64 * 3) {
            waits.observe(Some(s), Duration::from_micros(100));
        }
        assert!(waits.expected.lock().unwrap().len() <= MAX_SHAPES);
    }
}
