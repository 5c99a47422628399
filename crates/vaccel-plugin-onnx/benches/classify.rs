//! Classification latency of the onnx plugin: tract vs ONNX Runtime on
//! `test-data/images/dog.jpg`, same thread count, through a vAccel session
//! (decode + preprocess + inference + softmax/top-5).
//!
//! ```text
//! cargo bench -p vaccel-plugin-onnx --bench classify
//! VACCEL_ONNX_THREADS=1 BENCH_RUNS=50 cargo bench -p vaccel-plugin-onnx --bench classify
//! ```
//!
//! ONNX Runtime is found as the plugin finds it (`ORT_DYLIB_PATH`, or
//! `models/onnxruntime/`); when it is missing its row says so.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use vaccel_core::{PluginType, Runtime};
use vaccel_plugin_onnx::{EngineKind, Layout, OnnxPlugin, preprocess};

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| v[((v.len() as f64 - 1.0) * p + 0.5) as usize];
    (pct(0.5), pct(0.9), v[0])
}

fn time(runs: usize, warmup: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..warmup {
        f();
    }
    let v = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    stats(v)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let models =
        std::env::var_os("VACCEL_MODELS_DIR").map_or_else(|| root.join("models"), Into::into);
    if !models.join("efficientnet-lite0.onnx").is_file() {
        eprintln!(
            "models not found in {}: run `python3 scripts/setup_models.py`",
            models.display()
        );
        std::process::exit(1);
    }
    let img = std::fs::read(root.join("test-data/images/dog.jpg")).expect("dog.jpg");
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let threads: usize = std::env::var("VACCEL_ONNX_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));

    println!("onnx plugin classification latency, dog.jpg (768x576), efficientnet-lite0");
    println!(
        "{} ({} logical CPUs), {threads} thread(s), {runs} runs after 5 warm-up",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!();

    let (pre_med, pre_p90, pre_min) = time(runs, 3, || {
        let rgb = preprocess::decode_rgb(&img, u64::MAX).unwrap();
        let mut x = vec![0f32; 3 * 224 * 224];
        preprocess::preprocess(
            &rgb,
            224,
            224,
            Layout::Nchw,
            &mut Default::default(),
            &mut x,
        )
        .unwrap();
        std::hint::black_box(x);
    });
    println!("| stage / engine | threads | median ms | p90 ms | min ms |");
    println!("|---|---|---|---|---|");
    println!("| decode + resize + crop only | 1 | {pre_med:.2} | {pre_p90:.2} | {pre_min:.2} |");

    for kind in [EngineKind::Tract, EngineKind::Ort] {
        let p = Arc::new(
            OnnxPlugin::builder()
                .engine(kind)
                .threads(threads)
                .models_dir(&models)
                .build(),
        );
        if p.engine_kind() != kind {
            println!(
                "| {kind} | - | unavailable: {} | | |",
                p.ort_unavailable().unwrap_or("?")
            );
            continue;
        }
        let name = p.engine_name();
        let rt = Runtime::builder().with_plugin(p).build().expect("runtime");
        let s = rt.session(PluginType::empty()).expect("session");
        let t0 = Instant::now();
        let top = s.image_classify(&img).expect("classify");
        let first = t0.elapsed().as_secs_f64() * 1e3;
        let (med, p90, min) = time(runs, 5, || {
            std::hint::black_box(s.image_classify(&img).unwrap());
        });
        println!("| IMAGE_CLASSIFY, {name} | {threads} | {med:.2} | {p90:.2} | {min:.2} |");
        eprintln!(
            "  ({name}: first call incl. model load {first:.0} ms; top-1 {:.1}% {})",
            top[0].score * 100.0,
            top[0].label
        );
    }
}
