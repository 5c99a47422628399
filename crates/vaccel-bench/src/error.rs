//! The benchmark error type.

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A vAccel call failed.
    #[error("{0}")]
    Vaccel(#[from] vaccel::Error),
    /// An I/O operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The agent process could not be started or talked to.
    #[error("agent: {0}")]
    Agent(String),
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// An input image could not be read or re-encoded.
    #[error("image {what}: {source}")]
    Image {
        /// Which image.
        what: String,
        /// The cause.
        source: image::ImageError,
    },
    /// A plot could not be drawn.
    #[error("plot {path}: {why}")]
    Plot {
        /// The SVG being written.
        path: String,
        /// Why.
        why: String,
    },
    /// `results.json` could not be written.
    #[error("results.json: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(what: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io {
            what: what.to_string(),
            source,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Error {
        Error::Io {
            what: "I/O".into(),
            source,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
