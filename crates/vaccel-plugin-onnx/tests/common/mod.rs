//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use vaccel_core::{PluginType, Runtime, Session};
use vaccel_plugin_onnx::{EngineKind, OnnxPlugin};

/// The workspace root.
pub fn root() -> PathBuf {
    vaccel_test_utils::workspace_root()
}

/// The models directory, made by `python3 scripts/setup_models.py` (once per
/// test process, under a lock shared with other test processes).
pub fn models_dir() -> PathBuf {
    vaccel_test_utils::models_dir()
}

/// A test image's bytes.
pub fn image(name: &str) -> Vec<u8> {
    std::fs::read(root().join("test-data/images").join(name)).expect("test image")
}

/// A plugin with the given engine on the workspace models (2 threads, so
/// results do not depend on the machine).
pub fn plugin(kind: EngineKind) -> OnnxPlugin {
    OnnxPlugin::builder()
        .engine(kind)
        .models_dir(models_dir())
        .threads(2)
        .build()
}

/// The tract plugin, shared by the tests of one process.
pub fn tract() -> Arc<OnnxPlugin> {
    static P: OnceLock<Arc<OnnxPlugin>> = OnceLock::new();
    P.get_or_init(|| Arc::new(plugin(EngineKind::Tract)))
        .clone()
}

/// The ONNX Runtime plugin, or `None` (after printing a loud SKIPPED line)
/// when the onnxruntime library is not installed.
pub fn ort(test: &str) -> Option<Arc<OnnxPlugin>> {
    static P: OnceLock<Arc<OnnxPlugin>> = OnceLock::new();
    let p = P.get_or_init(|| Arc::new(plugin(EngineKind::Ort))).clone();
    if p.engine_kind() != EngineKind::Ort {
        // Written to stderr directly, not with eprintln!, so the test harness
        // does not capture it: a skipped engine must be visible.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: onnxruntime library not found (run scripts/setup_models.py) [{test}]: {}",
            p.ort_unavailable().unwrap_or("?")
        );
        return None;
    }
    Some(p)
}

/// A runtime with only this plugin, and a session on it.
pub fn session(p: Arc<OnnxPlugin>) -> (Runtime, Session) {
    let rt = Runtime::builder().with_plugin(p).build().expect("runtime");
    let s = rt.session(PluginType::empty()).expect("session");
    (rt, s)
}

/// The reference logits committed under `tests/data/reference_logits.json`:
/// `(name, logits)` pairs.
pub fn reference_logits() -> Vec<(String, Vec<f32>)> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference_logits.json"),
    )
    .expect("reference logits");
    // The file is {"name": [floats], ...} with no nesting beyond that: parse it by hand.
    let mut out = Vec::new();
    let mut rest = text
        .trim()
        .strip_prefix('{')
        .expect("object")
        .trim_end()
        .strip_suffix('}')
        .expect("object");
    while let Some(q) = rest.find('"') {
        let after = &rest[q + 1..];
        let end = after.find('"').expect("key end");
        let key = after[..end].to_string();
        let open = after.find('[').expect("array");
        let close = after.find(']').expect("array end");
        let vals = after[open + 1..close]
            .split(',')
            .map(|v| v.trim().parse::<f32>().expect("float"))
            .collect();
        out.push((key, vals));
        rest = &after[close + 1..];
    }
    out
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// A deterministic synthetic RGB image (the same formula as in
/// `tests/data/README.md`, used to make its reference logits).
pub fn synthetic(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let r = (x * 3 + y * 5) & 255;
        let g = (((x >> 2) ^ (y >> 1)) * 7) & 255;
        let b = ((x * y) >> 6) & 255;
        image::Rgb([r as u8, g as u8, b as u8])
    })
}

/// Encode an image as PNG.
pub fn png(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

// ------------------------------------------------------------ tiny ONNX models

/// Minimal protobuf writer for hand-made ONNX test models.
#[derive(Default)]
pub struct Pb(pub Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    /// A varint field.
    pub fn int(mut self, field: u32, v: u64) -> Self {
        self.varint(u64::from(field) << 3);
        self.varint(v);
        self
    }
    /// A length-delimited field.
    pub fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        self.varint((u64::from(field) << 3) | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    /// A string field.
    pub fn str(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }
    /// A nested message field.
    pub fn msg(self, field: u32, m: Pb) -> Self {
        self.bytes(field, &m.0)
    }
}

/// ValueInfoProto for a tensor: `dims` entries are sizes, or `None` for a
/// symbolic dimension `N`.
pub fn value_info(name: &str, elem_type: u64, dims: &[Option<u64>]) -> Pb {
    let mut shape = Pb::default();
    for d in dims {
        shape = shape.msg(
            1,
            match d {
                Some(v) => Pb::default().int(1, *v),
                None => Pb::default().str(2, "N"),
            },
        );
    }
    // TypeProto { tensor_type (1): { elem_type (1), shape (2) } }
    let ty = Pb::default().msg(1, Pb::default().int(1, elem_type).msg(2, shape));
    Pb::default().str(1, name).msg(2, ty)
}

/// A one-node ONNX model (opset 13): `op(inputs) -> outputs`.
pub fn one_node_model(
    op: &str,
    inputs: &[Pb],
    input_names: &[&str],
    outputs: &[Pb],
    output_names: &[&str],
) -> Vec<u8> {
    let mut node = Pb::default();
    for n in input_names {
        node = node.str(1, n);
    }
    for n in output_names {
        node = node.str(2, n);
    }
    node = node.str(4, op);
    let mut graph = Pb::default().msg(1, node).str(2, "g");
    for i in inputs {
        graph = graph.bytes(11, &i.0);
    }
    for o in outputs {
        graph = graph.bytes(12, &o.0);
    }
    // ModelProto: ir_version (1) = 7, graph (7), opset_import (8) { version (2) = 13 }
    Pb::default()
        .int(1, 7)
        .msg(7, graph)
        .msg(8, Pb::default().int(2, 13))
        .0
}

/// ONNX element type numbers used by the tests.
pub const ONNX_FLOAT: u64 = 1;
/// int64
pub const ONNX_INT64: u64 = 7;
/// bool
pub const ONNX_BOOL: u64 = 9;
