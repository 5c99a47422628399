//! `vaccel function NAME` as a forking watchdog runs it: the request body on
//! stdin, `Http_*` variables, the response body on stdout; a failed request
//! is one line on stderr and exit status 1.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn image(name: &str) -> Vec<u8> {
    std::fs::read(
        vaccel_test_utils::workspace_root()
            .join("test-data/images")
            .join(name),
    )
    .unwrap()
}

/// Run `vaccel function ARGS…` with `env` set and `body` on stdin.
fn function(args: &[&str], env: &[(&str, &str)], body: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaccel"));
    cmd.arg("function")
        .args(args)
        .env_remove("VACCEL_PLUGINS")
        .env_remove("VACCEL_LOG_LEVEL")
        .env("VACCEL_MODELS_DIR", vaccel_test_utils::models_dir())
        .env("VACCEL_ONNX_ENGINE", "tract")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("running vaccel");
    let mut stdin = child.stdin.take().unwrap();
    // The function may refuse before reading everything: ignore a broken pipe.
    let _ = stdin.write_all(body);
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> &[u8] {
    assert!(
        o.status.success(),
        "{:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    &o.stdout
}

fn failed(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(o.stdout.is_empty(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "stderr lacks '{needle}': {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn classify_from_stdin() {
    let o = function(&["classify"], &[], &image("dog.jpg"));
    let v: serde_json::Value = serde_json::from_slice(ok(&o)).unwrap();
    let top = v["labels"][0]["index"].as_u64().unwrap();
    assert!((151..=268).contains(&top), "not a dog: {v}");
    assert_eq!(v["labels"].as_array().unwrap().len(), 5);
    assert_eq!(v["model"], "efficientnet-lite0.onnx");
    assert!(v["op_seconds"].as_f64().unwrap() > 0.0);

    let o = function(
        &["classify"],
        &[("Http_Accept", "text/plain"), ("Http_Query", "top=2")],
        &image("dog.jpg"),
    );
    let t = String::from_utf8(ok(&o).to_vec()).unwrap();
    assert!(t.starts_with("classification tags: "), "{t}");

    let body = format!(
        "{{\"image\": \"data:image/jpeg;base64,{}\"}}",
        base64(&image("cat.jpg"))
    );
    let o = function(
        &["classify"],
        &[("Http_Content_Type", "application/json")],
        body.as_bytes(),
    );
    let v: serde_json::Value = serde_json::from_slice(ok(&o)).unwrap();
    let top = v["labels"][0]["index"].as_u64().unwrap();
    assert!([281, 282, 285].contains(&top), "{v}");
}

#[test]
fn blur_writes_a_jpeg() {
    let o = function(
        &["blur"],
        &[
            ("Http_Query", "padding=0.3&quality=80"),
            ("Http_Content_Type", "image/jpeg"),
        ],
        &image("portrait.jpg"),
    );
    let jpeg = ok(&o);
    assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff]);
    assert_ne!(jpeg, &image("portrait.jpg")[..]);
    let o = function(
        &["blur", "--query", "quality=90"],
        &[],
        &image("portrait.jpg"),
    );
    assert_eq!(&ok(&o)[..3], &[0xff, 0xd8, 0xff]);
}

#[test]
fn echo_is_byte_exact() {
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let o = function(&["echo"], &[("Http_Method", "PUT")], &body);
    assert_eq!(ok(&o), &body[..]);
    let o = function(&["noop"], &[("Http_Method", "GET")], b"");
    let v: serde_json::Value = serde_json::from_slice(ok(&o)).unwrap();
    assert!(v["op_seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn bad_requests_are_one_line_and_exit_1() {
    failed(
        &function(&["classify"], &[], b"hello"),
        "error: classify: 400 Bad Request: the request body is not an image",
    );
    failed(
        &function(&["classify"], &[], b""),
        "400 Bad Request: empty request body",
    );
    failed(
        &function(&["classify"], &[("Http_Method", "GET")], b""),
        "405 Method Not Allowed: method GET is not allowed: classify accepts POST",
    );
    failed(
        &function(
            &["blur"],
            &[("Http_Query", "quality=0")],
            &image("portrait.jpg"),
        ),
        "quality must be a whole number within 1..=100",
    );
    failed(
        &function(
            &["classify"],
            &[("Http_Content_Type", "application/json")],
            b"{\"frame\": \"%%%\"}",
        ),
        "JSON field \"frame\" is not valid base64",
    );
    failed(
        &function(&["classify"], &[], &image("dog.jpg")[..300]),
        "cannot decode image",
    );
    failed(
        &function(&["classify", "--max-body", "1000"], &[], &image("dog.jpg")),
        "classify: the request body is over the limit of 1000 bytes",
    );
    failed(
        &function(&["nosuch"], &[], b""),
        "unknown function 'nosuch': the built-in functions are classify, blur, echo, noop",
    );
    failed(
        &function(&["echo", "-H", "no colon"], &[], b""),
        "--header 'no colon': expected 'Name: value'",
    );
}

/// Standard base64 (the test's own encoder).
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for ch in data.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            s.push(if i <= ch.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}
