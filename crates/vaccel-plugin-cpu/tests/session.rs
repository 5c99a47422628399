//! The plugin behind a runtime: built in, and loaded from its shared library.

use std::path::PathBuf;
use std::sync::Arc;

use vaccel_core::ops::sgemm_reference;
use vaccel_core::{Code, PluginType, Runtime, Session};
use vaccel_plugin_cpu::CpuPlugin;

fn builtin() -> Runtime {
    Runtime::builder()
        .with_plugin(Arc::new(CpuPlugin::new()))
        .build()
        .unwrap()
}

/// Deterministic data in [-1, 1).
fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// m, n, k, lda, ldb, ldc of the shared SGEMM case: non-square, padded.
const DIMS: (usize, usize, usize, usize, usize, usize) = (37, 29, 41, 44, 31, 30);

/// The inputs of the shared case: A, B and the initial C.
fn sgemm_inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (m, n, k, lda, ldb, ldc) = DIMS;
    (
        data((m - 1) * lda + k, 1),
        data((k - 1) * ldb + n, 2),
        data((m - 1) * ldc + n, 3),
    )
}

/// Run the shared case (α = 1.25, β = -0.5) on `sess`; returns C.
fn sgemm_case(sess: &Session) -> Vec<f32> {
    let (m, n, k, lda, ldb, ldc) = DIMS;
    let (a, b, mut c) = sgemm_inputs();
    sess.sgemm(m, n, k, 1.25, &a, lda, &b, ldb, -0.5, &mut c, ldc)
        .unwrap();
    c
}

#[test]
fn session_ops_on_the_builtin_plugin() {
    let rt = builtin();
    let sess = rt.session(PluginType::CPU).unwrap();
    assert_eq!(sess.plugin().name, "cpu");

    // SGEMM against the reference.
    let (m, n, k, lda, ldb, ldc) = DIMS;
    let (a, b, mut want) = sgemm_inputs();
    sgemm_reference(m, n, k, 1.25, &a, lda, &b, ldb, -0.5, &mut want, ldc);
    let got = sgemm_case(&sess);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "C[{i}]: {g} vs {w}"
        );
    }

    // Bad dimensions are EINVAL from the session too.
    let mut c = [0.0f32; 4];
    let e = sess
        .sgemm(2, 2, 2, 1.0, &[1.0; 3], 2, &[1.0; 4], 2, 0.0, &mut c, 2)
        .unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("A has 3 elements"), "{e}");

    // MINMAX.
    let mut out = [0.0f64; 4];
    let (mn, mx) = sess
        .minmax(&[3.0, -1.0, 10.0, 4.5], 0.0, 5.0, &mut out)
        .unwrap();
    assert_eq!((mn, mx), (-1.0, 10.0));
    assert_eq!(out, [3.0, 0.0, 5.0, 4.5]);

    // AES-CBC round trip, and a wrong key giving an error or other bytes.
    let key = [7u8; 32];
    let iv = [9u8; 16];
    let msg = b"serverless functions want hardware acceleration";
    let ct = sess.aes_cbc_encrypt(&key, &iv, msg).unwrap();
    assert_eq!(ct.len(), 48);
    assert_eq!(sess.aes_cbc_decrypt(&key, &iv, &ct).unwrap(), msg);
    match sess.aes_cbc_decrypt(&[8u8; 32], &iv, &ct) {
        Err(e) => assert!(e.message().contains("bad PKCS#7 padding"), "{e}"),
        Ok(p) => assert_ne!(p, msg),
    }
    let e = sess.aes_cbc_encrypt(&[0u8; 20], &iv, msg).unwrap_err();
    assert_eq!(e.code(), Code::Inval);

    // An op the plugin does not implement.
    let e = sess.image_classify(b"not an image").unwrap_err();
    assert_eq!(e.code(), Code::NotSup);
}

#[test]
fn sessions_on_many_threads() {
    let rt = builtin();
    let want = sgemm_case(&rt.session(PluginType::CPU).unwrap());
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let (rt, want) = (&rt, &want);
            s.spawn(move || {
                let sess = rt.session(PluginType::CPU).unwrap();
                for _ in 0..10 {
                    assert_eq!(&sgemm_case(&sess), want);
                    let ct = sess.aes_cbc_encrypt(&[t; 16], &[t; 16], &[t; 100]).unwrap();
                    assert_eq!(
                        sess.aes_cbc_decrypt(&[t; 16], &[t; 16], &ct).unwrap(),
                        [t; 100]
                    );
                }
                // Large enough to run on the thread pool, from several callers at once.
                let n = 160;
                let (a, b) = (data(n * n, 4), data(n * n, 5));
                let mut c = vec![f32::NAN; n * n];
                sess.sgemm(n, n, n, 1.0, &a, n, &b, n, 0.0, &mut c, n)
                    .unwrap();
                let mut want = vec![0.0f32; n * n];
                sgemm_reference(n, n, n, 1.0, &a, n, &b, n, 0.0, &mut want, n);
                for (g, w) in c.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
                }
            });
        }
    });
}

/// The plugin's shared library, next to this test binary.
///
/// Tests run from `target/<profile>/deps/`. Building this test builds the
/// library (both crate types) into that directory, so `deps/` has the copy
/// that matches this test's code; cargo copies it up to `target/<profile>/`
/// only when the library itself is a build target (`cargo build`), so the
/// copy there can be stale. Prefer `deps/`, fall back to its parent.
fn cdylib_path() -> PathBuf {
    let name = format!(
        "{}vaccel_plugin_cpu{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let fresh = deps.join(&name);
    if fresh.exists() {
        return fresh;
    }
    deps.parent().unwrap_or(deps).join(name)
}

#[test]
fn dynamic_library_matches_the_builtin() {
    let path = cdylib_path();
    assert!(
        path.exists(),
        "{} is missing: cargo builds it with the crate's tests (`cargo test -p vaccel-plugin-cpu`)",
        path.display()
    );
    let dynamic = Runtime::builder()
        .plugins(path.to_str().unwrap())
        .build()
        .unwrap();
    let lp = dynamic
        .plugin("cpu")
        .expect("the library registers as 'cpu'");
    assert_eq!(
        lp.source(),
        &vaccel_core::PluginSource::Dynamic(path.clone())
    );
    let info = lp.info();
    assert_eq!(info.types, PluginType::CPU | PluginType::SOFTWARE);
    assert_eq!(info.ops, vaccel_plugin_cpu::OPS.into_iter().collect());
    let builtin_info = CpuPlugin::new();
    let detail = |k: &str| {
        info.details
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(detail("threads"), Some(builtin_info.threads().to_string()));
    assert_eq!(
        detail("aes").as_deref(),
        Some(vaccel_plugin_cpu::aes_backend())
    );

    let dyn_sess = dynamic.session(PluginType::CPU).unwrap();
    let builtin_rt = builtin();
    let builtin_sess = builtin_rt.session(PluginType::CPU).unwrap();
    // Same code, same blocking: bit-identical results.
    assert_eq!(sgemm_case(&dyn_sess), sgemm_case(&builtin_sess));

    // Errors cross the ABI with their code and message.
    let mut c = [0.0f32; 4];
    let e = dyn_sess
        .sgemm(2, 2, 2, 1.0, &[1.0; 4], 1, &[1.0; 4], 2, 0.0, &mut c, 2)
        .unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("lda (1) must be >= k (2)"), "{e}");

    let key = [1u8; 16];
    let ct = dyn_sess.aes_cbc_encrypt(&key, &[2; 16], b"hello").unwrap();
    assert_eq!(
        ct,
        builtin_sess
            .aes_cbc_encrypt(&key, &[2; 16], b"hello")
            .unwrap()
    );
    assert_eq!(
        dyn_sess.aes_cbc_decrypt(&key, &[2; 16], &ct).unwrap(),
        b"hello"
    );
}
