//! `vaccel bench report` and `vaccel bench merge` through the real binary.

use std::path::{Path, PathBuf};
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

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/jmeter/blur-study.jtl")
}

#[test]
fn report_of_a_jmeter_jtl() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("jmeter.html");
    let o = vaccel(&[
        "bench",
        "report",
        fixture().to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("(2 configuration(s), 49 requests)"),
        "{}",
        text(&o.stdout)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("t2-think0s") && page.contains("t4-think1s"));
    assert!(page.matches("<svg").count() >= 10);

    // Bad input: exit status 1 and a message naming the file and line.
    let bad = dir.path().join("bad.jtl");
    std::fs::write(&bad, "timeStamp,label\n1,a\n").unwrap();
    let o = vaccel(&["bench", "report", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("bad.jtl:1:") && err.contains("elapsed"),
        "{err}"
    );
    let o = vaccel(&["bench", "report"]);
    assert_eq!(o.status.code(), Some(2), "a usage error");
}

#[test]
fn run_two_instances_merge_and_report() {
    let srv = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let url = srv.url("/function/blur?delay_ms=2&handler_ms=1");
    let run = |name: &str| {
        let out = dir.path().join(name);
        let o = vaccel(&[
            "bench",
            &url,
            "-t",
            "1,2",
            "-n",
            "4",
            "--pause",
            "0",
            "-q",
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        out
    };
    let (a, b) = (run("0"), run("1"));
    let merged = dir.path().join("merged");
    let o = vaccel(&[
        "bench",
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(stdout.contains("merged 2 instance(s), 24 rows"), "{stdout}");
    assert!(stdout.contains("t2-think0s"), "{stdout}");
    for f in [
        "study.json",
        "merge.json",
        "report.html",
        "t2-think0s/results.jtl",
        "t2-think0s/histograms.hlog",
    ] {
        assert!(merged.join(f).is_file(), "{f}");
    }
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("t2-think0s/summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["count"], 16);
    assert_eq!(s["config"]["threads"], 4);

    // Re-render with the default output name.
    std::fs::remove_file(merged.join("report.html")).unwrap();
    let o = vaccel(&["bench", "report", merged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(merged.join("report.html").is_file());

    // Merging into a non-empty folder is refused.
    let o = vaccel(&[
        "bench",
        "merge",
        a.to_str().unwrap(),
        "-o",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("not empty"), "{}", text(&o.stderr));
}
