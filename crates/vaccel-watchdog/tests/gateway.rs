//! The local OpenFaaS-style gateway over real HTTP.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use common::*;
use http::{Method, StatusCode};
use serde_json::Value;
use vaccel_watchdog::{Function, Gateway, GatewayConfig, Registry, Server};

async fn gateway(max_inflight: usize) -> (Server, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let fs: Vec<Arc<dyn Function>> = vec![
        Arc::new(Echo),
        Arc::new(Info),
        Arc::new(Small),
        Arc::new(Gated(gate.clone())),
    ];
    let reg: Registry = fs.into_iter().collect();
    let cfg = GatewayConfig {
        bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        max_inflight,
        ..GatewayConfig::default()
    };
    (
        Gateway::bind(cfg, &reg).await.expect("gateway starts"),
        gate,
    )
}

async fn stop(s: Server) {
    s.shutdown();
    assert!(s.wait().await.expect("clean stop").drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_functions_lists_every_function_in_openfaas_shape() {
    let (s, _) = gateway(0).await;
    let addr = s.local_addr();
    let r = get(addr, "/system/functions").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let list = v.as_array().expect("a JSON array");
    let names: Vec<&str> = list.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["echo", "gated", "info", "small"]);
    let echo = &list[0];
    assert_eq!(echo["namespace"], "openfaas-fn");
    assert_eq!(echo["image"], "vaccel/echo:inproc");
    assert_eq!(echo["envProcess"], "echo");
    assert_eq!(echo["invocationCount"], 0);
    assert_eq!(echo["replicas"], 1);
    assert_eq!(echo["availableReplicas"], 1);
    assert_eq!(echo["labels"]["faas_function"], "echo");
    assert_eq!(echo["annotations"]["com.vaccel.inline"], "true");
    assert!(echo["createdAt"].as_str().unwrap().ends_with('Z'));

    for _ in 0..2 {
        post(addr, "/function/echo", "x").await;
    }
    let r = get(addr, "/system/function/echo").await;
    assert_eq!(r.status, StatusCode::OK);
    let one: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(one["name"], "echo");
    assert_eq!(one["invocationCount"], 2);

    let r = post(addr, "/system/functions", "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET"));
    let r = get(addr, "/system/function/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_routes_pass_the_rest_of_the_path() {
    let (s, _) = gateway(0).await;
    let addr = s.local_addr();
    let r = send(
        addr,
        Method::POST,
        "/function/info/a/b?x=1",
        &[("x-call-id", "c1")],
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "POST /a/b?x=1 c1");
    assert_eq!(r.header("x-call-id"), Some("c1"));

    let r = get(addr, "/function/info").await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    let (head, id) = text.rsplit_once(' ').unwrap();
    assert_eq!(head, "GET /");
    // A call id is made up when the caller sent none, and returned.
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(r.header("x-call-id"), Some(id));

    let r = post(addr, "/function/echo/", "body").await;
    assert_eq!(r.text(), "body");
    assert_eq!(r.header("x-vaccel-op-seconds"), Some("0.000042"));
    assert!(r.duration() >= 0.0);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_functions_and_paths_are_404_with_a_message() {
    let (s, _) = gateway(0).await;
    let addr = s.local_addr();
    let r = post(addr, "/function/nope", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let t = r.text();
    assert!(t.contains("'nope' not found"), "{t}");
    assert!(t.contains("echo, gated, info, small"), "{t}");
    let r = get(addr, "/function/").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = get(addr, "/elsewhere").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.text().contains("/function/<name>"), "{}", r.text());
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_apply_as_in_the_watchdog() {
    let (s, gate) = gateway(1).await;
    let addr = s.local_addr();
    let r = post(addr, "/function/small", "more than sixteen bytes").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("at most 16 bytes"), "{}", r.text());

    let held = tokio::spawn(async move { post(addr, "/function/gated", "x").await });
    eventually("the call to be in flight", || gate.entered() == 1).await;
    let r = post(addr, "/function/echo", "y").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.text(),
        "Concurrent request limit exceeded. Max concurrent requests: 1"
    );
    gate.open();
    assert_eq!(held.await.unwrap().status, StatusCode::OK);
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_use_the_openfaas_gateway_names() {
    let (s, _) = gateway(0).await;
    let addr = s.local_addr();
    assert_eq!(s.metrics_addr(), Some(addr));
    for _ in 0..2 {
        assert_eq!(
            post(addr, "/function/echo", "x").await.status,
            StatusCode::OK
        );
    }
    post(addr, "/function/small", "more than sixteen bytes").await;
    let m = get(addr, "/metrics").await.text();
    for line in [
        r#"gateway_function_invocation_total{function_name="echo",code="200"} 2"#,
        r#"gateway_function_invocation_total{function_name="small",code="400"} 1"#,
        r#"gateway_functions_seconds_count{function_name="echo",code="200"} 2"#,
        r#"gateway_function_invocation_started_total{function_name="echo"} 2"#,
        r#"gateway_service_count{function_name="info"} 1"#,
        r#"http_requests_total{code="200",method="post"} 2"#,
        "http_requests_in_flight 0",
    ] {
        assert!(m.contains(line), "missing {line:?} in\n{m}");
    }
    stop(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_shutdown() {
    let (s, _) = gateway(0).await;
    let addr = s.local_addr();
    let r = get(addr, "/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "OK");
    stop(s).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
