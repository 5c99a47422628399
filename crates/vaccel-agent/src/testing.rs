//! Test helpers (feature `test-utils`): an agent serving on a background
//! tokio runtime, for tests that run clients in ordinary threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use vaccel_core::Runtime;
use vaccel_transport::Address;

use crate::{Agent, AgentConfig, Stats};

/// An agent running on its own thread until stopped or dropped.
#[derive(Debug)]
pub struct BackgroundAgent {
    /// Addresses bound (TCP port 0 resolved), in the order configured.
    pub addresses: Vec<Address>,
    /// Live counters.
    pub stats: Arc<Stats>,
    /// Metrics address, if enabled.
    pub metrics: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundAgent {
    /// Bind and serve `runtime` with `config` on a two-worker tokio runtime.
    /// Panics if the agent cannot start (this is for tests).
    pub fn start(runtime: Arc<Runtime>, config: AgentConfig) -> BackgroundAgent {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let t = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            t.block_on(async move {
                let agent = Agent::bind(runtime, config).await.expect("agent binds");
                tx.send((agent.addresses(), agent.stats(), agent.metrics_address()))
                    .expect("test thread waits");
                agent
                    .serve(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let (addresses, stats, metrics) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("agent started");
        BackgroundAgent {
            addresses,
            stats,
            metrics,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stop serving (as on SIGTERM) and wait until the agent has stopped.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BackgroundAgent {
    fn drop(&mut self) {
        self.stop();
    }
}
