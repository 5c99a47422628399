//! The forking modes: one process per request, in its own process group, so
//! a timeout or a cancelled request kills everything it started.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt as _;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HOST, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

use crate::body::{Body, BodyError, read_body};
use crate::invoke::{Limits, read_error, text, timed_out};
use crate::limit::InflightGuard;
use crate::logs::{LogOptions, pipe_lines};

/// Forks the function process for each request.
#[derive(Debug)]
pub(crate) struct ForkRunner {
    program: String,
    args: Vec<String>,
    streaming: bool,
    content_type: Option<HeaderValue>,
    logs: LogOptions,
}

impl ForkRunner {
    pub(crate) fn new(
        command: Vec<String>,
        streaming: bool,
        content_type: &str,
        logs: LogOptions,
    ) -> Self {
        let mut it = command.into_iter();
        let program = it.next().unwrap_or_default();
        ForkRunner {
            program,
            args: it.collect(),
            streaming,
            content_type: HeaderValue::from_str(content_type)
                .ok()
                .filter(|v| !v.is_empty()),
            logs,
        }
    }

    pub(crate) async fn run(
        &self,
        req: Request<Body>,
        limits: &Limits,
        guard: InflightGuard,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let env = cgi_env(&parts);
        let mut resp = if self.streaming {
            self.streaming(env, body, limits, guard).await
        } else {
            self.serializing(env, body, limits).await
        };
        if resp.status().is_success() {
            if let Some(ct) = &self.content_type {
                resp.headers_mut().insert(CONTENT_TYPE, ct.clone());
            }
        }
        resp
    }

    fn spawn(&self, env: Vec<(OsString, OsString)>) -> std::io::Result<Proc> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        let Some(pid) = pid else {
            let _ = child.start_kill();
            return Err(std::io::Error::other("the function process has no pid"));
        };
        let stderr = child.stderr.take();
        let logs = self.logs;
        let stderr = tokio::spawn(async move {
            match stderr {
                Some(s) => pipe_lines(s, "stderr", logs).await,
                None => String::new(),
            }
        });
        Ok(Proc {
            child,
            pgid: Pid::from_raw(pid),
            reaped: false,
            stderr: Some(stderr),
        })
    }

    fn spawn_failed(&self, e: std::io::Error) -> Response<Body> {
        tracing::error!("cannot start the function process `{}`: {e}", self.program);
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "cannot start the function process `{}`: {e}\n",
                self.program
            ),
        )
    }

    /// The response for a process that did not exit with status 0.
    fn failed(&self, status: ExitStatus, stderr: &str) -> Response<Body> {
        let how = describe(status);
        tracing::error!("function process `{}` {how}", self.program);
        let mut msg = format!("function process `{}` {how}", self.program);
        if stderr.trim().is_empty() {
            msg.push_str(" (nothing on stderr)\n");
        } else {
            msg.push_str("; stderr:\n");
            msg.push_str(stderr);
            if !msg.ends_with('\n') {
                msg.push('\n');
            }
        }
        text(StatusCode::INTERNAL_SERVER_ERROR, msg)
    }

    /// Whole body in, whole stdout out.
    async fn serializing(
        &self,
        env: Vec<(OsString, OsString)>,
        body: Body,
        limits: &Limits,
    ) -> Response<Body> {
        let input = match read_body(body, usize::MAX, limits.read_timeout).await {
            Ok(b) => b,
            Err(e) => return read_error(e, "the function"),
        };
        let mut proc = match self.spawn(env) {
            Ok(p) => p,
            Err(e) => return self.spawn_failed(e),
        };
        let deadline = Instant::now() + limits.deadline;
        let stdin = proc.child.stdin.take();
        let mut stdout = proc.child.stdout.take();
        let work = async {
            let write = write_all(stdin, input);
            let read = async {
                let mut out = Vec::new();
                if let Some(s) = stdout.as_mut() {
                    s.read_to_end(&mut out).await?;
                }
                std::io::Result::Ok(out)
            };
            let (w, r) = tokio::join!(write, read);
            let status = proc.child.wait().await;
            (w, r, status)
        };
        match timeout_at(deadline, work).await {
            Err(_) => {
                proc.kill_and_reap().await;
                timed_out("the function process", limits.deadline)
            }
            Ok((w, r, status)) => {
                proc.reaped();
                match (status, r) {
                    (Ok(st), Ok(out)) if st.success() => {
                        if let Err(e) = w {
                            tracing::warn!("writing the request to the function: {e}");
                        }
                        Response::new(Body::full(out))
                    }
                    (Ok(st), _) if !st.success() => {
                        let stderr = proc.stderr_excerpt().await;
                        self.failed(st, &stderr)
                    }
                    (Err(e), _) | (_, Err(e)) => text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("function process `{}`: {e}\n", self.program),
                    ),
                    (Ok(_), Ok(_)) => unreachable!("covered above"),
                }
            }
        }
    }

    /// Body piped in as it arrives, stdout streamed back. The status is
    /// decided at the first byte of output: a process that fails or times
    /// out before writing anything gets a 500 or 504; after that, a failure
    /// cuts the response short (the client sees an incomplete body).
    async fn streaming(
        &self,
        env: Vec<(OsString, OsString)>,
        body: Body,
        limits: &Limits,
        guard: InflightGuard,
    ) -> Response<Body> {
        let mut proc = match self.spawn(env) {
            Ok(p) => p,
            Err(e) => return self.spawn_failed(e),
        };
        let deadline = Instant::now() + limits.deadline;
        let feeder = AbortOnDrop(tokio::spawn(feed(body, proc.child.stdin.take())));
        let Some(mut stdout) = proc.child.stdout.take() else {
            proc.kill_and_reap().await;
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the function's stdout is missing\n".to_string(),
            );
        };
        let mut buf = BytesMut::with_capacity(16 * 1024);
        match timeout_at(deadline, stdout.read_buf(&mut buf)).await {
            Err(_) => {
                proc.kill_and_reap().await;
                timed_out("the function process", limits.deadline)
            }
            Ok(Err(e)) => {
                proc.kill_and_reap().await;
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reading the function's output: {e}\n"),
                )
            }
            Ok(Ok(0)) => match timeout_at(deadline, proc.child.wait()).await {
                Err(_) => {
                    proc.kill_and_reap().await;
                    timed_out("the function process", limits.deadline)
                }
                Ok(status) => {
                    proc.reaped();
                    match status {
                        Ok(st) if st.success() => Response::new(Body::empty()),
                        Ok(st) => {
                            let stderr = proc.stderr_excerpt().await;
                            self.failed(st, &stderr)
                        }
                        Err(e) => text(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("function process `{}`: {e}\n", self.program),
                        ),
                    }
                }
            },
            Ok(Ok(_)) => {
                let first = buf.split().freeze();
                let (tx, rx) = mpsc::channel(8);
                tokio::spawn(pump(
                    proc,
                    stdout,
                    buf,
                    first,
                    tx,
                    deadline,
                    limits.deadline,
                    self.program.clone(),
                    feeder,
                ));
                Response::new(Body::channel(rx).with_guard(guard))
            }
        }
    }
}

/// Stream the rest of stdout into the response; end it with an error when
/// the process fails or runs past the deadline.
#[allow(clippy::too_many_arguments)]
async fn pump(
    mut proc: Proc,
    mut stdout: ChildStdout,
    mut buf: BytesMut,
    first: Bytes,
    tx: mpsc::Sender<Result<Bytes, BodyError>>,
    deadline: Instant,
    limit: Duration,
    program: String,
    _feeder: AbortOnDrop,
) {
    let abort = |msg: String| -> BodyError { msg.into() };
    let mut chunk = first;
    loop {
        match timeout_at(deadline, tx.send(Ok(chunk))).await {
            Ok(Ok(())) => {}
            // The client went away, or stopped reading until the deadline.
            _ => {
                proc.kill_and_reap().await;
                return;
            }
        }
        if buf.capacity() < 4096 {
            buf.reserve(16 * 1024);
        }
        match timeout_at(deadline, stdout.read_buf(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(_)) => chunk = buf.split().freeze(),
            Ok(Err(e)) => {
                proc.kill_and_reap().await;
                let _ = tx
                    .send(Err(abort(format!("reading the function's output: {e}"))))
                    .await;
                return;
            }
            Err(_) => {
                tracing::error!(
                    "function process `{program}` killed after {}",
                    crate::config::format_duration(limit)
                );
                proc.kill_and_reap().await;
                let _ = tx
                    .send(Err(abort(format!(
                        "the function process timed out after {limit:?}"
                    ))))
                    .await;
                return;
            }
        }
    }
    match timeout_at(deadline, proc.child.wait()).await {
        Ok(Ok(st)) if st.success() => proc.reaped(),
        Ok(Ok(st)) => {
            proc.reaped();
            let how = describe(st);
            tracing::error!("function process `{program}` {how} after writing output");
            let _ = tx.send(Err(abort(format!("function process {how}")))).await;
        }
        Ok(Err(e)) => {
            proc.kill_and_reap().await;
            let _ = tx.send(Err(abort(e.to_string()))).await;
        }
        Err(_) => {
            proc.kill_and_reap().await;
            let _ = tx
                .send(Err(abort(format!(
                    "the function process timed out after {limit:?}"
                ))))
                .await;
        }
    }
}

/// Copy the request body into the process's stdin, then close it.
async fn feed(mut body: Body, stdin: Option<ChildStdin>) {
    let Some(mut stdin) = stdin else { return };
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return };
        if let Ok(data) = frame.into_data() {
            if stdin.write_all(&data).await.is_err() {
                return; // the function stopped reading: fine
            }
        }
    }
    let _ = stdin.shutdown().await;
}

async fn write_all(stdin: Option<ChildStdin>, input: Bytes) -> std::io::Result<()> {
    let Some(mut s) = stdin else { return Ok(()) };
    match s.write_all(&input).await {
        // A function that does not read its input is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A forked function process, leader of its own process group.
#[derive(Debug)]
struct Proc {
    child: Child,
    pgid: Pid,
    reaped: bool,
    stderr: Option<JoinHandle<String>>,
}

impl Proc {
    /// The leader has been waited for: kill what is left of its group.
    fn reaped(&mut self) {
        self.reaped = true;
        self.kill_leftovers();
    }

    /// SIGKILL the whole group (the leader is not reaped yet, so the group
    /// id cannot have been reused), reap the leader, and reap any group
    /// members re-parented to this process (when it runs as PID 1).
    async fn kill_and_reap(&mut self) {
        if !self.reaped {
            let _ = killpg(self.pgid, Signal::SIGKILL);
            let _ = self.child.wait().await;
            self.reaped = true;
        }
        self.kill_leftovers();
    }

    fn kill_leftovers(&self) {
        // ESRCH when the group is already empty.
        let _ = killpg(self.pgid, Signal::SIGKILL);
        reap_group(self.pgid);
    }

    /// The tail of what the process wrote to stderr (its group is gone, so
    /// the pipe is closed or about to be).
    async fn stderr_excerpt(&mut self) -> String {
        match self.stderr.take() {
            Some(t) => tokio::time::timeout(Duration::from_secs(2), t)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => String::new(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // A cancelled request: nothing it started may outlive it. The leader
        // itself is reaped by tokio (kill_on_drop).
        if !self.reaped {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
        if let Some(t) = self.stderr.take() {
            drop(t); // detached: it ends when the pipe closes
        }
    }
}

/// Reap children of ours still in `pgid` (only possible when this process
/// adopts orphans, e.g. as PID 1); in the background if they are still
/// dying.
fn reap_group(pgid: Pid) {
    let group = Pid::from_raw(-pgid.as_raw());
    let step = move || loop {
        match waitpid(group, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return false,
            Ok(_) => continue,
            Err(_) => return true, // ECHILD: none left
        }
    };
    if step() {
        return;
    }
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            for _ in 0..500 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if step() {
                    return;
                }
            }
        });
    }
}

fn describe(st: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => match Signal::try_from(s) {
            Ok(sig) => format!("was killed by signal {s} ({})", sig.as_str()),
            Err(_) => format!("was killed by signal {s}"),
        },
        _ => format!("ended: {st}"),
    }
}

/// of-watchdog's CGI-like environment: each request header as
/// `Http_<Canonical_Name>` (first value), plus `Http_Method`, `Http_Query`
/// and `Http_Path`.
pub(crate) fn cgi_env(parts: &Parts) -> Vec<(OsString, OsString)> {
    let mut env = Vec::with_capacity(parts.headers.keys_len() + 3);
    for name in parts.headers.keys() {
        if name == HOST {
            continue; // Go keeps Host out of the header map
        }
        if let Some(v) = parts.headers.get(name) {
            env.push((
                OsString::from(cgi_name(name.as_str())),
                std::ffi::OsStr::from_bytes(v.as_bytes()).to_owned(),
            ));
        }
    }
    env.push(("Http_Method".into(), parts.method.as_str().into()));
    if let Some(q) = parts.uri.query().filter(|q| !q.is_empty()) {
        env.push(("Http_Query".into(), q.into()));
    }
    let path = parts.uri.path();
    if !path.is_empty() {
        env.push(("Http_Path".into(), path.into()));
    }
    env
}

/// `x-call-id` → `Http_X_Call_Id` (Go's canonical header form).
pub(crate) fn cgi_name(h: &str) -> String {
    let mut out = String::with_capacity(h.len() + 5);
    out.push_str("Http_");
    let mut upper = true;
    for c in h.chars() {
        if c == '-' {
            out.push('_');
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_as_go_canonicalizes_them() {
        assert_eq!(cgi_name("x-call-id"), "Http_X_Call_Id");
        assert_eq!(cgi_name("content-type"), "Http_Content_Type");
        assert_eq!(cgi_name("accept"), "Http_Accept");
    }

    #[test]
    fn environment_from_a_request() {
        let (parts, ()) = Request::post("/fn/a?x=1&y=2")
            .header("host", "example")
            .header("x-call-id", "abc")
            .header("accept", "a")
            .header("accept", "b")
            .body(())
            .unwrap()
            .into_parts();
        let env: Vec<(String, String)> = cgi_env(&parts)
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Http_X_Call_Id"), Some("abc"));
        assert_eq!(get("Http_Accept"), Some("a"));
        assert_eq!(get("Http_Method"), Some("POST"));
        assert_eq!(get("Http_Path"), Some("/fn/a"));
        assert_eq!(get("Http_Query"), Some("x=1&y=2"));
        assert_eq!(get("Http_Host"), None);
    }
}
