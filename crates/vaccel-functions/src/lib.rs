//! # vaccel-functions
//!
//! The project's serverless functions, as [`vaccel_watchdog::Function`]s:
//! served in-process by the watchdog and the local gateway (`vaccel up`), or
//! run as a process per request by a forking watchdog
//! (`fprocess="vaccel function classify"`, see [`cgi`]).
//!
//! A function holds a [`SessionSource`]: sessions come from the runtime the
//! caller passes in, so the same function runs its ops on a local plugin
//! (`onnx`) or forwards them to `vaccel agent` through the `remote` plugin —
//! the path a sandboxed function takes.
//!
//! ```no_run
//! use std::sync::Arc;
//! let rt = Arc::new(vaccel::runtime_from_env()?);
//! let classify = vaccel_functions::builtin("classify", rt).expect("a built-in");
//! let req = http::Request::post("/").body(std::fs::read("dog.jpg").unwrap().into()).unwrap();
//! let resp = classify.call(req);
//! assert_eq!(resp.status(), 200);
//! # Ok::<(), vaccel::Error>(())
//! ```
//!
//! | function | image | vAccel op | inline |
//! |---|---|---|---|
//! | `classify` | `vaccel/classify` | IMAGE_CLASSIFY | no |
//! | `blur` | `vaccel/blur` | IMAGE_BLUR_FACES | no |
//! | `echo` | `vaccel/echo` | – | yes |
//! | `noop` | `vaccel/noop` | NOOP | no |
//!
//! ## Images in requests (`classify`, `blur`)
//!
//! The body is either
//!
//! - the encoded image itself: JPEG, PNG or WebP, recognised by its magic
//!   bytes whatever the `Content-Type` says (`curl --data-binary` sends
//!   `application/x-www-form-urlencoded`), or
//! - JSON (`Content-Type: application/json`, or a body starting with `{`
//!   without a more specific type): an object with the image as base64 in
//!   one of the fields `image`, `frame`, `data`, `img`, `image_base64`,
//!   `imageBase64`, `b64`, `base64` (first found wins; see
//!   [`IMAGE_FIELDS`]), or a bare JSON string. The base64 may use the
//!   standard or the URL-safe alphabet, with or without padding and line
//!   breaks, and may be a `data:image/jpeg;base64,…` URL. The object may
//!   also carry the function's parameters (`"quality": 80`).
//!
//! Parameters come from the query string, or else from the JSON object;
//! an unknown query parameter is a 400 naming the accepted ones.
//!
//! The image is checked before any op runs, and an image the plugin then
//! cannot decode (truncated, corrupt) is also a 400.
//!
//! ## `classify`
//!
//! `POST` an image (`?top=N`, 1..=100, default 5). `200` with
//! `Content-Type: application/json`:
//!
//! ```json
//! {"labels": [{"label": "German shepherd, German shepherd dog, …", "score": 0.437, "index": 235}, …],
//!  "model": "efficientnet-lite0.onnx", "plugin": "onnx", "op_seconds": 0.0123}
//! ```
//!
//! labels best first; `model` is the model the plugin used (the name it
//! reports, or `default model of plugin '<name>'` when it reports none);
//! `plugin` the plugin that ran the op (`remote` through an agent). With
//! `Accept: text/plain` (preferred over JSON) the body is upstream vAccel's
//! text form instead: `classification tags: 43.700% German shepherd, …`.
//!
//! ## `blur`
//!
//! `POST` an image (`?padding=P`, the fraction of each face box added on
//! every side, 0..=2, default 0.2; `?quality=Q`, JPEG quality 1..=100,
//! default 90). `200` with `Content-Type: image/jpeg`: the image with every
//! face blurred, and `X-Faces: <count>`.
//!
//! ## `echo`
//!
//! Any method: `200` with the request body and its `Content-Type`
//! unchanged. No vAccel call; [`inline`](vaccel_watchdog::Function::inline)
//! (runs on the server's I/O thread), for measuring the serving overhead.
//!
//! ## `noop`
//!
//! `GET` or `POST` (the body is ignored): one NOOP op — the vAccel dispatch
//! path, the agent round trip included with the `remote` plugin. `200` with
//! `{"plugin": "noop", "op_seconds": 0.0000012}` (text with
//! `Accept: text/plain`).
//!
//! ## Headers
//!
//! | header | on | meaning |
//! |---|---|---|
//! | `X-Vaccel-Op-Seconds` | every 2xx of classify, blur, noop | seconds spent inside the vAccel op (a plain decimal) |
//! | `X-Vaccel-Plugin` | the same | the plugin that ran the op |
//! | `X-Faces` | blur | faces found and blurred |
//! | `X-Vaccel-Error` | errors from vAccel | the vAccel code (`EINVAL`, `ESESS`, …) |
//! | `Allow` | 405 | the methods the function accepts |
//! | `Retry-After` | 503 | `1` |
//!
//! ## Errors
//!
//! An error is `{"error": "<message>", "status": 400}` (plus `"code":
//! "<vAccel code>"` when vAccel failed), or the message as text when the
//! client prefers `text/plain`. A function never panics (a bug is a 500)
//! and keeps serving after any error.
//!
//! | status | when |
//! |---|---|
//! | 400 | empty body; body over the limit ([`max_body`](vaccel_watchdog::Function::max_body), default [`DEFAULT_MAX_BODY`]; configurable); not a JPEG/PNG/WebP image; unsupported `Content-Type` with a body that is no image; invalid JSON, no image field, bad base64; bad or unknown parameter; an image the plugin rejects (`EINVAL`) |
//! | 405 | a method the function does not accept (with `Allow`) |
//! | 501 | no loaded plugin implements the op (`ENOTSUP`) |
//! | 503 | the agent is unreachable or the connection was lost (`ESESS`, `EREMOTEIO`), or out of capacity (`EAGAIN`, `EBUSY`, `ENOMEM`); the next request tries again |
//! | 504 | the op timed out (`ETIMEDOUT`) |
//! | 500 | any other vAccel failure (`EBACKEND`, a missing model `ENOENT`, …), with its message |

#![forbid(unsafe_code)]

use std::sync::Arc;

mod basic;
mod blur;
pub mod cgi;
mod classify;
mod input;
mod reply;
mod source;

pub use basic::{Echo, NOOP_MAX_BODY, Noop};
pub use blur::Blur;
pub use classify::{Classify, DEFAULT_TOP, MAX_TOP};
pub use input::{IMAGE_FIELDS, ImageFormat, decode_base64, sniff};
pub use reply::{ERROR_CODE, FACES, OP_SECONDS, PLUGIN, status_of};
pub use source::SessionSource;
pub use vaccel_watchdog::Function;
/// The HTTP types of the [`Function`] interface.
pub use {bytes, http};

/// Default body limit of the image functions and `echo`: 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// What the gateway's function listing (and `vaccel function --help`) shows
/// about a built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionInfo {
    /// The name it is served under (`/function/<name>`).
    pub name: &'static str,
    /// One line for people.
    pub description: &'static str,
    /// The image name an OpenFaaS listing shows for it.
    pub image: &'static str,
    /// The command a forking watchdog runs for it.
    pub fprocess: &'static str,
    /// Methods it accepts (`*`: any).
    pub methods: &'static [&'static str],
    /// Request content types it accepts.
    pub accepts: &'static [&'static str],
    /// What a 200 carries.
    pub returns: &'static str,
    /// The vAccel op it calls per request, if any.
    pub op: Option<vaccel::OpType>,
    /// Whether it runs on the server's I/O thread.
    pub inline: bool,
    /// Its default body limit in bytes.
    pub max_body: usize,
}

const IMAGES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "application/octet-stream",
    "application/json",
];

static CATALOG: [FunctionInfo; 4] = [
    FunctionInfo {
        name: "classify",
        description: "Classify an image: the top ImageNet labels with scores (IMAGE_CLASSIFY)",
        image: "vaccel/classify",
        fprocess: "vaccel function classify",
        methods: &["POST"],
        accepts: IMAGES,
        returns: "application/json (text/plain on request)",
        op: Some(vaccel::OpType::ImageClassify),
        inline: false,
        max_body: DEFAULT_MAX_BODY,
    },
    FunctionInfo {
        name: "blur",
        description: "Blur every face in an image; returns a JPEG (IMAGE_BLUR_FACES)",
        image: "vaccel/blur",
        fprocess: "vaccel function blur",
        methods: &["POST"],
        accepts: IMAGES,
        returns: "image/jpeg",
        op: Some(vaccel::OpType::ImageBlurFaces),
        inline: false,
        max_body: DEFAULT_MAX_BODY,
    },
    FunctionInfo {
        name: "echo",
        description: "Return the request body unchanged, no vAccel call (serving overhead)",
        image: "vaccel/echo",
        fprocess: "vaccel function echo",
        methods: &["*"],
        accepts: &["*/*"],
        returns: "the request body and content type",
        op: None,
        inline: true,
        max_body: DEFAULT_MAX_BODY,
    },
    FunctionInfo {
        name: "noop",
        description: "One NOOP op: the vAccel dispatch cost, agent round trip included when remote",
        image: "vaccel/noop",
        fprocess: "vaccel function noop",
        methods: &["GET", "POST"],
        accepts: &["*/*"],
        returns: "application/json (text/plain on request)",
        op: Some(vaccel::OpType::Noop),
        inline: false,
        max_body: NOOP_MAX_BODY,
    },
];

static NAMES: [&str; 4] = ["classify", "blur", "echo", "noop"];

/// The names of the built-in functions.
pub fn names() -> &'static [&'static str] {
    &NAMES
}

/// Every built-in function's description, in [`names`] order.
pub fn catalog() -> &'static [FunctionInfo] {
    &CATALOG
}

/// The description of one built-in function.
pub fn info(name: &str) -> Option<&'static FunctionInfo> {
    CATALOG.iter().find(|f| f.name == name)
}

/// Settings for [`builtin_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Body limit in bytes instead of the function's default.
    pub max_body: Option<usize>,
}

impl Options {
    /// With a body limit.
    pub fn max_body(mut self, bytes: usize) -> Options {
        self.max_body = Some(bytes);
        self
    }
}

/// The built-in function `name` with sessions from `source` (an
/// `Arc<Runtime>`, a `&'static Runtime`, a `Session` or a
/// [`SessionSource`]), or `None` for an unknown name.
pub fn builtin(name: &str, source: impl Into<SessionSource>) -> Option<Arc<dyn Function>> {
    builtin_with(name, source, &Options::default())
}

/// [`builtin`] with settings.
pub fn builtin_with(
    name: &str,
    source: impl Into<SessionSource>,
    options: &Options,
) -> Option<Arc<dyn Function>> {
    let info = info(name)?;
    let max = options.max_body.unwrap_or(info.max_body);
    Some(match name {
        "classify" => Arc::new(Classify::new(source).with_max_body(max)),
        "blur" => Arc::new(Blur::new(source).with_max_body(max)),
        "echo" => Arc::new(Echo::new().with_max_body(max)),
        "noop" => Arc::new(Noop::new(source).with_max_body(max)),
        _ => return None,
    })
}

/// Every built-in function, sharing one session from `source`.
pub fn all(source: impl Into<SessionSource>) -> Vec<Arc<dyn Function>> {
    let source = source.into();
    NAMES.iter().filter_map(|n| builtin(n, &source)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop_runtime() -> Arc<vaccel::Runtime> {
        Arc::new(
            vaccel::Runtime::builder()
                .with_plugin(Arc::new(vaccel_plugin_noop::NoopPlugin::new()))
                .build()
                .unwrap(),
        )
    }

    #[test]
    fn registry_is_consistent() {
        assert_eq!(names().len(), catalog().len());
        let rt = noop_runtime();
        for (n, i) in names().iter().zip(catalog()) {
            assert_eq!(*n, i.name);
            assert_eq!(i.image, format!("vaccel/{n}"));
            assert_eq!(i.fprocess, format!("vaccel function {n}"));
            let f = builtin(n, rt.clone()).unwrap();
            assert_eq!(f.name(), *n);
            assert_eq!(f.inline(), i.inline);
            assert_eq!(f.max_body(), i.max_body);
            let f = builtin_with(n, rt.clone(), &Options::default().max_body(7)).unwrap();
            assert_eq!(f.max_body(), 7);
        }
        assert!(builtin("nosuch", rt.clone()).is_none());
        assert!(info("nosuch").is_none());
        assert_eq!(info("echo").unwrap().op, None);
        let every = all(rt);
        let got: Vec<&str> = every.iter().map(|f| f.name()).collect();
        assert_eq!(got, names());
    }
}
