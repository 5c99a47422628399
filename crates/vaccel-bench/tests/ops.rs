//! `vaccel_bench::ops::run` end to end, in-process, against the noop plugin
//! and an agent running on a thread of this test (the CLI test covers the
//! agent as a separate process), with a tiny time budget.

use std::sync::Arc;
use std::time::Duration;

use vaccel::{Arg, ArgOut, OpCtx, OpSet, OpType, Plugin, PluginInfo, PluginType, Runtime};
use vaccel_agent::AgentConfig;
use vaccel_agent::testing::BackgroundAgent;
use vaccel_bench::ops::{AgentSpec, Options, Transport, run};
use vaccel_transport::Address;

const TOKEN: &str = "test-token";

struct TestAgent {
    unix: Address,
    tcp: Address,
    _agent: BackgroundAgent,
    _dir: tempfile::TempDir,
}

impl TestAgent {
    fn start() -> TestAgent {
        let dir = tempfile::tempdir().unwrap();
        let config = AgentConfig {
            listen: vec![
                Address::Unix(dir.path().join("agent.sock")),
                "tcp://127.0.0.1:0".parse().unwrap(),
            ],
            token: Some(TOKEN.into()),
            ..AgentConfig::default()
        };
        let agent = BackgroundAgent::start(Arc::new(noop_runtime()), config);
        let (unix, tcp) = (agent.addresses[0].clone(), agent.addresses[1].clone());
        TestAgent {
            unix,
            tcp,
            _agent: agent,
            _dir: dir,
        }
    }

    fn spec(&self, transports: &[Transport]) -> AgentSpec {
        AgentSpec::Existing {
            unix: transports
                .contains(&Transport::Unix)
                .then(|| self.unix.clone()),
            tcp: transports
                .contains(&Transport::Tcp)
                .then(|| self.tcp.clone()),
            token: Some(TOKEN.into()),
            pid: None,
        }
    }
}

fn noop_runtime() -> Runtime {
    Runtime::builder()
        .builtins(vaccel::builtins())
        .plugins("noop")
        .build()
        .unwrap()
}

fn options(agent: AgentSpec, out: &std::path::Path, transports: &[Transport]) -> Options {
    let mut o = Options::new(agent);
    o.quick = true;
    o.budget = Some(Duration::from_millis(2));
    o.out_dir = out.to_path_buf();
    o.transports = transports.to_vec();
    o
}

#[test]
fn quick_run_against_noop_writes_tables_plots_and_json() {
    let agent = TestAgent::start();
    let dir = tempfile::tempdir().unwrap();
    let both = [Transport::Unix, Transport::Tcp];
    let mut out = Vec::new();
    let report = run(
        &noop_runtime(),
        &options(agent.spec(&both), dir.path(), &both),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    for needle in [
        "machine: ",
        "local plugin: noop",
        "busy polling: 50 µs on both ends",
        "== NOOP round trip (µs/call) ==",
        "floor: raw ping-pong between two threads of this process, 44-byte request / 28-byte reply",
        "== socket bandwidth",
        "== SGEMM",
        "local GFLOP/s",
        "unix÷floor",
        "tcp÷floor",
        "== image classification",
        "640×480",
        "== AES-128-CBC",
        "1 MiB",
        "== agent memory ==",
        "not measured",
        "results.json",
    ] {
        assert!(text.contains(needle), "missing '{needle}' in:\n{text}");
    }
    assert!(!text.contains("SKIPPED"), "{text}");
    // Quick: SGEMM stops at 256, three image sizes.
    let r = &report.results;
    assert_eq!(
        r.sgemm.points.iter().map(|p| p.x).collect::<Vec<_>>(),
        [64.0, 128.0, 256.0]
    );
    assert_eq!(r.classify.points.len(), 3);
    assert_eq!(r.aes.points.len(), 8);
    let noop = &r.noop.points[0];
    for k in ["local", "unix", "tcp", "floor_unix", "floor_tcp"] {
        let s = &noop.variants[k];
        assert_eq!(s.samples_s.len(), 5, "{k}");
        assert!(s.median_s > 0.0 && s.iters >= 1, "{k}");
    }
    assert!(noop.derived["unix/floor"] > 0.0);
    for p in &r.sgemm.points {
        let n2 = (p.x as usize).pow(2);
        // A, B and C travel in, C comes back; with shared memory only references.
        for t in ["unix", "tcp"] {
            assert!(p.frames[t].request_bytes > 12 * n2, "{t}");
            assert!(p.frames[t].reply_bytes > 4 * n2, "{t}");
        }
        assert!(p.frames["unix_shm"].request_bytes < 1024);
        assert!(p.frames["unix_shm"].reply_bytes < 64);
        for k in [
            "local",
            "unix",
            "unix_shm",
            "tcp",
            "floor_unix",
            "floor_unix_shm",
            "floor_tcp",
        ] {
            assert_eq!(p.variants[k].samples_s.len(), 5, "{k}");
        }
        for k in [
            "tcp/local",
            "tcp_floor/local",
            "tcp/floor",
            "unix_shm/floor",
            "unix_gflops",
            "floor_tcp_gflops",
        ] {
            assert!(p.derived[k].is_finite() && p.derived[k] > 0.0, "{k}");
        }
    }
    for p in &r.aes.points {
        let len = p.x as usize;
        assert!(p.frames["tcp"].request_bytes > len, "{len}");
        assert!(p.frames["tcp"].reply_bytes > len, "{len}");
        // The plaintext is a reference from 4 KiB on; the ciphertext is always copied back.
        assert_eq!(
            p.frames["unix_shm"].request_bytes < len,
            len >= 4096,
            "{len}"
        );
        assert!(p.frames["unix_shm"].reply_bytes > len, "{len}");
    }
    let names: Vec<String> = report
        .files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "noop.svg",
            "sgemm.svg",
            "classify.svg",
            "aes.svg",
            "results.json"
        ]
    );
    for f in &report.files {
        let s = std::fs::read_to_string(f).unwrap();
        if f.extension().unwrap() == "svg" {
            assert!(s.trim_start().starts_with("<svg"), "{}", f.display());
            assert!(s.trim_end().ends_with("</svg>"), "{}", f.display());
        } else {
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert_eq!(v["settings"]["transports"][1], "tcp");
            assert_eq!(v["settings"]["busy_poll_us"], 50);
            assert!(v["sgemm"]["points"][0]["variants"]["unix"]["median_s"].is_f64());
            assert!(v["agent_memory"].is_null());
        }
    }
}

/// A plugin with NOOP only.
struct NoopOnly;

impl Plugin for NoopOnly {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "noop-only".into(),
            version: "0".into(),
            types: PluginType::CPU,
            ops: [OpType::Noop].into_iter().collect::<OpSet>(),
            details: vec![],
        }
    }
    fn run(
        &self,
        _: &OpCtx<'_>,
        _: OpType,
        _: &[Arg<'_>],
        _: &mut [ArgOut<'_>],
    ) -> vaccel::Result<()> {
        Ok(())
    }
}

#[test]
fn ops_the_local_plugin_lacks_are_skipped_loudly() {
    let agent = TestAgent::start();
    let dir = tempfile::tempdir().unwrap();
    let unix = [Transport::Unix];
    let local = Runtime::builder()
        .with_plugin(Arc::new(NoopOnly))
        .build()
        .unwrap();
    let mut out = Vec::new();
    let report = run(
        &local,
        &options(agent.spec(&unix), dir.path(), &unix),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    for op in ["BLAS_SGEMM", "IMAGE_CLASSIFY", "AES_CBC_ENCRYPT"] {
        let line = format!("SKIPPED: no loaded plugin implements {op} (load cpu/onnx)");
        assert!(text.contains(&line), "missing '{line}' in:\n{text}");
    }
    assert!(!text.contains("tcp"), "only unix was asked for:\n{text}");
    let r = &report.results;
    assert!(r.noop.skipped.is_none());
    assert!(r.sgemm.skipped.is_some() && r.sgemm.points.is_empty());
    assert!(r.classify.skipped.is_some());
    assert!(r.aes.skipped.is_some());
    assert!(dir.path().join("noop.svg").is_file());
    assert!(!dir.path().join("sgemm.svg").exists());
    assert!(dir.path().join("results.json").is_file());
}

#[test]
fn ops_run_on_the_fallback_plugin_when_per_op_fallback_is_on() {
    let agent = TestAgent::start();
    let dir = tempfile::tempdir().unwrap();
    let unix = [Transport::Unix];
    // NOOP-only first, noop second; no plugin list, so per-op fallback is on.
    let local = Runtime::builder()
        .with_plugin(Arc::new(NoopOnly))
        .with_plugin(Arc::new(vaccel_plugin_noop::NoopPlugin))
        .build()
        .unwrap();
    assert!(local.config().fallback_enabled());
    let mut out = Vec::new();
    let report = run(
        &local,
        &options(agent.spec(&unix), dir.path(), &unix),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("NOOP runs on plugin 'noop-only'"), "{text}");
    assert!(
        text.contains(
            "BLAS_SGEMM runs on plugin 'noop' (per-op fallback from the session's plugin 'noop-only')"
        ),
        "{text}"
    );
    assert!(!text.contains("SKIPPED"), "{text}");
    assert_eq!(report.results.sgemm.plugin.as_deref(), Some("noop"));
    assert_eq!(report.results.sgemm.points.len(), 3);
}

#[test]
fn no_transport_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = AgentSpec::Existing {
        unix: None,
        tcp: None,
        token: None,
        pid: None,
    };
    let e = run(
        &noop_runtime(),
        &options(spec, dir.path(), &[]),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("at least one transport"), "{e}");
}
