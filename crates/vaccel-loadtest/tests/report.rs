//! The HTML report: one SVG per expected chart, nothing fetched from
//! elsewhere, the numbers of the input; from aggregates, from a JMeter JTL,
//! and from a real results folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vaccel_loadtest::model::{ConfigKey, ConfigResult, Outcome, Second};
use vaccel_loadtest::progress::ProgressMode;
use vaccel_loadtest::report::{self, ReportMeta};
use vaccel_loadtest::testing::TestServer;

fn key(threads: usize, think_s: f64) -> ConfigKey {
    ConfigKey {
        label: format!("t{threads}-think{think_s}s"),
        threads,
        think_s,
        rate: None,
    }
}

/// A synthetic aggregate: `n` requests around `base_ms`, some errors.
fn result(
    threads: usize,
    think_s: f64,
    n: u64,
    base_ms: u64,
    with_server_times: bool,
) -> ConfigResult {
    let mut r = ConfigResult::new(key(threads, think_s), 1_700_000_000_000);
    for i in 0..n {
        let rtt = base_ms * 1000 + (i * 7919) % (base_ms * 500);
        r.rtt.record(rtt).unwrap();
        r.ttfb.record(rtt - 100).unwrap();
        if with_server_times {
            r.handler.record(rtt * 8 / 10).unwrap();
            r.op.record(rtt * 6 / 10).unwrap();
        }
    }
    let errors = n / 50;
    r.outcomes.insert(Outcome::Success, n - errors);
    if errors > 0 {
        r.outcomes.insert(Outcome::GatewayTimeout, errors);
    }
    r.duration_s = 10.0;
    r.timeline = (0..10)
        .map(|t| Second {
            t,
            completed: n / 10,
            ok: (n - errors) / 10,
            rtt_sum_us: n / 10 * base_ms * 1000,
            rtt_max_us: base_ms * 1500,
            threads: threads as u64,
        })
        .collect();
    r
}

fn study() -> Vec<ConfigResult> {
    let mut v = Vec::new();
    for think in [0.0, 1.0] {
        for threads in [1, 2, 4] {
            v.push(result(
                threads,
                think,
                100 * threads as u64,
                40 + 20 * threads as u64,
                true,
            ));
        }
    }
    v
}

fn charts(html: &str) -> Vec<String> {
    html.match_indices("data-chart=\"")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

/// Structural checks every report must pass.
fn well_formed(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    for (open, close) in [
        ("<svg", "</svg>"),
        ("<figure", "</figure>"),
        ("<table", "</table>"),
        ("<section", "</section>"),
        ("<details", "</details>"),
        ("<tr", "</tr>"),
    ] {
        assert_eq!(
            html.matches(open).count(),
            html.matches(close).count(),
            "{open}"
        );
    }
    // One SVG per chart figure, and every chart has content.
    assert_eq!(
        html.matches("<svg").count(),
        html.matches("<figure").count()
    );
    assert!(!html.contains("chart failed"));
    // Self-contained: nothing to fetch.
    for bad in [
        "<script", "src=", "href=", "url(", "@import", "<link", "<img", "<iframe",
    ] {
        assert!(!html.contains(bad), "{bad}");
    }
}

#[test]
fn renders_every_chart_with_the_input_numbers() {
    let results = study();
    let mut meta = ReportMeta::new("Blur study");
    meta.url = Some("http://127.0.0.1:8080/function/blur".into());
    meta.command =
        Some("vaccel bench http://127.0.0.1:8080/function/blur -t 1,2,4 --think 0,1".into());
    let html = report::render(&results, &meta);
    well_formed(&html);
    // The only URL is the target, as text.
    assert_eq!(
        html.matches("http://").count(),
        2,
        "target and command line only"
    );
    assert!(!html.contains("https://"));

    let ids = charts(&html);
    let mut want: Vec<String> = [
        "success-rate",
        "rtt-mean-median",
        "handler-mean-median",
        "op-mean-median",
        "throughput",
        "rtt-box",
        "rtt-percentiles",
        "handler-box",
        "handler-percentiles",
        "op-box",
        "op-percentiles",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for n in 0..results.len() {
        want.push(format!("hist-{n}"));
        want.push(format!("latency-time-{n}"));
        want.push(format!("throughput-time-{n}"));
    }
    assert_eq!(ids, want);

    // Summary table: one row per configuration with its numbers.
    for r in &results {
        let at = html
            .find(&format!("<tr data-config=\"{}\">", r.key.label))
            .unwrap();
        let row = &html[at..at + html[at..].find("</tr>").unwrap()];
        let cells: Vec<&str> = row
            .split("<td")
            .skip(1)
            .map(|c| &c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()])
            .collect();
        assert_eq!(cells[0], r.key.label);
        assert_eq!(cells[1], r.key.threads.to_string());
        assert_eq!(cells[3], r.count().to_string());
        assert_eq!(cells[4], format!("{:.2}%", r.success_rate() * 100.0));
        assert_eq!(cells[5], format!("{:.2}", r.count() as f64 / 10.0));
        let median_ms = r.rtt.value_at_quantile(0.5) as f64 / 1000.0;
        let shown: f64 = cells[7].parse().unwrap();
        assert!(
            (shown - median_ms).abs() <= median_ms * 0.01,
            "{shown} vs {median_ms}"
        );
        let max_ms = r.rtt.max() as f64 / 1000.0;
        let shown: f64 = cells[12].parse().unwrap();
        assert!(
            (shown - max_ms).abs() <= max_ms * 0.01,
            "{shown} vs {max_ms}"
        );
        assert_eq!(cells[13], (r.count() / 50).to_string(), "504 column");
    }
    // Legends name the think times; the overview counts every request.
    assert!(html.contains("think 0 s") && html.contains("think 1 s"));
    let total: u64 = results.iter().map(|r| r.count()).sum();
    assert!(html.contains(&format!("<div class=\"v\">{total}</div>")));
}

#[test]
fn one_configuration_without_server_times() {
    let r = result(1, 0.0, 20, 50, false);
    let html = report::render(std::slice::from_ref(&r), &ReportMeta::new("one"));
    well_formed(&html);
    // No scaling charts for one point, no handler/op charts without data.
    assert_eq!(
        charts(&html),
        [
            "rtt-box",
            "rtt-percentiles",
            "hist-0",
            "latency-time-0",
            "throughput-time-0"
        ]
    );
    assert!(!html.contains("Handler and ML (op) time</h2>"));
}

#[test]
fn open_model_scales_by_rate_and_escapes_labels() {
    let mut v = Vec::new();
    for rate in [10.0, 20.0, 40.0] {
        let mut r = result(8, 0.0, 200, 30, false);
        r.key.rate = Some(rate);
        r.key.label = format!("rate{rate}<&>");
        r.dropped = 3;
        v.push(r);
    }
    let html = report::render(&v, &ReportMeta::new("open <model>"));
    well_formed(&html);
    assert!(html.contains("<title>open &lt;model&gt;</title>"));
    assert!(html.contains("rate10&lt;&amp;&gt;") && !html.contains("rate10<&>"));
    assert!(html.contains("target rate (requests/s)"));
    assert!(html.contains("<th>dropped</th>"));
}

#[test]
fn report_of_the_jmeter_fixture() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/jmeter/blur-study.jtl");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sub/jmeter.html");
    let loaded = report::write_report(&fixture, &out).unwrap();
    assert_eq!(loaded.results.len(), 2);
    let html = std::fs::read_to_string(&out).unwrap();
    well_formed(&html);
    assert!(html.contains("JMeter results: times are whole milliseconds"));
    for (label, count, rate) in [("t2-think0s", 35, "88.57%"), ("t4-think1s", 14, "78.57%")] {
        let at = html.find(&format!("<tr data-config=\"{label}\">")).unwrap();
        let row = &html[at..at + html[at..].find("</tr>").unwrap()];
        assert!(row.contains(&format!("<td>{count}</td>")), "{row}");
        assert!(row.contains(rate), "{row}");
    }
    // Outcome columns for the classes that occurred.
    for c in [
        "<th>429</th>",
        "<th>504</th>",
        "<th>timeout</th>",
        "<th>connection_error</th>",
        "<th>other_status</th>",
    ] {
        assert!(html.contains(c), "{c}");
    }
    assert_eq!(
        report::default_output(&fixture),
        fixture.with_extension("html")
    );
}

fn options(url: String, out: PathBuf) -> vaccel_loadtest::Options {
    let mut o = vaccel_loadtest::Options::new(url);
    o.out = Some(out);
    o.pause = Duration::ZERO;
    o.progress = ProgressMode::Quiet;
    o.quiet = true;
    o.workers = Some(2);
    o
}

#[test]
fn report_of_a_results_folder_matches_the_run() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(
        srv.url("/function/blur?delay_ms=3&handler_ms=2&op_ms=1"),
        dir.path().join("out"),
    );
    o.threads = vec![1, 2];
    o.iterations = Some(15);
    let run = vaccel_loadtest::run(&o, &mut Vec::new()).unwrap();
    let out = report::default_output(&run.dir);
    assert_eq!(out, run.dir.join("report.html"));
    let loaded = report::write_report(&run.dir, &out).unwrap();
    assert_eq!(loaded.results.len(), 2);
    for (live, back) in run.results.iter().zip(&loaded.results) {
        assert_eq!(back.key, live.key);
        assert_eq!(back.count(), live.count());
        assert_eq!(back.outcomes, live.outcomes);
        assert_eq!(back.started_ms, live.started_ms);
        assert_eq!(back.duration_s, live.duration_s);
        // Exact: the histograms are the run's.
        for (a, b) in [
            (&live.rtt, &back.rtt),
            (&live.handler, &back.handler),
            (&live.op, &back.op),
        ] {
            assert_eq!(a.len(), b.len());
            for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
                assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q), "q{q}");
            }
        }
        let completed: u64 = back.timeline.iter().map(|s| s.completed).sum();
        assert_eq!(completed, live.count());
        assert!(loaded.meta.latency.contains_key(&live.key.label));
    }
    let html = std::fs::read_to_string(&out).unwrap();
    well_formed(&html);
    assert!(html.contains("t2-think0s") && html.contains("<td>30</td>"));
    assert!(html.contains(&srv.url("/function/blur")));
    assert_eq!(loaded.meta.model.as_deref(), Some("closed"));

    // Without the JTLs (--no-jtl): histograms and outcomes still come from
    // the interval logs and summaries.
    for r in &run.results {
        std::fs::remove_file(run.dir.join(&r.key.label).join("results.jtl")).unwrap();
    }
    let again = report::load(&run.dir).unwrap();
    for (live, back) in run.results.iter().zip(&again.results) {
        assert_eq!(back.outcomes, live.outcomes);
        assert_eq!(back.rtt.len(), live.rtt.len());
        assert_eq!(back.rtt.max(), live.rtt.max());
    }
    well_formed(&report::render(&again.results, &again.meta));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = report::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("neither a vaccel bench results folder"), "{e}");
    std::fs::write(dir.path().join("study.json"), "{\"schema\": 1}").unwrap();
    let e = report::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("study.json: not a vaccel bench study.json"),
        "{e}"
    );
    let head = dir.path().join("head.jtl");
    std::fs::write(&head, vaccel_loadtest::jtl::header_line() + "\n").unwrap();
    let e = report::load(&head).unwrap_err().to_string();
    assert!(e.contains("no requests"), "{e}");
    let e = report::load(&dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}
