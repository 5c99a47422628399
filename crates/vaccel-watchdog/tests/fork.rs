//! The forking modes with real processes.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::io::AsyncWriteExt as _;
use vaccel_watchdog::{Registry, Server, Watchdog};

async fn start(dir: &Path, pairs: &[(&str, &str)]) -> Server {
    Watchdog::bind(config(dir, pairs), &Registry::new())
        .await
        .expect("watchdog starts")
}

async fn stop(server: Server) {
    server.shutdown();
    let report = server.wait().await.expect("clean stop");
    assert!(report.drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializing_cat_echoes_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[("mode", "serializing"), ("fprocess", "cat")]).await;
    let r = post(s.local_addr(), "/", "hello, function").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.text(), "hello, function");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.duration() >= 0.0);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_sets_the_response_type() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            ("mode", "serializing"),
            ("fprocess", "echo hi"),
            ("content_type", "text/plain; charset=utf-8"),
        ],
    )
    .await;
    let r = get(s.local_addr(), "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "hi\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_reach_the_process_as_cgi_variables() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"sh -c 'printf "%s|%s|%s|%s|%s|%s" "$Http_Method" "$Http_Path" "$Http_Query" "$Http_X_Call_Id" "$Http_Content_Type" "$Http_X_Custom_Header"'"#;
    for mode in ["serializing", "streaming"] {
        let s = start(dir.path(), &[("mode", mode), ("fprocess", script)]).await;
        let r = send(
            s.local_addr(),
            Method::PUT,
            "/some/path?a=1&b=two",
            &[
                ("x-call-id", "call-42"),
                ("content-type", "text/x-test"),
                ("x-custom-header", "custom value"),
            ],
            "body",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{mode}: {}", r.text());
        assert_eq!(
            r.text(),
            "PUT|/some/path|a=1&b=two|call-42|text/x-test|custom value",
            "{mode}"
        );
        assert_eq!(r.header("x-call-id"), Some("call-42"), "{mode}");
        stop(s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_pipes_a_large_body_through() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[("mode", "streaming"), ("fprocess", "cat")]).await;
    let big: Vec<u8> = (0..(4 << 20)).map(|i| (i % 251) as u8).collect();
    let r = post(s.local_addr(), "/", big.clone()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.len(), big.len());
    assert!(r.body == big, "the body came back changed");
    assert!(r.duration() >= 0.0);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_sends_output_as_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    // The second line is only written once the test has seen the first.
    let go = dir.path().join("go");
    let script = format!(
        "sh -c 'echo first; while [ ! -e {} ]; do sleep 0.02; done; echo second'",
        go.display()
    );
    let s = start(dir.path(), &[("mode", "streaming"), ("fprocess", &script)]).await;
    let req = Request::get(format!("http://{}/", s.local_addr()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"first\n");
    std::fs::write(&go, b"").unwrap();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"second\n");
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_ignores_its_input_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["serializing", "streaming"] {
        let s = start(
            dir.path(),
            &[("mode", mode), ("fprocess", "echo ignored-input")],
        )
        .await;
        let r = post(s.local_addr(), "/", vec![b'x'; 2 << 20]).await;
        assert_eq!(r.status, StatusCode::OK, "{mode}: {}", r.text());
        assert_eq!(r.text(), "ignored-input\n", "{mode}");
        stop(s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_500_with_an_excerpt_of_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let script = "sh -c 'echo some-log-line >&2; echo Traceback: it broke >&2; exit 3'";
    for mode in ["serializing", "streaming"] {
        let s = start(dir.path(), &[("mode", mode), ("fprocess", script)]).await;
        let r = post(s.local_addr(), "/", "input").await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{mode}");
        let t = r.text();
        assert!(t.contains("exited with code 3"), "{mode}: {t}");
        assert!(t.contains("Traceback: it broke"), "{mode}: {t}");
        assert!(t.contains("some-log-line"), "{mode}: {t}");
        assert!(r.duration() >= 0.0);
        stop(s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn death_by_signal_is_500() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[("mode", "serializing"), ("fprocess", "sh -c 'kill -9 $$'")],
    )
    .await;
    let r = get(s.local_addr(), "/").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().contains("signal 9"), "{}", r.text());
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_is_500() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            ("mode", "streaming"),
            ("fprocess", "/nonexistent/function-binary"),
        ],
    )
    .await;
    let r = get(s.local_addr(), "/").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        r.text().contains("cannot start the function process"),
        "{}",
        r.text()
    );
    stop(s).await;
}

/// A script that records its pid and its background child's pid, then
/// hangs (optionally after printing something).
fn hanging_script(dir: &Path, before: &str) -> String {
    let d = dir.display();
    format!("sh -c '{before} echo $$ > {d}/leader; sleep 100 & echo $! > {d}/grandchild; wait'")
}

async fn assert_group_gone(dir: &Path) {
    let leader = read_pid(&dir.join("leader")).await;
    let grandchild = read_pid(&dir.join("grandchild")).await;
    eventually("the function process to be gone and reaped", || {
        process_gone(leader)
    })
    .await;
    eventually("the function's own child to be gone", || {
        process_gone(grandchild)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_timeout_is_504_and_kills_the_process_group() {
    for mode in ["serializing", "streaming"] {
        let dir = tempfile::tempdir().unwrap();
        let script = hanging_script(dir.path(), "");
        let s = start(
            dir.path(),
            &[
                ("mode", mode),
                ("fprocess", &script),
                ("exec_timeout", "2s"),
            ],
        )
        .await;
        let r = post(s.local_addr(), "/", "x").await;
        assert_eq!(
            r.status,
            StatusCode::GATEWAY_TIMEOUT,
            "{mode}: {}",
            r.text()
        );
        assert!(r.text().contains("2s"), "{}", r.text());
        assert_group_gone(dir.path()).await;
        stop(s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_timeout_after_output_cuts_the_response_and_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let script = hanging_script(dir.path(), "echo partial;");
    let s = start(
        dir.path(),
        &[
            ("mode", "streaming"),
            ("fprocess", &script),
            ("exec_timeout", "2s"),
        ],
    )
    .await;
    let req = Request::get(format!("http://{}/", s.local_addr()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client().request(req).await.unwrap();
    // The status went out with the first byte of output.
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await;
    assert!(body.is_err(), "the response should be cut short");
    assert_group_gone(dir.path()).await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_takes_its_process_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let script = hanging_script(dir.path(), "");
    let s = start(
        dir.path(),
        &[
            ("mode", "serializing"),
            ("fprocess", &script),
            ("exec_timeout", "60s"),
        ],
    )
    .await;
    let mut conn = tokio::net::TcpStream::connect(s.local_addr())
        .await
        .unwrap();
    conn.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx")
        .await
        .unwrap();
    let leader = read_pid(&dir.path().join("leader")).await;
    let _ = read_pid(&dir.path().join("grandchild")).await;
    assert!(!process_gone(leader));
    drop(conn);
    assert_group_gone(dir.path()).await;
    stop(s).await;
}
