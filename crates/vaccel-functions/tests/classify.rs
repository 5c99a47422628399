//! `classify` on the onnx plugin: labels as JSON or upstream text, timings
//! in a header, images raw or as base64 JSON.

mod common;

use common::*;
use vaccel_functions::{Classify, Function, builtin};

fn check_dog(r: &http::Response<bytes::Bytes>, top: usize) {
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(r.body()));
    assert_eq!(header(r, "content-type"), "application/json");
    assert_eq!(header(r, "x-vaccel-plugin"), "onnx");
    let secs = op_seconds(r);
    assert!(secs > 0.0 && secs.is_finite(), "{secs}");
    let v = json(r);
    let labels = v["labels"].as_array().expect("labels");
    assert_eq!(labels.len(), top, "{v}");
    let first = &labels[0];
    assert!(
        is_dog(first["index"].as_u64().unwrap()),
        "top-1 is not a dog: {v}"
    );
    assert!(
        first["label"].as_str().unwrap().contains("German shepherd"),
        "{v}"
    );
    let scores: Vec<f64> = labels
        .iter()
        .map(|l| l["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{scores:?}");
    assert_eq!(v["model"], "efficientnet-lite0.onnx");
    assert_eq!(v["plugin"], "onnx");
    let body_secs = v["op_seconds"].as_f64().unwrap();
    assert!(body_secs > 0.0, "{v}");
}

#[test]
fn dog_is_a_german_shepherd_in_json() {
    let f = builtin("classify", onnx()).unwrap();
    assert_eq!(f.name(), "classify");
    assert!(!f.inline());
    let r = f.call(request(
        "POST",
        "/",
        &[("content-type", "image/jpeg")],
        image("dog.jpg"),
    ));
    check_dog(&r, 5);
    // Any content type: curl --data-binary sends a form type.
    let r = f.call(request(
        "POST",
        "/function/classify?top=3",
        &[("content-type", "application/x-www-form-urlencoded")],
        image("dog.jpg"),
    ));
    check_dog(&r, 3);
}

#[test]
fn text_plain_gives_the_upstream_line() {
    let f = Classify::new(onnx());
    for accept in ["text/plain", "text/plain, application/json;q=0.5", "text/*"] {
        let r = f.call(request(
            "POST",
            "/",
            &[("accept", accept)],
            image("coffee.jpg"),
        ));
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-type"), "text/plain; charset=utf-8");
        let t = String::from_utf8(r.body().to_vec()).unwrap();
        assert!(
            t.starts_with("classification tags: ") && t.ends_with("% espresso\n"),
            "{accept}: {t:?}"
        );
        assert!(op_seconds(&r) > 0.0);
    }
    // JSON when both are equally welcome.
    let r = f.call(request(
        "POST",
        "/",
        &[("accept", "application/json, text/plain")],
        image("dog.jpg"),
    ));
    check_dog(&r, 5);
}

#[test]
fn json_body_with_base64() {
    let f = Classify::new(onnx());
    let b64 = base64(&image("dog.jpg"));
    for body in [
        serde_json::json!({ "image": b64 }),
        serde_json::json!({ "data": format!("data:image/jpeg;base64,{b64}") }),
        serde_json::json!({ "frame": b64, "top": 2 }),
    ] {
        let top = body.get("top").map_or(5, |t| t.as_u64().unwrap() as usize);
        let r = f.call(request(
            "POST",
            "/",
            &[("content-type", "application/json")],
            body.to_string(),
        ));
        check_dog(&r, top);
    }
    // A PNG works as well as a JPEG.
    let r = f.call(post(to_png(&image("dog.jpg"))));
    check_dog(&r, 5);
}

#[test]
fn concurrent_requests_share_the_session() {
    let f = builtin("classify", onnx()).unwrap();
    let img = bytes::Bytes::from(image("cat.jpg"));
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (f, img) = (f.clone(), img.clone());
                s.spawn(move || f.call(post(img)))
            })
            .collect();
        for h in hs {
            let r = h.join().unwrap();
            assert_eq!(r.status(), 200);
            let top = json(&r)["labels"][0]["index"].as_u64().unwrap();
            assert!(matches!(top, 281 | 282 | 285), "{top}");
        }
    });
}
