//! The command-line surface: thresholds and exit statuses, JSON output,
//! and clear errors for bad input.

use vaccel_loadtest::cli::{self, LoadArgs};
use vaccel_loadtest::testing::TestServer;

fn parse(args: &[&str]) -> LoadArgs {
    cli::parse(std::iter::once("vaccel-bench").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn parse_err(args: &[&str]) -> String {
    cli::parse(std::iter::once("vaccel-bench").chain(args.iter().copied()))
        .unwrap_err()
        .to_string()
}

fn run(args: &[&str]) -> (Result<u8, vaccel_loadtest::Error>, String) {
    let a = parse(args);
    let mut out = Vec::new();
    let r = cli::run(&a, Vec::new(), &mut out);
    (r, String::from_utf8(out).unwrap())
}

#[test]
fn thresholds_set_the_exit_status() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = srv.url("/?delay_ms=20");
    let out = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    let pass = [
        "--fail-if",
        "p95<5s",
        "--fail-if",
        "success>=0.99",
        "--fail-if",
        "errors==0",
        "--fail-if",
        "p50>10ms",
    ];
    let (r, _) = run(&[&[url.as_str(), "-n", "5", "-q", "-o", &out("a")][..], &pass].concat());
    assert_eq!(r.unwrap(), 0);
    let (r, _) = run(&[
        url.as_str(),
        "-n",
        "5",
        "-q",
        "-o",
        &out("b"),
        "--fail-if",
        "p95<1ms",
    ]);
    assert_eq!(r.unwrap(), 3);
    let (r, _) = run(&[
        url.as_str(),
        "-n",
        "3",
        "-q",
        "-o",
        &out("c"),
        "--fail-if",
        "handler_p95<1s",
    ]);
    assert_eq!(r.unwrap(), 3, "no handler samples fails");
    let failing = srv.url("/?status=500");
    let (r, _) = run(&[
        failing.as_str(),
        "-n",
        "3",
        "-q",
        "-o",
        &out("d"),
        "--fail-if",
        "success>=0.99",
    ]);
    assert_eq!(r.unwrap(), 3);
}

#[test]
fn json_output_is_an_array_of_summaries() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o").to_string_lossy().to_string();
    let url = srv.url("/");
    let (r, out) = run(&[
        &url, "-t", "1,2", "-n", "2", "--json", "-q", "-o", &o, "--pause", "0",
    ]);
    assert_eq!(r.unwrap(), 0);
    let v: Vec<vaccel_loadtest::summary::Summary> = serde_json::from_str(&out).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].config.label, "t1-think0s");
    assert_eq!(v[1].count, 4);
}

#[test]
fn table_output() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o").to_string_lossy().to_string();
    let a = parse(&[&srv.url("/"), "-n", "2", "-o", &o]);
    let mut opts = a.to_options(Vec::new()).unwrap();
    opts.progress = vaccel_loadtest::progress::ProgressMode::Quiet;
    opts.handle_ctrl_c = false;
    let mut out = Vec::new();
    vaccel_loadtest::run(&opts, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("config"), "{text}");
    assert!(text.contains("t1-think0s"), "{text}");
    assert!(text.contains("results: "), "{text}");
}

#[test]
fn flags_parse() {
    let a = parse(&[
        "http://h/f",
        "--threads",
        "1,2,4,8",
        "--think",
        "0,1,5",
        "--think",
        "gauss:1s/200ms",
        "--ramp-up",
        "10s",
        "-d",
        "1m",
        "--timeout",
        "25s",
        "-H",
        "X-A: b",
        "--fail-if",
        "p95<500ms",
        "--max-delay",
        "none",
    ]);
    assert_eq!(a.threads, [1, 2, 4, 8]);
    assert_eq!(a.think.len(), 4);
    assert_eq!(a.headers, [("X-A".to_string(), "b".to_string())]);
    assert_eq!(a.max_delay.0, None);
    let o = a.to_options(vec![]).unwrap();
    let plans = vaccel_loadtest::study::plans(&o).unwrap();
    assert_eq!(plans.len(), 16);
    assert_eq!(plans[0].key.label, "t1-think0s");
    assert_eq!(plans[2].key.label, "t1-think5s");
    assert_eq!(plans[3].key.label, "t1-thinkg1s-200ms");
    assert_eq!(plans[15].key.label, "t8-thinkg1s-200ms");
    let a = parse(&["http://h/f", "--rate", "10,50", "-t", "4"]);
    let plans = vaccel_loadtest::study::plans(&a.to_options(vec![]).unwrap()).unwrap();
    let labels: Vec<_> = plans.iter().map(|p| p.key.label.clone()).collect();
    assert_eq!(labels, ["rate10", "rate50"]);
}

#[test]
fn bad_flags_are_clear_errors() {
    let e = parse_err(&["http://h/", "--think", "soon"]);
    assert!(e.contains("think time 'soon'"), "{e}");
    let e = parse_err(&["http://h/", "--fail-if", "p95 ~ 5"]);
    assert!(e.contains("threshold 'p95 ~ 5'"), "{e}");
    let e = parse_err(&["http://h/", "--fail-if", "latency<5ms"]);
    assert!(e.contains("unknown metric"), "{e}");
    let e = parse_err(&["http://h/", "--duration", "forever"]);
    assert!(e.contains("duration 'forever'"), "{e}");
    let e = parse_err(&["http://h/", "--stages", "10s"]);
    assert!(e.contains("stages '10s'"), "{e}");
    let e = parse_err(&["http://h/", "--rate=-5"]);
    assert!(e.contains("rate"), "{e}");
    let e = parse_err(&["http://h/", "-H", "novalue"]);
    assert!(e.contains("Name: value"), "{e}");
    let e = parse_err(&["http://h/", "--body", "a", "--images", "b"]);
    assert!(e.contains("cannot be used with"), "{e}");
    let e = parse_err(&[]);
    assert!(e.contains("URL"), "{e}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("o").to_string_lossy().to_string();
    let err = |args: &[&str]| {
        let (r, _) = run(&[args, &["-q", "-o", &o, "-n", "1"]].concat());
        r.unwrap_err().to_string()
    };
    for (url, want) in [
        ("not a url", "bad URL 'not a url'"),
        ("ftp://h/x", "unsupported scheme 'ftp'"),
        ("https://h/x", "https is not supported"),
        ("/just/a/path", "expected an absolute http:// URL"),
        (
            "http://no-such-host.invalid/",
            "cannot resolve 'no-such-host.invalid:80'",
        ),
    ] {
        let e = err(&[url]);
        assert!(e.contains(want), "{url}: {e}");
    }
    let missing = dir.path().join("missing.jpg");
    let e = err(&["http://127.0.0.1:9/", "--body", missing.to_str().unwrap()]);
    assert!(
        e.contains("cannot read input") && e.contains("missing.jpg"),
        "{e}"
    );
    let e = err(&["http://127.0.0.1:9/", "--rate", "5", "--think", "1"]);
    assert!(e.contains("--think is for the closed model"), "{e}");
    let e = err(&["http://127.0.0.1:9/", "-t", "0"]);
    assert!(e.contains("--threads must be at least 1"), "{e}");
    let e = err(&["http://127.0.0.1:9/", "-t", "2,2"]);
    assert!(e.contains("appears twice"), "{e}");
    let e = err(&["http://127.0.0.1:9/", "--json-frame", "image"]);
    assert!(e.contains("--json-frame needs an input"), "{e}");
    let e = err(&["http://127.0.0.1:9/", "-X", "BAD METHOD"]);
    assert!(e.contains("bad HTTP method"), "{e}");
    // Nothing was written for studies that could not start.
    assert!(!dir.path().join("o").join("study.json").exists());
}
