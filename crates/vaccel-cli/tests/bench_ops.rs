//! `vaccel bench ops` as a user runs it: the real binary, the agent as a
//! separate process, the noop plugin, a tiny time budget.

use std::process::Command;

#[test]
fn bench_ops_quick_prints_tables_and_writes_plots_and_json() {
    let out_dir = tempfile::tempdir().unwrap();
    let images = vaccel_test_utils::workspace_root().join("test-data/images");
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(["bench", "ops", "--quick", "--budget-ms", "2", "--out"])
        .arg(out_dir.path())
        .arg("--images")
        .arg(&images)
        .env("VACCEL_PLUGINS", "noop")
        .env_remove("VACCEL_LOG_LEVEL")
        .env_remove("VACCEL_AGENT_TOKEN")
        .output()
        .expect("running vaccel");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for needle in [
        "machine: ",
        "local plugin: noop; agent: pid ",
        "plugins: noop",
        "== NOOP round trip (µs/call) ==",
        "path        µs/call",
        "floor unix",
        "floor tcp",
        "== socket bandwidth",
        "== SGEMM",
        "size   local GFLOP/s  unix GFLOP/s  unix shm GFLOP/s  tcp GFLOP/s",
        "tcp÷floor",
        "== image classification",
        "224×224",
        "1280×720",
        "== AES-128-CBC",
        "local MB/s",
        "== agent memory under load: 8 clients",
        "1 (warm-up)",
        "480 ops in ",
        ", 0 failed; RSS growth",
        "== agent memory ==",
        "agent VmRSS after warm-up (sessions open, NOOP comparison done): ",
        "agent VmRSS at the end: ",
        "wrote:",
    ] {
        assert!(stdout.contains(needle), "missing '{needle}' in:\n{stdout}");
    }
    // noop implements every op (classification returns a dummy label), so nothing is skipped.
    assert!(!stdout.contains("SKIPPED"), "{stdout}");
    // --quick: SGEMM stops at n=256, three image sizes.
    assert!(
        stdout.contains("n=256") && !stdout.contains("n=512"),
        "{stdout}"
    );
    assert!(!stdout.contains("1920×1080"), "{stdout}");

    for name in ["noop.svg", "sgemm.svg", "classify.svg", "aes.svg"] {
        let p = out_dir.path().join(name);
        let svg = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(svg.trim_start().starts_with("<svg"), "{name}");
        assert!(svg.trim_end().ends_with("</svg>"), "{name}");
        assert!(svg.contains("local") && svg.contains("tcp"), "{name}");
        assert!(stdout.contains(&p.display().to_string()), "{name} listed");
    }
    let json = std::fs::read_to_string(out_dir.path().join("results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["settings"]["local_plugin"], "noop");
    assert_eq!(v["settings"]["agent_plugins"], "noop");
    assert!(v["settings"]["agent_pid"].as_u64().is_some());
    assert_eq!(v["settings"]["noop_request_bytes"], 44);
    assert_eq!(v["settings"]["noop_reply_bytes"], 28);
    assert!(v["agent_memory"]["end_rss_kib"].as_u64().unwrap() > 0);
    assert_eq!(v["sgemm"]["points"].as_array().unwrap().len(), 3);
    assert_eq!(v["soak"]["errors"], 0);
    assert_eq!(v["soak"]["ops"], 480);
    assert_eq!(v["soak"]["rss_kib"].as_array().unwrap().len(), 3);
    assert_eq!(v["aes"]["points"].as_array().unwrap().len(), 8);
    let noop = &v["noop"]["points"][0];
    for k in ["local", "unix", "tcp", "floor_unix", "floor_tcp"] {
        let s = &noop["variants"][k];
        assert!(s["median_s"].as_f64().unwrap() > 0.0, "{k}");
        assert_eq!(s["samples_s"].as_array().unwrap().len(), 5, "{k}");
    }
    assert!(v["bandwidth"][0]["bytes_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_ops_skips_ops_the_plugin_lacks_and_stops_the_agent() {
    let out_dir = tempfile::tempdir().unwrap();
    // exec implements only NOOP, EXEC and EXEC_WITH_RESOURCE.
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args([
            "--plugins",
            "exec",
            "bench",
            "ops",
            "--quick",
            "--budget-ms",
            "2",
            "--transports",
            "unix",
            "--out",
        ])
        .arg(out_dir.path())
        .env_remove("VACCEL_PLUGINS")
        .env_remove("VACCEL_LOG_LEVEL")
        .output()
        .expect("running vaccel");
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for op in ["BLAS_SGEMM", "IMAGE_CLASSIFY", "AES_CBC_ENCRYPT"] {
        let line = format!("SKIPPED: no loaded plugin implements {op} (load cpu/onnx)");
        assert!(stdout.contains(&line), "missing '{line}' in:\n{stdout}");
    }
    // The agent got the same --plugins; only the asked transport is measured.
    assert!(stdout.contains("floor unix"), "{stdout}");
    assert!(stdout.contains("plugins: exec"), "{stdout}");
    assert!(!stdout.contains("floor tcp"), "{stdout}");
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("results.json")).unwrap(),
    )
    .unwrap();
    assert!(
        v["sgemm"]["skipped"]
            .as_str()
            .unwrap()
            .contains("BLAS_SGEMM")
    );
    // The agent process is gone.
    let pid = v["settings"]["agent_pid"].as_u64().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "agent {pid} still running"
    );
}

#[test]
fn bench_ops_rejects_unknown_transports() {
    let o = Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(["bench", "ops", "--transports", "unix,vsock"])
        .env("VACCEL_PLUGINS", "noop")
        .output()
        .expect("running vaccel");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("invalid value 'vsock'"), "{err}");
}
