//! Agent memory under sustained load: many clients, each on its own
//! connection, run a mix of ops in rounds; the agent's VmRSS is sampled
//! between rounds. After the first (warm-up) round the figure should stay
//! flat: growth means a leak or unbounded caching.

use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use vaccel::{PluginType, Runtime};
use vaccel_plugin_remote::{RemotePlugin, Settings};
use vaccel_transport::Address;

use super::agent::memory_kib;
use crate::{Error, Result};

/// How hard to push.
#[derive(Debug, Clone, Copy)]
pub struct SoakSpec {
    /// Concurrent clients, one connection each.
    pub clients: usize,
    /// Rounds (the first is the warm-up).
    pub rounds: usize,
    /// Ops per client per round.
    pub ops_per_round: usize,
    /// The clients' busy-poll window.
    pub busy_poll: Duration,
}

/// What the soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    /// Concurrent clients.
    pub clients: usize,
    /// Ops per client per round.
    pub ops_per_round: usize,
    /// The agent's VmRSS after each round, KiB (first = after warm-up).
    pub rss_kib: Vec<u64>,
    /// Ops run, all rounds.
    pub ops: u64,
    /// Ops that failed.
    pub errors: u64,
    /// Wall time of all rounds, seconds.
    pub seconds: f64,
}

impl Soak {
    /// Growth over the second half of the rounds (last ÷ middle − 1): the
    /// flatness figure once allocator arenas and caches have settled.
    pub fn late_growth(&self) -> f64 {
        let n = self.rss_kib.len();
        if n < 2 {
            return 0.0;
        }
        let (mid, last) = (self.rss_kib[n / 2 - 1], self.rss_kib[n - 1]);
        if mid == 0 {
            0.0
        } else {
            last as f64 / mid as f64 - 1.0
        }
    }

    /// Growth of the last round's RSS over the warm-up round's, as a fraction.
    pub fn growth(&self) -> f64 {
        match (self.rss_kib.first(), self.rss_kib.last()) {
            (Some(&a), Some(&b)) if a > 0 => b as f64 / a as f64 - 1.0,
            _ => 0.0,
        }
    }
}

/// One op of the mix; `i` picks the op. True when the agent answered it
/// with success (results are the plugin's business; the agent's job is to
/// answer every request, to the right caller).
fn one_op(s: &vaccel::Session, i: usize, a: &[f32], b: &[f32], c: &mut [f32], data: &[u8]) -> bool {
    match i % 4 {
        0 => s.noop().is_ok(),
        1 => s.aes_cbc_encrypt(&[7u8; 16], &[9u8; 16], data).is_ok(),
        2 => {
            let n = 64;
            s.sgemm(n, n, n, 1.0, a, n, b, n, 0.0, c, n).is_ok()
        }
        _ => {
            let mut out = [0.0f64; 3];
            s.minmax(&[3.0, -1.0, 2.0], -10.0, 10.0, &mut out).is_ok()
        }
    }
}

/// Run the soak against the agent at `address` (process `pid`).
pub fn run(address: &Address, token: Option<String>, pid: u32, spec: SoakSpec) -> Result<Soak> {
    let clients = spec.clients.max(1);
    let barrier = Arc::new(Barrier::new(clients + 1));
    let errors = Arc::new(Mutex::new(0u64));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let mut handles = Vec::with_capacity(clients);
    for _ in 0..clients {
        let rt = Runtime::builder()
            .with_plugin(Arc::new(RemotePlugin::new(Settings {
                token: token.clone(),
                busy_poll: spec.busy_poll,
                ..Settings::new(address.clone())
            })))
            .build()?;
        let (barrier, errors, first_error) = (barrier.clone(), errors.clone(), first_error.clone());
        handles.push(std::thread::spawn(move || {
            let sess = match rt.session(PluginType::empty()) {
                Ok(s) => Some(s),
                Err(e) => {
                    first_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e.to_string());
                    None
                }
            };
            let (a, b) = (vec![1.0f32; 64 * 64], vec![1.0f32; 64 * 64]);
            let mut c = vec![0.0f32; 64 * 64];
            let data = vec![0x5au8; 4096];
            for _ in 0..spec.rounds {
                let mut bad = 0u64;
                for i in 0..spec.ops_per_round {
                    let ok = sess
                        .as_ref()
                        .is_some_and(|s| one_op(s, i, &a, &b, &mut c, &data));
                    bad += u64::from(!ok);
                }
                *errors.lock().unwrap_or_else(|p| p.into_inner()) += bad;
                barrier.wait(); // round done
                barrier.wait(); // RSS sampled
            }
            drop(sess);
        }));
    }
    let t0 = Instant::now();
    let mut rss = Vec::with_capacity(spec.rounds);
    for _ in 0..spec.rounds {
        barrier.wait();
        rss.push(memory_kib(pid).map_or(0, |(r, _)| r));
        barrier.wait();
    }
    let seconds = t0.elapsed().as_secs_f64();
    for h in handles {
        h.join()
            .map_err(|_| Error::Agent("a soak client thread panicked".into()))?;
    }
    if let Some(e) = first_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(Error::Agent(format!(
            "soak client could not open a session: {e}"
        )));
    }
    let errors = *errors.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Soak {
        clients,
        ops_per_round: spec.ops_per_round,
        rss_kib: rss,
        ops: (clients * spec.rounds * spec.ops_per_round) as u64,
        errors,
        seconds,
    })
}
