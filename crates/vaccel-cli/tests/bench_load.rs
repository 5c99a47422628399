//! `vaccel bench URL`: the load test through the real binary (exit statuses,
//! output), and the `bench` subcommands still parsed as subcommands.

use std::process::{Command, Output};

use vaccel_loadtest::testing::TestServer;

fn vaccel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vaccel"))
        .args(args)
        .env("VACCEL_PLUGINS", "noop")
        .output()
        .expect("run vaccel")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn load_test_exit_statuses() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = srv.url("/function/blur?delay_ms=10&handler_ms=5");
    let out_a = dir.path().join("a");
    let o = vaccel(&[
        "bench",
        &url,
        "-t",
        "1,2",
        "-n",
        "3",
        "--pause",
        "0",
        "--json",
        "-q",
        "-o",
        out_a.to_str().unwrap(),
        "--fail-if",
        "success>=0.99",
        "--fail-if",
        "handler_p95<1s",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[1]["config"]["label"], "t2-think0s");
    assert_eq!(v[1]["count"], 6);
    for f in [
        "study.json",
        "t1-think0s/results.jtl",
        "t2-think0s/summary.json",
    ] {
        assert!(out_a.join(f).is_file(), "{f}");
    }
    let study: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_a.join("study.json")).unwrap()).unwrap();
    assert_eq!(study["command"][1], "bench");

    let out_b = dir.path().join("b");
    let o = vaccel(&[
        "bench",
        &url,
        "-n",
        "3",
        "-o",
        out_b.to_str().unwrap(),
        "--fail-if",
        "p95<1ms",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("threshold 'p95<1ms' failed for t1-think0s"),
        "{err}"
    );
    // Without --quiet or --json: the table.
    assert!(
        text(&o.stdout).contains("t1-think0s"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn bad_load_test_arguments() {
    let o = vaccel(&["bench", "http://127.0.0.1:9/", "--think", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("think time 'soon'"),
        "{}",
        text(&o.stderr)
    );
    let o = vaccel(&["bench", "http://127.0.0.1:9/", "--fail-if", "p95<<1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("threshold 'p95<<1'"),
        "{}",
        text(&o.stderr)
    );
    let o = vaccel(&["bench"]);
    assert_eq!(o.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let o = vaccel(&[
        "bench",
        "ftp://example/x",
        "-o",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("unsupported scheme 'ftp'"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn bench_subcommands_stay_subcommands() {
    let o = vaccel(&["bench", "ops", "--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("--transports"),
        "{}",
        text(&o.stdout)
    );
    let o = vaccel(&["bench", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    let help = text(&o.stdout);
    assert!(
        help.contains("ops") && help.contains("--think") && help.contains("--fail-if"),
        "{help}"
    );
}
