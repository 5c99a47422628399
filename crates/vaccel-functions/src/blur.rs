//! `blur`: the image with every face blurred, as JPEG.

use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use vaccel::ops::{DEFAULT_BLUR_PADDING, DEFAULT_JPEG_QUALITY};

use crate::input::{self, ImageFormat};
use crate::reply::{self, FACES, Failure, Format, OP_SECONDS, PLUGIN};
use crate::{DEFAULT_MAX_BODY, SessionSource};

/// The `blur` function (see the crate docs for its HTTP contract).
#[derive(Debug, Clone)]
pub struct Blur {
    source: SessionSource,
    max_body: usize,
}

impl Blur {
    /// Blur with sessions from `source`.
    pub fn new(source: impl Into<SessionSource>) -> Blur {
        Blur {
            source: source.into(),
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// Accept request bodies up to `bytes`.
    pub fn with_max_body(mut self, bytes: usize) -> Blur {
        self.max_body = bytes;
        self
    }

    fn handle(&self, req: Request<Bytes>, _fmt: Format) -> Result<Response<Bytes>, Failure> {
        reply::check_method("blur", req.method(), &[Method::POST], "POST")?;
        let q = reply::query("blur", req.uri().query(), &["padding", "quality"])?;
        let img = input::image(&req, self.max_body)?;
        let padding = match input::param(&q, &img, "padding") {
            Some(v) => parse_padding(&v)?,
            None => DEFAULT_BLUR_PADDING,
        };
        let quality = match input::param(&q, &img, "quality") {
            Some(v) => parse_quality(&v)?,
            None => DEFAULT_JPEG_QUALITY,
        };
        let sess = self
            .source
            .session()
            .map_err(|e| Failure::vaccel(&e, "blur: no vAccel session", false))?;
        let t0 = Instant::now();
        let out = sess.image_blur_faces(&img.bytes, padding, quality);
        let took = t0.elapsed();
        let (image, faces) = out.map_err(|e| Failure::vaccel(&e, "blur", true))?;
        // A real plugin writes JPEG; the debug plugin hands the input back.
        let mime = input::sniff(&image).map_or("application/octet-stream", ImageFormat::mime);
        let mut r = reply::body(StatusCode::OK, HeaderValue::from_static(mime), image);
        let plugin = sess
            .op_plugin(vaccel::OpType::ImageBlurFaces)
            .map_or_else(|_| sess.plugin().name.clone(), |p| p.name.clone());
        let h = r.headers_mut();
        h.insert(FACES, HeaderValue::from(faces));
        h.insert(OP_SECONDS, reply::seconds_header(took));
        if let Some(p) = reply::header_text(&plugin) {
            h.insert(PLUGIN, p);
        }
        Ok(r)
    }
}

fn parse_padding(v: &str) -> Result<f32, Failure> {
    v.trim()
        .parse::<f32>()
        .ok()
        .filter(|p| (0.0..=2.0).contains(p))
        .ok_or_else(|| {
            Failure::bad(format!(
                "padding must be a number within 0..=2 (the fraction of the face box added on each side), got {v}"
            ))
        })
}

fn parse_quality(v: &str) -> Result<u8, Failure> {
    v.trim()
        .parse::<u8>()
        .ok()
        .filter(|q| (1..=100).contains(q))
        .ok_or_else(|| {
            Failure::bad(format!(
                "quality must be a whole number within 1..=100 (JPEG quality), got {v}"
            ))
        })
}

impl vaccel_watchdog::Function for Blur {
    fn name(&self) -> &str {
        "blur"
    }

    fn max_body(&self) -> usize {
        self.max_body
    }

    fn call(&self, req: Request<Bytes>) -> Response<Bytes> {
        reply::serve("blur", req, |req, fmt| self.handle(req, fmt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_validated() {
        assert_eq!(parse_padding("0.5").unwrap(), 0.5);
        assert_eq!(parse_padding(" 0 ").unwrap(), 0.0);
        assert_eq!(parse_padding("2").unwrap(), 2.0);
        for bad in ["-0.1", "2.5", "NaN", "inf", "", "x"] {
            let e = parse_padding(bad).unwrap_err();
            assert!(
                e.message.starts_with("padding must be"),
                "{bad}: {}",
                e.message
            );
        }
        assert_eq!(parse_quality("1").unwrap(), 1);
        assert_eq!(parse_quality("100").unwrap(), 100);
        for bad in ["0", "101", "256", "-1", "50.5", ""] {
            let e = parse_quality(bad).unwrap_err();
            assert!(
                e.message.starts_with("quality must be"),
                "{bad}: {}",
                e.message
            );
        }
    }
}
