//! `merge`: two instances that ran the same study at the same time become
//! one results folder: exact histograms, every row, summed outcomes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vaccel_loadtest::jtl::read::{JtlRows, ReadOptions, read_file};
use vaccel_loadtest::merge::{self, MergeError, MergeFile, MergeOptions};
use vaccel_loadtest::model::{Outcome, histogram};
use vaccel_loadtest::progress::ProgressMode;
use vaccel_loadtest::study::StudyFile;
use vaccel_loadtest::summary::Summary;
use vaccel_loadtest::testing::TestServer;
use vaccel_loadtest::{Options, StudyReport};

fn options(url: String, out: PathBuf, threads: Vec<usize>) -> Options {
    let mut o = Options::new(url);
    o.out = Some(out);
    o.pause = Duration::ZERO;
    o.progress = ProgressMode::Quiet;
    o.quiet = true;
    o.workers = Some(1);
    o.threads = threads;
    o.iterations = Some(12);
    o
}

fn run(o: &Options) -> StudyReport {
    vaccel_loadtest::run(o, &mut Vec::new()).expect("the study runs")
}

fn json<T: serde::de::DeserializeOwned>(p: &Path) -> T {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn two_instances_merge_exactly() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    // Every 7th request is a 429, to have outcomes to add up.
    let url =
        srv.url("/function/blur?delay_ms=2&handler_ms=1&op_ms=1&cycle=200,200,200,200,200,200,429");
    let (a, b) = std::thread::scope(|s| {
        let ta = s.spawn(|| run(&options(url.clone(), dir.path().join("0"), vec![1, 2])));
        let tb = s.spawn(|| run(&options(url.clone(), dir.path().join("1"), vec![1, 2])));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let out = dir.path().join("merged");
    let opts = MergeOptions {
        command: vec!["vaccel".into(), "bench".into(), "merge".into()],
        ..MergeOptions::default()
    };
    let m = merge::merge(&[a.dir.clone(), b.dir.clone()], &out, &opts).unwrap();
    assert_eq!(m.results.len(), 2);
    assert_eq!(m.rows, 2 * (12 + 24));

    for (i, r) in m.results.iter().enumerate() {
        let (ra, rb) = (&a.results[i], &b.results[i]);
        // Threads are the load the target saw; the label stays.
        assert_eq!(r.key.label, ra.key.label);
        assert_eq!(r.key.threads, 2 * ra.key.threads);
        assert_eq!(r.count(), ra.count() + rb.count());
        for o in Outcome::ALL {
            let get =
                |x: &vaccel_loadtest::model::ConfigResult| x.outcomes.get(&o).copied().unwrap_or(0);
            assert_eq!(get(r), get(ra) + get(rb), "{o:?}");
        }
        // Exact histograms: the sum of the instances'.
        for (merged, x, y) in [
            (&r.rtt, &ra.rtt, &rb.rtt),
            (&r.handler, &ra.handler, &rb.handler),
            (&r.op, &ra.op, &rb.op),
        ] {
            let mut want = histogram();
            want.add(x).unwrap();
            want.add(y).unwrap();
            assert_eq!(merged.len(), want.len());
            for q in [0.0, 0.25, 0.5, 0.9, 0.99, 1.0] {
                assert_eq!(
                    merged.value_at_quantile(q),
                    want.value_at_quantile(q),
                    "q{q}"
                );
            }
            assert_eq!(merged.mean(), want.mean());
        }
        // Start and end span both instances.
        assert_eq!(r.started_ms, ra.started_ms.min(rb.started_ms));
        let end =
            |x: &vaccel_loadtest::model::ConfigResult| x.started_ms as f64 + x.duration_s * 1000.0;
        assert!((r.started_ms as f64 + r.duration_s * 1000.0 - end(ra).max(end(rb))).abs() < 1.0);
        // The timeline counts every request once.
        let completed: u64 = r.timeline.iter().map(|s| s.completed).sum();
        assert_eq!(completed, r.count());
        assert!(
            r.timeline.iter().any(|s| s.threads > ra.key.threads as u64),
            "threads add up"
        );

        // Files: summary recomputed, hlog totals, merged JTL.
        let cdir = out.join(&r.key.label);
        let s: Summary = json(&cdir.join("summary.json"));
        let want = Summary::from_result(r);
        assert_eq!(s.count, r.count());
        assert_eq!(
            (&s.config, &s.outcomes, s.started_ms),
            (&want.config, &want.outcomes, want.started_ms)
        );
        let (got, exp) = (s.rtt_ms.unwrap(), want.rtt_ms.unwrap());
        assert_eq!(
            (got.count, got.median, got.p99, got.max),
            (exp.count, exp.median, exp.p99, exp.max)
        );
        let totals = vaccel_loadtest::hlog::read_totals(&cdir.join("histograms.hlog")).unwrap();
        assert_eq!(totals["rtt"].len(), r.rtt.len());
        assert_eq!(totals["rtt"].max(), r.rtt.max());
        let back = read_file(&cdir.join("results.jtl"), &ReadOptions::default()).unwrap();
        assert_eq!(back.rows, r.count());
        assert_eq!(back.results[0].rtt.len(), r.rtt.len());
        // Rows keep each instance's order, threads get the instance's name.
        let mut rows = JtlRows::open(&cdir.join("results.jtl")).unwrap();
        let mut per = [0u64; 2];
        while let Some((_, row)) = rows.next_row().unwrap() {
            let inst = match row.thread_name.split_once('-') {
                Some(("0", rest)) if rest.starts_with("vaccel-bench ") => 0,
                Some(("1", rest)) if rest.starts_with("vaccel-bench ") => 1,
                _ => panic!("thread name {}", row.thread_name),
            };
            per[inst] += 1;
        }
        assert_eq!(per, [ra.count(), rb.count()]);
    }
    let study: StudyFile = json(&out.join("study.json"));
    assert_eq!(study.configurations.len(), 2);
    assert_eq!(study.configurations[1].threads, 4);
    assert_eq!(
        study.started_ms,
        a.results[0]
            .started_ms
            .min(b.results[0].started_ms)
            .min(study.started_ms)
    );
    let mf: MergeFile = json(&out.join("merge.json"));
    assert_eq!(mf.schema, merge::MERGE_SCHEMA);
    assert_eq!(mf.instance_names, ["0", "1"]);
    assert_eq!(mf.rows["t2-think0s"], 48);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("2 instances merged"));

    // The merged folder reports like any other.
    let loaded = vaccel_loadtest::report::load(&out).unwrap();
    assert_eq!(loaded.results[1].count(), m.results[1].count());

    // Not into a non-empty folder without --force; not into an input.
    let e = merge::merge(
        &[a.dir.clone(), b.dir.clone()],
        &out,
        &MergeOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, MergeError::Usage(_)) && e.to_string().contains("not empty"),
        "{e}"
    );
    let forced = MergeOptions {
        force: true,
        no_report: true,
        ..MergeOptions::default()
    };
    merge::merge(&[a.dir.clone(), b.dir.clone()], &out, &forced).unwrap();
    let e = merge::merge(&[a.dir.clone(), b.dir.clone()], &a.dir, &forced).unwrap_err();
    assert!(e.to_string().contains("is one of the inputs"), "{e}");
}

#[test]
fn mismatched_configurations_are_refused() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = srv.url("/function/echo");
    let mut oa = options(url.clone(), dir.path().join("a"), vec![1, 2]);
    oa.iterations = Some(2);
    let mut ob = options(url, dir.path().join("b"), vec![1, 3]);
    ob.iterations = Some(2);
    let a = run(&oa);
    let b = run(&ob);
    let out = dir.path().join("m");
    let e = merge::merge(
        &[a.dir.clone(), b.dir.clone()],
        &out,
        &MergeOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, MergeError::Mismatch(_)), "{e}");
    let s = e.to_string();
    assert!(
        s.contains("different configurations")
            && s.contains("t3-think0s")
            && s.contains("t2-think0s"),
        "{s}"
    );
    assert!(!out.exists(), "nothing written on refusal");

    let e = merge::merge(&[], &out, &MergeOptions::default()).unwrap_err();
    assert!(matches!(e, MergeError::Usage(_)), "{e}");
    let e = merge::merge(&[dir.path().join("nope")], &out, &MergeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    // A missing histogram log is named.
    std::fs::remove_file(b.dir.join("t1-think0s/histograms.hlog")).unwrap();
    let e = merge::merge(
        &[b.dir.clone(), b.dir.clone()],
        &out,
        &MergeOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("histograms.hlog: missing"), "{e}");
}
