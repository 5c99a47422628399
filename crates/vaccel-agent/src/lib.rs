//! # vaccel-agent
//!
//! The host side of remote acceleration. A remote plugin (in a VM, microVM,
//! sandbox or container) connects over a Unix socket, TCP or vsock and
//! sends requests (`docs/protocol.md`); the agent runs them on the host's
//! plugins through `vaccel-core` and replies.
//!
//! - **Multi-tenant**: sessions and resources belong to the connection that
//!   created them; another connection's ids are refused (`EPERM`); when a
//!   connection ends, everything it held is released.
//! - **Limits**: connections, sessions per connection, resource bytes per
//!   connection, frame size, per-op timeout, ops running at once. One slow
//!   op does not stall other requests, on its connection or any other.
//! - **Threads**: accepting runs on tokio; each connection is served by
//!   blocking threads (leader/follower): the thread that reads a request
//!   runs it and writes the reply, so a lone caller's round trip needs no
//!   thread hand-off (see ARCHITECTURE.md, "The agent's threads").
//! - **Faults**: a plugin panic is an `EBACKEND` reply; a malformed request
//!   is an `EINVAL` reply; the agent keeps serving.
//! - **Shutdown**: stop accepting, finish in-flight requests, release, return.
//! - **Security**: Unix sockets are created 0600 (configurable); a TCP
//!   listener requires a shared token unless `insecure` is set explicitly.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use vaccel_core::Runtime;
use vaccel_transport::{Address, Listener, ListenerOptions};

mod conn;
mod engine;
mod metrics;
mod serve;
#[cfg(feature = "test-utils")]
pub mod testing;
mod wire;

pub use metrics::Metrics;

/// Agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Addresses to listen on.
    pub listen: Vec<Address>,
    /// Mode of created Unix sockets.
    pub unix_mode: u32,
    /// Shared token TCP clients must present in HELLO.
    pub token: Option<String>,
    /// Allow TCP without a token (explicit opt-out).
    pub insecure: bool,
    /// Maximum simultaneous connections.
    pub max_connections: usize,
    /// Maximum sessions per connection.
    pub max_sessions: usize,
    /// Maximum bytes of resources a connection may hold.
    pub max_resource_bytes: u64,
    /// Maximum frame payload (requests beyond it are refused).
    pub max_frame: u32,
    /// Maximum time one op may take before the client gets `ETIMEDOUT`.
    pub op_timeout: Duration,
    /// Ops running at once (NOOP and control requests are not counted).
    pub max_parallel_ops: usize,
    /// Busy polling: how long a connection's reader keeps polling the
    /// socket before it blocks (zero: never poll). Trades a little CPU for
    /// the 5–15 µs a thread wake-up costs on a VM.
    pub busy_poll: Duration,
    /// At most this many readers busy-poll at once.
    pub busy_pollers: usize,
    /// Host directories from which clients may name resources by path.
    pub host_paths: Vec<PathBuf>,
    /// Serve Prometheus metrics at `http://<addr>/metrics`.
    pub metrics: Option<std::net::SocketAddr>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        AgentConfig {
            listen: Vec::new(),
            unix_mode: 0o600,
            token: None,
            insecure: false,
            max_connections: 1024,
            max_sessions: 1024,
            max_resource_bytes: 2 << 30,
            max_frame: vaccel_proto::DEFAULT_MAX_FRAME,
            op_timeout: Duration::from_secs(120),
            max_parallel_ops: cores * 4,
            busy_poll: Duration::from_micros(50),
            busy_pollers: (cores / 2).max(1),
            host_paths: Vec::new(),
            metrics: None,
        }
    }
}

/// Errors starting the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Configuration is unsafe or inconsistent.
    #[error("{0}")]
    Config(String),
    /// Binding a listener failed.
    #[error("cannot listen on {addr}: {err}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        err: std::io::Error,
    },
}

/// Live counters, for tests and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Open connections.
    pub connections: AtomicUsize,
    /// Live sessions across connections.
    pub sessions: AtomicUsize,
    /// Live resources across connections.
    pub resources: AtomicUsize,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Ops answered with an error.
    pub op_errors: AtomicU64,
    /// Bytes received.
    pub bytes_in: AtomicU64,
    /// Bytes sent.
    pub bytes_out: AtomicU64,
    /// Reads that busy polling answered (no thread wake-up needed).
    pub busy_poll_hits: AtomicU64,
    /// Busy-poll windows that ended with nothing to read (the reader then
    /// blocked).
    pub busy_poll_misses: AtomicU64,
    /// Reads that blocked at once because `busy_pollers` readers were
    /// already polling.
    pub busy_poll_full: AtomicU64,
}

impl Stats {
    /// A snapshot: (connections, sessions, resources).
    pub fn live(&self) -> (usize, usize, usize) {
        (
            self.connections.load(Ordering::SeqCst),
            self.sessions.load(Ordering::SeqCst),
            self.resources.load(Ordering::SeqCst),
        )
    }
}

pub(crate) struct Shared {
    pub runtime: Arc<Runtime>,
    pub config: AgentConfig,
    pub stats: Arc<Stats>,
    pub owners: conn::Owners,
    pub metrics: Arc<Metrics>,
    pub next_conn: AtomicU64,
}

/// A bound agent, ready to serve.
pub struct Agent {
    shared: Arc<Shared>,
    listeners: Vec<(Listener, Address)>,
    metrics: Option<tokio::net::TcpListener>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("listen", &self.addresses())
            .finish()
    }
}

impl Agent {
    /// Check the configuration and bind every listener.
    pub async fn bind(runtime: Arc<Runtime>, config: AgentConfig) -> Result<Agent, AgentError> {
        if config.listen.is_empty() {
            return Err(AgentError::Config("no --listen address given".into()));
        }
        let tcp = config.listen.iter().any(|a| matches!(a, Address::Tcp(_)));
        if tcp && config.token.as_deref().is_none_or(str::is_empty) && !config.insecure {
            return Err(AgentError::Config(
                "a TCP listener needs a shared token (--token or VACCEL_AGENT_TOKEN), or --insecure to accept anyone who can reach the port".into(),
            ));
        }
        let opts = ListenerOptions {
            unix_mode: config.unix_mode,
        };
        let mut listeners = Vec::new();
        for a in &config.listen {
            let l = Listener::bind(a, &opts)
                .await
                .map_err(|err| AgentError::Bind {
                    addr: a.to_string(),
                    err,
                })?;
            let bound = l.local_address().unwrap_or_else(|_| a.clone());
            tracing::info!(address = %bound, "listening");
            listeners.push((l, bound));
        }
        let metrics = match config.metrics {
            Some(a) => {
                let l = tokio::net::TcpListener::bind(a)
                    .await
                    .map_err(|err| AgentError::Bind {
                        addr: format!("http://{a}"),
                        err,
                    })?;
                tracing::info!(
                    "metrics on http://{}/metrics",
                    l.local_addr().map_or(a, |x| x)
                );
                Some(l)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            runtime,
            config,
            stats: Arc::new(Stats::default()),
            metrics: Arc::new(Metrics::default()),
            owners: conn::Owners::default(),
            next_conn: AtomicU64::new(1),
        });
        Ok(Agent {
            shared,
            listeners,
            metrics,
        })
    }

    /// The addresses actually bound (TCP port 0 resolved).
    pub fn addresses(&self) -> Vec<Address> {
        self.listeners.iter().map(|(_, a)| a.clone()).collect()
    }

    /// Where metrics are served (port 0 resolved), if enabled.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Serve until `shutdown` completes; then stop accepting, let in-flight
    /// requests finish, release everything and return.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        let c = &self.shared.config;
        let busy = crate::wire::BusyPoll::new(c.busy_poll, c.busy_pollers)
            .counting(self.shared.stats.clone());
        let engine = match engine::Engine::new(c.max_parallel_ops, c.op_timeout, busy) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "cannot start serving threads");
                return;
            }
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(l) = self.metrics {
            let (m, s, stop) = (
                self.shared.metrics.clone(),
                self.shared.stats.clone(),
                stop_rx.clone(),
            );
            tasks.spawn(async move {
                if let Err(e) = metrics::serve(l, m, s, stop).await {
                    tracing::error!(error = %e, "metrics server failed");
                }
            });
        }
        for (l, addr) in self.listeners {
            let shared = self.shared.clone();
            let engine = engine.clone();
            let mut stop = stop_rx.clone();
            tasks.spawn(async move {
                let mut conns = tokio::task::JoinSet::new();
                loop {
                    tokio::select! {
                        _ = stop.changed() => break,
                        r = l.accept() => match r {
                            Ok((stream, peer)) => {
                                let shared = shared.clone();
                                let stop = stop.clone();
                                let tcp = l.is_tcp();
                                conns.spawn(serve::serve(shared, engine.clone(), stream, peer, tcp, stop));
                            }
                            Err(e) => {
                                tracing::warn!(address = %addr, error = %e, "accept failed");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        },
                        Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    }
                }
                drop(l);
                while conns.join_next().await.is_some() {}
            });
        }
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing in-flight requests");
        engine.drain();
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        engine.exit();
        tracing::info!("agent stopped");
    }
}
