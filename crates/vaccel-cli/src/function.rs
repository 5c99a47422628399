//! `vaccel function NAME`: serve one request with a built-in function, the
//! way a forking watchdog runs it (`fprocess="vaccel function classify"`):
//! the request body on standard input, the method, path, query and headers
//! in `Http_*` variables, the response body on standard output. A non-2xx
//! response is one line on standard error and exit status 1.

use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use vaccel_functions::http::{HeaderName, HeaderValue, Uri};
use vaccel_functions::{Options, SessionSource, cgi};

/// `vaccel function`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The function: classify, blur, echo or noop.
    pub name: String,
    /// Largest request body accepted, in bytes (default: the function's own limit).
    #[arg(long, value_name = "BYTES")]
    pub max_body: Option<usize>,
    /// Query string, e.g. `quality=80` (instead of Http_Query).
    #[arg(long, value_name = "QUERY")]
    pub query: Option<String>,
    /// A request header `Name: value` (repeatable; added to the Http_* ones).
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
}

fn header(h: &str) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let (n, v) = h
        .split_once(':')
        .with_context(|| format!("--header '{h}': expected 'Name: value'"))?;
    let name = HeaderName::from_bytes(n.trim().as_bytes())
        .with_context(|| format!("--header '{h}': invalid header name"))?;
    let value = HeaderValue::from_str(v.trim())
        .with_context(|| format!("--header '{h}': invalid header value"))?;
    Ok((name, value))
}

pub fn run(
    rt: vaccel::Runtime,
    hint: vaccel::PluginType,
    a: &Args,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut options = Options::default();
    if let Some(m) = a.max_body {
        options = options.max_body(m);
    }
    let source = SessionSource::new(Arc::new(rt)).with_hint(hint);
    let Some(f) = vaccel_functions::builtin_with(&a.name, source, &options) else {
        bail!(
            "unknown function '{}': the built-in functions are {}",
            a.name,
            vaccel_functions::names().join(", ")
        );
    };
    let extra: Vec<_> = a
        .headers
        .iter()
        .map(|h| header(h))
        .collect::<anyhow::Result<_>>()?;

    // Read one byte past the limit, so an oversized body is refused
    // without reading all of it. Nothing is read from a terminal.
    let limit = f.max_body();
    let mut body = Vec::new();
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        stdin
            .lock()
            .take(limit as u64 + 1)
            .read_to_end(&mut body)
            .context("reading the request body from standard input")?;
    }
    if body.len() > limit {
        bail!(
            "{}: the request body is over the limit of {limit} bytes (--max-body)",
            a.name
        );
    }

    let vars = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let mut req = cgi::request_from_env(vars, body.into()).map_err(anyhow::Error::msg)?;
    if let Some(q) = &a.query {
        let target = format!("{}?{}", req.uri().path(), q.trim_start_matches('?'));
        *req.uri_mut() = target
            .parse::<Uri>()
            .with_context(|| format!("--query '{q}' is not a valid query string"))?;
    }
    for (n, v) in extra {
        req.headers_mut().insert(n, v);
    }
    match cgi::outcome(f.call(req)) {
        Ok(body) => {
            out.write_all(&body)?;
            out.flush()?;
            Ok(())
        }
        Err(message) => bail!("{}: {message}", a.name),
    }
}
