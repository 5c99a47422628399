//! SGEMM throughput of the cpu plugin, side by side with OpenBLAS.
//!
//! ```text
//! cargo bench -p vaccel-plugin-cpu --bench sgemm               # the comparison table
//! cargo bench -p vaccel-plugin-cpu --bench sgemm -- threshold  # single- vs multi-threaded, to pick the threshold
//! ```
//!
//! Square C = A·B (α = 1, β = 0), row-major, through the runtime's typed
//! session API into the plugin. OpenBLAS is loaded at run time from
//! `libopenblas.so.0` (Debian: `apt-get install libopenblas-dev`) so nothing
//! else in the crate links it; both use the same number of threads (the
//! plugin's, i.e. `VACCEL_CPU_THREADS` or every available core). Each number
//! is the median of repeated runs, repeated for at least 0.3 s.

use std::ffi::{CStr, c_char, c_int};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vaccel_core::{PluginType, Runtime, Session};
use vaccel_plugin_cpu::CpuPlugin;

const SIZES: [usize; 6] = [64, 128, 256, 512, 1024, 2048];
const MIN_TIME: Duration = Duration::from_millis(300);
const MIN_REPEATS: usize = 3;

const CBLAS_ROW_MAJOR: c_int = 101;
const CBLAS_NO_TRANS: c_int = 111;

type CblasSgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    f32,
    *const f32,
    c_int,
    *const f32,
    c_int,
    f32,
    *mut f32,
    c_int,
);

struct OpenBlas {
    sgemm: CblasSgemm,
    corename: String,
    _lib: libloading::Library,
}

impl OpenBlas {
    fn load(threads: usize) -> Result<OpenBlas, String> {
        // SAFETY: loading the system OpenBLAS runs its initialisers, which is
        // what every program linking it does.
        let lib =
            unsafe { libloading::Library::new("libopenblas.so.0") }.map_err(|e| e.to_string())?;
        // SAFETY: these are OpenBLAS's documented C signatures.
        unsafe {
            let sgemm = *lib
                .get::<CblasSgemm>(b"cblas_sgemm\0")
                .map_err(|e| e.to_string())?;
            let set_threads = *lib
                .get::<unsafe extern "C" fn(c_int)>(b"openblas_set_num_threads\0")
                .map_err(|e| e.to_string())?;
            set_threads(threads as c_int);
            let corename = match lib
                .get::<unsafe extern "C" fn() -> *const c_char>(b"openblas_get_corename\0")
            {
                Ok(f) => {
                    let p = f();
                    if p.is_null() {
                        "?".into()
                    } else {
                        CStr::from_ptr(p).to_string_lossy().into_owned()
                    }
                }
                Err(_) => "?".into(),
            };
            Ok(OpenBlas {
                sgemm,
                corename,
                _lib: lib,
            })
        }
    }

    fn sgemm(&self, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        assert!(a.len() >= n * n && b.len() >= n * n && c.len() >= n * n);
        let n = n as c_int;
        // SAFETY: A, B and C each hold n·n elements, the extent of a square
        // row-major product with leading dimension n.
        unsafe {
            (self.sgemm)(
                CBLAS_ROW_MAJOR,
                CBLAS_NO_TRANS,
                CBLAS_NO_TRANS,
                n,
                n,
                n,
                1.0,
                a.as_ptr(),
                n,
                b.as_ptr(),
                n,
                0.0,
                c.as_mut_ptr(),
                n,
            )
        }
    }
}

/// Median seconds per call of `f`, after one warm-up call.
///
/// Starts with a pause: after a call returns, OpenBLAS's worker threads
/// busy-wait for more work for a while (and rayon's, briefly); on a machine
/// with few cores they would steal the next measurement's cores.
fn time(mut f: impl FnMut()) -> f64 {
    std::thread::sleep(Duration::from_millis(250));
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < MIN_REPEATS || start.elapsed() < MIN_TIME {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn gflops(n: usize, secs: f64) -> f64 {
    2.0 * (n as f64).powi(3) / secs / 1e9
}

fn matrix(n: usize, seed: u32) -> Vec<f32> {
    (0..(n * n) as u32)
        .map(|i| {
            ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn session(plugin: CpuPlugin) -> (Runtime, Session) {
    let rt = Runtime::builder()
        .with_plugin(Arc::new(plugin))
        .build()
        .expect("runtime");
    let sess = rt.session(PluginType::CPU).expect("session");
    (rt, sess)
}

fn ours(sess: &Session, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    sess.sgemm(n, n, n, 1.0, a, n, b, n, 0.0, c, n)
        .expect("sgemm");
}

fn comparison() {
    let plugin = CpuPlugin::new();
    let threads = plugin.threads();
    let (_rt, sess) = session(plugin);
    let blas = match OpenBlas::load(threads) {
        Ok(b) => Some(b),
        Err(e) => {
            println!("!!! SKIPPED: OpenBLAS not found ({e}) — apt-get install libopenblas-dev");
            None
        }
    };
    println!(
        "sgemm, square, row-major, alpha=1 beta=0; {threads} thread(s) each; OpenBLAS core: {}",
        blas.as_ref().map_or("-", |b| b.corename.as_str())
    );
    println!(
        "{:>6} {:>14} {:>18} {:>8} {:>12}",
        "n", "ours GFLOP/s", "OpenBLAS GFLOP/s", "ratio", "max rel diff"
    );
    for n in SIZES {
        let (a, b) = (matrix(n, 1), matrix(n, 2));
        let mut c = vec![0.0f32; n * n];
        let t_ours = time(|| ours(&sess, n, black_box(&a), black_box(&b), &mut c));
        let ours_gf = gflops(n, t_ours);
        match &blas {
            Some(blas) => {
                let mut c_blas = vec![0.0f32; n * n];
                let t_blas = time(|| blas.sgemm(n, black_box(&a), black_box(&b), &mut c_blas));
                let blas_gf = gflops(n, t_blas);
                let diff = c
                    .iter()
                    .zip(&c_blas)
                    .map(|(x, y)| ((x - y).abs() / y.abs().max(1.0)) as f64)
                    .fold(0.0, f64::max);
                println!(
                    "{n:>6} {ours_gf:>14.1} {blas_gf:>18.1} {:>8.2} {diff:>12.1e}",
                    ours_gf / blas_gf
                );
            }
            None => println!(
                "{n:>6} {ours_gf:>14.1} {:>18} {:>8} {:>12}",
                "SKIPPED", "-", "-"
            ),
        }
    }
}

/// Single-threaded vs. multi-threaded GFLOP/s of the plugin per size.
fn threshold() {
    let mut single = CpuPlugin::new();
    single.set_parallel_threshold(usize::MAX);
    let mut multi = CpuPlugin::new();
    multi.set_parallel_threshold(0);
    let threads = multi.threads();
    let (_r1, s1) = session(single);
    let (_r2, s2) = session(multi);
    println!(
        "plugin sgemm: 1 thread vs {threads} threads (current default threshold: m*n*k >= {})",
        CpuPlugin::new().parallel_threshold()
    );
    println!(
        "{:>6} {:>12} {:>12} {:>8}",
        "n", "1T GFLOP/s", "MT GFLOP/s", "MT/1T"
    );
    for n in [16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 192, 256] {
        let (a, b) = (matrix(n, 1), matrix(n, 2));
        let mut c = vec![0.0f32; n * n];
        let one = gflops(
            n,
            time(|| ours(&s1, n, black_box(&a), black_box(&b), &mut c)),
        );
        let many = gflops(
            n,
            time(|| ours(&s2, n, black_box(&a), black_box(&b), &mut c)),
        );
        println!("{n:>6} {one:>12.1} {many:>12.1} {:>8.2}", many / one);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything not starting with `-` picks a mode.
    let mode = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    match mode.as_deref() {
        None => comparison(),
        Some("threshold") => threshold(),
        Some(other) => {
            eprintln!("unknown mode '{other}': use no argument (comparison table) or 'threshold'");
            std::process::exit(2);
        }
    }
}
