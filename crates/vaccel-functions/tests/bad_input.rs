//! Bad requests to `classify` and `blur`: each is a 400 (405 for a wrong
//! method) with a message that says what was wrong, and the function keeps
//! serving: a good request right after each one succeeds.

mod common;

use common::*;
use http::Request;
use vaccel_functions::{Blur, Classify, Function};

struct Case {
    what: &'static str,
    req: Request<bytes::Bytes>,
    status: u16,
    message: &'static str,
}

fn case(
    what: &'static str,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
    status: u16,
    message: &'static str,
) -> Case {
    Case {
        what,
        req: request(method, uri, headers, body),
        status,
        message,
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

/// Cases both image functions share.
fn common_cases() -> Vec<Case> {
    let portrait = image("portrait.jpg");
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
    vec![
        case(
            "empty body",
            "POST",
            "/",
            &[],
            "",
            400,
            "empty request body: send a JPEG, PNG or WebP image",
        ),
        case(
            "text",
            "POST",
            "/",
            &[],
            "hello world",
            400,
            "the request body is not an image: expected a JPEG, PNG or WebP image",
        ),
        case(
            "text labelled as an image",
            "POST",
            "/",
            &[("content-type", "image/jpeg")],
            "hello",
            400,
            "the request body (Content-Type image/jpeg) is not an image",
        ),
        case(
            "GIF",
            "POST",
            "/",
            &[("content-type", "image/gif")],
            gif,
            400,
            "the request body is a GIF image: send a JPEG, PNG or WebP image",
        ),
        case(
            "truncated JPEG",
            "POST",
            "/",
            &[],
            portrait[..500].to_vec(),
            400,
            "cannot decode image",
        ),
        case(
            "text/plain",
            "POST",
            "/",
            &[("content-type", "text/plain")],
            "hello",
            400,
            "unsupported Content-Type text/plain",
        ),
        case(
            "JSON content type, not JSON",
            "POST",
            "/",
            &[JSON],
            "hello",
            400,
            "the request body is not valid JSON",
        ),
        case(
            "JSON without an image",
            "POST",
            "/",
            &[JSON],
            r#"{"name": "dog"}"#,
            400,
            "the JSON body has no image field: put the base64 image in one of \"image\", \"frame\", \"data\"",
        ),
        case(
            "JSON image not a string",
            "POST",
            "/",
            &[JSON],
            r#"{"image": [1, 2]}"#,
            400,
            "JSON field \"image\" must be a base64 string, not an array",
        ),
        case(
            "bad base64",
            "POST",
            "/",
            &[JSON],
            r#"{"image": "not base64!"}"#,
            400,
            "JSON field \"image\" is not valid base64: unexpected '!' at offset 10",
        ),
        case(
            "base64 of text",
            "POST",
            "/",
            &[JSON],
            r#"{"frame": "aGVsbG8gd29ybGQ="}"#,
            400,
            "the base64 data of JSON field \"frame\" is not an image",
        ),
        case(
            "base64 of a truncated JPEG",
            "POST",
            "/",
            &[JSON],
            format!(r#"{{"image": "{}"}}"#, base64(&portrait[..500])),
            400,
            "cannot decode image",
        ),
        case(
            "JSON array",
            "POST",
            "/",
            &[JSON],
            "[]",
            400,
            "the JSON body must be an object like {\"image\": \"<base64>\"}, not an array",
        ),
        case("GET", "GET", "/", &[], "", 405, "method GET is not allowed"),
        case(
            "PUT",
            "PUT",
            "/",
            &[],
            portrait.clone(),
            405,
            "method PUT is not allowed",
        ),
        case(
            "unknown parameter",
            "POST",
            "/?size=3",
            &[],
            portrait.clone(),
            400,
            "unknown query parameter 'size'",
        ),
    ]
}

fn run(f: &dyn Function, good: &[u8], cases: Vec<Case>) {
    for c in cases {
        let r = f.call(c.req);
        let msg = error(&r, c.status);
        assert!(
            msg.contains(c.message),
            "{} / {}: '{msg}' lacks '{}'",
            f.name(),
            c.what,
            c.message
        );
        assert!(!msg.contains("panic"), "{msg}");
        if c.status == 405 {
            assert_eq!(header(&r, "allow"), "POST", "{}", c.what);
        }
        if c.message == "cannot decode image" {
            // Rejected by the plugin, not by the function: the vAccel code comes along.
            assert_eq!(header(&r, "x-vaccel-error"), "EINVAL");
            assert_eq!(json(&r)["code"], "EINVAL");
        }
        // A good request right after still works.
        let ok = f.call(post(good.to_vec()));
        assert_eq!(
            ok.status(),
            200,
            "{} after {}: {}",
            f.name(),
            c.what,
            String::from_utf8_lossy(ok.body())
        );
    }
}

#[test]
fn classify_rejects_bad_requests_and_keeps_serving() {
    let f = Classify::new(onnx());
    let mut cases = common_cases();
    cases.extend([
        case(
            "top=0",
            "POST",
            "/?top=0",
            &[],
            image("cat.jpg"),
            400,
            "top must be a whole number within 1..=100",
        ),
        case(
            "top=x",
            "POST",
            "/?top=x",
            &[],
            image("cat.jpg"),
            400,
            "top must be a whole number within 1..=100 (how many labels to return), got x",
        ),
        case(
            "top in JSON",
            "POST",
            "/",
            &[JSON],
            format!(
                r#"{{"image": "{}", "top": 1000}}"#,
                base64(&image("cat.jpg"))
            ),
            400,
            "got 1000",
        ),
    ]);
    run(&f, &image("cat.jpg"), cases);
}

#[test]
fn blur_rejects_bad_requests_and_keeps_serving() {
    let f = Blur::new(onnx());
    let p = image("portrait.jpg");
    let mut cases = common_cases();
    cases.extend([
        case("padding=5", "POST", "/?padding=5", &[], p.clone(), 400, "padding must be a number within 0..=2 (the fraction of the face box added on each side), got 5"),
        case("padding=-1", "POST", "/?padding=-1", &[], p.clone(), 400, "padding must be a number within 0..=2"),
        case("quality=0", "POST", "/?quality=0", &[], p.clone(), 400, "quality must be a whole number within 1..=100 (JPEG quality), got 0"),
        case("quality=abc", "POST", "/?quality=abc", &[], p.clone(), 400, "got abc"),
        case("quality twice", "POST", "/?quality=5&quality=6", &[], p.clone(), 400, "query parameter 'quality' is given twice"),
        case("quality in JSON", "POST", "/", &[JSON], format!(r#"{{"image": "{}", "quality": 101}}"#, base64(&p)), 400, "got 101"),
    ]);
    run(&f, &p, cases);
}

#[test]
fn body_over_the_limit() {
    let c = Classify::new(onnx()).with_max_body(1000);
    assert_eq!(c.max_body(), 1000);
    let msg = error(&c.call(post(image("dog.jpg"))), 400);
    assert_eq!(
        msg,
        "request body of 131217 bytes is over the limit of 1000 bytes"
    );
    let b = Blur::new(onnx()).with_max_body(68051);
    let msg = error(&b.call(post(image("portrait.jpg"))), 400);
    assert!(msg.contains("over the limit of 68051 bytes"), "{msg}");
    let b = Blur::new(onnx()).with_max_body(68052);
    assert_eq!(b.call(post(image("portrait.jpg"))).status(), 200);
}

#[test]
fn errors_in_text_when_asked() {
    let f = Classify::new(onnx());
    let r = f.call(request("POST", "/", &[("accept", "text/plain")], "hello"));
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "content-type"), "text/plain; charset=utf-8");
    let t = String::from_utf8(r.body().to_vec()).unwrap();
    assert!(t.starts_with("the request body is not an image"), "{t}");
    assert!(t.ends_with('\n'));
    // Blur answers with JSON errors to clients that accept images only.
    let b = Blur::new(onnx());
    let r = b.call(request("POST", "/", &[("accept", "image/jpeg")], "hello"));
    assert!(error(&r, 400).contains("is not an image"));
}

#[test]
fn a_plugin_that_lacks_the_op_is_501() {
    // The onnx plugin has no NOOP: not the client's fault, and not a 500.
    let f = vaccel_functions::Noop::new(onnx());
    let r = f.call(post(""));
    let msg = error(&r, 501);
    assert!(msg.contains("does not implement NOOP"), "{msg}");
    assert_eq!(header(&r, "x-vaccel-error"), "ENOTSUP");
}
