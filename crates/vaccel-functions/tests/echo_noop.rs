//! `echo` (no vAccel call, inline) and `noop` (one NOOP op).

mod common;

use common::*;
use vaccel_functions::{Echo, Function, Noop, builtin};

#[test]
fn echo_returns_the_body_and_its_type() {
    let f = builtin("echo", noop()).unwrap();
    assert!(f.inline());
    assert_eq!(f.name(), "echo");
    let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let r = f.call(request(
        "POST",
        "/",
        &[("content-type", "application/x-thing")],
        body.clone(),
    ));
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/x-thing");
    assert_eq!(r.body(), &body[..]);
    assert!(r.headers().get("x-vaccel-op-seconds").is_none());
    // No content type in, none out; any method; an empty body is fine.
    let r = f.call(request("GET", "/", &[], ""));
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-type").is_none());
    assert!(r.body().is_empty());
    let r = f.call(request("PUT", "/?x=1", &[], "abc"));
    assert_eq!(r.body(), "abc");
}

#[test]
fn echo_limit() {
    let f = Echo::new().with_max_body(3);
    let msg = error(&f.call(post("abcd")), 400);
    assert_eq!(msg, "request body of 4 bytes is over the limit of 3 bytes");
    assert_eq!(f.call(post("abc")).body(), "abc");
}

#[test]
fn noop_times_the_op() {
    let f = builtin("noop", noop()).unwrap();
    assert!(!f.inline());
    for method in ["GET", "POST"] {
        let r = f.call(request(method, "/", &[], "ignored"));
        assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(r.body()));
        assert!(op_seconds(&r) >= 0.0);
        assert_eq!(header(&r, "x-vaccel-plugin"), "noop");
        let v = json(&r);
        assert_eq!(v["plugin"], "noop");
        assert!(v["op_seconds"].as_f64().unwrap() >= 0.0);
    }
    let r = f.call(request("GET", "/", &[("accept", "text/plain")], ""));
    let t = String::from_utf8(r.body().to_vec()).unwrap();
    assert!(
        t.starts_with("noop: ") && t.ends_with(" s on plugin 'noop'\n"),
        "{t}"
    );
    let r = f.call(request("DELETE", "/", &[], ""));
    assert!(error(&r, 405).contains("noop accepts GET, POST"));
    assert_eq!(header(&r, "allow"), "GET, POST");
    let r = f.call(request("GET", "/?x=1", &[], ""));
    assert!(error(&r, 400).contains("unknown query parameter 'x': noop takes none"));
    assert_eq!(f.call(post("")).status(), 200);
}

#[test]
fn a_released_session_is_a_server_error() {
    let s = noop().session(vaccel::PluginType::empty()).unwrap();
    let f = Noop::new(s.clone());
    assert_eq!(f.call(post("")).status(), 200);
    s.release().unwrap();
    let r = f.call(post(""));
    let msg = error(&r, 503);
    assert!(msg.contains("was released"), "{msg}");
}

#[test]
fn debug_plugin_blur_and_classify() {
    // The debug plugin answers every op: the functions work on it too
    // (blur hands the input back, so its type is sniffed).
    let rt = noop();
    let r = builtin("blur", rt.clone())
        .unwrap()
        .call(post(to_png(&image("portrait.jpg"))));
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "image/png");
    assert_eq!(header(&r, "x-faces"), "0");
    let r = builtin("classify", rt)
        .unwrap()
        .call(post(image("dog.jpg")));
    let v = json(&r);
    assert_eq!(v["labels"][0]["label"], "noop");
    assert_eq!(v["model"], "noop.png");
}
