//! # vaccel-plugin-cpu
//!
//! The CPU plugin (`cpu`, types `CPU | SOFTWARE`): dense linear algebra and
//! cryptography on the host processor.
//!
//! | op | implementation |
//! |---|---|
//! | `BLAS_SGEMM` | the [`gemm`] crate (run-time SIMD dispatch), multi-threaded on a dedicated thread pool for large products |
//! | `MINMAX` | [`vaccel_core::ops::Minmax::compute`] |
//! | `AES_CBC_ENCRYPT` / `AES_CBC_DECRYPT` | PKCS#7; RustCrypto `aes` + `cbc` (AES-NI detected at run time), and for encryption on AES-NI CPUs a register-resident AES-NI CBC loop of this crate |
//!
//! Configuration: `VACCEL_CPU_THREADS` (default: the number of available
//! cores) caps the threads one SGEMM uses; `VACCEL_CPU_SPIN_US` (default
//! 100) is how long those threads stay awake, yielding, after a
//! multi-threaded SGEMM so that the next one does not pay for waking them
//! (0: sleep at once). [`PluginInfo::details`] reports
//! `threads`, `spin_us`, which AES implementation runs (`aes-ni`, `armv8` or `soft`)
//! and the SGEMM kernels' SIMD level ([`simd_level`]).
//!
//! Cargo feature `avx512` (off by default; needs Rust 1.89+) adds gemm's
//! AVX-512 kernels, used at run time where the CPU has AVX-512.
//!
//! The crate builds both as an `rlib` (link it in as a built-in) and as a
//! `cdylib` (`libvaccel_plugin_cpu.so`, entry symbol
//! `vaccel_plugin_cpu_entry_v1`).

use vaccel_core::{Arg, ArgOut, Error, OpCtx, OpType, Plugin, PluginInfo, PluginType, Result};

mod aescbc;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod aesni;
mod sgemm;

pub use aescbc::aes_backend;
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[doc(hidden)]
pub use aesni::RawCbcEncryptor;
pub use sgemm::simd_level;

/// Environment variable that caps the threads one SGEMM call uses.
pub const THREADS_ENV: &str = "VACCEL_CPU_THREADS";
/// Environment variable: how long (µs) SGEMM threads stay awake after a call.
pub const SPIN_ENV: &str = "VACCEL_CPU_SPIN_US";

/// The ops this plugin implements.
pub const OPS: [OpType; 4] = [
    OpType::BlasSgemm,
    OpType::Minmax,
    OpType::AesCbcEncrypt,
    OpType::AesCbcDecrypt,
];

/// The CPU plugin.
#[derive(Debug)]
pub struct CpuPlugin {
    gemm: sgemm::Engine,
}

impl Default for CpuPlugin {
    fn default() -> Self {
        CpuPlugin::new()
    }
}

/// Cores this process may run on (at least 1).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Parse a `VACCEL_CPU_THREADS` value: a positive integer.
pub fn parse_threads(v: &str) -> Result<usize> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::inval(format!(
            "{THREADS_ENV}={v}: expected a positive number of threads (unset it to use every core)"
        ))),
    }
}

/// Parse a `VACCEL_CPU_SPIN_US` value: microseconds, 0 … 1 000 000.
pub fn parse_spin(v: &str) -> Result<std::time::Duration> {
    match v.trim().parse::<u64>() {
        Ok(us) if us <= 1_000_000 => Ok(std::time::Duration::from_micros(us)),
        _ => Err(Error::inval(format!(
            "{SPIN_ENV}={v}: expected microseconds from 0 to 1000000 (0: SGEMM threads sleep as soon as they are idle)"
        ))),
    }
}

impl CpuPlugin {
    /// A plugin using `VACCEL_CPU_THREADS` threads for large SGEMMs, or every
    /// available core when that is unset. An invalid value is reported (as a
    /// warning) and ignored.
    pub fn new() -> CpuPlugin {
        let threads = match std::env::var(THREADS_ENV) {
            Ok(v) => parse_threads(&v).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cpu plugin: ignoring {THREADS_ENV}");
                available_cores()
            }),
            Err(_) => available_cores(),
        };
        let mut p = CpuPlugin::with_threads(threads);
        if let Ok(v) = std::env::var(SPIN_ENV) {
            match parse_spin(&v) {
                Ok(d) => p.set_spin(d),
                Err(e) => tracing::warn!(error = %e, "cpu plugin: ignoring {SPIN_ENV}"),
            }
        }
        p
    }

    /// A plugin using at most `threads` threads per SGEMM (0 counts as 1).
    pub fn with_threads(threads: usize) -> CpuPlugin {
        CpuPlugin {
            gemm: sgemm::Engine::new(threads.max(1)),
        }
    }

    /// Threads one large SGEMM uses.
    pub fn threads(&self) -> usize {
        self.gemm.threads()
    }

    /// Smallest `m·n·k` that runs multi-threaded.
    pub fn parallel_threshold(&self) -> usize {
        self.gemm.parallel_threshold()
    }

    /// How long SGEMM threads stay awake after a multi-threaded call.
    pub fn spin(&self) -> std::time::Duration {
        self.gemm.spin()
    }

    /// Change how long SGEMM threads stay awake (yielding) after a
    /// multi-threaded call; zero lets them sleep at once.
    pub fn set_spin(&mut self, spin: std::time::Duration) {
        self.gemm.set_spin(spin);
    }

    /// Change the smallest `m·n·k` that runs multi-threaded (for tuning and
    /// benchmarks; `usize::MAX` disables threading).
    pub fn set_parallel_threshold(&mut self, flops: usize) {
        self.gemm.set_parallel_threshold(flops);
    }
}

impl Plugin for CpuPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "cpu".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            types: PluginType::CPU | PluginType::SOFTWARE,
            ops: OPS.into_iter().collect(),
            details: vec![
                ("threads".into(), self.threads().to_string()),
                ("spin_us".into(), self.spin().as_micros().to_string()),
                ("aes".into(), aes_backend().into()),
                ("sgemm".into(), format!("gemm {}", sgemm::simd_level())),
            ],
        }
    }

    fn run(
        &self,
        _ctx: &OpCtx<'_>,
        op: OpType,
        read: &[Arg<'_>],
        write: &mut [ArgOut<'_>],
    ) -> Result<()> {
        match op {
            OpType::BlasSgemm => self.gemm.run(read, write),
            OpType::Minmax => vaccel_core::ops::Minmax::decode(read)?.compute(write),
            OpType::AesCbcEncrypt => aescbc::encrypt(read, write),
            OpType::AesCbcDecrypt => aescbc::decrypt(read, write),
            other => Err(Error::notsup(format!(
                "the cpu plugin does not implement {other}: it implements BLAS_SGEMM, MINMAX, AES_CBC_ENCRYPT and AES_CBC_DECRYPT"
            ))),
        }
    }
}

#[cfg(test)]
mod tests;

vaccel_core::export_plugin!(vaccel_plugin_cpu_entry_v1, CpuPlugin::new());
