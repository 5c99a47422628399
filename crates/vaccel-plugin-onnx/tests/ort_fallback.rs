//! An onnxruntime library that cannot be used means tract, never a panic.
//! (Its own test process: the onnxruntime library is bound once per process.)

mod common;

use std::io::Write;
use std::sync::Arc;

use common::*;
use vaccel_core::Plugin;
use vaccel_plugin_onnx::{EngineKind, OnnxPlugin};

#[test]
fn a_bogus_onnxruntime_falls_back_to_tract() {
    if std::env::var_os("ORT_DYLIB_PATH").is_some() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: a_bogus_onnxruntime_falls_back_to_tract: ORT_DYLIB_PATH is set and overrides the search"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("onnxruntime")).unwrap();
    std::fs::write(
        dir.path().join("onnxruntime/libonnxruntime.so.1.22.1"),
        b"\x7fELF but not really",
    )
    .unwrap();
    for model in ["efficientnet-lite0.onnx", "imagenet-labels.txt"] {
        std::fs::copy(models_dir().join(model), dir.path().join(model)).unwrap();
    }
    let p = Arc::new(
        OnnxPlugin::builder()
            .engine(EngineKind::Ort)
            .models_dir(dir.path())
            .build(),
    );
    assert_eq!(p.engine_kind(), EngineKind::Tract);
    let why = p.ort_unavailable().unwrap();
    assert!(
        why.contains("libonnxruntime.so.1.22.1: cannot load"),
        "{why}"
    );
    let info = p.info();
    assert!(
        info.details
            .iter()
            .any(|(k, v)| k == "ort" && v.starts_with("unavailable: ")),
        "{:?}",
        info.details
    );
    assert!(
        info.details
            .iter()
            .any(|(k, v)| k == "engine" && v == "tract")
    );
    let (_rt, s) = session(p);
    assert!(
        s.image_classify(&image("dog.jpg")).unwrap()[0]
            .label
            .contains("German shepherd")
    );
    // Later plugins in the process get the same answer without retrying.
    let again = OnnxPlugin::builder().models_dir(dir.path()).build();
    assert_eq!(again.engine_kind(), EngineKind::Tract);
}
