//! # vaccel-bench
//!
//! Benchmarks that run from the `vaccel` command line and measure vAccel
//! against its peers in the same run, never against numbers from another
//! day or machine.
//!
//! - [`ops`] (`vaccel bench ops`): the same op on a local session and on
//!   remote sessions through a real agent process (Unix socket and TCP),
//!   side by side, as ratios, next to the raw-socket floor (a ping-pong and
//!   a bulk transfer between two threads of this process). Prints a table
//!   per comparison and writes an SVG plot per comparison and
//!   `results.json`.

#![forbid(unsafe_code)]

mod error;
pub mod ops;

pub use error::{Error, Result};
