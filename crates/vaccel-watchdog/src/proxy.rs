//! `mode=http`: a reverse proxy to the function's own HTTP server, which
//! the watchdog may start and supervise (`fprocess`).

use std::process::Stdio;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName};
use http::uri::Authority;
use http::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::body::{Body, read_body};
use crate::invoke::{Limits, read_error, text, timed_out};
use crate::limit::InflightGuard;
use crate::logs::{LogOptions, pipe_lines};
use crate::server::ShutdownHandle;
use crate::{Error, server::Fatal};

/// Forwards requests to the upstream, keeping connections alive.
#[derive(Debug)]
pub(crate) struct Proxy {
    client: Client<HttpConnector, Body>,
    authority: Authority,
    base_path: String,
    buffer_body: bool,
}

impl Proxy {
    pub(crate) fn new(authority: Authority, base_path: String, buffer_body: bool) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(conn);
        Proxy {
            client,
            authority,
            base_path,
            buffer_body,
        }
    }

    pub(crate) async fn run(
        &self,
        req: Request<Body>,
        limits: &Limits,
        guard: InflightGuard,
    ) -> Response<Body> {
        let (mut parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = format!("http://{}{}{}", self.authority, self.base_path, pq);
        parts.uri = match uri.parse::<Uri>() {
            Ok(u) => u,
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("cannot forward {pq}: {e}\n"),
                );
            }
        };
        strip_hop_by_hop(&mut parts.headers);
        let body = if self.buffer_body {
            match read_body(body, usize::MAX, limits.read_timeout).await {
                Ok(b) => Body::full(b),
                Err(e) => return read_error(e, "the upstream"),
            }
        } else {
            body
        };
        let req = Request::from_parts(parts, body);
        match tokio::time::timeout(limits.deadline, self.client.request(req)).await {
            Err(_) => {
                tracing::error!("upstream HTTP request timed out (exec_timeout)");
                timed_out("the upstream", limits.deadline)
            }
            Ok(Err(e)) => {
                tracing::error!("upstream HTTP request error: {e}");
                text(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "cannot reach the function at http://{}: {e}\n",
                        self.authority
                    ),
                )
            }
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::incoming(body).with_guard(guard))
            }
        }
    }
}

/// Remove the headers that describe one connection, not the message.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Headers named by Connection are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        h.remove(n);
    }
    h.remove("keep-alive");
}

/// The long-running function server started from `fprocess`.
#[derive(Debug)]
pub(crate) struct Upstream {
    stop: Option<oneshot::Sender<Duration>>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Start `command` in its own process group, log its output, and stop
    /// the server (with an error) if it exits on its own.
    pub(crate) fn start(
        command: &[String],
        logs: LogOptions,
        shutdown: ShutdownHandle,
        fatal: Fatal,
    ) -> Result<Self, Error> {
        let shown = command.join(" ");
        let mut cmd = Command::new(&command[0]);
        cmd.args(&command[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            command: shown.clone(),
            source,
        })?;
        let pgid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .map(Pid::from_raw);
        tracing::info!("forked `{shown}` (pid {:?})", child.id());
        if let Some(s) = child.stdout.take() {
            tokio::spawn(pipe_lines(s, "stdout", logs));
        }
        if let Some(s) = child.stderr.take() {
            tokio::spawn(pipe_lines(s, "stderr", logs));
        }
        let (stop_tx, stop_rx) = oneshot::channel::<Duration>();
        let task = tokio::spawn(async move {
            let signal = |s: Signal| {
                if let Some(g) = pgid {
                    let _ = killpg(g, s);
                }
            };
            tokio::select! {
                st = child.wait() => {
                    let how = match st {
                        Ok(st) => st.to_string(),
                        Err(e) => e.to_string(),
                    };
                    tracing::error!("forked function has terminated: {how}");
                    signal(Signal::SIGKILL);
                    let mut f = fatal.lock().unwrap_or_else(|e| e.into_inner());
                    f.get_or_insert(Error::UpstreamExited { command: shown, status: how });
                    drop(f);
                    shutdown.shutdown();
                }
                grace = stop_rx => {
                    let grace = grace.unwrap_or(Duration::ZERO);
                    // Not reaped yet, so the group id is still ours.
                    signal(Signal::SIGTERM);
                    if tokio::time::timeout(grace, child.wait()).await.is_err() {
                        tracing::warn!("`{shown}` ignored SIGTERM; killing it");
                        signal(Signal::SIGKILL);
                        let _ = child.wait().await;
                    }
                    signal(Signal::SIGKILL);
                }
            }
        });
        Ok(Upstream {
            stop: Some(stop_tx),
            task,
        })
    }

    /// SIGTERM the process group, SIGKILL it after `grace`, reap it.
    pub(crate) async fn stop(mut self, grace: Duration) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(grace);
        }
        let _ = (&mut self.task).await;
    }
}
