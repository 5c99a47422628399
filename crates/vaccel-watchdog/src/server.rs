//! The listener loop shared by the watchdog, its metrics endpoint and the
//! gateway: HTTP/1 with keep-alive and TCP_NODELAY, and a graceful stop
//! (mark unhealthy, keep serving for a grace period, stop accepting, drain
//! in-flight requests within a bound, then close what is left).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::Error;
use crate::body::Body;

/// What a listener serves.
pub(crate) trait App: Send + Sync + 'static {
    /// Answer one request. Errors are responses.
    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Body>> + Send + 'static;

    /// Shutdown has begun: report unhealthy from now on.
    fn begin_shutdown(&self) {}
}

/// Timings of one listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServeOptions {
    /// Time to read a request head (None: no limit).
    pub read_timeout: Option<Duration>,
    /// After shutdown begins, how long to keep accepting.
    pub grace: Duration,
    /// How long to wait for in-flight requests once accepting stops.
    pub drain: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    Open,
    Graceful,
    Abort,
}

/// How a server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopReport {
    /// True when every connection finished its in-flight request within the
    /// drain bound; false when some were cut.
    pub drained: bool,
}

/// Triggers a graceful shutdown of a [`Server`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    pub(crate) fn new() -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = watch::channel(false);
        (ShutdownHandle(Arc::new(tx)), rx)
    }

    /// Begin the graceful shutdown (idempotent): the same as SIGTERM.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }

    /// True once shutdown has been asked for.
    pub fn is_shutting_down(&self) -> bool {
        *self.0.borrow()
    }
}

/// A running watchdog or gateway, bound to its ports.
#[derive(Debug)]
pub struct Server {
    pub(crate) local_addr: SocketAddr,
    pub(crate) metrics_addr: Option<SocketAddr>,
    pub(crate) shutdown: ShutdownHandle,
    pub(crate) task: JoinHandle<Result<StopReport, Error>>,
}

impl Server {
    /// The address function requests are served on (the real port when
    /// configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address `/metrics` is served on, if any (the gateway serves it on
    /// [`local_addr`](Self::local_addr)).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// A handle that triggers the graceful shutdown from anywhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Begin the graceful shutdown (what SIGTERM does).
    pub fn shutdown(&self) {
        self.shutdown.shutdown();
    }

    /// Wait until the server has stopped: after a shutdown has been
    /// triggered and in-flight requests drained (or, in http mode, after the
    /// upstream process died, which is an error).
    pub async fn wait(self) -> Result<StopReport, Error> {
        match self.task.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(StopReport { drained: false }),
        }
    }

    /// Serve until SIGTERM or Ctrl-C, then shut down gracefully.
    pub async fn run_until_signal(self) -> Result<StopReport, Error> {
        let handle = self.shutdown_handle();
        let signals = tokio::spawn(async move {
            let name = terminated().await;
            tracing::info!("{name}: shutting down");
            handle.shutdown();
        });
        let r = self.wait().await;
        signals.abort();
        r
    }
}

/// Wait for SIGTERM or SIGINT; returns which.
async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => "SIGTERM",
    }
}

/// A place for the first fatal error seen while serving.
pub(crate) type Fatal = Arc<Mutex<Option<Error>>>;

/// Bind a TCP listener, naming the address on failure.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// Serve `app` on `listener` until `stop` turns true, then stop gracefully.
pub(crate) async fn serve<A: App>(
    listener: TcpListener,
    app: Arc<A>,
    opts: ServeOptions,
    mut stop: watch::Receiver<bool>,
) -> StopReport {
    let (state_tx, state_rx) = watch::channel(ConnState::Open);
    let (track_tx, mut track_rx) = mpsc::channel::<()>(1);
    let spawn = |stream: TcpStream| {
        tokio::spawn(connection(
            stream,
            app.clone(),
            opts.read_timeout,
            state_rx.clone(),
            track_tx.clone(),
        ));
    };

    loop {
        tokio::select! {
            biased;
            ok = stopped(&mut stop) => {
                if !ok {
                    // Every handle is gone: nobody can stop us; serve on.
                    loop { accept(&listener, &spawn).await; }
                }
                break;
            }
            _ = accept(&listener, &spawn) => {}
        }
    }

    app.begin_shutdown();
    if !opts.grace.is_zero() {
        let grace = tokio::time::sleep(opts.grace);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                biased;
                _ = &mut grace => break,
                _ = accept(&listener, &spawn) => {}
            }
        }
    }
    drop(listener);
    drop(track_tx);
    state_tx.send_replace(ConnState::Graceful);
    let drained = tokio::time::timeout(opts.drain, track_rx.recv())
        .await
        .is_ok();
    if !drained {
        tracing::warn!(
            "in-flight requests still running after {}; closing their connections",
            crate::config::format_duration(opts.drain)
        );
        state_tx.send_replace(ConnState::Abort);
        let _ = tokio::time::timeout(Duration::from_secs(5), track_rx.recv()).await;
    }
    StopReport { drained }
}

/// True when `stop` turned true; false when every handle is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) -> bool {
    stop.wait_for(|s| *s).await.is_ok()
}

async fn accept(listener: &TcpListener, spawn: &impl Fn(TcpStream)) {
    match listener.accept().await {
        Ok((stream, _)) => spawn(stream),
        Err(e) => {
            // Out of descriptors and the like: back off instead of spinning.
            tracing::warn!("accept failed: {e}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn connection<A: App>(
    stream: TcpStream,
    app: Arc<A>,
    read_timeout: Option<Duration>,
    mut state: watch::Receiver<ConnState>,
    _track: mpsc::Sender<()>,
) {
    let _ = stream.set_nodelay(true);
    let svc = hyper::service::service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    if let Some(t) = read_timeout {
        builder.timer(TokioTimer::new()).header_read_timeout(t);
    }
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut graceful = false;
    loop {
        match *state.borrow_and_update() {
            ConnState::Open => {}
            ConnState::Graceful => {
                if !graceful {
                    conn.as_mut().graceful_shutdown();
                    graceful = true;
                }
            }
            ConnState::Abort => return,
        }
        tokio::select! {
            _ = conn.as_mut() => return,
            r = state.changed() => {
                if r.is_err() {
                    let _ = conn.as_mut().await;
                    return;
                }
            }
        }
    }
}
