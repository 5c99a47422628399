//! `classify`: the top ImageNet labels of an image.

use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use vaccel::{Arg, ArgType, OpType};

use crate::input;
use crate::reply::{self, Failure, Format, OP_SECONDS, PLUGIN};
use crate::{DEFAULT_MAX_BODY, SessionSource};

/// Labels returned unless `top` says otherwise.
pub const DEFAULT_TOP: usize = 5;
/// The largest `top` accepted.
pub const MAX_TOP: usize = 100;

/// The `classify` function (see the crate docs for its HTTP contract).
#[derive(Debug, Clone)]
pub struct Classify {
    source: SessionSource,
    max_body: usize,
}

impl Classify {
    /// Classify with sessions from `source`.
    pub fn new(source: impl Into<SessionSource>) -> Classify {
        Classify {
            source: source.into(),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Accept request bodies up to `bytes`.
    pub fn with_max_body(mut self, bytes: usize) -> Classify {
        self.max_body = bytes;
        self
    }

    fn handle(&self, req: Request<Bytes>, fmt: Format) -> Result<Response<Bytes>, Failure> {
        reply::check_method("classify", req.method(), &[Method::POST], "POST")?;
        let q = reply::query("classify", req.uri().query(), &["top"])?;
        let img = input::image(&req, self.max_body)?;
        let top = match input::param(&q, &img, "top") {
            Some(v) => parse_top(&v)?,
            None => DEFAULT_TOP,
        };
        let sess = self
            .source
            .session()
            .map_err(|e| Failure::vaccel(&e, "classify: no vAccel session", false))?;
        let k = u32::try_from(top).unwrap_or(u32::MAX);
        let read = [Arg::buffer(&img.bytes), Arg::scalar(&k)];
        let t0 = Instant::now();
        let out = sess.genop_collect(
            OpType::ImageClassify,
            &read,
            [ArgType::String, ArgType::String, vaccel::ops::BYTES],
        );
        let took = t0.elapsed();
        let [text, model, labels] = out.map_err(|e| Failure::vaccel(&e, "classify", true))?;
        let labels = vaccel::ops::decode_labels(&labels)
            .map_err(|e| Failure::vaccel(&e, "classify: the plugin's labels", false))?;
        let plugin = sess
            .op_plugin(OpType::ImageClassify)
            .map_or_else(|_| sess.plugin().name.clone(), |p| p.name.clone());
        let mut r = match fmt {
            Format::Text => {
                let t = String::from_utf8_lossy(&text);
                let t = if t.is_empty() {
                    vaccel::ops::classification_text(&labels)
                } else {
                    t.into_owned()
                };
                reply::text(StatusCode::OK, t)
            }
            Format::Json => {
                let model = String::from_utf8_lossy(&model).into_owned();
                let model = if model.is_empty() {
                    format!("default model of plugin '{plugin}'")
                } else {
                    model
                };
                let labels: Vec<serde_json::Value> = labels
                    .iter()
                    .map(|l| {
                        serde_json::json!({
                            "label": l.label,
                            "score": round6(l.score),
                            "index": l.index,
                        })
                    })
                    .collect();
                reply::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "labels": labels,
                        "model": model,
                        "plugin": plugin,
                        "op_seconds": reply::seconds(took),
                    }),
                )
            }
        };
        let h = r.headers_mut();
        h.insert(OP_SECONDS, reply::seconds_header(took));
        if let Some(p) = reply::header_text(&plugin) {
            h.insert(PLUGIN, p);
        }
        Ok(r)
    }
}

/// A score rounded to 6 decimals, so `0.437` reads as `0.437` in JSON.
fn round6(s: f32) -> f64 {
    (f64::from(s) * 1e6).round() / 1e6
}

fn parse_top(v: &str) -> Result<usize, Failure> {
    v.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_TOP).contains(n))
        .ok_or_else(|| {
            Failure::bad(format!(
                "top must be a whole number within 1..={MAX_TOP} (how many labels to return), got {v}"
            ))
        })
}

impl vaccel_watchdog::Function for Classify {
    fn name(&self) -> &str {
        "classify"
    }

    fn max_body(&self) -> usize {
        self.max_body
    }

    fn call(&self, req: Request<Bytes>) -> Response<Bytes> {
        reply::serve("classify", req, |req, fmt| self.handle(req, fmt))
    }
}
