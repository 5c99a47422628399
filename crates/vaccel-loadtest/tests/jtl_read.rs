//! Reading JTL files: JMeter's (with and without a header, other column
//! orders, quoted fields) and ours (µs columns), and bad input.

use std::path::{Path, PathBuf};

use vaccel_loadtest::jtl::read::{
    self, JtlKind, ReadError, ReadOptions, outcome_of, parse_label, thread_group,
};
use vaccel_loadtest::jtl::write::JtlWriter;
use vaccel_loadtest::jtl::{Row, header_line};
use vaccel_loadtest::model::{ConfigResult, Outcome};

fn test_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data")
        .join(rel)
}

fn fixture() -> PathBuf {
    test_data("jmeter/blur-study.jtl")
}

fn n(r: &ConfigResult, o: Outcome) -> u64 {
    r.outcomes.get(&o).copied().unwrap_or(0)
}

fn check_fixture_groups(results: &[ConfigResult]) {
    assert_eq!(results.len(), 2, "two thread groups");
    let (a, b) = (&results[0], &results[1]);
    assert_eq!(a.key.label, "t2-think0s");
    assert_eq!(a.key.threads, 2);
    assert_eq!(a.key.think_s, 0.0);
    assert_eq!(b.key.label, "t4-think1s");
    assert_eq!(b.key.threads, 4);
    assert_eq!(b.key.think_s, 1.0);
    assert_eq!(a.count(), 35);
    assert_eq!(n(a, Outcome::Success), 31);
    assert_eq!(n(a, Outcome::TooMany), 1);
    assert_eq!(n(a, Outcome::GatewayTimeout), 1);
    assert_eq!(n(a, Outcome::Timeout), 1, "SocketTimeoutException");
    assert_eq!(
        n(a, Outcome::OtherStatus),
        1,
        "a 200 whose assertion failed"
    );
    assert_eq!(b.count(), 14);
    assert_eq!(n(b, Outcome::Success), 11);
    assert_eq!(n(b, Outcome::ConnectionError), 2, "refused and reset");
    assert_eq!(n(b, Outcome::OtherStatus), 1);
    // RTT only for requests that got a status: the time-out and the two
    // connection errors are not in it.
    assert_eq!(a.rtt.len(), 34);
    assert_eq!(b.rtt.len(), 12);
    // JMeter's milliseconds, in µs: the 504 took 10003 ms.
    assert!(a.rtt.equivalent(a.rtt.max(), 10_003_000), "{}", a.rtt.max());
    // No handler / op times in a JMeter file; Connect only when non-zero.
    assert!(a.handler.is_empty() && a.op.is_empty());
    assert!(!a.connect.is_empty() && a.connect.len() < a.count());
    // Timeline: every request counted once, 2xx ones as ok.
    let completed: u64 = a.timeline.iter().map(|s| s.completed).sum();
    let ok: u64 = a.timeline.iter().map(|s| s.ok).sum();
    assert_eq!((completed, ok), (35, 31));
    assert!(a.timeline.iter().all(|s| s.threads <= 2));
    assert!(
        a.duration_s > 25.0,
        "the time-out ends at 25 s: {}",
        a.duration_s
    );
}

#[test]
fn jmeter_fixture_by_header_name() {
    let d = read::read_file(&fixture(), &ReadOptions::default()).unwrap();
    assert_eq!(d.kind, JtlKind::JMeter);
    assert_eq!(d.rows, 49, "a quoted field spanning two lines is one row");
    assert_eq!(
        d.url.as_deref(),
        Some("http://gateway.openfaas:8080/function/blur")
    );
    assert_eq!(d.request_label.as_deref(), Some("blur"));
    check_fixture_groups(&d.results);
    // Per-second percentiles exist for the seconds with responses.
    let lat = &d.latency["t2-think0s"];
    assert!(!lat.is_empty());
    assert!(
        lat.iter()
            .all(|s| s.p50_us <= s.p95_us && s.p95_us <= s.max_us)
    );
}

#[test]
fn jmeter_without_header_in_default_order() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture()).unwrap();
    let body = text.split_once('\n').unwrap().1;
    let p = dir.path().join("noheader.jtl");
    std::fs::write(&p, body).unwrap();
    let d = read::read_file(&p, &ReadOptions::default()).unwrap();
    assert_eq!(d.kind, JtlKind::JMeterNoHeader);
    assert_eq!(d.rows, 49);
    check_fixture_groups(&d.results);
}

#[test]
fn jmeter_columns_in_another_order_and_missing_ones() {
    // Only some columns, in another order, as a customised saveservice writes.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("custom.jtl");
    std::fs::write(
        &p,
        "label,timeStamp,success,elapsed,responseCode,threadName,extra\r\n\
         blur,1700000000000,true,120,200,Users 1-1,x\r\n\
         blur,1700000000200,false,30000,Non HTTP response code: org.apache.http.conn.ConnectTimeoutException,Users 1-2,x\r\n\
         blur,1700000001100,true,80,200,Users 1-1,x\r\n\
         blur,1700000001500,false,90,503,Users 1-2,x\r\n",
    )
    .unwrap();
    let d = read::read_file(&p, &ReadOptions::default()).unwrap();
    assert_eq!(d.kind, JtlKind::JMeter);
    assert_eq!(d.results.len(), 1);
    let r = &d.results[0];
    assert_eq!(r.key.label, "custom", "one group: named after the file");
    assert_eq!(
        r.key.threads, 1,
        "no grpThreads column, no t<N> in the name"
    );
    assert_eq!(r.count(), 4);
    assert_eq!(n(r, Outcome::Success), 2);
    assert_eq!(n(r, Outcome::Timeout), 1, "ConnectTimeoutException");
    assert_eq!(n(r, Outcome::OtherStatus), 1);
    assert_eq!(r.rtt.len(), 3);
    assert!(
        r.ttfb.is_empty(),
        "no Latency column: no time to first byte"
    );
    assert_eq!(r.started_ms, 1_700_000_000_000);
    assert_eq!(r.timeline.len(), 31, "the time-out completes at 30.2 s");
    assert_eq!(r.timeline[0].completed, 1);
    assert_eq!(r.timeline[1].completed, 2);
}

#[test]
fn outcomes_from_jmeter_fields() {
    let row = |code: &str, msg: &str, ok: bool, fail: &str| Row {
        response_code: code.into(),
        response_message: msg.into(),
        success: ok,
        failure_message: fail.into(),
        ..Row::default()
    };
    let cases = [
        (row("200", "OK", true, ""), Outcome::Success),
        (row("200", "OK", false, "Test failed"), Outcome::OtherStatus),
        (row("404", "Not Found", true, ""), Outcome::Success),
        (row("404", "Not Found", false, ""), Outcome::OtherStatus),
        (row("429", "Too Many Requests", false, ""), Outcome::TooMany),
        (row("500", "", false, ""), Outcome::ServerError),
        (row("502", "Bad Gateway", false, ""), Outcome::BadGateway),
        (
            row("504", "Gateway Timeout", false, ""),
            Outcome::GatewayTimeout,
        ),
        (
            row(
                "Non HTTP response code: java.net.SocketTimeoutException",
                "Non HTTP response message: Read timed out",
                false,
                "",
            ),
            Outcome::Timeout,
        ),
        (
            row(
                "Non HTTP response code: org.apache.http.conn.HttpHostConnectException",
                "Non HTTP response message: Connect to x:8080 failed: Connection refused",
                false,
                "",
            ),
            Outcome::ConnectionError,
        ),
        (
            row(
                "Non HTTP response code: java.net.SocketException",
                "Non HTTP response message: Connection reset",
                false,
                "",
            ),
            Outcome::ConnectionError,
        ),
        (
            row(
                "Non HTTP response code: org.apache.http.NoHttpResponseException",
                "Non HTTP response message: The target server failed to respond",
                false,
                "",
            ),
            Outcome::ConnectionError,
        ),
    ];
    for (r, want) in cases {
        assert_eq!(outcome_of(&r), want, "{r:?}");
    }
    let mut ours = row("200", "OK", true, "");
    ours.outcome = Some(Outcome::GatewayTimeout);
    assert_eq!(
        outcome_of(&ours),
        Outcome::GatewayTimeout,
        "our column wins"
    );
}

#[test]
fn names() {
    assert_eq!(thread_group("Thread Group 1-3"), "Thread Group");
    assert_eq!(thread_group("vaccel-bench 1-12"), "vaccel-bench");
    assert_eq!(thread_group("t4-think1s 2-4"), "t4-think1s");
    assert_eq!(thread_group("solo"), "solo");
    assert_eq!(thread_group("a 1-x"), "a 1-x");
    assert_eq!(parse_label("t4-think1s"), (Some(4), Some(1.0), None));
    assert_eq!(parse_label("t16-think500ms"), (Some(16), Some(0.5), None));
    assert_eq!(parse_label("t8-rate50"), (Some(8), None, Some(50.0)));
    assert_eq!(parse_label("rate2.5"), (None, None, Some(2.5)));
    assert_eq!(parse_label("blur"), (None, None, None));
}

fn our_row(config: &str, ts: u64, rtt_us: u64, outcome: Outcome, status: u16) -> Row {
    Row {
        timestamp_ms: ts,
        elapsed_ms: (rtt_us + 500) / 1000,
        label: "blur".into(),
        response_code: if status == 0 {
            "Non HTTP response code: connection error".into()
        } else {
            status.to_string()
        },
        thread_name: "vaccel-bench 1-1".into(),
        success: outcome == Outcome::Success,
        grp_threads: 2,
        all_threads: 2,
        url: "http://127.0.0.1:1/function/blur".into(),
        latency_ms: rtt_us / 2000,
        elapsed_us: Some(rtt_us),
        latency_us: Some(rtt_us / 2),
        connect_us: (ts % 2 == 0).then_some(150),
        handler_us: (status != 0).then_some(rtt_us - 1000),
        op_us: (status != 0).then_some(rtt_us - 2000),
        outcome: Some(outcome),
        config: config.into(),
        ..Row::default()
    }
}

#[test]
fn ours_is_exact_to_the_microsecond() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("results.jtl");
    let mut w = JtlWriter::new(std::fs::File::create(&p).unwrap()).unwrap();
    let t0 = 1_700_000_000_000u64;
    let rows = [
        our_row("t2-think0s", t0 + 10, 41_234, Outcome::Success, 200),
        our_row("t2-think0s", t0 + 900, 150_321, Outcome::Success, 200),
        our_row("t2-think0s", t0 + 1_200, 5_001, Outcome::ConnectionError, 0),
        our_row("t4-think0s", t0 + 20_000, 77_777, Outcome::TooMany, 429),
        our_row("t2-think0s", t0 + 2_100, 99_999, Outcome::Success, 200),
    ];
    for r in &rows {
        w.write_row(r).unwrap();
    }
    w.finish().unwrap();
    assert!(
        std::fs::read_to_string(&p)
            .unwrap()
            .starts_with(&header_line())
    );

    // With the start from summary.json.
    let mut opts = ReadOptions::default();
    opts.starts.insert("t2-think0s".into(), t0);
    let d = read::read_file(&p, &opts).unwrap();
    assert_eq!(d.kind, JtlKind::Ours);
    assert_eq!(d.results.len(), 2);
    let a = &d.results[0];
    assert_eq!(a.key.label, "t2-think0s");
    assert_eq!(a.key.threads, 2);
    assert_eq!(a.count(), 4);
    assert_eq!(n(a, Outcome::ConnectionError), 1);
    assert_eq!(a.rtt.len(), 3, "no RTT without a response");
    assert_eq!(a.rtt.max(), a.rtt.highest_equivalent(150_321));
    assert!(a.rtt.equivalent(a.rtt.min(), 41_234));
    assert_eq!(a.handler.len(), 3);
    assert!(a.handler.equivalent(a.handler.min(), 40_234));
    assert!(a.op.equivalent(a.op.min(), 39_234));
    assert_eq!(a.connect.len(), 4, "connectUs present on every row here");
    assert_eq!(a.started_ms, t0);
    // Completion seconds since t0: 0.05 -> 0, 1.05 -> 1, 1.205 -> 1, 2.2 -> 2.
    let per_sec: Vec<u64> = a.timeline.iter().map(|s| s.completed).collect();
    assert_eq!(per_sec, [1, 2, 1]);
    assert_eq!(a.timeline[1].ok, 1);
    assert_eq!(a.timeline[1].rtt_max_us, 150_321);
    assert_eq!(
        a.timeline[1].rtt_sum_us, 150_321,
        "the failed request has no RTT"
    );
    // The other configuration starts at its own first request.
    let b = &d.results[1];
    assert_eq!(b.key.label, "t4-think0s");
    assert_eq!(b.started_ms, t0 + 20_000);
    assert_eq!(n(b, Outcome::TooMany), 1);
}

#[test]
fn bad_input_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let case = |name: &str, content: &[u8]| -> ReadError {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        read::read_file(&p, &ReadOptions::default()).unwrap_err()
    };
    let e = case("empty.jtl", b"");
    assert!(e.to_string().contains("empty.jtl:1: empty file"), "{e}");
    let e = case("notes.txt", b"hello world\nthis is not, a results file\n");
    assert!(e.to_string().contains("notes.txt:1: not a JTL"), "{e}");
    let e = case(
        "noelapsed.jtl",
        b"timeStamp,label,success\n1700000000000,a,true\n",
    );
    let s = e.to_string();
    assert!(
        s.contains("noelapsed.jtl:1:") && s.contains("elapsed") && s.contains("lacks"),
        "{s}"
    );
    let e = case(
        "badrow.jtl",
        b"timeStamp,elapsed,label\n1700000000000,5,a\n1700000000001,five,a\n",
    );
    let s = e.to_string();
    assert!(
        s.contains("badrow.jtl:3:") && s.contains("elapsed is \"five\""),
        "{s}"
    );
    let e = case(
        "dates.jtl",
        b"timeStamp,elapsed,label\n2024/11/22 10:00:00.000,5,a\n",
    );
    assert!(e.to_string().contains("dates.jtl:2: timeStamp"), "{e}");
    assert!(e.to_string().contains("timestamp_format=ms"), "{e}");
    let e = case(
        "outcome.jtl",
        format!(
            "{}\n1700000000000,5,a,200,OK,t 1-1,text,true,,1,1,1,1,u,1,0,0,5000,,,,,great,c,\n",
            header_line()
        )
        .as_bytes(),
    );
    assert!(
        e.to_string()
            .contains("outcome.jtl:2: outcome is \"great\""),
        "{e}"
    );
    // A binary file (the test video) is refused, not misread.
    let e = read::read_file(
        &test_data("video/portrait-pan.mp4"),
        &ReadOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("portrait-pan.mp4:"), "{e}");
    // A missing file is an I/O error naming it.
    let e = read::read_file(&dir.path().join("nope.jtl"), &ReadOptions::default()).unwrap_err();
    assert!(
        matches!(e, ReadError::Io { .. }) && e.to_string().contains("nope.jtl"),
        "{e}"
    );
}
