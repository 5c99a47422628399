//! `blur` on the onnx plugin: the face in the portrait is blurred, the
//! background is left alone (up to JPEG re-encoding), whatever form the
//! image comes in.

mod common;

use bytes::Bytes;
use common::*;
use http::Response;
use vaccel::PluginType;
use vaccel_functions::{Blur, Function, builtin};

/// The detected face box in pixels (x0, y0, x1, y1).
fn face_box() -> (u32, u32, u32, u32) {
    let s = onnx().session(PluginType::empty()).unwrap();
    let faces = s.image_detect(&image("portrait.jpg")).unwrap();
    assert_eq!(faces.len(), 1, "{faces:?}");
    let f = faces[0];
    (
        f.x.max(0.0) as u32,
        f.y.max(0.0) as u32,
        (f.x + f.width) as u32,
        (f.y + f.height) as u32,
    )
}

/// The response blurs the portrait's face and leaves the bottom band (well
/// away from the padded face box) as it was.
fn check_blurred(r: &Response<Bytes>) {
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(r.body()));
    assert_eq!(header(r, "content-type"), "image/jpeg");
    assert_eq!(header(r, "x-faces"), "1");
    assert_eq!(header(r, "x-vaccel-plugin"), "onnx");
    assert!(op_seconds(r) > 0.0);
    assert_eq!(&r.body()[..3], &[0xff, 0xd8, 0xff], "a JPEG");
    let before = image::load_from_memory(&image("portrait.jpg"))
        .unwrap()
        .to_rgb8();
    let after = image::load_from_memory(r.body()).unwrap().to_rgb8();
    assert_eq!(before.dimensions(), after.dimensions());
    let (w, h) = before.dimensions();
    let inside = mean_abs_diff(&before, &after, face_box());
    let outside = mean_abs_diff(&before, &after, (0, h * 85 / 100, w, h));
    assert!(inside > 8.0, "face region barely changed: {inside:.2}");
    assert!(
        outside < 2.5,
        "background changed beyond JPEG re-encoding: {outside:.2}"
    );
}

#[test]
fn portrait_raw_jpeg() {
    let f = builtin("blur", onnx()).unwrap();
    assert_eq!(f.name(), "blur");
    let r = f.call(request(
        "POST",
        "/?quality=95",
        &[("content-type", "image/jpeg")],
        image("portrait.jpg"),
    ));
    check_blurred(&r);
}

#[test]
fn portrait_as_png_and_as_base64_json() {
    let f = Blur::new(onnx());
    check_blurred(&f.call(post(to_png(&image("portrait.jpg")))));
    let b64 = base64(&image("portrait.jpg"));
    for (ct, body) in [
        ("application/json", serde_json::json!({ "image": b64 })),
        (
            "application/json",
            serde_json::json!({ "frame": b64, "quality": 95 }),
        ),
        (
            "application/json; charset=utf-8",
            serde_json::json!({ "data": format!("data:image/jpeg;base64,{b64}"), "padding": "0.25" }),
        ),
        // No declared type: a body starting with '{' is JSON.
        ("", serde_json::json!({ "image": b64 })),
    ] {
        let headers: Vec<(&str, &str)> = if ct.is_empty() {
            vec![]
        } else {
            vec![("content-type", ct)]
        };
        let r = f.call(request("POST", "/", &headers, body.to_string()));
        check_blurred(&r);
    }
}

#[test]
fn parameters_change_the_output() {
    let f = Blur::new(onnx());
    let low = f.call(request("POST", "/?quality=20", &[], image("portrait.jpg")));
    let high = f.call(request(
        "POST",
        "/?quality=95&padding=0",
        &[],
        image("portrait.jpg"),
    ));
    assert_eq!(low.status(), 200);
    assert_eq!(high.status(), 200);
    assert!(
        low.body().len() < high.body().len(),
        "quality 20 gives {} bytes, quality 95 {}",
        low.body().len(),
        high.body().len()
    );
    // The query wins over the JSON field.
    let body = serde_json::json!({ "image": base64(&image("portrait.jpg")), "quality": 20 });
    let q = f.call(request(
        "POST",
        "/?quality=95&padding=0",
        &[],
        body.to_string(),
    ));
    assert_eq!(q.body(), high.body());
}
