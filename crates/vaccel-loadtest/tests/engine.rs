//! The engine against the scriptable test server: counts, latencies,
//! timeouts, outcome classes, ramp-up, think time, the open model,
//! connections and inputs. Timing assertions are generous: these tests
//! share a small, loaded machine.

mod common;

use std::time::Duration;

use common::{ms, n, only, options, run};
use vaccel_loadtest::inputs::Input;
use vaccel_loadtest::model::Outcome;
use vaccel_loadtest::spec::parse_stages;
use vaccel_loadtest::testing::TestServer;

#[test]
fn fixed_delay_counts_and_percentiles() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(
        srv.url("/function/blur?delay_ms=50&handler_ms=40&op_ms=30"),
        dir.path(),
    );
    o.threads = vec![2];
    o.duration = Some(Duration::from_secs(2));
    let rep = run(&o);
    let r = only(&rep);
    let count = r.count();
    // 2 threads back to back for 2 s at ~50 ms each: about 80.
    assert!((30..=90).contains(&count), "count {count}");
    assert_eq!(n(r, Outcome::Success), count);
    assert_eq!(srv.requests(), count);
    let p50 = ms(r.rtt.value_at_quantile(0.5));
    assert!((45.0..=70.0).contains(&p50), "p50 {p50} ms");
    assert!(ms(r.rtt.min()) >= 49.0, "min {}", ms(r.rtt.min()));
    assert_eq!(r.ttfb.len(), count);
    // The server's timing headers.
    assert_eq!(r.handler.len(), count);
    assert_eq!(r.op.len(), count);
    assert!((ms(r.handler.value_at_quantile(0.5)) - 40.0).abs() < 0.1);
    assert!((ms(r.op.value_at_quantile(0.5)) - 30.0).abs() < 0.1);
    // Keep-alive: one connection per thread, connect timed once each.
    assert_eq!(srv.connections(), 2);
    assert_eq!(r.connect.len(), 2);
    assert!(r.rtt_corrected.is_none());
    assert!(
        r.duration_s >= 2.0 && r.duration_s < 3.0,
        "{}",
        r.duration_s
    );
    let per_second: u64 = r.timeline.iter().map(|s| s.completed).sum();
    assert_eq!(per_second, count);
}

#[test]
fn iterations_are_exact() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/"), dir.path());
    o.threads = vec![3];
    o.iterations = Some(5);
    let rep = run(&o);
    let r = only(&rep);
    assert_eq!(r.count(), 15);
    assert_eq!(srv.requests(), 15);
    assert_eq!(n(r, Outcome::Success), 15);
}

#[test]
fn hanging_server_times_out() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/?hang=1"), dir.path());
    o.iterations = Some(2);
    o.timeout = Duration::from_millis(200);
    let rep = run(&o);
    let r = only(&rep);
    assert_eq!(n(r, Outcome::Timeout), 2);
    assert_eq!(r.count(), 2);
    assert!(r.rtt.is_empty(), "no response, no round trip");
    assert_eq!(r.success_rate(), 0.0);
    // The timed-out connection is not reused.
    assert_eq!(srv.connections(), 2);
    let jtl = std::fs::read_to_string(rep.dir.join("t1-think0s/results.jtl")).unwrap();
    let rows: Vec<&str> = jtl.lines().skip(1).collect();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(row.contains(",timeout,"), "{row}");
        assert!(row.contains("Non HTTP response code: timeout"), "{row}");
        let elapsed: u64 = row.split(',').nth(1).unwrap().parse().unwrap();
        assert!((195..1000).contains(&elapsed), "{row}");
    }
}

#[test]
fn outcome_classes() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(
        srv.url("/?cycle=200,429,500,502,504,404,reset,201"),
        dir.path(),
    );
    o.iterations = Some(16);
    let rep = run(&o);
    let r = only(&rep);
    assert_eq!(r.count(), 16);
    assert_eq!(n(r, Outcome::Success), 4);
    for c in [
        Outcome::TooMany,
        Outcome::ServerError,
        Outcome::BadGateway,
        Outcome::GatewayTimeout,
        Outcome::OtherStatus,
        Outcome::ConnectionError,
    ] {
        assert_eq!(n(r, c), 2, "{c:?}");
    }
    assert_eq!(n(r, Outcome::Timeout), 0);
    // Responses (any status) have round trips; the resets do not.
    assert_eq!(r.rtt.len(), 14);
    assert_eq!(rep.summaries[0].errors, 12);
}

#[test]
fn refused_connections_are_connection_errors() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(format!("http://127.0.0.1:{port}/"), dir.path());
    o.iterations = Some(3);
    let rep = run(&o);
    let r = only(&rep);
    assert_eq!(n(r, Outcome::ConnectionError), 3);
    let jtl = std::fs::read_to_string(rep.dir.join("t1-think0s/results.jtl")).unwrap();
    assert!(jtl.contains("connect to 127.0.0.1"), "{jtl}");
}

#[test]
fn ramp_up_spreads_thread_starts() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/?delay_ms=10"), dir.path());
    o.threads = vec![3];
    o.ramp_up = Duration::from_millis(1500);
    o.duration = Some(Duration::from_millis(2500));
    let rep = run(&o);
    let r = only(&rep);
    let t = srv.accept_times();
    assert_eq!(t.len(), 3, "one connection per thread");
    // Threads start at 0, 0.5 and 1 s.
    for (i, w) in t.windows(2).enumerate() {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(350) && gap <= Duration::from_millis(800),
            "gap {i}: {gap:?}"
        );
    }
    let span = t[2] - t[0];
    assert!(
        span >= Duration::from_millis(850) && span <= Duration::from_millis(1400),
        "{span:?}"
    );
    // The timeline sees the threads come up: 2 at the end of second 0, then 3.
    assert!(r.timeline[0].threads < 3, "{:?}", r.timeline[0]);
    assert_eq!(r.timeline[1].threads, 3, "{:?}", r.timeline[1]);
    // Requests per second grow with the threads.
    assert!(
        r.timeline[0].completed < r.timeline[1].completed,
        "{:?}",
        r.timeline
    );
}

#[test]
fn think_time_bounds_the_request_count() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/"), dir.path());
    o.think = vec!["100ms".parse().unwrap()];
    o.duration = Some(Duration::from_millis(1500));
    let rep = run(&o);
    let r = only(&rep);
    // At most one request per 100 ms (plus the first), at least half that.
    let count = r.count();
    assert!((7..=16).contains(&count), "count {count}");
    assert_eq!(r.key.label, "t1-think100ms");
    assert!((r.key.think_s - 0.1).abs() < 1e-9);
}

#[test]
fn open_model_keeps_the_rate() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/?delay_ms=5"), dir.path());
    o.rates = vec![50.0];
    o.threads = vec![4];
    o.duration = Some(Duration::from_secs(2));
    let rep = run(&o);
    let r = only(&rep);
    assert_eq!(r.key.label, "rate50");
    assert_eq!(r.key.rate, Some(50.0));
    // The schedule holds exactly 100 requests.
    assert_eq!(r.count() + r.dropped, 100);
    assert!(r.count() >= 95, "{}", r.count());
    let rps = r.count() as f64 / r.duration_s;
    assert!((45.0..=52.0).contains(&rps), "{rps}");
    let corrected = r.rtt_corrected.as_ref().expect("open model");
    assert_eq!(corrected.len(), r.rtt.len());
    assert!(corrected.value_at_quantile(0.5) >= r.rtt.value_at_quantile(0.5));
    let jtl = std::fs::read_to_string(rep.dir.join("rate50/results.jtl")).unwrap();
    let row = jtl.lines().nth(1).unwrap();
    let intended = row.rsplit(',').next().unwrap();
    assert!(
        intended.parse::<u64>().is_ok(),
        "intendedTimeStamp in {row}"
    );
}

#[test]
fn open_model_counts_late_and_dropped() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/?delay_ms=100"), dir.path());
    o.rates = vec![100.0];
    o.threads = vec![1];
    o.duration = Some(Duration::from_secs(1));
    o.max_delay = Some(Duration::from_millis(50));
    let rep = run(&o);
    let r = only(&rep);
    // One connection at 100 ms per request cannot keep 100/s: most are dropped.
    assert_eq!(r.count() + r.dropped, 100);
    assert!(r.dropped >= 70, "dropped {}", r.dropped);
    assert!(r.count() >= 5, "count {}", r.count());
    assert!(r.late >= 1, "late {}", r.late);
    // The corrected latency includes the wait for the connection.
    let c = r.rtt_corrected.as_ref().unwrap();
    assert!(c.max() > r.rtt.max(), "{} vs {}", c.max(), r.rtt.max());
}

#[test]
fn stages_follow_the_ramp() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/"), dir.path());
    // 0 -> 40/s over 1 s (20 requests), then 40/s for 0.5 s (20 requests).
    o.stages = Some(parse_stages("1s:40,500ms:40").unwrap());
    o.threads = vec![4];
    let rep = run(&o);
    let r = only(&rep);
    assert_eq!(r.key.label, "stages");
    assert_eq!(r.count() + r.dropped, 40);
    assert!(r.count() >= 38, "{}", r.count());
}

#[test]
fn keep_alive_off_connects_every_time() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/"), dir.path());
    o.iterations = Some(5);
    o.keep_alive = false;
    let rep = run(&o);
    let r = only(&rep);
    assert_eq!(n(r, Outcome::Success), 5);
    assert_eq!(srv.connections(), 5);
    assert_eq!(r.connect.len(), 5);
}

#[test]
fn server_closing_connections_is_not_an_error() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/?close=1"), dir.path());
    o.iterations = Some(5);
    let rep = run(&o);
    let r = only(&rep);
    assert_eq!(n(r, Outcome::Success), 5);
    assert_eq!(srv.connections(), 5);
}

#[test]
fn images_round_robin_and_json_frames() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for (name, len) in [("a.jpg", 10), ("b.jpg", 20), ("c.png", 30)] {
        std::fs::write(images.join(name), vec![7u8; len]).unwrap();
    }
    let mut o = options(srv.url("/"), dir.path());
    o.iterations = Some(6);
    o.input = Input::Images(images.clone());
    let rep = run(&o);
    assert_eq!(only(&rep).count(), 6);
    assert_eq!(srv.body_lengths(), [10, 20, 30, 10, 20, 30]);

    let srv = TestServer::start();
    let dir2 = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/"), dir2.path());
    o.iterations = Some(1);
    o.input = Input::Body(images.join("a.jpg"));
    o.json_frame = Some("image".into());
    run(&o);
    // {"image":"<16 base64 chars>"}
    assert_eq!(srv.body_lengths(), [10 + 16 + 2]);
}

#[test]
fn matrix_runs_every_combination_in_order() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/"), dir.path());
    o.threads = vec![1, 2];
    o.think = vec!["0".parse().unwrap(), "50ms".parse().unwrap()];
    o.duration = Some(Duration::from_millis(300));
    let rep = run(&o);
    let labels: Vec<&str> = rep.results.iter().map(|r| r.key.label.as_str()).collect();
    assert_eq!(
        labels,
        ["t1-think0s", "t1-think50ms", "t2-think0s", "t2-think50ms"]
    );
    for l in labels {
        for f in ["results.jtl", "summary.json", "histograms.hlog"] {
            assert!(rep.dir.join(l).join(f).is_file(), "{l}/{f}");
        }
    }
    assert!(rep.results.iter().all(|r| r.count() > 0));
}

#[test]
fn video_frames_round_robin() {
    let video = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../test-data/video/portrait-pan.mp4");
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(srv.url("/function/blur"), dir.path());
    o.iterations = Some(6);
    o.input = Input::Video {
        path: video,
        max_frames: Some(3),
    };
    let rep = run(&o);
    assert_eq!(n(only(&rep), Outcome::Success), 6);
    let lens = srv.body_lengths();
    assert_eq!(lens.len(), 6);
    assert!(lens.iter().all(|&l| l > 1000), "JPEG frames: {lens:?}");
    assert_eq!(lens[..3], lens[3..], "three frames, round-robin");
}
