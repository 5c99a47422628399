//! BLAS_SGEMM on the `gemm` crate.
//!
//! BLAS computes `C = α·A·B + β·C`; `gemm::gemm` computes
//! `dst = alpha·dst + beta·lhs·rhs` (the scalar names are swapped), and with
//! `read_dst = false` it never reads `dst`. So BLAS β maps to gemm's `alpha`,
//! BLAS α to gemm's `beta`, and `read_dst` is `β != 0`: a β of zero ignores
//! C's old contents, NaNs included, as BLAS specifies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use vaccel_core::ops::Sgemm;
use vaccel_core::{Arg, ArgOut, Error, Result};

/// The SIMD level gemm's run-time dispatch picks for f32 on this CPU:
/// `avx512` (only with the crate feature `avx512`), `avx2-fma`, `neon`,
/// or `baseline`.
pub fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let v3 = has!("sse3")
            && has!("ssse3")
            && has!("sse4.1")
            && has!("sse4.2")
            && has!("popcnt")
            && has!("fxsr")
            && has!("avx")
            && has!("avx2")
            && has!("bmi1")
            && has!("bmi2")
            && has!("fma")
            && has!("lzcnt");
        let v4 = v3
            && has!("avx512f")
            && has!("avx512bw")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512vl");
        if cfg!(feature = "avx512") && v4 {
            return "avx512";
        }
        if v3 {
            return "avx2-fma";
        }
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("neon") {
        return "neon";
    }
    "baseline"
}

/// Default smallest `m·n·k` that runs multi-threaded, for the SIMD level.
///
/// Measured with `cargo bench --bench sgemm -- threshold` (square sizes, one
/// thread vs. all): waking the pool costs ~20 µs per call on a quiet 2-core
/// VM, so threads pay off from about 96³ with AVX2 kernels and, as AVX-512
/// kernels do the same work in half the time, from about 160³ with those.
pub(crate) fn default_parallel_threshold() -> usize {
    if simd_level() == "avx512" {
        160 * 160 * 160
    } else {
        96 * 96 * 96
    }
}

/// Default time the pool's threads stay awake after a multi-threaded SGEMM.
pub(crate) const DEFAULT_SPIN: Duration = Duration::from_micros(100);

/// Keeping the pool's threads awake between calls.
///
/// An idle rayon worker gives up after a few dozen `yield`s (~15 µs) and
/// sleeps; waking two of them costs ~50 µs on a small VM, a third of an
/// n = 256 SGEMM. A caller that issues SGEMMs back to back with a little
/// work between them (a loop of layers, a remote client's round trip)
/// would pay that on every call. So after each multi-threaded call every
/// worker runs a *linger* job: it yields the CPU in a loop until the next
/// call begins (the generation changes) or `spin` has passed, and only then
/// may rayon put it to sleep. OpenBLAS and OpenMP runtimes do the same
/// (their threads spin far longer by default). Yielding keeps lingering
/// cheap for other threads on the same cores.
#[derive(Debug)]
struct Warm {
    /// Bumped as each multi-threaded call begins.
    generation: AtomicU64,
    spin: Duration,
}

impl Warm {
    fn linger(&self, since: u64) {
        let until = Instant::now() + self.spin;
        while self.generation.load(Ordering::Acquire) == since && Instant::now() < until {
            std::thread::yield_now();
        }
    }
}

/// The SGEMM engine: thread count, threading threshold, and a lazily built
/// thread pool of its own (so the host's global rayon pool, if any, is left
/// alone and `VACCEL_CPU_THREADS` is an exact cap).
#[derive(Debug)]
pub(crate) struct Engine {
    threads: usize,
    threshold: usize,
    pool: OnceLock<Option<rayon::ThreadPool>>,
    warm: Arc<Warm>,
}

impl Engine {
    pub(crate) fn new(threads: usize) -> Engine {
        Engine {
            threads,
            threshold: default_parallel_threshold(),
            pool: OnceLock::new(),
            warm: Arc::new(Warm {
                generation: AtomicU64::new(0),
                spin: DEFAULT_SPIN,
            }),
        }
    }

    pub(crate) fn spin(&self) -> Duration {
        self.warm.spin
    }

    pub(crate) fn set_spin(&mut self, spin: Duration) {
        self.warm = Arc::new(Warm {
            generation: AtomicU64::new(0),
            spin,
        });
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    pub(crate) fn parallel_threshold(&self) -> usize {
        self.threshold
    }

    pub(crate) fn set_parallel_threshold(&mut self, flops: usize) {
        self.threshold = flops;
    }

    fn pool(&self) -> Option<&rayon::ThreadPool> {
        self.pool
            .get_or_init(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(self.threads)
                    .thread_name(|i| format!("vaccel-cpu-{i}"))
                    .build()
                    .map_err(|e| tracing::warn!(error = %e, "cpu plugin: cannot start SGEMM threads; running single-threaded"))
                    .ok()
            })
            .as_ref()
    }

    /// Decode, validate and run one BLAS_SGEMM.
    pub(crate) fn run(&self, read: &[Arg<'_>], write: &mut [ArgOut<'_>]) -> Result<()> {
        let s = Sgemm::decode(read)?;
        let c = s.c(write)?;
        self.compute(&s, c)
    }

    fn compute(&self, s: &Sgemm<'_>, c: &mut [f32]) -> Result<()> {
        let (m, n, k) = (s.m, s.n, s.k);
        if m == 0 || n == 0 {
            return Ok(());
        }
        if k == 0 || s.alpha == 0.0 {
            // C = βC; as in BLAS, A and B are not read.
            scale(c, m, n, s.ldc, s.beta);
            return Ok(());
        }
        // A leading dimension only matters when there is a second row; the
        // decoder does not bound it otherwise, so pass a harmless one.
        let lda = stride(m, k, s.lda, s.a.len())?;
        let ldb = stride(k, n, s.ldb, s.b.len())?;
        let ldc = stride(m, n, s.ldc, c.len())?;
        let work = m.saturating_mul(n).saturating_mul(k);
        let pool = if self.threads > 1 && work >= self.threshold {
            self.pool()
        } else {
            None
        };
        let strides = (lda, ldb, ldc);
        match pool {
            Some(pool) => {
                let par = gemm::Parallelism::Rayon(self.threads);
                // Lingering workers return to the pool as this call begins.
                let generation = self.warm.generation.fetch_add(1, Ordering::AcqRel) + 1;
                pool.install(|| call_gemm(s, strides, c, par));
                if !self.warm.spin.is_zero() {
                    let warm = self.warm.clone();
                    pool.spawn_broadcast(move |_| warm.linger(generation));
                }
            }
            None => call_gemm(s, strides, c, gemm::Parallelism::None),
        }
        Ok(())
    }
}

/// C = αAB + βC through gemm (see the module docs for the scalar mapping).
/// `s` is a decoded, validated call with m, n, k > 0 whose C is `c`;
/// `strides` come from [`stride`].
fn call_gemm(
    s: &Sgemm<'_>,
    (lda, ldb, ldc): (isize, isize, isize),
    c: &mut [f32],
    par: gemm::Parallelism,
) {
    // SAFETY: the decoder checked that A holds (m-1)·lda + k elements, B
    // (k-1)·ldb + n and C (m-1)·ldc + n (`Sgemm::decode`, `Sgemm::c`), so
    // every element gemm touches ((i, p) at i·lda + p, and so on) lies
    // inside its slice; `stride` only replaces a leading dimension where a
    // matrix has a single row, where it is never multiplied by a non-zero
    // index. A and B are shared borrows and C an exclusive one, so C aliases
    // neither. gemm reads C only when `read_dst` (β ≠ 0) is true.
    unsafe {
        gemm::gemm(
            s.m,
            s.n,
            s.k,
            c.as_mut_ptr(),
            1,
            ldc,
            s.beta != 0.0,
            s.a.as_ptr(),
            1,
            lda,
            s.b.as_ptr(),
            1,
            ldb,
            s.beta,
            s.alpha,
            false,
            false,
            false,
            par,
        )
    }
}

/// The row stride to hand gemm, as an `isize`.
fn stride(rows: usize, cols: usize, ld: usize, len: usize) -> Result<isize> {
    if rows <= 1 {
        return Ok(cols.max(1) as isize);
    }
    // The slice holds (rows-1)·ld + cols elements, so ld < len <= isize::MAX.
    debug_assert!(ld < len);
    isize::try_from(ld)
        .map_err(|_| Error::inval(format!("sgemm: leading dimension {ld} is too large")))
}

/// C = βC over the m × n window (β = 0 writes zeros without reading C).
fn scale(c: &mut [f32], m: usize, n: usize, ldc: usize, beta: f32) {
    if beta == 1.0 {
        return;
    }
    for i in 0..m {
        let row = &mut c[i * ldc..i * ldc + n];
        if beta == 0.0 {
            row.fill(0.0);
        } else {
            row.iter_mut().for_each(|x| *x *= beta);
        }
    }
}

#[cfg(test)]
mod linger_tests {
    use super::*;

    #[test]
    fn lingering_ends_when_the_next_call_begins_or_the_time_is_up() {
        let warm = Arc::new(Warm {
            generation: AtomicU64::new(5),
            spin: Duration::from_secs(30),
        });
        let w = warm.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            w.linger(5);
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(20));
        warm.generation.fetch_add(1, Ordering::AcqRel);
        // Far less than the 30 s window: the new generation ended it.
        assert!(t.join().unwrap() < Duration::from_secs(20));
        let short = Warm {
            generation: AtomicU64::new(0),
            spin: Duration::from_millis(5),
        };
        let start = Instant::now();
        short.linger(0);
        assert!(start.elapsed() >= Duration::from_millis(5));
        // A stale generation returns at once.
        let start = Instant::now();
        short.linger(7);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
