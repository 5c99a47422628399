//! AES-128-CBC encryption throughput, side by side with `openssl speed`.
//!
//! ```text
//! cargo bench -p vaccel-plugin-cpu --bench aes
//! ```
//!
//! Four columns, because they measure different things:
//!
//! - **op**: the plugin's `AES_CBC_ENCRYPT` through [`Plugin::run`] into a
//!   caller-owned output buffer: argument decoding, a fresh key schedule per
//!   call, PKCS#7 padding (one extra block) — what a vAccel caller gets.
//! - **raw ours**: the plugin's encryption loop (AES-NI) with the key
//!   schedule reused and no padding, encrypting the buffer in place over and
//!   over — the model `openssl speed` uses, so this is the apples-to-apples
//!   column. (Absent without AES-NI.)
//! - **raw RustCrypto**: the same model with RustCrypto `cbc` + `aes` (what
//!   the plugin uses for decryption and where AES-NI is missing), for
//!   reference.
//! - **openssl**: `openssl speed -elapsed -evp aes-128-cbc -bytes N -seconds 1`
//!   (wall-clock time, one context reused, no padding).
//!
//! MB/s are 10^6 bytes of plaintext per second. Our numbers are the median of
//! batches of calls, batches repeated for at least 0.3 s per size.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncryptMut, KeyIvInit};
use vaccel_core::plugin::NoResources;
use vaccel_core::{Arg, ArgOut, ArgType, OpCtx, OpType, Plugin, PluginType};
use vaccel_plugin_cpu::CpuPlugin;

const SIZES: [usize; 8] = [16, 64, 256, 1024, 8192, 16384, 65536, 1 << 20];
const MIN_TIME: Duration = Duration::from_millis(300);
const BATCH_TIME: Duration = Duration::from_millis(20);
const MIN_BATCHES: usize = 5;

/// Median bytes per second of `f`, which processes `bytes` bytes per call.
fn throughput(bytes: usize, mut f: impl FnMut()) -> f64 {
    // Size a batch to about BATCH_TIME.
    let mut per_batch = 1usize;
    loop {
        let t = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        if t.elapsed() >= BATCH_TIME / 4 || per_batch >= 1 << 30 {
            let each = t.elapsed().as_secs_f64() / per_batch as f64;
            per_batch = ((BATCH_TIME.as_secs_f64() / each) as usize).max(1);
            break;
        }
        per_batch *= 2;
    }
    let mut rates = Vec::new();
    let start = Instant::now();
    while rates.len() < MIN_BATCHES || start.elapsed() < MIN_TIME {
        let t = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        rates.push((bytes * per_batch) as f64 / t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// `openssl speed` for one size, in bytes per second.
fn openssl(size: usize) -> Result<f64, String> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-mr",
            "-elapsed",
            "-evp",
            "aes-128-cbc",
            "-seconds",
            "1",
            "-bytes",
        ])
        .arg(size.to_string())
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Machine-readable result line: +F:<n>:AES-128-CBC:<bytes per second>
    text.lines()
        .filter(|l| l.starts_with("+F:"))
        .find_map(|l| l.rsplit(':').next()?.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no +F: line in openssl's output (status {})", out.status))
}

/// The plugin's own CBC loop, keys reused, no padding (x86 with AES-NI only).
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn raw_ours(key: &[u8; 16], iv: [u8; 16], size: usize) -> Option<f64> {
    let mut enc = vaccel_plugin_cpu::RawCbcEncryptor::new(key, iv)?;
    let mut buf = vec![0u8; size];
    Some(throughput(size, || enc.encrypt_blocks(black_box(&mut buf))))
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
fn raw_ours(_key: &[u8; 16], _iv: [u8; 16], _size: usize) -> Option<f64> {
    None
}

fn openssl_version() -> Option<String> {
    let out = Command::new("openssl").arg("version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let plugin = CpuPlugin::new();
    let ctx = OpCtx {
        session: 1,
        hint: PluginType::CPU,
        resources: &NoResources,
    };
    let key = [0x2bu8; 16];
    let iv = [0x01u8; 16];
    let ossl = openssl_version();
    match &ossl {
        Some(v) => println!(
            "AES-128-CBC encrypt; aes backend: {}; {v}",
            vaccel_plugin_cpu::aes_backend()
        ),
        None => println!(
            "AES-128-CBC encrypt; aes backend: {}\n!!! SKIPPED openssl column: openssl not found — apt-get install openssl",
            vaccel_plugin_cpu::aes_backend()
        ),
    }
    println!(
        "{:>8} {:>10} {:>10} {:>12} {:>10} {:>10} {:>9}",
        "bytes", "op", "raw ours", "raw RustCr.", "openssl", "raw/ossl", "op/ossl"
    );
    println!(
        "{:>8} {:>10} {:>10} {:>12} {:>10}",
        "", "MB/s", "MB/s", "MB/s", "MB/s"
    );
    for size in SIZES {
        let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut out = vec![0u8; size + 16];
        let op = throughput(size, || {
            let read = [
                Arg::buffer(&key),
                Arg::buffer(&iv),
                Arg::buffer(black_box(&data)),
            ];
            let mut write = [ArgOut::fixed(ArgType::Buffer, &mut out)];
            plugin
                .run(&ctx, OpType::AesCbcEncrypt, &read, &mut write)
                .expect("encrypt");
        });
        let mut blocks = vec![GenericArray::<u8, aes::cipher::consts::U16>::default(); size / 16];
        let mut enc = cbc::Encryptor::<aes::Aes128>::new(&key.into(), &iv.into());
        let rustcrypto = throughput(size, || enc.encrypt_blocks_mut(black_box(&mut blocks)));
        let ours = raw_ours(&key, iv, size);
        let mb = |x: f64| format!("{:.1}", x / 1e6);
        let ossl_rate = match ossl.as_ref().map(|_| openssl(size)) {
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                eprintln!("openssl speed failed for {size} bytes: {e}");
                None
            }
            None => None,
        };
        let ratio = |x: Option<f64>| match (x, ossl_rate) {
            (Some(x), Some(o)) => format!("{:.2}", x / o),
            _ => "-".into(),
        };
        println!(
            "{size:>8} {:>10} {:>10} {:>12} {:>10} {:>10} {:>9}",
            mb(op),
            ours.map_or("-".into(), mb),
            mb(rustcrypto),
            ossl_rate.map_or("SKIPPED".into(), mb),
            ratio(ours),
            ratio(Some(op)),
        );
    }
}
