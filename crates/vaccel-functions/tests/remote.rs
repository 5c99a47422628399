//! The functions on the `remote` plugin, the path a sandboxed function
//! takes: ops run in a `vaccel agent`. While the agent is unreachable a
//! request is a 503 naming the problem; once it is back, the same function
//! serves again.

mod common;

use std::sync::Arc;

use common::*;
use vaccel::Runtime;
use vaccel_agent::AgentConfig;
use vaccel_agent::testing::BackgroundAgent;
use vaccel_functions::{SessionSource, builtin};
use vaccel_plugin_remote::{RemotePlugin, Settings};
use vaccel_transport::Address;

fn start_agent(addr: &Address) -> BackgroundAgent {
    let host = Runtime::builder()
        .with_plugin(Arc::new(onnx_plugin()))
        .with_plugin(Arc::new(vaccel_plugin_noop::NoopPlugin::new()))
        .build()
        .unwrap();
    BackgroundAgent::start(
        Arc::new(host),
        AgentConfig {
            listen: vec![addr.clone()],
            ..AgentConfig::default()
        },
    )
}

#[test]
fn functions_through_an_agent() {
    let dir = tempfile::tempdir().unwrap();
    let addr = Address::Unix(dir.path().join("agent.sock"));
    let guest = Runtime::builder()
        .with_plugin(Arc::new(RemotePlugin::new(Settings::new(addr.clone()))))
        .build()
        .unwrap();
    let source = SessionSource::new(Arc::new(guest));
    let classify = builtin("classify", &source).unwrap();
    let noop = builtin("noop", &source).unwrap();
    let blur = builtin("blur", &source).unwrap();

    // No agent yet.
    for f in [&classify, &noop] {
        let r = f.call(post(image("dog.jpg")));
        let msg = error(&r, 503);
        assert!(msg.contains("cannot connect to the vAccel agent"), "{msg}");
        assert_eq!(header(&r, "x-vaccel-error"), "ESESS");
        assert_eq!(header(&r, "retry-after"), "1");
    }

    let mut agent = start_agent(&addr);
    let r = classify.call(post(image("dog.jpg")));
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(r.body()));
    assert_eq!(header(&r, "x-vaccel-plugin"), "remote");
    assert!(op_seconds(&r) > 0.0);
    let v = json(&r);
    assert!(is_dog(v["labels"][0]["index"].as_u64().unwrap()), "{v}");
    assert_eq!(v["model"], "efficientnet-lite0.onnx");
    assert_eq!(v["plugin"], "remote");

    let r = noop.call(post(""));
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(r.body()));
    assert_eq!(header(&r, "x-vaccel-plugin"), "remote");
    assert!(op_seconds(&r) > 0.0);

    let r = blur.call(post(image("portrait.jpg")));
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(r.body()));
    assert_eq!(header(&r, "x-faces"), "1");

    // The agent's EINVAL for a corrupt image is still the client's fault.
    let r = classify.call(post(image("dog.jpg")[..400].to_vec()));
    assert!(error(&r, 400).contains("cannot decode image"));

    // The agent goes away: 503; it comes back: served again.
    agent.stop();
    let r = noop.call(post(""));
    assert_eq!(r.status(), 503, "{}", String::from_utf8_lossy(r.body()));
    let _agent = start_agent(&addr);
    let r = classify.call(post(image("cat.jpg")));
    assert_eq!(r.status(), 200, "{}", String::from_utf8_lossy(r.body()));
}
