//! # vaccel-loadtest
//!
//! The load tester behind `vaccel bench`: closed model (client threads,
//! think times, ramp-up) and open model (constant rate or k6-style stages,
//! coordinated-omission corrected), study matrices, JMeter-compatible JTL,
//! HdrHistogram interval logs and summary JSON.
//!
//! ```no_run
//! let mut o = vaccel_loadtest::Options::new("http://127.0.0.1:8080/function/echo");
//! o.threads = vec![1, 4];
//! o.think = vec!["0".parse().unwrap(), "1s".parse().unwrap()];
//! o.out = Some("results".into());
//! let report = vaccel_loadtest::run(&o, &mut std::io::stdout()).unwrap();
//! assert!(report.failures.is_empty());
//! ```

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod engine;
pub mod error;
pub mod hlog;
pub mod inputs;
pub mod jtl;
pub mod merge;
pub mod model;
pub mod progress;
pub mod report;
pub mod spec;
pub mod study;
pub mod summary;
#[cfg(feature = "test-utils")]
pub mod testing;
pub mod thresholds;
pub mod video;

pub use error::{Error, Result};
pub use study::{Options, StudyReport, ThresholdsFailed, run};
