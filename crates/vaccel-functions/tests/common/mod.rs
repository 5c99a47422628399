//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{Request, Response};
use vaccel::Runtime;
use vaccel_plugin_onnx::{EngineKind, OnnxPlugin};

/// A test image's bytes.
pub fn image(name: &str) -> Vec<u8> {
    std::fs::read(root().join("test-data/images").join(name)).expect("test image")
}

/// The workspace root.
pub fn root() -> PathBuf {
    vaccel_test_utils::workspace_root()
}

/// The onnx plugin (tract, 2 threads) on the workspace models: made by the
/// setup step, once per test process.
pub fn onnx_plugin() -> OnnxPlugin {
    OnnxPlugin::builder()
        .engine(EngineKind::Tract)
        .models_dir(vaccel_test_utils::models_dir())
        .threads(2)
        .build()
}

/// A runtime with only the onnx plugin, shared by the tests of a process.
pub fn onnx() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        Arc::new(
            Runtime::builder()
                .with_plugin(Arc::new(onnx_plugin()))
                .build()
                .expect("runtime"),
        )
    })
    .clone()
}

/// A runtime with only the debug (noop) plugin.
pub fn noop() -> Arc<Runtime> {
    Arc::new(
        Runtime::builder()
            .with_plugin(Arc::new(vaccel_plugin_noop::NoopPlugin::new()))
            .build()
            .expect("runtime"),
    )
}

/// A request: `method` to `uri` with `headers` and `body`.
pub fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Bytes> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(body.into()).expect("request")
}

/// `POST /` with a body and no headers.
pub fn post(body: impl Into<Bytes>) -> Request<Bytes> {
    request("POST", "/", &[], body)
}

/// A response body as JSON.
pub fn json(r: &Response<Bytes>) -> serde_json::Value {
    serde_json::from_slice(r.body()).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {:?}",
            r.status(),
            String::from_utf8_lossy(r.body())
        )
    })
}

/// A header as text.
pub fn header<'a>(r: &'a Response<Bytes>, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header: {:?}", r.headers()))
        .to_str()
        .expect("ASCII header")
}

/// `X-Vaccel-Op-Seconds`, parsed.
pub fn op_seconds(r: &Response<Bytes>) -> f64 {
    let v = header(r, "x-vaccel-op-seconds");
    v.parse().unwrap_or_else(|_| panic!("not a number: {v}"))
}

/// The error message of a JSON error response with `status`.
pub fn error(r: &Response<Bytes>, status: u16) -> String {
    assert_eq!(r.status(), status, "{}", String::from_utf8_lossy(r.body()));
    assert_eq!(header(r, "content-type"), "application/json");
    let v = json(r);
    assert_eq!(v["status"], status);
    v["error"].as_str().expect("an error message").to_string()
}

/// Standard base64 with padding (the tests' own encoder).
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for ch in data.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= ch.len() {
                s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Re-encode an image as PNG.
pub fn to_png(encoded: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory(encoded).expect("decodable");
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// Mean absolute difference per channel over a rectangle.
pub fn mean_abs_diff(
    a: &image::RgbImage,
    b: &image::RgbImage,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
) -> f64 {
    let mut sum = 0u64;
    let mut n = 0u64;
    for y in y0..y1 {
        for x in x0..x1 {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            sum += (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
            n += 3;
        }
    }
    sum as f64 / n.max(1) as f64
}

/// ImageNet dog breeds.
pub fn is_dog(index: u64) -> bool {
    (151..=268).contains(&index)
}
