//! The results folder: JTL columns, summary.json schema, hlog tags, study.json.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{only, options, run};
use vaccel_loadtest::jtl::{EXTRA_COLUMNS, JMETER_COLUMNS, col};
use vaccel_loadtest::study::StudyFile;
use vaccel_loadtest::testing::TestServer;

/// A CSV line split into fields (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn jtl_has_the_specified_columns() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let before = now_ms();
    let mut o = options(
        srv.url("/function/blur?delay_ms=20&handler_ms=15&op_ms=10"),
        dir.path(),
    );
    o.threads = vec![2];
    o.iterations = Some(3);
    let rep = run(&o);
    let jtl = std::fs::read_to_string(rep.dir.join("t2-think0s/results.jtl")).unwrap();
    let mut lines = jtl.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header,
        "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,\
         failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect,\
         elapsedUs,latencyUs,connectUs,handlerUs,opUs,outcome,config,intendedTimeStamp"
    );
    let expected: Vec<&str> = JMETER_COLUMNS
        .iter()
        .chain(&EXTRA_COLUMNS)
        .copied()
        .collect();
    assert_eq!(csv_fields(header), expected);
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    assert_eq!(rows.len(), 6);
    let mut threads = BTreeSet::new();
    let mut connects = 0;
    for r in &rows {
        assert_eq!(r.len(), 25, "{r:?}");
        let ts: u64 = r[col::TIME_STAMP].parse().unwrap();
        assert!(ts >= before && ts <= now_ms(), "{ts}");
        let elapsed: u64 = r[col::ELAPSED].parse().unwrap();
        let elapsed_us: u64 = r[col::ELAPSED_US].parse().unwrap();
        assert!(elapsed.abs_diff(elapsed_us / 1000) <= 1, "{r:?}");
        assert!(elapsed >= 20, "{r:?}");
        assert_eq!(r[col::LABEL], "blur");
        assert_eq!(r[col::RESPONSE_CODE], "200");
        assert_eq!(r[col::RESPONSE_MESSAGE], "OK");
        assert!(r[col::THREAD_NAME].starts_with("vaccel-bench 1-"), "{r:?}");
        threads.insert(r[col::THREAD_NAME].clone());
        assert_eq!(r[col::DATA_TYPE], "text");
        assert_eq!(r[col::SUCCESS], "true");
        assert_eq!(r[col::FAILURE_MESSAGE], "");
        assert!(r[col::BYTES].parse::<u64>().unwrap() > 2);
        assert!(r[col::SENT_BYTES].parse::<u64>().unwrap() > 20);
        assert!(["1", "2"].contains(&r[col::GRP_THREADS].as_str()), "{r:?}");
        assert_eq!(r[col::ALL_THREADS], r[col::GRP_THREADS]);
        assert_eq!(r[col::URL], o.url);
        let latency: u64 = r[col::LATENCY].parse().unwrap();
        assert!(latency <= elapsed);
        assert_eq!(r[col::IDLE_TIME], "0");
        r[col::CONNECT].parse::<u64>().unwrap();
        r[col::LATENCY_US].parse::<u64>().unwrap();
        if !r[col::CONNECT_US].is_empty() {
            connects += 1;
        }
        assert_eq!(r[col::HANDLER_US], "15000");
        assert_eq!(r[col::OP_US], "10000");
        assert_eq!(r[col::OUTCOME], "2xx");
        assert_eq!(r[col::CONFIG], "t2-think0s");
        assert_eq!(r[col::INTENDED_TIME_STAMP], "", "closed model");
    }
    assert_eq!(threads.len(), 2);
    assert_eq!(connects, 2, "connect time only on new connections");
}

#[test]
fn jtl_quotes_failure_messages() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(format!("http://127.0.0.1:{port}/x"), dir.path());
    o.iterations = Some(1);
    let rep = run(&o);
    let jtl = std::fs::read_to_string(rep.dir.join("t1-think0s/results.jtl")).unwrap();
    let row = csv_fields(jtl.lines().nth(1).unwrap());
    assert_eq!(row.len(), 25, "{row:?}");
    assert_eq!(row[col::SUCCESS], "false");
    assert_eq!(
        row[col::RESPONSE_CODE],
        "Non HTTP response code: connection error"
    );
    assert!(row[col::FAILURE_MESSAGE].contains("connect to"), "{row:?}");
    assert_eq!(row[col::OUTCOME], "connection_error");
    assert_eq!(row[col::LATENCY_US], "");

    let mut o = options(srv.url("/?status=504"), &dir.path().join("b"));
    o.iterations = Some(1);
    let rep = run(&o);
    let jtl = std::fs::read_to_string(rep.dir.join("t1-think0s/results.jtl")).unwrap();
    let row = csv_fields(jtl.lines().nth(1).unwrap());
    assert_eq!(row[col::RESPONSE_CODE], "504");
    assert_eq!(row[col::RESPONSE_MESSAGE], "Gateway Timeout");
    assert_eq!(row[col::FAILURE_MESSAGE], "HTTP 504 Gateway Timeout");
    assert_eq!(row[col::OUTCOME], "504");
}

#[test]
fn summary_json_schema() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/?delay_ms=5&handler_ms=3"), dir.path());
    o.iterations = Some(10);
    let rep = run(&o);
    let text = std::fs::read_to_string(rep.dir.join("t1-think0s/summary.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let want: BTreeSet<&str> = [
        "schema",
        "config",
        "started_ms",
        "count",
        "success_rate",
        "throughput_rps",
        "duration_s",
        "outcomes",
        "errors",
        "rtt_ms",
        "ttfb_ms",
        "connect_ms",
        "handler_ms",
        "op_ms",
        "rtt_corrected_ms",
        "late",
        "dropped",
    ]
    .into();
    assert_eq!(keys, want);
    assert_eq!(v["schema"], "vaccel-bench-summary/1");
    assert_eq!(v["config"]["label"], "t1-think0s");
    assert_eq!(v["config"]["threads"], 1);
    assert_eq!(v["count"], 10);
    assert_eq!(v["success_rate"], 1.0);
    assert_eq!(v["errors"], 0);
    let outcomes: BTreeSet<&str> = v["outcomes"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        outcomes,
        [
            "2xx",
            "429",
            "500",
            "502",
            "504",
            "other_status",
            "timeout",
            "connection_error"
        ]
        .into()
    );
    let stat_keys: BTreeSet<&str> = v["rtt_ms"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        stat_keys,
        [
            "count", "min", "mean", "stddev", "median", "p90", "p95", "p99", "p999", "max"
        ]
        .into()
    );
    assert!(v["rtt_ms"]["median"].as_f64().unwrap() >= 5.0);
    assert!(v["handler_ms"]["median"].as_f64().unwrap() >= 2.9);
    assert!(v["op_ms"].is_null(), "no X-Vaccel-Op-Seconds");
    assert!(v["rtt_corrected_ms"].is_null(), "closed model");
    // It reads back into the type, and equals what the report returned.
    let s: vaccel_loadtest::summary::Summary = serde_json::from_str(&text).unwrap();
    assert_eq!(s, rep.summaries[0]);
}

#[test]
fn hlog_has_the_tags() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/?delay_ms=2&handler_ms=1&op_ms=1"), dir.path());
    o.rates = vec![40.0];
    o.threads = vec![2];
    o.duration = Some(Duration::from_millis(1500));
    let rep = run(&o);
    let r = only(&rep);
    let path = rep.dir.join("rate40/histograms.hlog");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("#[BaseTime:"), "{text}");
    assert!(text.contains("Tag=rtt,"), "{text}");
    let totals = vaccel_loadtest::hlog::read_totals(&path).unwrap();
    let tags: Vec<&str> = totals.keys().map(String::as_str).collect();
    assert_eq!(
        tags,
        ["connect", "handler", "op", "rtt", "rtt_corrected", "ttfb"]
    );
    assert_eq!(totals["rtt"].len(), r.rtt.len());
    assert_eq!(totals["rtt"].max(), r.rtt.max());
    assert_eq!(totals["rtt_corrected"].len(), r.count());
    assert_eq!(totals["connect"].len(), 2);
    // Intervals of one second: at least two of them for rtt.
    assert!(text.matches("Tag=rtt,").count() >= 2, "{text}");
}

#[test]
fn study_json_lists_the_configurations() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/"), dir.path());
    o.threads = vec![1, 2];
    o.iterations = Some(2);
    o.command = vec!["vaccel".into(), "bench".into()];
    let rep = run(&o);
    let s: StudyFile =
        serde_json::from_slice(&std::fs::read(rep.dir.join("study.json")).unwrap()).unwrap();
    assert_eq!(s.schema, "vaccel-bench-study/1");
    assert_eq!(s.model, "closed");
    assert_eq!(s.command, ["vaccel", "bench"]);
    assert_eq!(s.request_label, "127.0.0.1");
    let labels: Vec<&str> = s.configurations.iter().map(|k| k.label.as_str()).collect();
    assert_eq!(labels, ["t1-think0s", "t2-think0s"]);
    assert_eq!(s.planned, s.configurations);
    assert!(s.ended_ms.unwrap() >= s.started_ms);
    assert!(!s.interrupted);
    assert_eq!(s.settings.timeout_s, 25.0);
    assert_eq!(s.settings.iterations, Some(2));
}

#[test]
fn results_folder_is_not_overwritten_without_force() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/"), dir.path());
    o.iterations = Some(1);
    run(&o);
    let e = vaccel_loadtest::run(&o, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    o.force = true;
    run(&o);
}

#[test]
fn no_jtl_writes_summaries_only() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/"), dir.path());
    o.iterations = Some(3);
    o.jtl = false;
    let rep = run(&o);
    let d = rep.dir.join("t1-think0s");
    assert!(!d.join("results.jtl").exists());
    assert!(d.join("summary.json").is_file());
    assert!(d.join("histograms.hlog").is_file());
}
