//! Shared helpers of the load-test tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use vaccel_loadtest::model::{ConfigResult, Outcome};
use vaccel_loadtest::progress::ProgressMode;
use vaccel_loadtest::{Options, StudyReport};

/// Options for `url` writing into `dir/out`: quiet, no pause between configurations.
pub fn options(url: String, dir: &Path) -> Options {
    let mut o = Options::new(url);
    o.out = Some(dir.join("out"));
    o.pause = Duration::ZERO;
    o.progress = ProgressMode::Quiet;
    o.quiet = true;
    o.workers = Some(2);
    o
}

/// Run and return the report.
pub fn run(o: &Options) -> StudyReport {
    let mut sink = Vec::new();
    vaccel_loadtest::run(o, &mut sink).expect("the study runs")
}

/// The single configuration's result.
pub fn only(r: &StudyReport) -> &ConfigResult {
    assert_eq!(r.results.len(), 1, "one configuration");
    &r.results[0]
}

/// Requests of one class.
pub fn n(r: &ConfigResult, o: Outcome) -> u64 {
    r.outcomes.get(&o).copied().unwrap_or(0)
}

/// A configuration's folder.
pub fn config_dir(r: &StudyReport, label: &str) -> PathBuf {
    r.dir.join(label)
}

/// Milliseconds of a µs histogram value.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}
