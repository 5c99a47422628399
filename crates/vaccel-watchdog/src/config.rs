//! Configuration from of-watchdog's environment variables.
//!
//! [`Config::from_env_map`] reads the same variables, with the same
//! defaults, as OpenFaaS's of-watchdog, so a function image can swap the
//! entrypoint without touching its environment. Unlike of-watchdog, a value
//! that does not parse is an error naming the variable and the accepted
//! forms instead of a silent fallback. An empty value counts as unset.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How requests reach the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Fork `fprocess` per request; the request body is piped to its stdin
    /// and its stdout is streamed back as the response body (of-watchdog's
    /// default).
    Streaming,
    /// Fork `fprocess` per request; the whole body is written to its stdin,
    /// all of its stdout is read, then the response is sent.
    Serializing,
    /// Reverse proxy to `upstream_url`, starting `fprocess` once as the
    /// long-running upstream server when given.
    Http,
    /// Call a built-in [`Function`](crate::Function) in-process, selected by
    /// name (`fprocess=<name>`). No fork, no extra hop.
    InProc,
}

impl Mode {
    /// The name used in the `mode` variable.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Streaming => "streaming",
            Mode::Serializing => "serializing",
            Mode::Http => "http",
            Mode::InProc => "inproc",
        }
    }

    /// True for the modes that fork `fprocess` per request.
    pub fn forks(self) -> bool {
        matches!(self, Mode::Streaming | Mode::Serializing)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "streaming" => Ok(Mode::Streaming),
            "serializing" => Ok(Mode::Serializing),
            "http" => Ok(Mode::Http),
            "inproc" => Ok(Mode::InProc),
            other => Err(ConfigError::invalid("mode", other, EXPECT_MODE)),
        }
    }
}

const EXPECT_DURATION: &str =
    "a Go duration such as 10s, 1m30s, 500ms or 1h, or a whole number of seconds such as 10";
const EXPECT_BOOL: &str = "true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False)";
const EXPECT_PORT: &str = "a TCP port number from 0 to 65535 (0 picks a free port)";
const EXPECT_COUNT: &str = "a whole number, 0 or more (0 means no limit)";
const EXPECT_SIZE: &str = "a whole number of bytes, 1 or more";
const EXPECT_MODE: &str = "one of streaming, serializing, http, inproc";
const EXPECT_URL: &str = "an http:// URL such as http://127.0.0.1:5000, or host:port";
const EXPECT_COMMAND: &str =
    "a command line such as `cat` or `python3 index.py` (quotes group words)";

/// A configuration problem, naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A variable holds a value that does not parse.
    #[error("{var}={value:?} is not valid: expected {expected}")]
    Invalid {
        /// The environment variable.
        var: &'static str,
        /// What it held.
        value: String,
        /// The accepted forms.
        expected: &'static str,
    },
    /// No function process (or, in `inproc` mode, function name) was given.
    #[error(
        "provide a \"function_process\" or \"fprocess\" environment variable for your function \
         (mode={mode}: {hint})"
    )]
    MissingFunctionProcess {
        /// The configured mode.
        mode: Mode,
        /// What `fprocess` means in that mode.
        hint: &'static str,
    },
    /// `mode=http` without an upstream.
    #[error(
        "mode=http needs \"upstream_url\" (or \"http_upstream_url\"): where to forward requests, \
         e.g. http://127.0.0.1:5000"
    )]
    MissingUpstream,
    /// `write_timeout` is zero.
    #[error("write_timeout must be over 0s")]
    ZeroWriteTimeout,
}

impl ConfigError {
    fn invalid(var: &'static str, value: &str, expected: &'static str) -> Self {
        ConfigError::Invalid {
            var,
            value: value.to_string(),
            expected,
        }
    }
}

/// The watchdog's configuration. [`Default`] is of-watchdog's defaults
/// (streaming mode, port 8080, metrics on 8081, 10 s timeouts, ...), with
/// no function process.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `mode`: how requests reach the function. Default `streaming`.
    pub mode: Mode,
    /// `fprocess` / `function_process` (the latter wins): the command to
    /// fork (streaming, serializing), the upstream server to start (http,
    /// optional), or the built-in function's name (inproc).
    pub function_process: Option<String>,
    /// Address to listen on (no variable; of-watchdog listens on every
    /// interface). Default `0.0.0.0`.
    pub bind_address: IpAddr,
    /// `port`. Default 8080; 0 picks a free port.
    pub port: u16,
    /// `metrics_port` (an extension; of-watchdog always uses 8081): where
    /// `/metrics` is served. `None` serves no metrics. Default `Some(8081)`;
    /// 0 picks a free port.
    pub metrics_port: Option<u16>,
    /// `read_timeout`: time allowed to read the request head and (in the
    /// buffering modes) its body. Default 10 s; 0 disables it.
    pub read_timeout: Duration,
    /// `write_timeout`: the longest a response may take; also the bound on
    /// draining in-flight requests at shutdown. Default 10 s; must be over 0.
    pub write_timeout: Duration,
    /// `exec_timeout`: the longest a function call may run before it is
    /// killed and answered with 504. Default 10 s; 0 disables it (the
    /// `write_timeout` still applies).
    pub exec_timeout: Duration,
    /// `healthcheck_interval`: after SIGTERM, how long the watchdog keeps
    /// serving (with `/_/health` answering 503) before it stops accepting
    /// connections, so orchestrators notice. Default: `write_timeout`.
    pub healthcheck_interval: Duration,
    /// `upstream_url` / `http_upstream_url` (the latter wins): where
    /// `mode=http` forwards requests.
    pub upstream_url: Option<String>,
    /// `http_buffer_req_body` / `buffer_http`: buffer the request body
    /// before forwarding it upstream (for servers that refuse chunked
    /// bodies). Default false.
    pub buffer_http_body: bool,
    /// `max_inflight`: concurrent requests allowed; over it, 429. Default 0
    /// (no limit).
    pub max_inflight: usize,
    /// `content_type`: the response Content-Type in the forking modes.
    /// Default `application/octet-stream`.
    pub content_type: String,
    /// `suppress_lock`: do not write the lock file `/_/health` checks.
    /// Default false.
    pub suppress_lock: bool,
    /// The lock file: `.lock` in the temporary directory (`TMPDIR`, else
    /// `/tmp`), as in of-watchdog.
    pub lock_path: PathBuf,
    /// `prefix_logs`: prefix each line the function writes to stderr with
    /// the date, time and stream name. Default true.
    pub prefix_logs: bool,
    /// `log_buffer_size`: the longest log line read from the function;
    /// longer lines are split. Default 65536.
    pub log_buffer_size: usize,
    /// `ready_path`: when set, `/_/ready` calls the function with this path
    /// (after the lock and `max_inflight` checks) and answers with its
    /// response.
    pub ready_path: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        let write_timeout = Duration::from_secs(10);
        Config {
            mode: Mode::Streaming,
            function_process: None,
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            metrics_port: Some(8081),
            read_timeout: Duration::from_secs(10),
            write_timeout,
            exec_timeout: Duration::from_secs(10),
            healthcheck_interval: write_timeout,
            upstream_url: None,
            buffer_http_body: false,
            max_inflight: 0,
            content_type: "application/octet-stream".to_string(),
            suppress_lock: false,
            lock_path: std::env::temp_dir().join(".lock"),
            prefix_logs: true,
            log_buffer_size: 64 * 1024,
            ready_path: None,
        }
    }
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let map: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::from_env_map(&map)
    }

    /// Read the configuration from a map of environment variables (testable
    /// without touching the process environment). `TMPDIR` in the map
    /// places the lock file.
    pub fn from_env_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            env.get(k)
                .map(String::as_str)
                .filter(|v| !v.trim().is_empty())
        };
        let mut c = Config::default();

        if let Some(v) = get("mode") {
            c.mode = v.parse()?;
        }
        if let Some(v) = get("fprocess") {
            c.function_process = Some(v.to_string());
        }
        if let Some(v) = get("function_process") {
            c.function_process = Some(v.to_string());
        }
        if let Some(v) = get("port") {
            c.port = parse_port("port", v)?;
        }
        if let Some(v) = get("metrics_port") {
            c.metrics_port = Some(parse_port("metrics_port", v)?);
        }
        if let Some(v) = get("read_timeout") {
            c.read_timeout = duration_var("read_timeout", v)?;
        }
        if let Some(v) = get("write_timeout") {
            c.write_timeout = duration_var("write_timeout", v)?;
        }
        c.healthcheck_interval = match get("healthcheck_interval") {
            Some(v) => duration_var("healthcheck_interval", v)?,
            None => c.write_timeout,
        };
        if let Some(v) = get("exec_timeout") {
            c.exec_timeout = duration_var("exec_timeout", v)?;
        }
        if let Some(v) = get("upstream_url") {
            c.upstream_url = Some(v.trim().to_string());
        }
        if let Some(v) = get("http_upstream_url") {
            c.upstream_url = Some(v.trim().to_string());
        }
        for var in ["buffer_http", "http_buffer_req_body"] {
            if let Some(v) = get(var) {
                c.buffer_http_body |= parse_bool(var, v)?;
            }
        }
        if let Some(v) = get("max_inflight") {
            c.max_inflight = v
                .trim()
                .parse()
                .map_err(|_| ConfigError::invalid("max_inflight", v, EXPECT_COUNT))?;
        }
        if let Some(v) = get("content_type") {
            c.content_type = v.trim().to_string();
        }
        if let Some(v) = get("suppress_lock") {
            c.suppress_lock = parse_bool("suppress_lock", v)?;
        }
        if let Some(v) = get("prefix_logs") {
            c.prefix_logs = parse_bool("prefix_logs", v)?;
        }
        if let Some(v) = get("log_buffer_size") {
            c.log_buffer_size = v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::invalid("log_buffer_size", v, EXPECT_SIZE))?;
        }
        if let Some(v) = get("ready_path") {
            c.ready_path = Some(v.trim().to_string());
        }
        if let Some(v) = get("TMPDIR") {
            c.lock_path = PathBuf::from(v).join(".lock");
        }
        c.validate()?;
        Ok(c)
    }

    /// Check the combination of settings (called by
    /// [`from_env_map`](Self::from_env_map) and again when binding, for
    /// configurations built by hand).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.write_timeout.is_zero() {
            return Err(ConfigError::ZeroWriteTimeout);
        }
        let fprocess = self
            .function_process
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        match self.mode {
            Mode::Streaming | Mode::Serializing => {
                let Some(p) = fprocess else {
                    return Err(ConfigError::MissingFunctionProcess {
                        mode: self.mode,
                        hint: "the command forked for each request, e.g. fprocess=cat",
                    });
                };
                self.command_of(p)?;
            }
            Mode::InProc => {
                if fprocess.is_none() {
                    return Err(ConfigError::MissingFunctionProcess {
                        mode: self.mode,
                        hint: "the name of the built-in function to serve, e.g. fprocess=echo",
                    });
                }
            }
            Mode::Http => {
                if let Some(p) = fprocess {
                    self.command_of(p)?;
                }
                let Some(u) = self.upstream_url.as_deref() else {
                    return Err(ConfigError::MissingUpstream);
                };
                parse_upstream(u)?;
            }
        }
        if let Some(ct) = Some(self.content_type.as_str()).filter(|s| !s.is_empty()) {
            if http::HeaderValue::from_str(ct).is_err() {
                return Err(ConfigError::invalid(
                    "content_type",
                    ct,
                    "a valid Content-Type header value such as text/plain",
                ));
            }
        }
        if let Some(p) = &self.ready_path {
            if http::uri::PathAndQuery::from_str(&normalize_path(p)).is_err() {
                return Err(ConfigError::invalid(
                    "ready_path",
                    p,
                    "a URL path such as /ready",
                ));
            }
        }
        if self.log_buffer_size == 0 {
            return Err(ConfigError::invalid("log_buffer_size", "0", EXPECT_SIZE));
        }
        Ok(())
    }

    /// The function process split into program and arguments, if set.
    pub fn command(&self) -> Result<Option<Vec<String>>, ConfigError> {
        match self
            .function_process
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(p) => self.command_of(p).map(Some),
            None => Ok(None),
        }
    }

    fn command_of(&self, p: &str) -> Result<Vec<String>, ConfigError> {
        let var = "fprocess";
        let words = split_command(p).ok_or_else(|| ConfigError::invalid(var, p, EXPECT_COMMAND))?;
        if words.is_empty() {
            return Err(ConfigError::invalid(var, p, EXPECT_COMMAND));
        }
        Ok(words)
    }

    /// The deadline for one function call: the smaller of `exec_timeout`
    /// (when set) and `write_timeout`.
    pub fn call_deadline(&self) -> Duration {
        if self.exec_timeout.is_zero() {
            self.write_timeout
        } else {
            self.exec_timeout.min(self.write_timeout)
        }
    }
}

pub(crate) fn normalize_path(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// `host:port` and base path of an upstream URL (`http://host:port/base`
/// or bare `host:port`).
pub(crate) fn parse_upstream(u: &str) -> Result<(http::uri::Authority, String), ConfigError> {
    let bad = || ConfigError::invalid("upstream_url", u, EXPECT_URL);
    let s = u.trim();
    let rest = match s.split_once("://") {
        Some(("http", rest)) => rest,
        Some(_) => return Err(bad()),
        None => s,
    };
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority: http::uri::Authority = auth.parse().map_err(|_| bad())?;
    if authority.host().is_empty() || auth.contains('@') || path.contains(['?', '#']) {
        return Err(bad());
    }
    Ok((authority, path.trim_end_matches('/').to_string()))
}

fn duration_var(var: &'static str, v: &str) -> Result<Duration, ConfigError> {
    parse_duration(v).ok_or_else(|| ConfigError::invalid(var, v, EXPECT_DURATION))
}

fn parse_port(var: &'static str, v: &str) -> Result<u16, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| ConfigError::invalid(var, v, EXPECT_PORT))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ConfigError::invalid(var, v, EXPECT_BOOL)),
    }
}

/// Parse a duration the way of-watchdog does: a bare number of seconds
/// (`10`, also `1.5`), or a Go duration (`300ms`, `1m30s`, `1h`, `2.5s`,
/// units ns, us, µs, ms, s, m, h). Negative durations are refused.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().ok().map(Duration::from_secs);
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = s.parse().ok()?;
        return Duration::try_from_secs_f64(secs).ok();
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.bytes().take_while(u8::is_ascii_digit).count();
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, after) = after.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        total = total.checked_add(int.checked_mul(unit_ns)?)?;
        if !frac_part.is_empty() {
            // Up to 18 fraction digits are significant (sub-nanosecond below).
            let digits = &frac_part[..frac_part.len().min(18)];
            let frac: u128 = digits.parse().ok()?;
            let scale = 10u128.pow(digits.len() as u32);
            total = total.checked_add(frac * unit_ns / scale)?;
        }
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Format a duration the way Go prints one (`10s`, `1m30s`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", trim_float(ns as f64 / 1e3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", trim_float(ns as f64 / 1e6));
    }
    let total_secs = d.as_secs();
    let (h, m) = (total_secs / 3600, (total_secs / 60) % 60);
    let s = (total_secs % 60) as f64 + f64::from(d.subsec_nanos()) / 1e9;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_float(s)));
    out
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Split a command line into words: whitespace separates, single quotes
/// keep text literally, double quotes group words (with `\"`, `\\`, `\$`
/// and `` \` `` escapes), a backslash outside quotes escapes the next
/// character. `None` for an unterminated quote or trailing backslash.
/// A line without quotes or backslashes splits exactly as of-watchdog's
/// (which splits on spaces), except that repeated spaces make no empty
/// arguments.
pub fn split_command(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => cur.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => cur.push(c),
                            c => {
                                cur.push('\\');
                                cur.push(c);
                            }
                        },
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("10s"), Some(ms(10_000)));
        assert_eq!(parse_duration("10"), Some(ms(10_000)));
        assert_eq!(parse_duration("1.5"), Some(ms(1_500)));
        assert_eq!(parse_duration("500ms"), Some(ms(500)));
        assert_eq!(parse_duration("1m30s"), Some(ms(90_000)));
        assert_eq!(parse_duration("1h"), Some(ms(3_600_000)));
        assert_eq!(parse_duration("2.5s"), Some(ms(2_500)));
        assert_eq!(parse_duration(".5s"), Some(ms(500)));
        assert_eq!(
            parse_duration("1h2m3s4ms5us6ns"),
            Some(Duration::new(3723, 4_005_006))
        );
        assert_eq!(parse_duration("3µs"), Some(Duration::from_micros(3)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("+5s"), Some(ms(5_000)));
        for bad in [
            "", "s", "10x", "-1s", "-1", "1.2.3s", "ten", "10 s", "1e3s", ".s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn command_lines() {
        let s = |x: &str| split_command(x).unwrap();
        assert_eq!(s("cat"), ["cat"]);
        assert_eq!(s("python3  index.py "), ["python3", "index.py"]);
        assert_eq!(
            s("sh -c 'sleep 100 & sleep 100'"),
            ["sh", "-c", "sleep 100 & sleep 100"]
        );
        assert_eq!(
            s(r#"echo "a \"b\" $x" c\ d"#),
            ["echo", r#"a "b" $x"#, "c d"]
        );
        assert_eq!(s("''"), [""]);
        assert_eq!(split_command("sh -c 'oops"), None);
        assert_eq!(split_command("x\\"), None);
    }

    #[test]
    fn upstream_urls() {
        let (a, p) = parse_upstream("http://127.0.0.1:5000").unwrap();
        assert_eq!((a.as_str(), p.as_str()), ("127.0.0.1:5000", ""));
        let (a, p) = parse_upstream("127.0.0.1:3000/base/").unwrap();
        assert_eq!((a.as_str(), p.as_str()), ("127.0.0.1:3000", "/base"));
        assert!(parse_upstream("https://x:1").is_err());
        assert!(parse_upstream("http://").is_err());
        assert!(parse_upstream("http://u@x:1").is_err());
    }
}
