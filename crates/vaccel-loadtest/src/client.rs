//! The HTTP/1.1 client: one hyper connection per client thread, driven in
//! the thread's own task (no connection task, no cross-task wake-ups),
//! with connect time, time to first byte and the server's timing headers.

use std::future::{Future, poll_fn};
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{Error, Result};
use crate::inputs::Payload;
use crate::model::Outcome;

type Body = Full<Bytes>;
type Driver = http1::Connection<TokioIo<TcpStream>, Body>;

/// The server's handler time header (of-watchdog, vaccel watchdog and gateway).
pub const HANDLER_HEADER: &str = "x-duration-seconds";
/// The time spent inside the vAccel op (vaccel functions).
pub const OP_HEADER: &str = "x-vaccel-op-seconds";

/// A parsed and resolved `http://` URL.
#[derive(Debug, Clone)]
pub struct Url {
    /// As given.
    pub text: String,
    /// `host[:port]`, for the `Host` header.
    pub authority: String,
    /// Origin-form request target (`/path?query`).
    pub path_and_query: Uri,
    /// Where to connect.
    pub addr: SocketAddr,
    /// The last non-empty path segment (or the host): the default request label.
    pub default_label: String,
}

impl Url {
    /// Parse and resolve.
    pub fn parse(text: &str) -> Result<Url> {
        let bad = |reason: &str| Error::Url {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let uri: Uri = text
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(bad(
                    "https is not supported; load-test the gateway's plain http port",
                ));
            }
            Some(s) => return Err(bad(&format!("unsupported scheme '{s}', expected http://"))),
            None => return Err(bad("expected an absolute http:// URL")),
        }
        let auth = uri.authority().ok_or_else(|| bad("no host"))?.clone();
        if auth.as_str().contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let host = auth.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = auth.port_u16().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|source| Error::Resolve {
                host: format!("{host}:{port}"),
                source,
            })?
            .next()
            .ok_or_else(|| Error::Resolve {
                host: format!("{host}:{port}"),
                source: std::io::Error::other("no address"),
            })?;
        let pq = uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        let path_and_query: Uri = pq.parse().map_err(|_| bad("bad path"))?;
        let default_label = uri
            .path()
            .split('/')
            .rfind(|s| !s.is_empty())
            .unwrap_or(host)
            .to_string();
        Ok(Url {
            text: text.to_string(),
            authority: auth.as_str().to_string(),
            path_and_query,
            addr,
            default_label,
        })
    }
}

/// Everything needed to build the requests of a run.
#[derive(Debug)]
pub struct Target {
    /// Where.
    pub url: Url,
    method: Method,
    headers: HeaderMap,
    payloads: Vec<(Body, Option<HeaderValue>, u64)>,
    /// Whether connections are kept between requests.
    pub keep_alive: bool,
}

impl Target {
    /// Build the request template. `method` defaults to POST with a body, GET without.
    pub fn new(
        url: Url,
        method: Option<&str>,
        extra_headers: &[(String, String)],
        content_type: Option<&str>,
        payloads: Vec<Payload>,
        keep_alive: bool,
    ) -> Result<Target> {
        let has_body = payloads.iter().any(|p| !p.bytes.is_empty());
        let method = match method {
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| Error::Usage(format!("bad HTTP method '{m}'")))?,
            None if has_body => Method::POST,
            None => Method::GET,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_str(&url.authority)
                .map_err(|_| Error::Usage(format!("bad host '{}'", url.authority)))?,
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("vaccel-bench/", env!("CARGO_PKG_VERSION"))),
        );
        if !keep_alive {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        for (k, v) in extra_headers {
            let name = HeaderName::from_bytes(k.trim().as_bytes())
                .map_err(|_| Error::Usage(format!("bad header name '{k}'")))?;
            let value = HeaderValue::from_str(v.trim())
                .map_err(|_| Error::Usage(format!("bad value for header '{k}'")))?;
            headers.append(name, value);
        }
        let forced_ct = match content_type {
            Some(ct) => Some(
                HeaderValue::from_str(ct)
                    .map_err(|_| Error::Usage(format!("bad content type '{ct}'")))?,
            ),
            None => None,
        };
        let user_ct = headers.contains_key(CONTENT_TYPE);
        let head_len = |ct: Option<&HeaderValue>, body_len: usize| -> u64 {
            // Request line, headers, content-length, blank line, body.
            let mut n = method.as_str().len() + 1 + url.path_and_query.to_string().len() + 11;
            for (k, v) in &headers {
                n += k.as_str().len() + 2 + v.len() + 2;
            }
            if let Some(ct) = ct {
                n += 14 + ct.len() + 2;
            }
            if body_len > 0 || method == Method::POST || method == Method::PUT {
                n += 16 + body_len.to_string().len() + 2;
            }
            (n + 2 + body_len) as u64
        };
        let payloads = payloads
            .into_iter()
            .map(|p| {
                let ct = if user_ct {
                    None
                } else {
                    forced_ct
                        .clone()
                        .or_else(|| p.content_type.map(HeaderValue::from_static))
                };
                let sent = head_len(ct.as_ref(), p.bytes.len());
                (Full::new(p.bytes), ct, sent)
            })
            .collect();
        Ok(Target {
            url,
            method,
            headers,
            payloads,
            keep_alive,
        })
    }

    /// Number of distinct payloads.
    pub fn payload_count(&self) -> usize {
        self.payloads.len()
    }

    /// Request `i` (payloads round-robin) and its size on the wire.
    pub fn request(&self, i: usize) -> (Request<Body>, u64) {
        let (body, ct, sent) = &self.payloads[i % self.payloads.len()];
        let mut req = Request::new(body.clone());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.url.path_and_query.clone();
        *req.headers_mut() = self.headers.clone();
        if let Some(ct) = ct {
            req.headers_mut().insert(CONTENT_TYPE, ct.clone());
        }
        (req, *sent)
    }
}

/// One client connection.
pub struct Conn {
    sender: http1::SendRequest<Body>,
    driver: Pin<Box<Driver>>,
    done: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("done", &self.done).finish()
    }
}

impl Conn {
    /// Connect (TCP_NODELAY) and set up HTTP/1.1.
    pub async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        Ok(Conn {
            sender,
            driver: Box::pin(driver),
            done: false,
        })
    }

    /// Let the connection notice a close by the server; whether it can take a request.
    async fn usable(&mut self) -> bool {
        poll_fn(|cx| {
            if !self.done && self.driver.as_mut().poll(cx).is_ready() {
                self.done = true;
            }
            Poll::Ready(())
        })
        .await;
        !self.done && !self.sender.is_closed()
    }
}

/// Run `fut` while driving the connection in the same task.
async fn drive<F: Future>(driver: &mut Pin<Box<Driver>>, done: &mut bool, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(v);
        }
        if !*done && driver.as_mut().poll(cx).is_ready() {
            *done = true;
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// A complete response.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// When the response head arrived.
    pub head_at: Instant,
    /// `X-Duration-Seconds`, µs.
    pub handler_us: Option<u64>,
    /// `X-Vaccel-Op-Seconds`, µs.
    pub op_us: Option<u64>,
    /// Response bytes (head, approximately, and body).
    pub bytes: u64,
    /// Whether the body is text (JMeter's `dataType`).
    pub text: bool,
    /// Whether the server will close the connection.
    pub close: bool,
}

enum Failure {
    NotSent(Box<Request<Body>>, hyper::Error),
    Failed(hyper::Error),
}

fn seconds_header_us(h: &HeaderMap, name: &'static str) -> Option<u64> {
    let s: f64 = h.get(name)?.to_str().ok()?.trim().parse().ok()?;
    (s.is_finite() && s >= 0.0).then(|| (s * 1e6).round() as u64)
}

async fn exchange(conn: &mut Conn, req: Request<Body>) -> Result<Reply, Failure> {
    let Conn {
        sender,
        driver,
        done,
    } = conn;
    let fut = async {
        let resp = sender
            .try_send_request(req)
            .await
            .map_err(|mut e| match e.take_message() {
                Some(req) => Failure::NotSent(Box::new(req), e.into_error()),
                None => Failure::Failed(e.into_error()),
            })?;
        let head_at = Instant::now();
        let (parts, mut body) = resp.into_parts();
        let h = &parts.headers;
        let mut bytes = 12 + parts.status.canonical_reason().map_or(0, str::len) as u64 + 2 + 2;
        for (k, v) in h {
            bytes += (k.as_str().len() + v.len() + 4) as u64;
        }
        let text = h.get(CONTENT_TYPE).is_none_or(|ct| {
            let ct = ct.as_bytes();
            ct.starts_with(b"text/")
                || ct.windows(4).any(|w| w.eq_ignore_ascii_case(b"json"))
                || ct.windows(3).any(|w| w.eq_ignore_ascii_case(b"xml"))
        });
        let close = h
            .get(CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let handler_us = seconds_header_us(h, HANDLER_HEADER);
        let op_us = seconds_header_us(h, OP_HEADER);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(Failure::Failed)?;
            if let Some(d) = frame.data_ref() {
                bytes += d.len() as u64;
            }
        }
        Ok(Reply {
            status: parts.status.as_u16(),
            head_at,
            handler_us,
            op_us,
            bytes,
            text,
            close,
        })
    };
    drive(driver, done, fut).await
}

/// Why a request got no complete response (not a timeout).
#[derive(Debug)]
pub struct RequestError {
    /// Always [`Outcome::ConnectionError`] for now.
    pub outcome: Outcome,
    /// What happened.
    pub message: String,
}

fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let t = x.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = x.source();
    }
    s
}

/// Send one request on `slot`'s connection, connecting first when there is
/// none (the connect time goes to `connect_us`). A request the connection
/// could not take (closed while idle) is retried once on a new connection.
pub async fn send(
    target: &Target,
    slot: &mut Option<Conn>,
    mut req: Request<Body>,
    connect_us: &mut Option<u64>,
) -> Result<Reply, RequestError> {
    let mut retried = false;
    loop {
        let reusable = match slot.as_mut() {
            Some(c) => c.usable().await,
            None => false,
        };
        let fresh = !reusable;
        if fresh {
            *slot = None;
            let c0 = Instant::now();
            match Conn::open(target.url.addr).await {
                Ok(c) => {
                    *connect_us = Some(c0.elapsed().as_micros() as u64);
                    *slot = Some(c);
                }
                Err(e) => {
                    return Err(RequestError {
                        outcome: Outcome::ConnectionError,
                        message: format!("connect to {}: {}", target.url.addr, describe(&e)),
                    });
                }
            }
        }
        let conn = slot.as_mut().expect("connected above");
        match exchange(conn, req).await {
            Ok(reply) => {
                if !target.keep_alive || reply.close {
                    *slot = None;
                }
                return Ok(reply);
            }
            Err(Failure::NotSent(r, _)) if !fresh && !retried => {
                *slot = None;
                req = *r;
                retried = true;
            }
            Err(Failure::NotSent(_, e) | Failure::Failed(e)) => {
                *slot = None;
                return Err(RequestError {
                    outcome: Outcome::ConnectionError,
                    message: describe(&e),
                });
            }
        }
    }
}

/// How long `send` may take as a whole, formatted for messages.
pub fn timeout_message(t: Duration) -> String {
    format!(
        "no complete response within {}",
        crate::spec::format_duration(t)
    )
}
