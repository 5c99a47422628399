//! `echo` and `noop`: the functions that measure overheads.

use std::time::Instant;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};

use crate::reply::{self, Failure, Format, OP_SECONDS, PLUGIN};
use crate::{DEFAULT_MAX_BODY, SessionSource};

/// The `echo` function: the request body back, with its content type. No
/// vAccel call; served inline on the server's I/O thread.
#[derive(Debug, Clone)]
pub struct Echo {
    max_body: usize,
}

impl Default for Echo {
    fn default() -> Self {
        Echo::new()
    }
}

impl Echo {
    /// With the default body limit.
    pub fn new() -> Echo {
        Echo {
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Accept request bodies up to `bytes`.
    pub fn with_max_body(mut self, bytes: usize) -> Echo {
        self.max_body = bytes;
        self
    }

    fn handle(&self, req: Request<Bytes>) -> Result<Response<Bytes>, Failure> {
        reply::check_size(req.body().len(), self.max_body)?;
        let ct = req.headers().get(CONTENT_TYPE).cloned();
        let mut r = Response::new(req.into_body());
        *r.status_mut() = StatusCode::OK;
        if let Some(ct) = ct {
            r.headers_mut().insert(CONTENT_TYPE, ct);
        }
        Ok(r)
    }
}

impl vaccel_watchdog::Function for Echo {
    fn name(&self) -> &str {
        "echo"
    }

    fn max_body(&self) -> usize {
        self.max_body
    }

    fn inline(&self) -> bool {
        true
    }

    fn call(&self, req: Request<Bytes>) -> Response<Bytes> {
        reply::serve("echo", req, |req, _| self.handle(req))
    }
}

/// Body limit of `noop` (it ignores the body).
pub const NOOP_MAX_BODY: usize = 1 << 20;

/// The `noop` function: one NOOP op on the session's plugin (the vAccel
/// dispatch path, the agent round trip included with the `remote` plugin).
#[derive(Debug, Clone)]
pub struct Noop {
    source: SessionSource,
    max_body: usize,
}

impl Noop {
    /// NOOP on sessions from `source`.
    pub fn new(source: impl Into<SessionSource>) -> Noop {
        Noop {
            source: source.into(),
            max_body: NOOP_MAX_BODY,
        }
    }

    /// Accept (and ignore) request bodies up to `bytes`.
    pub fn with_max_body(mut self, bytes: usize) -> Noop {
        self.max_body = bytes;
        self
    }

    fn handle(&self, req: Request<Bytes>, fmt: Format) -> Result<Response<Bytes>, Failure> {
        reply::check_method(
            "noop",
            req.method(),
            &[Method::GET, Method::POST],
            "GET, POST",
        )?;
        reply::query("noop", req.uri().query(), &[])?;
        reply::check_size(req.body().len(), self.max_body)?;
        let sess = self
            .source
            .session()
            .map_err(|e| Failure::vaccel(&e, "noop: no vAccel session", false))?;
        let t0 = Instant::now();
        let out = sess.noop();
        let took = t0.elapsed();
        out.map_err(|e| Failure::vaccel(&e, "noop", false))?;
        let plugin = sess
            .op_plugin(vaccel::OpType::Noop)
            .map_or_else(|_| sess.plugin().name.clone(), |p| p.name.clone());
        let mut r = match fmt {
            Format::Json => reply::json(
                StatusCode::OK,
                &serde_json::json!({
                    "plugin": plugin,
                    "op_seconds": reply::seconds(took),
                }),
            ),
            Format::Text => reply::text(
                StatusCode::OK,
                format!("noop: {} s on plugin '{plugin}'", reply::seconds(took)),
            ),
        };
        let h = r.headers_mut();
        h.insert(OP_SECONDS, reply::seconds_header(took));
        if let Some(p) = reply::header_text(&plugin) {
            h.insert(PLUGIN, p);
        }
        Ok(r)
    }
}

impl vaccel_watchdog::Function for Noop {
    fn name(&self) -> &str {
        "noop"
    }

    fn max_body(&self) -> usize {
        self.max_body
    }

    fn call(&self, req: Request<Bytes>) -> Response<Bytes> {
        reply::serve("noop", req, |req, fmt| self.handle(req, fmt))
    }
}
