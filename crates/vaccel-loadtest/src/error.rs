//! Errors of a load test: every one names what was wrong and what was expected.

use std::io;
use std::path::PathBuf;

use crate::spec::SpecError;
use crate::thresholds::ThresholdError;

/// Why a load test could not run (or could not write its results).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed option value (duration, think time, stages, rate).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A malformed `--fail-if` expression.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// Options that do not go together, or are missing.
    #[error("{0}")]
    Usage(String),
    /// The target URL.
    #[error("bad URL '{url}': {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The target's host name did not resolve.
    #[error("cannot resolve '{host}': {source}")]
    Resolve {
        /// host:port.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// An input (body file, image directory, video) could not be read.
    #[error("cannot read input {}: {source}", path.display())]
    Input {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An input was readable but unusable.
    #[error("input {}: {reason}", path.display())]
    BadInput {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing results failed.
    #[error("writing {}: {source}", path.display())]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Any other I/O failure (starting the runtime, threads).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
