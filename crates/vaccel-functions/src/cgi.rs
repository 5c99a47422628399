//! Fork mode: a function run as a process by a forking watchdog
//! (`fprocess="vaccel function classify"`), which passes the request body on
//! standard input and the request's method, path, query and headers in
//! CGI-style environment variables:
//!
//! | variable | meaning |
//! |---|---|
//! | `Http_Method` | request method (default `POST`) |
//! | `Http_Path` | request path (default `/`) |
//! | `Http_Query` | raw query string, without `?` (e.g. `padding=0.3&quality=80`) |
//! | `Http_<Header_Name>` | each request header, `-` written as `_`: `Http_Content_Type`, `Http_Accept`, `Http_X_Call_Id` … |
//!
//! `Http_ContentLength` and `Http_Transfer_Encoding` describe the body on
//! standard input and are not turned into headers.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri};

/// The request a watchdog describes in `vars` (the process environment, or
/// any list of variables), with `body` read from standard input. Variables
/// that are not `Http_*` are ignored; a header variable whose name or value
/// cannot be an HTTP header is skipped.
pub fn request_from_env<I, K, V>(vars: I, body: Bytes) -> Result<Request<Bytes>, String>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut method = Method::POST;
    let mut path = String::from("/");
    let mut query: Option<String> = None;
    let mut headers = Vec::new();
    for (k, v) in vars {
        let (k, v) = (k.as_ref(), v.as_ref());
        let Some(name) = k.strip_prefix("Http_") else {
            continue;
        };
        match name {
            "Method" => {
                method = Method::from_bytes(v.trim().as_bytes())
                    .map_err(|_| format!("Http_Method={v} is not an HTTP method"))?;
            }
            "Path" => {
                if !v.is_empty() {
                    path = if v.starts_with('/') {
                        v.to_string()
                    } else {
                        format!("/{v}")
                    };
                }
            }
            "Query" => query = (!v.is_empty()).then(|| v.to_string()),
            "ContentLength" | "Content_Length" | "Transfer_Encoding" => {}
            header => {
                let name = HeaderName::from_bytes(header.replace('_', "-").as_bytes());
                let value = HeaderValue::from_str(v);
                if let (Ok(n), Ok(v)) = (name, value) {
                    headers.push((n, v));
                }
            }
        }
    }
    let target = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let uri: Uri = target.parse().map_err(|e| {
        format!("Http_Path / Http_Query do not make a request target ({target}): {e}")
    })?;
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    for (n, v) in headers {
        req.headers_mut().append(n, v);
    }
    Ok(req)
}

/// A response as a process outcome: the body of a 2xx response, or one line
/// saying what failed (`400 Bad Request: <the function's message>`).
pub fn outcome(resp: Response<Bytes>) -> Result<Bytes, String> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp.into_body());
    }
    let body = resp.body();
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let message = message.lines().collect::<Vec<_>>().join(" ");
    Err(if message.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {message}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_environment_becomes_a_request() {
        let env = [
            ("PATH", "/usr/bin"),
            ("Http_Method", "PUT"),
            ("Http_Path", "/function/blur"),
            ("Http_Query", "padding=0.3&quality=80"),
            ("Http_Content_Type", "image/png"),
            ("Http_Accept", "text/plain"),
            ("Http_X_Call_Id", "abc"),
            ("Http_ContentLength", "5"),
            ("Http_Bad_Value", "a\nb"),
        ];
        let r = request_from_env(env, Bytes::from_static(b"hello")).unwrap();
        assert_eq!(r.method(), Method::PUT);
        assert_eq!(r.uri().path(), "/function/blur");
        assert_eq!(r.uri().query(), Some("padding=0.3&quality=80"));
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.headers()["accept"], "text/plain");
        assert_eq!(r.headers()["x-call-id"], "abc");
        assert!(r.headers().get("contentlength").is_none());
        assert!(r.headers().get("bad-value").is_none());
        assert_eq!(r.headers().len(), 3);
        assert_eq!(r.body(), "hello");

        let r = request_from_env(Vec::<(String, String)>::new(), Bytes::new()).unwrap();
        assert_eq!(r.method(), Method::POST);
        assert_eq!(r.uri(), "/");

        let e = request_from_env([("Http_Method", "NOT A METHOD")], Bytes::new()).unwrap_err();
        assert!(e.contains("not an HTTP method"), "{e}");
        let e = request_from_env([("Http_Query", "a b")], Bytes::new()).unwrap_err();
        assert!(e.contains("request target"), "{e}");
    }

    #[test]
    fn responses_become_outcomes() {
        assert_eq!(
            outcome(Response::new(Bytes::from_static(b"ok"))).unwrap(),
            "ok"
        );
        let mut r = Response::new(Bytes::from_static(b"{\"error\": \"no image\"}"));
        *r.status_mut() = http::StatusCode::BAD_REQUEST;
        assert_eq!(outcome(r).unwrap_err(), "400 Bad Request: no image");
        let mut r = Response::new(Bytes::from_static(b"line 1\nline 2\n"));
        *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
        assert_eq!(
            outcome(r).unwrap_err(),
            "503 Service Unavailable: line 1 line 2"
        );
        let mut r = Response::new(Bytes::new());
        *r.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
        assert_eq!(outcome(r).unwrap_err(), "405 Method Not Allowed");
    }
}
