//! The watchdog in-process and http modes, its endpoints, metrics and
//! graceful shutdown, over real HTTP.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use vaccel_watchdog::{Error, Function, Registry, Server, Watchdog};

fn registry() -> Registry {
    let fs: Vec<Arc<dyn Function>> = vec![
        Arc::new(Echo),
        Arc::new(Info),
        Arc::new(Small),
        Arc::new(Panics),
        Arc::new(Sleepy(Duration::from_secs(1))),
    ];
    fs.into_iter().collect()
}

async fn inproc(dir: &Path, name: &str, extra: &[(&str, &str)]) -> Server {
    inproc_with(dir, name, extra, &registry()).await
}

async fn inproc_with(dir: &Path, name: &str, extra: &[(&str, &str)], reg: &Registry) -> Server {
    let mut pairs = vec![("mode", "inproc"), ("fprocess", name)];
    pairs.extend_from_slice(extra);
    Watchdog::bind(config(dir, &pairs), reg)
        .await
        .expect("watchdog starts")
}

async fn stop(server: Server) {
    server.shutdown();
    let report = server.wait().await.expect("clean stop");
    assert!(report.drained);
}

async fn metrics(s: &Server) -> String {
    get(s.metrics_addr().expect("metrics port"), "/metrics")
        .await
        .text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inproc_calls_the_function_and_adds_the_headers() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "echo", &[]).await;
    let r = send(
        s.local_addr(),
        Method::POST,
        "/",
        &[("x-call-id", "call-1")],
        "ping",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "ping");
    assert_eq!(r.header("x-call-id"), Some("call-1"));
    assert_eq!(r.header("x-vaccel-op-seconds"), Some("0.000042"));
    let d = r.duration();
    assert!((0.0..30.0).contains(&d), "{d}");
    // Six decimals, as of-watchdog prints them.
    let raw = r.header("x-duration-seconds").unwrap();
    assert_eq!(raw.split('.').nth(1).map(str::len), Some(6), "{raw}");

    // Without a call id, none is invented.
    let r = post(s.local_addr(), "/any/path", "x").await;
    assert_eq!(r.header("x-call-id"), None);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inproc_blocking_function_sees_method_path_and_call_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "info", &[]).await;
    let r = send(
        s.local_addr(),
        Method::DELETE,
        "/a/b?c=d",
        &[("x-call-id", "abc")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "DELETE /a/b?c=d abc");
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_body_is_400_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "small", &[]).await;
    let r = post(s.local_addr(), "/", "0123456789abcdef").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = post(s.local_addr(), "/", "0123456789abcdefX").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("at most 16 bytes"), "{}", r.text());

    // Chunked, no Content-Length: refused while reading.
    let mut c = TcpStream::connect(s.local_addr()).await.unwrap();
    c.write_all(
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(PATIENCE, c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(head.contains("at most 16 bytes"), "{head}");
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_function_is_500() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "panics", &[]).await;
    let r = get(s.local_addr(), "/").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().contains("deliberate test panic"), "{}", r.text());
    // The watchdog is still serving.
    assert_eq!(
        get(s.local_addr(), "/_/health").await.status,
        StatusCode::OK
    );
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_inproc_function_is_504_past_exec_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "sleepy", &[("exec_timeout", "100ms")]).await;
    let r = get(s.local_addr(), "/").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(r.text().contains("sleepy"), "{}", r.text());
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_inproc_function_fails_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = Watchdog::bind(
        config(dir.path(), &[("mode", "inproc"), ("fprocess", "nope")]),
        &registry(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::UnknownFunction { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("'nope'") && msg.contains("echo, info"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_inflight_answers_429_with_the_exact_body() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let reg = Registry::new().with(Arc::new(Gated(gate.clone())));
    let s = inproc_with(dir.path(), "gated", &[("max_inflight", "1")], &reg).await;
    let addr = s.local_addr();
    assert_eq!(get(addr, "/_/ready").await.status, StatusCode::OK);

    let held = tokio::spawn(async move { post(addr, "/", "first").await });
    eventually("the first request to be in the function", || {
        gate.entered() == 1
    })
    .await;
    let r = post(addr, "/", "second").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.text(),
        "Concurrent request limit exceeded. Max concurrent requests: 1"
    );
    assert!(r.duration() >= 0.0);
    assert_eq!(
        get(addr, "/_/ready").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Health does not depend on load.
    assert_eq!(get(addr, "/_/health").await.status, StatusCode::OK);

    gate.open();
    let r = held.await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "first");
    assert_eq!(
        gate.entered(),
        1,
        "the refused request never reached the function"
    );
    assert_eq!(get(addr, "/_/ready").await.status, StatusCode::OK);
    let m = metrics(&s).await;
    assert!(
        m.contains(r#"http_requests_total{code="429",method="post"} 1"#),
        "{m}"
    );
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "echo", &[]).await;
    let lock = dir.path().join(".lock");
    assert!(lock.exists(), "the lock file is written at start");
    let r = get(s.local_addr(), "/_/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "OK");
    let r = post(s.local_addr(), "/_/health", "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = post(s.local_addr(), "/_/ready", "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    std::fs::remove_file(&lock).unwrap();
    assert_eq!(
        get(s.local_addr(), "/_/health").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(s.local_addr(), "/_/ready").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppress_lock_writes_no_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "echo", &[("suppress_lock", "true")]).await;
    assert!(!dir.path().join(".lock").exists());
    assert_eq!(
        get(s.local_addr(), "/_/health").await.status,
        StatusCode::OK
    );
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_file_that_cannot_be_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let mut c = config(&file, &[("mode", "inproc"), ("fprocess", "echo")]);
    c.lock_path = file.join(".lock");
    let err = Watchdog::bind(c, &registry()).await.unwrap_err();
    assert!(matches!(err, Error::LockFile { .. }), "{err:?}");
    assert!(err.to_string().contains("suppress_lock=true"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_path_asks_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "info", &[("ready_path", "/ready")]).await;
    let r = get(s.local_addr(), "/_/ready").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "GET /ready -");
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_code_and_method() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "small", &[]).await;
    let addr = s.local_addr();
    for _ in 0..3 {
        assert_eq!(post(addr, "/", "ok").await.status, StatusCode::OK);
    }
    assert_eq!(get(addr, "/").await.status, StatusCode::OK);
    assert_eq!(
        post(addr, "/", "far too long for this function")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    // Probes are not function requests.
    get(addr, "/_/health").await;

    let m = metrics(&s).await;
    for line in [
        r#"http_requests_total{code="200",method="post"} 3"#,
        r#"http_requests_total{code="200",method="get"} 1"#,
        r#"http_requests_total{code="400",method="post"} 1"#,
        r#"http_request_duration_seconds_count{code="200",method="post"} 3"#,
        r#"http_request_duration_seconds_bucket{le="10.0",code="200",method="post"} 3"#,
        "http_requests_in_flight 0",
        "# TYPE http_request_duration_seconds histogram",
    ] {
        assert!(m.contains(line), "missing {line:?} in\n{m}");
    }
    assert!(!m.contains("code=\"200\",method=\"get\"} 2"), "{m}");
    let r = get(s.metrics_addr().unwrap(), "/elsewhere").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    stop(s).await;
}

/// An upstream HTTP server: `/slow` sleeps 5 s, `/healthy` answers
/// `upstream-ready`, anything else 201 with `METHOD PATH?QUERY x-test host|body`.
async fn upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let pq = req.uri().path_and_query().unwrap().as_str().to_string();
                    let r = match pq.as_str() {
                        "/slow" => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            Response::new(Full::new(Bytes::from("late")))
                        }
                        "/healthy" => Response::new(Full::new(Bytes::from("upstream-ready"))),
                        _ => {
                            let h = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("-")
                                    .to_string()
                            };
                            let line =
                                format!("{} {pq} {} {}|", req.method(), h("x-test"), h("host"));
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let mut r = Response::new(Full::new(Bytes::from(
                                [line.as_bytes(), &body[..]].concat(),
                            )));
                            *r.status_mut() = StatusCode::CREATED;
                            r.headers_mut().insert("x-upstream", "yes".parse().unwrap());
                            r
                        }
                    };
                    Ok::<_, Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

async fn http_mode(dir: &Path, up: SocketAddr, extra: &[(&str, &str)]) -> Server {
    let url = format!("http://{up}");
    let mut pairs = vec![("mode", "http"), ("upstream_url", url.as_str())];
    pairs.extend_from_slice(extra);
    Watchdog::bind(config(dir, &pairs), &Registry::new())
        .await
        .expect("watchdog starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_proxies_to_the_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream().await;
    let s = http_mode(dir.path(), up, &[]).await;
    let r = send(
        s.local_addr(),
        Method::POST,
        "/a/b?c=d",
        &[("x-test", "t1"), ("x-call-id", "id-9")],
        "payload",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let host = s.local_addr().to_string();
    assert_eq!(r.text(), format!("POST /a/b?c=d t1 {host}|payload"));
    assert_eq!(r.header("x-upstream"), Some("yes"));
    assert_eq!(r.header("x-call-id"), Some("id-9"));
    assert!(r.duration() >= 0.0);

    // Buffered bodies arrive the same.
    let s2 = http_mode(dir.path(), up, &[("http_buffer_req_body", "true")]).await;
    let r = post(s2.local_addr(), "/x", "buffered").await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.text().ends_with("|buffered"), "{}", r.text());
    stop(s2).await;
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_answers_504_past_exec_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream().await;
    let s = http_mode(dir.path(), up, &[("exec_timeout", "300ms")]).await;
    let r = get(s.local_addr(), "/slow").await;
    assert_eq!(r.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(r.duration() >= 0.0);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_without_an_upstream_is_502() {
    let dir = tempfile::tempdir().unwrap();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let s = http_mode(dir.path(), closed, &[]).await;
    let r = get(s.local_addr(), "/").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
    assert!(
        r.text().contains("cannot reach the function"),
        "{}",
        r.text()
    );
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_ready_path_goes_upstream() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream().await;
    let s = http_mode(dir.path(), up, &[("ready_path", "/healthy")]).await;
    let r = get(s.local_addr(), "/_/ready").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "upstream-ready");
    stop(s).await;
}

/// Our children running `sleep <arg>`.
fn our_sleepers(arg: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmd != format!("sleep\0{arg}\0").as_bytes() {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(me) {
            out.push(pid);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_starts_fprocess_and_stops_it_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream().await;
    let s = http_mode(dir.path(), up, &[("fprocess", "sleep 1001")]).await;
    eventually("the upstream process to run", || {
        our_sleepers("1001").len() == 1
    })
    .await;
    let pid = our_sleepers("1001")[0];
    assert_eq!(
        post(s.local_addr(), "/", "x").await.status,
        StatusCode::CREATED
    );
    stop(s).await;
    assert!(
        process_gone(pid),
        "the upstream process outlived the watchdog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_mode_stops_when_the_upstream_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let up = upstream().await;
    let s = http_mode(dir.path(), up, &[("fprocess", "sh -c 'exit 7'")]).await;
    let r = tokio::time::timeout(PATIENCE, s.wait())
        .await
        .expect("the watchdog stops by itself");
    let err = r.unwrap_err();
    assert!(matches!(err, Error::UpstreamExited { .. }), "{err:?}");
    assert!(err.to_string().contains("7"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests_then_refuses_connections() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let reg = Registry::new().with(Arc::new(Gated(gate.clone())));
    let s = inproc_with(dir.path(), "gated", &[("write_timeout", "60s")], &reg).await;
    let addr = s.local_addr();
    const N: usize = 24;
    let calls: Vec<_> = (0..N)
        .map(|i| tokio::spawn(async move { post(addr, "/", format!("req-{i}")).await }))
        .collect();
    eventually("every request to be in flight", || gate.entered() == N).await;

    s.shutdown();
    // Shutdown has begun: the lock file goes, health turns 503 ...
    eventually("the lock file to be removed", || {
        !dir.path().join(".lock").exists()
    })
    .await;
    // ... and accepting stops (no grace period in this test).
    eventually("new connections to be refused", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
    gate.open();

    for (i, c) in calls.into_iter().enumerate() {
        let r = c.await.unwrap();
        assert_eq!(r.status, StatusCode::OK, "request {i}");
        assert_eq!(r.text(), format!("req-{i}"));
    }
    let report = tokio::time::timeout(PATIENCE, s.wait())
        .await
        .expect("stopped")
        .expect("clean stop");
    assert!(report.drained);
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_keeps_serving_during_the_healthcheck_interval() {
    let dir = tempfile::tempdir().unwrap();
    let s = inproc(dir.path(), "echo", &[("healthcheck_interval", "5s")]).await;
    let addr = s.local_addr();
    let handle = s.shutdown_handle();
    handle.shutdown();
    assert!(handle.is_shutting_down());
    eventually("the lock file to be removed", || {
        !dir.path().join(".lock").exists()
    })
    .await;
    // Orchestrators see 503, callers are still served.
    assert_eq!(
        get(addr, "/_/health").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = post(addr, "/", "still here").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "still here");
    let report = tokio::time::timeout(PATIENCE, s.wait())
        .await
        .expect("stopped")
        .expect("clean stop");
    assert!(report.drained);
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_is_bounded_by_write_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let reg = Registry::new().with(Arc::new(Gated(gate.clone())));
    let s = inproc_with(
        dir.path(),
        "gated",
        &[("write_timeout", "1s"), ("exec_timeout", "0")],
        &reg,
    )
    .await;
    let addr = s.local_addr();
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    eventually("the request to be in flight", || gate.entered() == 1).await;
    s.shutdown();
    // The stuck call is answered 504 at its deadline (write_timeout), its
    // connection closes, and the server stops, though the function itself
    // never returned.
    let mut reply = Vec::new();
    tokio::time::timeout(PATIENCE, conn.read_to_end(&mut reply))
        .await
        .expect("the connection closes")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 504"), "{reply}");
    tokio::time::timeout(PATIENCE, s.wait())
        .await
        .expect("stopped within the bound")
        .expect("no error");
    assert_eq!(gate.entered(), 1);
    gate.open();
}
