//! What every function shares: content negotiation, responses, the mapping
//! of vAccel errors to HTTP statuses, query parsing, method checks and the
//! panic guard.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use vaccel::Code;

/// Header carrying the seconds spent inside the vAccel op.
pub const OP_SECONDS: HeaderName = HeaderName::from_static("x-vaccel-op-seconds");
/// Header naming the plugin that ran the op (`remote` when forwarded to an agent).
pub const PLUGIN: HeaderName = HeaderName::from_static("x-vaccel-plugin");
/// Header carrying the vAccel error code (`EINVAL`, `ESESS`, …) of a failed op.
pub const ERROR_CODE: HeaderName = HeaderName::from_static("x-vaccel-error");
/// Header carrying the number of faces `blur` found.
pub const FACES: HeaderName = HeaderName::from_static("x-faces");

pub(crate) const JSON: &str = "application/json";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// How a response body is written: JSON unless the client prefers plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Text,
}

/// The quality the `Accept` header gives to `ty/sub` (the most specific
/// matching range wins), or `None` when no range matches.
fn quality(accept: &str, ty: &str, sub: &str) -> Option<f32> {
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let Some((t, s)) = media.split_once('/') else {
            continue;
        };
        let (t, s) = (t.trim(), s.trim());
        let specificity = if t.eq_ignore_ascii_case(ty) && s.eq_ignore_ascii_case(sub) {
            2
        } else if t.eq_ignore_ascii_case(ty) && s == "*" {
            1
        } else if t == "*" && s == "*" {
            0
        } else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|v| v.trim().parse::<f32>().ok())
            .find(|q| q.is_finite())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        if best.is_none_or(|(sp, _)| specificity > sp) {
            best = Some((specificity, q));
        }
    }
    best.map(|(_, q)| q)
}

impl Format {
    /// Plain text when `Accept` rates `text/plain` above `application/json`;
    /// JSON otherwise (also with no `Accept` at all).
    pub(crate) fn of(headers: &HeaderMap) -> Format {
        let accept: Vec<&str> = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if accept.is_empty() {
            return Format::Json;
        }
        let accept = accept.join(",");
        let text = quality(&accept, "text", "plain").unwrap_or(0.0);
        let json = quality(&accept, "application", "json").unwrap_or(0.0);
        if text > json {
            Format::Text
        } else {
            Format::Json
        }
    }
}

/// A response with a body and a content type.
pub(crate) fn body(
    status: StatusCode,
    content_type: HeaderValue,
    body: impl Into<Bytes>,
) -> Response<Bytes> {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, content_type);
    r
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, v: &serde_json::Value) -> Response<Bytes> {
    let mut text = v.to_string();
    text.push('\n');
    body(status, HeaderValue::from_static(JSON), text)
}

/// A plain-text response (a newline is added when missing).
pub(crate) fn text(status: StatusCode, s: impl Into<String>) -> Response<Bytes> {
    let mut s = s.into();
    if !s.ends_with('\n') {
        s.push('\n');
    }
    body(status, HeaderValue::from_static(TEXT), s)
}

/// A failed request: status, message, and the vAccel code when the failure
/// came from vAccel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: StatusCode,
    pub message: String,
    pub code: Option<Code>,
    pub allow: Option<&'static str>,
}

impl Failure {
    /// 400 with a message.
    pub(crate) fn bad(message: impl Into<String>) -> Failure {
        Failure {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            code: None,
            allow: None,
        }
    }

    /// A failed vAccel op. `input_blamed`: whether an `EINVAL` means the
    /// request's input was rejected (400) rather than a server-side fault.
    pub(crate) fn vaccel(e: &vaccel::Error, what: &str, input_blamed: bool) -> Failure {
        Failure {
            status: status_of(e.code(), input_blamed),
            message: format!("{what}: {} ({})", e.message(), e.code()),
            code: Some(e.code()),
            allow: None,
        }
    }

    /// The response, in the format the client prefers.
    pub(crate) fn respond(&self, fmt: Format) -> Response<Bytes> {
        let mut r = match fmt {
            Format::Text => text(self.status, self.message.clone()),
            Format::Json => {
                let mut v = serde_json::json!({
                    "error": self.message,
                    "status": self.status.as_u16(),
                });
                if let Some(c) = self.code {
                    v["code"] = c.name().into();
                }
                json(self.status, &v)
            }
        };
        let h = r.headers_mut();
        if let Some(c) = self.code {
            h.insert(ERROR_CODE, HeaderValue::from_static(c.name()));
        }
        if let Some(a) = self.allow {
            h.insert(ALLOW, HeaderValue::from_static(a));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// The HTTP status for a vAccel error code.
///
/// | code | status |
/// |---|---|
/// | `EINVAL`, `ERANGE` (input rejected by the op) | 400 |
/// | `ENOTSUP` (no loaded plugin implements the op) | 501 |
/// | `ESESS`, `EREMOTEIO`, `EAGAIN`, `EBUSY`, `ENOMEM` (agent unreachable, connection lost, out of capacity) | 503 |
/// | `ETIMEDOUT` | 504 |
/// | anything else (`EBACKEND`, `ENOENT` model missing, `EIO`, …) | 500 |
pub fn status_of(code: Code, input_blamed: bool) -> StatusCode {
    match code {
        Code::Inval | Code::Range if input_blamed => StatusCode::BAD_REQUEST,
        Code::NotSup => StatusCode::NOT_IMPLEMENTED,
        Code::Sess | Code::RemoteIo | Code::Again | Code::Busy | Code::NoMem => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Code::TimedOut => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// 405 unless the method is one of `allowed`; `allow` is the `Allow` header.
pub(crate) fn check_method(
    function: &str,
    method: &Method,
    allowed: &[Method],
    allow: &'static str,
) -> Result<(), Failure> {
    if allowed.contains(method) {
        return Ok(());
    }
    Err(Failure {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("method {method} is not allowed: {function} accepts {allow}"),
        code: None,
        allow: Some(allow),
    })
}

/// 400 when the body is over `limit` bytes.
pub(crate) fn check_size(len: usize, limit: usize) -> Result<(), Failure> {
    if len > limit {
        return Err(Failure::bad(format!(
            "request body of {len} bytes is over the limit of {limit} bytes"
        )));
    }
    Ok(())
}

/// Percent-decode one query component (`+` is a space).
fn unescape(s: &str) -> Result<String, Failure> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| Failure::bad(format!("bad percent-escape in query '{s}'")))?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Failure::bad(format!("query '{s}' is not UTF-8")))
}

/// The query parameters of a request, each of `known` at most once; any
/// other name is a 400 that lists the accepted ones.
pub(crate) fn query(
    function: &str,
    req_query: Option<&str>,
    known: &[&str],
) -> Result<Vec<(String, String)>, Failure> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in req_query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (unescape(k)?, unescape(v)?);
        if !known.contains(&k.as_str()) {
            return Err(Failure::bad(if known.is_empty() {
                format!("unknown query parameter '{k}': {function} takes none")
            } else {
                format!(
                    "unknown query parameter '{k}': {function} accepts {}",
                    known.join(", ")
                )
            }));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(Failure::bad(format!(
                "query parameter '{k}' is given twice"
            )));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// Seconds as a header value (`0.012345678`: plain decimal, never exponent).
pub(crate) fn seconds_header(d: Duration) -> HeaderValue {
    HeaderValue::from_str(&seconds(d).to_string()).unwrap_or(HeaderValue::from_static("0"))
}

/// Seconds as a float.
pub(crate) fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A header value from a plugin name (or another runtime string); `None`
/// when it cannot be a header value.
pub(crate) fn header_text(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "unknown panic"
    }
}

/// Run a handler; a failure becomes its response and a panic a 500, so a
/// function never takes its server down.
pub(crate) fn serve(
    function: &str,
    req: Request<Bytes>,
    handler: impl FnOnce(Request<Bytes>, Format) -> Result<Response<Bytes>, Failure>,
) -> Response<Bytes> {
    let fmt = Format::of(req.headers());
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(req, fmt))) {
        Ok(Ok(r)) => r,
        Ok(Err(f)) => f.respond(fmt),
        Err(p) => Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("internal error in function {function}: {}", panic_text(&*p)),
            code: None,
            allow: None,
        }
        .respond(fmt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(accept: &[&str]) -> Format {
        let mut h = HeaderMap::new();
        for a in accept {
            h.append(ACCEPT, HeaderValue::from_str(a).unwrap());
        }
        Format::of(&h)
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(fmt(&[]), Format::Json);
        assert_eq!(fmt(&["*/*"]), Format::Json);
        assert_eq!(fmt(&["application/json"]), Format::Json);
        assert_eq!(fmt(&["text/plain"]), Format::Text);
        assert_eq!(fmt(&["TEXT/Plain; charset=utf-8"]), Format::Text);
        assert_eq!(fmt(&["text/*"]), Format::Text);
        assert_eq!(fmt(&["application/json, text/plain"]), Format::Json);
        assert_eq!(fmt(&["application/json;q=0.5, text/plain"]), Format::Text);
        assert_eq!(fmt(&["text/plain;q=0.2, */*;q=0.5"]), Format::Json);
        assert_eq!(fmt(&["image/jpeg"]), Format::Json);
        assert_eq!(fmt(&["text/plain;q=0"]), Format::Json);
        assert_eq!(fmt(&["image/jpeg", "text/plain"]), Format::Text);
        // A browser's default: */* for both, JSON wins the tie.
        assert_eq!(
            fmt(&["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"]),
            Format::Json
        );
        assert_eq!(fmt(&["garbage"]), Format::Json);
        assert_eq!(fmt(&["text/plain;q=nan"]), Format::Text);
    }

    #[test]
    fn queries_are_decoded_and_checked() {
        let q = query(
            "blur",
            Some("padding=0.5&quality=%3780"),
            &["padding", "quality"],
        )
        .unwrap();
        assert_eq!(
            q,
            vec![
                ("padding".into(), "0.5".into()),
                ("quality".into(), "780".into())
            ]
        );
        assert_eq!(query("blur", None, &["padding"]).unwrap(), vec![]);
        assert_eq!(query("blur", Some("&&"), &["padding"]).unwrap(), vec![]);
        let e = query("blur", Some("size=3"), &["padding", "quality"]).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "unknown query parameter 'size': blur accepts padding, quality"
        );
        let e = query("echo", Some("a"), &[]).unwrap_err();
        assert!(e.message.contains("echo takes none"), "{}", e.message);
        let e = query("blur", Some("padding=1&padding=2"), &["padding"]).unwrap_err();
        assert!(e.message.contains("given twice"), "{}", e.message);
        let e = query("blur", Some("padding=%zz"), &["padding"]).unwrap_err();
        assert!(e.message.contains("percent-escape"), "{}", e.message);
        let e = query("blur", Some("padding=%ff"), &["padding"]).unwrap_err();
        assert!(e.message.contains("not UTF-8"), "{}", e.message);
        let q = query("x", Some("a+b=c%20d"), &["a b"]).unwrap();
        assert_eq!(q, vec![("a b".into(), "c d".into())]);
    }

    #[test]
    fn codes_map_to_statuses() {
        assert_eq!(status_of(Code::Inval, true), StatusCode::BAD_REQUEST);
        assert_eq!(
            status_of(Code::Inval, false),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(status_of(Code::Sess, true), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of(Code::TimedOut, true), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(status_of(Code::NotSup, true), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(
            status_of(Code::Backend, true),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status_of(Code::NoEnt, true),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn failures_render_as_json_or_text() {
        let f = Failure::vaccel(
            &vaccel::Error::new(Code::Sess, "agent gone"),
            "classify",
            true,
        );
        let r = f.respond(Format::Json);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert_eq!(r.headers()[ERROR_CODE], "ESESS");
        assert_eq!(r.headers()[CONTENT_TYPE], JSON);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error"], "classify: agent gone (ESESS)");
        assert_eq!(v["code"], "ESESS");
        assert_eq!(v["status"], 503);
        let r = Failure::bad("nope").respond(Format::Text);
        assert_eq!(r.body(), "nope\n");
        assert_eq!(r.headers()[CONTENT_TYPE], TEXT);
        assert!(r.headers().get(ERROR_CODE).is_none());
    }

    #[test]
    fn panics_become_500() {
        let req = Request::new(Bytes::new());
        let r = serve("boom", req, |_, _| panic!("kaboom"));
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error"], "internal error in function boom: kaboom");
    }

    #[test]
    fn seconds_are_plain_decimals() {
        let h = seconds_header(Duration::from_nanos(50));
        assert_eq!(h, "0.00000005");
        assert!(h.to_str().unwrap().parse::<f64>().unwrap() > 0.0);
    }
}
