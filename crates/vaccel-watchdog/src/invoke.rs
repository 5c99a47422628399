//! What every function call shares, in the watchdog and in the gateway:
//! the in-process call (body limit, inline or blocking pool, deadline,
//! panics), the response headers (`X-Duration-Seconds`, `X-Call-Id`) and
//! the error responses.

use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::Function;
use crate::body::{Body, ReadError, read_body};
use crate::config::format_duration;
use crate::limit::InflightGuard;

/// Seconds the function took, on every function response.
pub(crate) const X_DURATION_SECONDS: HeaderName = HeaderName::from_static("x-duration-seconds");
/// The call id OpenFaaS's gateway sets on each request.
pub(crate) const X_CALL_ID: HeaderName = HeaderName::from_static("x-call-id");
/// When the gateway received the request (Unix nanoseconds).
pub(crate) const X_START_TIME: HeaderName = HeaderName::from_static("x-start-time");

/// Limits applied to one call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Time to receive a request body that is read whole.
    pub read_timeout: Option<Duration>,
    /// Time until the function must have answered.
    pub deadline: Duration,
}

/// A plain-text response.
pub(crate) fn text(status: StatusCode, msg: String) -> Response<Body> {
    let mut r = Response::new(Body::full(msg));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The response to a body that could not be read.
pub(crate) fn read_error(e: ReadError, what: &str) -> Response<Body> {
    match e {
        ReadError::TooLarge(limit) => text(
            StatusCode::BAD_REQUEST,
            format!("request body too large: {what} accepts at most {limit} bytes\n"),
        ),
        ReadError::Timeout(t) => text(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request body not received within {} (read_timeout)\n",
                format_duration(t)
            ),
        ),
        ReadError::Body(e) => text(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {e}\n"),
        ),
    }
}

/// The 504 for a call that ran past its deadline.
pub(crate) fn timed_out(what: &str, deadline: Duration) -> Response<Body> {
    text(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "{what} did not finish within {} and was stopped (exec_timeout)\n",
            format_duration(deadline)
        ),
    )
}

/// Add the headers every function response carries; returns the seconds
/// reported.
pub(crate) fn finish(
    resp: &mut Response<Body>,
    start: Instant,
    call_id: Option<HeaderValue>,
) -> f64 {
    let secs = start.elapsed().as_secs_f64();
    let h = resp.headers_mut();
    h.insert(X_DURATION_SECONDS, seconds_value(secs));
    if let Some(id) = call_id {
        if !h.contains_key(&X_CALL_ID) {
            h.insert(X_CALL_ID, id);
        }
    }
    secs
}

/// `%f` formatting of seconds, as of-watchdog writes them.
fn seconds_value(secs: f64) -> HeaderValue {
    let mut buf = [0u8; 32];
    let mut w = &mut buf[..];
    let _ = write!(w, "{secs:.6}");
    let n = 32 - w.len();
    HeaderValue::from_bytes(&buf[..n]).unwrap_or_else(|_| HeaderValue::from_static("0.000000"))
}

/// Call an in-process function: read the body within its `max_body` (400
/// naming the limit past it), then call it on this thread when it is
/// `inline`, else on the blocking pool within the deadline (504 past it; the
/// call itself cannot be interrupted and finishes in the background, still
/// counted in flight). A panic is a 500.
pub(crate) async fn call_inproc(
    f: &Arc<dyn Function>,
    req: Request<Body>,
    limits: &Limits,
    guard: InflightGuard,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let max = f.max_body();
    let body = match read_body(body, max, limits.read_timeout).await {
        Ok(b) => b,
        Err(e) => return read_error(e, &format!("function '{}'", f.name())),
    };
    let req = Request::from_parts(parts, body);
    if f.inline() {
        let r = call_caught(&**f, req);
        drop(guard);
        return r;
    }
    let f2 = f.clone();
    let task = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        call_caught(&*f2, req)
    });
    match tokio::time::timeout(limits.deadline, task).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("function '{}' failed: {e}\n", f.name()),
        ),
        Err(_) => timed_out(&format!("function '{}'", f.name()), limits.deadline),
    }
}

fn call_caught(f: &dyn Function, req: Request<Bytes>) -> Response<Body> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| f.call(req))) {
        Ok(r) => r.map(Body::full),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string());
            tracing::error!("function '{}' panicked: {msg}", f.name());
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("function '{}' panicked: {msg}\n", f.name()),
            )
        }
    }
}
