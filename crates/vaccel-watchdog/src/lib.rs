//! # vaccel-watchdog
//!
//! A drop-in for OpenFaaS's [of-watchdog] — the entrypoint of a function
//! container — on tokio and hyper 1, plus the small OpenFaaS-style gateway
//! behind `vaccel up`.
//!
//! [of-watchdog]: https://github.com/openfaas/of-watchdog
//!
//! ## Modes
//!
//! | `mode` | what happens per request |
//! |---|---|
//! | `streaming` (default) | fork `fprocess`; the body is piped to its stdin as it arrives, its stdout streamed back |
//! | `serializing` | fork `fprocess`; the whole body is written to stdin, all of stdout read, then answered |
//! | `http` | reverse proxy to `upstream_url`; `fprocess`, if set, is started once as that server |
//! | `inproc` | call the in-process [`Function`] named by `fprocess` directly: no fork, no hop |
//!
//! Forked processes run in their own process group: past the deadline
//! (`exec_timeout`, bounded by `write_timeout`) the whole group is killed and
//! reaped and the client gets 504; a process that exits non-zero or dies of
//! a signal gets a 500 with the tail of its stderr. Every line the function
//! writes to stderr is copied to the watchdog's stderr (prefixed with date,
//! time and stream name when `prefix_logs` is on). Request headers reach
//! the process as CGI-like variables (`Http_Method`, `Http_Path`,
//! `Http_Query`, `Http_Content_Type`, `Http_X_Call_Id`, ...).
//!
//! In-process functions that say they are [`inline`](Function::inline) run
//! on the I/O thread; others on tokio's blocking pool. Bodies over
//! [`max_body`](Function::max_body) are refused with 400 while reading.
//!
//! ## Endpoints and headers
//!
//! - `/_/health`: 200 while the lock file (`$TMPDIR/.lock`) exists, else 503.
//! - `/_/ready`: 200; 429 when `max_inflight` requests are in flight; with
//!   `ready_path`, the function's own answer for that path.
//! - anything else: the function. At `max_inflight`, 429 with
//!   `Concurrent request limit exceeded. Max concurrent requests: N`.
//! - `/metrics` on the metrics port (8081): `http_requests_total{code,method}`,
//!   `http_request_duration_seconds{code,method}`, `http_requests_in_flight`.
//! - Every function response carries `X-Duration-Seconds`; `X-Call-Id` is
//!   passed to the function and set on the response; headers the function
//!   sets (such as `X-Vaccel-Op-Seconds`) pass through.
//!
//! ## Shutdown
//!
//! SIGTERM (or Ctrl-C, or [`Server::shutdown`]) removes the lock file, so
//! `/_/health` turns 503; the watchdog keeps serving for
//! `healthcheck_interval`, then stops accepting connections, lets in-flight
//! requests finish (up to `write_timeout`), stops the http-mode upstream
//! process, and returns.
//!
//! ## Use from Rust
//!
//! ```no_run
//! # async fn demo() -> Result<(), vaccel_watchdog::Error> {
//! use vaccel_watchdog::{Config, Registry, Watchdog};
//!
//! let config = Config::from_env()?;                      // of-watchdog's variables
//! let server = Watchdog::bind(config, &Registry::new()).await?;
//! println!("serving on {}", server.local_addr());
//! server.run_until_signal().await?;                      // SIGTERM: drain, then return
//! # Ok(()) }
//! ```
//!
//! Tests bind port 0 (`port=0`, `metrics_port=0`), read the real addresses
//! from [`Server::local_addr`] and [`Server::metrics_addr`], and stop the
//! server with [`Server::shutdown`] and [`Server::wait`].
//!
//! The [`gateway`] serves many in-process functions on one listener at
//! OpenFaaS's gateway paths (`/function/<name>`, `/system/functions`), with
//! the same call logic.

#![forbid(unsafe_code)]

mod body;
pub mod config;
mod fork;
pub mod function;
pub mod gateway;
mod invoke;
mod limit;
mod logs;
mod metrics;
mod proxy;
mod registry;
mod server;
mod watchdog;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use config::{Config, ConfigError, Mode};
pub use function::Function;
pub use gateway::{Gateway, GatewayConfig};
pub use registry::Registry;
pub use server::{Server, ShutdownHandle, StopReport};
pub use watchdog::Watchdog;

/// Why a watchdog or gateway could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The lock file could not be written.
    #[error(
        "cannot write the lock file {}: {source} (to run without one, set suppress_lock=true)",
        path.display()
    )]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The http-mode upstream process could not be started.
    #[error("cannot start the function process `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// `mode=inproc` names a function the registry does not have.
    #[error("no built-in function named '{name}' (fprocess); available: {available}")]
    UnknownFunction {
        /// The name asked for.
        name: String,
        /// The names known.
        available: String,
    },
    /// The http-mode upstream process exited by itself; the watchdog stops
    /// with it (as of-watchdog does), so the container restarts.
    #[error("the function process `{command}` exited ({status}); the watchdog stops with it")]
    UpstreamExited {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
    },
    /// Another I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
