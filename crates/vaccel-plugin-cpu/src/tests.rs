//! Unit tests, through the `Plugin` trait.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockEncrypt, KeyInit};
use vaccel_core::ops::sgemm_reference;
use vaccel_core::plugin::NoResources;
use vaccel_core::{Arg, ArgOut, ArgType, Code, Error, OpCtx, OpType, Plugin, PluginType};

use super::*;

fn ctx() -> OpCtx<'static> {
    OpCtx {
        session: 1,
        hint: PluginType::CPU,
        resources: &NoResources,
    }
}

/// xorshift64*: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn f32s(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ------------------------------------------------------------------ SGEMM

struct Case {
    m: usize,
    n: usize,
    k: usize,
    lda: usize,
    ldb: usize,
    ldc: usize,
    alpha: f32,
    beta: f32,
}

impl Case {
    fn square(n: usize) -> Case {
        Case {
            m: n,
            n,
            k: n,
            lda: n,
            ldb: n,
            ldc: n,
            alpha: 1.0,
            beta: 0.0,
        }
    }
}

/// Run one SGEMM through the plugin.
#[allow(clippy::too_many_arguments)]
fn plugin_sgemm(
    p: &CpuPlugin,
    m: i64,
    n: i64,
    k: i64,
    alpha: f32,
    a: &[f32],
    lda: i64,
    b: &[f32],
    ldb: i64,
    beta: f32,
    c: &mut [f32],
    ldc: i64,
) -> vaccel_core::Result<()> {
    let read = [
        Arg::scalar(&m),
        Arg::scalar(&n),
        Arg::scalar(&k),
        Arg::scalar(&alpha),
        Arg::f32s(a),
        Arg::scalar(&lda),
        Arg::f32s(b),
        Arg::scalar(&ldb),
        Arg::scalar(&beta),
        Arg::scalar(&ldc),
    ];
    let mut write = [ArgOut::inout(
        ArgType::Float32Array,
        bytemuck::cast_slice_mut(c),
    )];
    p.run(&ctx(), OpType::BlasSgemm, &read, &mut write)
}

/// Check `p` against the reference on one case; C's slack (ldc > n) must be untouched.
fn check(p: &CpuPlugin, t: &Case, rng: &mut Rng) {
    let a = rng.f32s(vaccel_core::ops::matrix_span(t.m, t.k, t.lda).unwrap());
    let b = rng.f32s(vaccel_core::ops::matrix_span(t.k, t.n, t.ldb).unwrap());
    let c_len = vaccel_core::ops::matrix_span(t.m, t.n, t.ldc).unwrap();
    // With β = 0, C's old contents must be ignored: make them NaN.
    let c0: Vec<f32> = if t.beta == 0.0 {
        vec![f32::NAN; c_len]
    } else {
        rng.f32s(c_len)
    };
    let mut want = c0.clone();
    sgemm_reference(
        t.m, t.n, t.k, t.alpha, &a, t.lda, &b, t.ldb, t.beta, &mut want, t.ldc,
    );
    let mut got = c0.clone();
    let d = |x: usize| x as i64;
    plugin_sgemm(
        p,
        d(t.m),
        d(t.n),
        d(t.k),
        t.alpha,
        &a,
        d(t.lda),
        &b,
        d(t.ldb),
        t.beta,
        &mut got,
        d(t.ldc),
    )
    .unwrap();
    let what = format!(
        "m={} n={} k={} lda={} ldb={} ldc={} alpha={} beta={}",
        t.m, t.n, t.k, t.lda, t.ldb, t.ldc, t.alpha, t.beta
    );
    for i in 0..t.m {
        for j in 0..t.ldc.min(c_len - i * t.ldc) {
            let idx = i * t.ldc + j;
            if j >= t.n {
                assert!(
                    got[idx].to_bits() == c0[idx].to_bits(),
                    "{what}: C slack at ({i},{j}) was written"
                );
                continue;
            }
            // Error bound scale: |α|·Σ|a||b| + |β·c|.
            let mut mag = 0.0f64;
            for q in 0..t.k {
                mag += (a[i * t.lda + q] as f64 * b[q * t.ldb + j] as f64).abs();
            }
            let prev = if t.beta == 0.0 {
                0.0
            } else {
                (t.beta * c0[idx]).abs() as f64
            };
            let scale = (t.alpha.abs() as f64 * mag + prev).max(f32::MIN_POSITIVE as f64);
            let err = (got[idx] as f64 - want[idx] as f64).abs();
            assert!(
                err <= 1e-4 * scale,
                "{what}: C[{i},{j}] = {} but reference {} (err {err:e}, scale {scale:e})",
                got[idx],
                want[idx]
            );
        }
    }
}

#[test]
fn info_lists_ops_and_details() {
    let p = CpuPlugin::with_threads(3);
    let info = p.info();
    assert_eq!(info.name, "cpu");
    assert_eq!(info.types, PluginType::CPU | PluginType::SOFTWARE);
    for op in OPS {
        assert!(info.ops.contains(op), "{op}");
    }
    assert_eq!(info.ops.len(), OPS.len());
    let detail = |k: &str| {
        info.details
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(detail("threads").as_deref(), Some("3"));
    assert_eq!(detail("spin_us").as_deref(), Some("100"));
    let aes = detail("aes").unwrap();
    assert!(["aes-ni", "armv8", "soft"].contains(&aes.as_str()), "{aes}");
    #[cfg(target_arch = "x86_64")]
    assert_eq!(aes == "aes-ni", std::arch::is_x86_feature_detected!("aes"));
    assert_eq!(detail("sgemm"), Some(format!("gemm {}", simd_level())));
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        simd_level() != "baseline",
        std::arch::is_x86_feature_detected!("avx2")
    );
    assert_eq!(CpuPlugin::with_threads(0).threads(), 1);
}

#[test]
fn threads_setting_parses() {
    assert_eq!(parse_threads("4").unwrap(), 4);
    assert_eq!(parse_threads(" 2 ").unwrap(), 2);
    for bad in ["0", "-1", "many", ""] {
        let e = parse_threads(bad).unwrap_err();
        assert_eq!(e.code(), Code::Inval);
        assert!(e.message().contains(THREADS_ENV), "{e}");
    }
}

#[test]
fn spin_setting_parses() {
    assert_eq!(
        parse_spin("250").unwrap(),
        std::time::Duration::from_micros(250)
    );
    assert_eq!(parse_spin(" 0 ").unwrap(), std::time::Duration::ZERO);
    for bad in ["-1", "2000000", "fast", ""] {
        let e = parse_spin(bad).unwrap_err();
        assert_eq!(e.code(), Code::Inval);
        assert!(e.message().contains(SPIN_ENV), "{e}");
    }
    let mut p = CpuPlugin::with_threads(2);
    assert_eq!(p.spin(), std::time::Duration::from_micros(100));
    p.set_spin(std::time::Duration::ZERO);
    assert_eq!(p.spin(), std::time::Duration::ZERO);
}

#[test]
fn unsupported_op_is_notsup() {
    let e = CpuPlugin::with_threads(1)
        .run(&ctx(), OpType::ImageClassify, &[], &mut [])
        .unwrap_err();
    assert_eq!(e.code(), Code::NotSup);
    assert!(e.message().contains("IMAGE_CLASSIFY"), "{e}");
}

#[test]
fn sgemm_known_answer() {
    // [1 2; 3 4] x [5 6; 7 8] = [19 22; 43 50]; with β = 1 and C = 1: +1.
    let p = CpuPlugin::with_threads(1);
    let a = [1.0, 2.0, 3.0, 4.0];
    let b = [5.0, 6.0, 7.0, 8.0];
    let mut c = [1.0f32; 4];
    plugin_sgemm(&p, 2, 2, 2, 1.0, &a, 2, &b, 2, 1.0, &mut c, 2).unwrap();
    assert_eq!(c, [20.0, 23.0, 44.0, 51.0]);
    let mut c = [f32::NAN; 4];
    plugin_sgemm(&p, 2, 2, 2, 2.0, &a, 2, &b, 2, 0.0, &mut c, 2).unwrap();
    assert_eq!(c, [38.0, 44.0, 86.0, 100.0]);
}

#[test]
fn sgemm_matches_reference_on_random_shapes() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let single = CpuPlugin::with_threads(1);
    let scalars = [0.0f32, 1.0, -1.5, 0.75];
    let mut cases = 0;
    for _ in 0..120 {
        let dim = |rng: &mut Rng| match rng.below(6) {
            0 => 1,
            1 => 1 + rng.below(4),
            _ => 1 + rng.below(70),
        };
        let (m, n, k) = (dim(&mut rng), dim(&mut rng), dim(&mut rng));
        let pad = |rng: &mut Rng| {
            if rng.below(2) == 0 {
                0
            } else {
                1 + rng.below(5)
            }
        };
        let t = Case {
            m,
            n,
            k,
            lda: k + pad(&mut rng),
            ldb: n + pad(&mut rng),
            ldc: n + pad(&mut rng),
            alpha: scalars[rng.below(4)],
            beta: scalars[rng.below(4)],
        };
        check(&single, &t, &mut rng);
        cases += 1;
    }
    // Every α/β combination on a fixed non-square shape with every leading dimension padded.
    for alpha in scalars {
        for beta in scalars {
            check(
                &single,
                &Case {
                    m: 7,
                    n: 13,
                    k: 5,
                    lda: 9,
                    ldb: 16,
                    ldc: 14,
                    alpha,
                    beta,
                },
                &mut rng,
            );
            cases += 1;
        }
    }
    assert!(cases > 100);
}

#[test]
fn sgemm_degenerate_shapes() {
    let mut rng = Rng(42);
    let p = CpuPlugin::with_threads(1);
    for (m, n, k) in [
        (1, 1, 1),
        (1, 9, 4),
        (9, 1, 4),
        (9, 4, 1),
        (1, 1, 33),
        (33, 1, 1),
        (1, 33, 1),
        (3, 2, 2),
    ] {
        for beta in [0.0, 1.0, 0.5] {
            check(
                &p,
                &Case {
                    m,
                    n,
                    k,
                    lda: k,
                    ldb: n,
                    ldc: n,
                    alpha: 1.0,
                    beta,
                },
                &mut rng,
            );
            check(
                &p,
                &Case {
                    m,
                    n,
                    k,
                    lda: k + 2,
                    ldb: n + 3,
                    ldc: n + 1,
                    alpha: -2.0,
                    beta,
                },
                &mut rng,
            );
        }
    }
}

#[test]
fn sgemm_zero_sized_dimensions() {
    let p = CpuPlugin::with_threads(1);
    // k = 0: C = βC (and β = 0 clears C, NaNs included); A and B may be empty.
    let mut c = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    plugin_sgemm(&p, 2, 3, 0, 1.0, &[], 1, &[], 3, 2.0, &mut c, 3).unwrap();
    assert_eq!(c, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
    let mut c = [f32::NAN; 6];
    plugin_sgemm(&p, 2, 3, 0, 1.0, &[], 1, &[], 3, 0.0, &mut c, 3).unwrap();
    assert_eq!(c, [0.0; 6]);
    // m = 0 or n = 0: nothing to do, nothing written.
    let mut c = [7.0f32; 4];
    plugin_sgemm(&p, 0, 2, 2, 1.0, &[], 2, &[1.0; 4], 2, 0.0, &mut c, 2).unwrap();
    plugin_sgemm(&p, 2, 0, 2, 1.0, &[1.0; 4], 2, &[], 1, 0.0, &mut c, 1).unwrap();
    assert_eq!(c, [7.0; 4]);
    let mut empty: [f32; 0] = [];
    plugin_sgemm(&p, 0, 0, 0, 1.0, &[], 1, &[], 1, 0.0, &mut empty, 1).unwrap();
    // α = 0: C = βC without reading A or B (so NaN/Inf in them do not leak).
    let mut c = [1.0f32, 2.0];
    plugin_sgemm(
        &p,
        1,
        2,
        2,
        0.0,
        &[f32::NAN, f32::INFINITY],
        2,
        &[f32::NAN; 4],
        2,
        3.0,
        &mut c,
        2,
    )
    .unwrap();
    assert_eq!(c, [3.0, 6.0]);
}

#[test]
fn sgemm_single_row_ignores_huge_leading_dimensions() {
    // With one row, lda/ldc are never multiplied by a row index; the decoder
    // accepts any value >= the row length, so the plugin must cope.
    let p = CpuPlugin::with_threads(2);
    let a = [1.0f32, 2.0, 3.0];
    let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3 x 2
    let mut c = [0.0f32; 2];
    plugin_sgemm(&p, 1, 2, 3, 1.0, &a, i64::MAX, &b, 2, 0.0, &mut c, i64::MAX).unwrap();
    assert_eq!(c, [4.0, 5.0]);
    // k = 1: B has one row, ldb is free.
    let mut c = [0.0f32; 4];
    plugin_sgemm(
        &p,
        2,
        2,
        1,
        1.0,
        &[2.0, 3.0],
        1,
        &[1.0, 10.0],
        i64::MAX,
        0.0,
        &mut c,
        2,
    )
    .unwrap();
    assert_eq!(c, [2.0, 20.0, 3.0, 30.0]);
}

#[test]
fn sgemm_multithreaded_matches_reference() {
    let mut rng = Rng(7);
    let mut p = CpuPlugin::with_threads(3);
    p.set_parallel_threshold(0);
    assert_eq!(p.parallel_threshold(), 0);
    for t in [
        Case::square(64),
        Case {
            m: 150,
            n: 131,
            k: 170,
            lda: 171,
            ldb: 140,
            ldc: 133,
            alpha: 0.5,
            beta: -1.0,
        },
        Case {
            m: 257,
            n: 33,
            k: 300,
            lda: 300,
            ldb: 33,
            ldc: 35,
            alpha: 1.0,
            beta: 0.0,
        },
        Case {
            m: 5,
            n: 300,
            k: 200,
            lda: 201,
            ldb: 300,
            ldc: 300,
            alpha: 1.0,
            beta: 1.0,
        },
    ] {
        check(&p, &t, &mut rng);
    }
    // The default threshold with a size above it (pool path) and below it.
    let p = CpuPlugin::with_threads(2);
    check(&p, &Case::square(170), &mut rng);
    check(&p, &Case::square(40), &mut rng);
}

#[test]
fn sgemm_while_workers_linger_or_sleep() {
    // Calls back to back (workers still lingering from the last call),
    // after a pause longer than the linger (workers asleep), and with
    // lingering off, from several threads at once: same results.
    let mut rng = Rng(11);
    for spin_us in [0, 100, 20_000] {
        let mut p = CpuPlugin::with_threads(2);
        p.set_parallel_threshold(0);
        p.set_spin(std::time::Duration::from_micros(spin_us));
        for _ in 0..3 {
            check(&p, &Case::square(96), &mut rng);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        check(&p, &Case::square(120), &mut rng);
        std::thread::scope(|s| {
            for seed in 0..3 {
                let p = &p;
                s.spawn(move || {
                    let mut rng = Rng(100 + seed);
                    for _ in 0..4 {
                        check(p, &Case::square(80), &mut rng);
                    }
                });
            }
        });
    }
}

#[test]
fn sgemm_bad_input_is_einval() {
    let p = CpuPlugin::with_threads(1);
    let a = [0.0f32; 6];
    let b = [0.0f32; 6];
    let mut c = [0.0f32; 6];
    let cases: [(&str, [i64; 6]); 5] = [
        ("B has 6 elements", [2, 3, 3, 3, 3, 3]),
        ("lda (2) must be >= k (3)", [2, 3, 3, 2, 3, 3]),
        ("ldb (2) must be >= n (3)", [2, 3, 2, 3, 2, 3]),
        ("ldc (1) must be >= n (3)", [2, 3, 2, 3, 3, 1]),
        ("must not be negative", [-1, 3, 3, 3, 3, 3]),
    ];
    for (want, [m, n, k, lda, ldb, ldc]) in cases {
        let e = plugin_sgemm(&p, m, n, k, 1.0, &a, lda, &b, ldb, 0.0, &mut c, ldc).unwrap_err();
        assert_eq!(e.code(), Code::Inval, "{e}");
        assert!(e.message().contains(want), "{want}: {e}");
    }
    // C too small for m, n, ldc.
    let mut small = [0.0f32; 5];
    let e = plugin_sgemm(&p, 2, 3, 2, 1.0, &a, 3, &b, 3, 0.0, &mut small, 3).unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("C has 5 elements"), "{e}");
    // Wrong argument count and no C at all.
    let e = p.run(&ctx(), OpType::BlasSgemm, &[], &mut []).unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    let dims = [2i64, 3, 2, 3, 3, 3];
    let (one, zero) = (1.0f32, 0.0f32);
    let read = [
        Arg::scalar(&dims[0]),
        Arg::scalar(&dims[1]),
        Arg::scalar(&dims[2]),
        Arg::scalar(&one),
        Arg::f32s(&a),
        Arg::scalar(&dims[3]),
        Arg::f32s(&b),
        Arg::scalar(&dims[4]),
        Arg::scalar(&zero),
        Arg::scalar(&dims[5]),
    ];
    let e = p
        .run(&ctx(), OpType::BlasSgemm, &read, &mut [])
        .unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("write argument 0 (C)"), "{e}");
}

// ------------------------------------------------------------------ MINMAX

#[test]
fn minmax() {
    let p = CpuPlugin::with_threads(1);
    let d = [3.0f64, -1.0, 10.0, 4.5];
    let (lo, hi) = (0.0f64, 5.0f64);
    let mut out = [0u8; 32];
    let (mut mn, mut mx) = ([0u8; 8], [0u8; 8]);
    let mut w = [
        ArgOut::fixed(ArgType::Float64Array, &mut out),
        ArgOut::fixed(ArgType::Float64, &mut mn),
        ArgOut::fixed(ArgType::Float64, &mut mx),
    ];
    p.run(
        &ctx(),
        OpType::Minmax,
        &[Arg::f64s(&d), Arg::scalar(&lo), Arg::scalar(&hi)],
        &mut w,
    )
    .unwrap();
    let clamped: Vec<f64> = out
        .chunks_exact(8)
        .map(|c| f64::from_ne_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(clamped, [3.0, 0.0, 5.0, 4.5]);
    assert_eq!(f64::from_ne_bytes(mn), -1.0);
    assert_eq!(f64::from_ne_bytes(mx), 10.0);
    let e = p
        .run(
            &ctx(),
            OpType::Minmax,
            &[Arg::f64s(&d), Arg::scalar(&hi), Arg::scalar(&lo)],
            &mut [],
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::Inval);
}

// ------------------------------------------------------------------ AES

fn aes_op(p: &CpuPlugin, op: OpType, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut w = [ArgOut::growable(ArgType::Buffer, &mut out)];
    p.run(
        &ctx(),
        op,
        &[Arg::buffer(key), Arg::buffer(iv), Arg::buffer(data)],
        &mut w,
    )?;
    let n = w[0].len();
    out.truncate(n);
    Ok(out)
}

fn encrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    aes_op(
        &CpuPlugin::with_threads(1),
        OpType::AesCbcEncrypt,
        key,
        iv,
        data,
    )
}

fn decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    aes_op(
        &CpuPlugin::with_threads(1),
        OpType::AesCbcDecrypt,
        key,
        iv,
        data,
    )
}

/// Raw single-block AES encryption of `block`, independent of the plugin.
fn aes_block(key: &[u8], block: [u8; 16]) -> [u8; 16] {
    let mut b = GenericArray::from(block);
    match key.len() {
        16 => aes::Aes128::new_from_slice(key)
            .unwrap()
            .encrypt_block(&mut b),
        24 => aes::Aes192::new_from_slice(key)
            .unwrap()
            .encrypt_block(&mut b),
        32 => aes::Aes256::new_from_slice(key)
            .unwrap()
            .encrypt_block(&mut b),
        _ => unreachable!(),
    }
    b.into()
}

/// The ciphertext block CBC produces for plaintext block `p` after ciphertext block `prev`.
fn cbc_block(key: &[u8], prev: &[u8], p: [u8; 16]) -> [u8; 16] {
    let mut x = p;
    x.iter_mut().zip(prev).for_each(|(a, b)| *a ^= b);
    aes_block(key, x)
}

const NIST_IV: &str = "000102030405060708090a0b0c0d0e0f";
const NIST_PLAIN: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
    30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";

/// NIST SP 800-38A F.2.1/F.2.2 (AES-128), F.2.3/F.2.4 (AES-192), F.2.5/F.2.6 (AES-256).
const NIST: [(&str, &str); 3] = [
    (
        "2b7e151628aed2a6abf7158809cf4f3c",
        "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
         73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
    ),
    (
        "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
        "4f021db243bc633d7178183a9fa071e8 b4d9ada9ad7dedf4e5e738763f69145a
         571b242012fb7ae07fa9baac3df102e0 08b0e27988598881d920a9e64f5615cd",
    ),
    (
        "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
        "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d
         39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b",
    ),
];

#[test]
fn aes_cbc_nist_sp800_38a_vectors() {
    let (iv, plain) = (hex(NIST_IV), hex(NIST_PLAIN));
    for (key, ct) in NIST {
        let (key, ct) = (hex(key), hex(ct));
        // Encrypt (F.2.1/F.2.3/F.2.5): the vectors have no padding, so our
        // output is the vector plus one full block of padding (16 × 0x10).
        let out = encrypt(&key, &iv, &plain).unwrap();
        assert_eq!(out.len(), 80, "key {}", key.len());
        assert_eq!(out[..64], ct[..], "AES-{} ciphertext", key.len() * 8);
        assert_eq!(
            out[64..],
            cbc_block(&key, &ct[48..64], [0x10; 16]),
            "padding block"
        );
        // Decrypt (F.2.2/F.2.4/F.2.6): the vector ciphertext plus its padding block.
        assert_eq!(
            decrypt(&key, &iv, &out).unwrap(),
            plain,
            "AES-{} decrypt",
            key.len() * 8
        );
    }
}

#[test]
fn aes_cbc_round_trips() {
    let mut rng = Rng(99);
    for key_len in [16, 24, 32] {
        let key = rng.bytes(key_len);
        let iv = rng.bytes(16);
        for len in 0..=100 {
            let plain = rng.bytes(len);
            let ct = encrypt(&key, &iv, &plain).unwrap();
            assert_eq!(ct.len(), (len / 16 + 1) * 16, "len {len}");
            // The last block is the padded tail, chained from the block before it.
            let tail = &plain[len / 16 * 16..];
            let mut last = [(16 - tail.len()) as u8; 16];
            last[..tail.len()].copy_from_slice(tail);
            let prev = if ct.len() == 16 {
                &iv[..]
            } else {
                &ct[ct.len() - 32..ct.len() - 16]
            };
            assert_eq!(
                ct[ct.len() - 16..],
                cbc_block(&key, prev, last),
                "len {len}"
            );
            assert_eq!(
                decrypt(&key, &iv, &ct).unwrap(),
                plain,
                "key {key_len} len {len}"
            );
        }
    }
    // A larger message, and a different IV changes every block.
    let key = rng.bytes(16);
    let plain = rng.bytes(100_000);
    let ct = encrypt(&key, &[1; 16], &plain).unwrap();
    assert_eq!(decrypt(&key, &[1; 16], &ct).unwrap(), plain);
    let ct2 = encrypt(&key, &[2; 16], &plain).unwrap();
    assert!(ct.chunks(16).zip(ct2.chunks(16)).all(|(a, b)| a != b));
}

/// The AES-NI encryption loop against RustCrypto `cbc`, for every key size,
/// lengths 0..=300 and a few large ones.
#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
#[test]
fn aes_ni_encrypt_matches_rustcrypto() {
    if !crate::aesni::available() {
        eprintln!("no AES-NI on this CPU: skipping the comparison");
        return;
    }
    let mut rng = Rng(2024);
    let mut lens: Vec<usize> = (0..=300).collect();
    lens.extend([4095, 4096, 65_537, 1 << 20]);
    for key_len in [16, 24, 32] {
        for &len in &lens {
            let (key, iv, data) = (rng.bytes(key_len), rng.bytes(16), rng.bytes(len));
            let read = [Arg::buffer(&key), Arg::buffer(&iv), Arg::buffer(&data)];
            let p = vaccel_core::ops::AesCbc::decode(OpType::AesCbcEncrypt, &read).unwrap();
            let n = vaccel_core::ops::AesCbc::padded_len(len);
            let (mut fast, mut portable) = (vec![0u8; n], vec![0u8; n]);
            crate::aesni::encrypt(&p, &mut fast);
            crate::aescbc::encrypt_portable(&p, &mut portable).unwrap();
            assert!(fast == portable, "AES-{} length {len}", key_len * 8);
        }
    }
    // The benchmark's raw encryptor: chained over several calls, it equals
    // one unpadded CBC encryption of the whole buffer.
    for key_len in [16, 24, 32] {
        let (key, iv, data) = (rng.bytes(key_len), rng.bytes(16), rng.bytes(16 * 40));
        let mut raw = crate::RawCbcEncryptor::new(&key, iv.clone().try_into().unwrap()).unwrap();
        let mut buf = data.clone();
        for part in buf.chunks_mut(16 * 8) {
            raw.encrypt_blocks(part);
        }
        let read = [Arg::buffer(&key), Arg::buffer(&iv), Arg::buffer(&data)];
        let p = vaccel_core::ops::AesCbc::decode(OpType::AesCbcEncrypt, &read).unwrap();
        let mut padded = vec![0u8; data.len() + 16];
        crate::aescbc::encrypt_portable(&p, &mut padded).unwrap();
        assert!(buf[..] == padded[..data.len()], "AES-{} raw", key_len * 8);
    }
    assert!(crate::RawCbcEncryptor::new(&[0; 20], [0; 16]).is_none());
}

#[test]
fn aes_cbc_bad_keys_and_ivs_are_einval() {
    for len in [0, 8, 15, 17, 31, 33, 64] {
        for op in [OpType::AesCbcEncrypt, OpType::AesCbcDecrypt] {
            let e = aes_op(
                &CpuPlugin::with_threads(1),
                op,
                &vec![0; len],
                &[0; 16],
                &[0; 16],
            )
            .unwrap_err();
            assert_eq!(e.code(), Code::Inval);
            assert!(
                e.message().contains(&format!(
                    "key must be 16, 24 or 32 bytes (AES-128/192/256), got {len}"
                )),
                "{e}"
            );
        }
    }
    let e = encrypt(&[0; 16], &[0; 12], b"x").unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("IV must be 16 bytes"), "{e}");
}

#[test]
fn aes_cbc_bad_padding_is_einval() {
    let key = hex(NIST[0].0);
    let iv = hex(NIST_IV);
    let good = encrypt(&key, &iv, b"attack at dawn").unwrap();
    // Last plaintext blocks with broken padding: a zero pad byte, a pad byte
    // above 16, and inconsistent pad bytes.
    let mut zero = [7u8; 16];
    zero[15] = 0;
    let mut big = [7u8; 16];
    big[15] = 17;
    let mut mixed = [0u8; 16];
    mixed[13..].copy_from_slice(&[3, 2, 3]);
    for bad in [zero, big, mixed] {
        let prefix = &good[..16];
        let mut ct = prefix.to_vec();
        ct.extend_from_slice(&cbc_block(&key, prefix, bad));
        let e = decrypt(&key, &iv, &ct).unwrap_err();
        assert_eq!(e.code(), Code::Inval);
        assert_eq!(
            e.message(),
            "aes-cbc decrypt: bad PKCS#7 padding (wrong key or IV, or corrupted data)"
        );
    }
    // The same message with a good last block decrypts.
    let mut ok = [5u8; 16];
    ok[15] = 1;
    let mut ct = good[..16].to_vec();
    ct.extend_from_slice(&cbc_block(&key, &good[..16], ok));
    assert_eq!(decrypt(&key, &iv, &ct).unwrap().len(), 31);
    // Nothing is written on failure.
    let mut out = vec![0xAAu8; 4];
    let mut w = [ArgOut::fixed(ArgType::Buffer, &mut out)];
    let mut ct = good[..16].to_vec();
    ct.extend_from_slice(&cbc_block(&key, &good[..16], zero));
    CpuPlugin::with_threads(1)
        .run(
            &ctx(),
            OpType::AesCbcDecrypt,
            &[Arg::buffer(&key), Arg::buffer(&iv), Arg::buffer(&ct)],
            &mut w,
        )
        .unwrap_err();
    assert_eq!(w[0].len(), 0);
    assert_eq!(out, [0xAA; 4]);
}

#[test]
fn aes_cbc_truncated_ciphertext_is_einval() {
    let key = [9u8; 32];
    let iv = [3u8; 16];
    let ct = encrypt(&key, &iv, &[0x55u8; 40]).unwrap();
    assert_eq!(ct.len(), 48);
    for cut in [0, 1, 15, 17, 47] {
        let e = decrypt(&key, &iv, &ct[..cut]).unwrap_err();
        assert_eq!(e.code(), Code::Inval);
        assert!(e.message().contains("not a non-zero multiple of 16"), "{e}");
    }
    // Dropping a whole block leaves a valid length, but the new last block
    // (0x55 bytes) is not valid padding.
    let e = decrypt(&key, &iv, &ct[..32]).unwrap_err();
    assert_eq!(e.code(), Code::Inval);
}

#[test]
fn aes_cbc_fixed_output_buffers() {
    let p = CpuPlugin::with_threads(1);
    let key = [1u8; 16];
    let iv = [2u8; 16];
    let plain = [5u8; 20];
    // Encrypt into an exact buffer, then into one that is too small.
    let mut ct = [0u8; 32];
    let mut w = [ArgOut::fixed(ArgType::Buffer, &mut ct)];
    p.run(
        &ctx(),
        OpType::AesCbcEncrypt,
        &[Arg::buffer(&key), Arg::buffer(&iv), Arg::buffer(&plain)],
        &mut w,
    )
    .unwrap();
    assert_eq!(w[0].len(), 32);
    let mut small = [0u8; 31];
    let mut w = [ArgOut::fixed(ArgType::Buffer, &mut small)];
    let e = p
        .run(
            &ctx(),
            OpType::AesCbcEncrypt,
            &[Arg::buffer(&key), Arg::buffer(&iv), Arg::buffer(&plain)],
            &mut w,
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("32 bytes needed, 31 given"), "{e}");
    // Decrypt into a buffer of exactly the plaintext length (smaller than the ciphertext).
    let mut pt = [0u8; 20];
    let mut w = [ArgOut::fixed(ArgType::Buffer, &mut pt)];
    p.run(
        &ctx(),
        OpType::AesCbcDecrypt,
        &[Arg::buffer(&key), Arg::buffer(&iv), Arg::buffer(&ct)],
        &mut w,
    )
    .unwrap();
    assert_eq!(w[0].len(), 20);
    assert_eq!(pt, plain);
    // No output argument at all.
    let e = p
        .run(
            &ctx(),
            OpType::AesCbcEncrypt,
            &[Arg::buffer(&key), Arg::buffer(&iv), Arg::buffer(&plain)],
            &mut [],
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("write argument 0 (output)"), "{e}");
}
