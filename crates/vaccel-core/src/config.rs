//! Configuration from the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `VACCEL_PLUGINS` | `:`-separated plugin names or `.so` paths, in priority order | every built-in plugin |
//! | `VACCEL_BACKENDS` | deprecated alias of `VACCEL_PLUGINS` | – |
//! | `VACCEL_LOG_LEVEL` | 1 error, 2 warn, 3 info, 4 debug | 1 |
//! | `VACCEL_LOG_FORMAT` | `text` (human-readable) or `json` (one JSON object per line, for log collectors) | `text` |
//! | `VACCEL_PROFILING_ENABLED` | `1`/`true`: record per-op profiling regions | off |
//! | `VACCEL_OP_FALLBACK` | `1`: an op the session's plugin lacks goes to the next loaded plugin matching the hint; `0`: never | on when `VACCEL_PLUGINS` is unset, else off |

use crate::{Error, Result};

/// Runtime configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Plugin list (`VACCEL_PLUGINS`); `None` means every built-in plugin.
    pub plugins: Option<String>,
    /// Log level 1–4.
    pub log_level: u8,
    /// Log line format (`VACCEL_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// Per-op profiling.
    pub profiling: bool,
    /// Per-op fallback to other plugins matching the hint (`VACCEL_OP_FALLBACK`).
    /// Unset: on when `plugins` is unset (every built-in is loaded and acts as
    /// one backend), off when plugins are chosen explicitly (upstream's
    /// one-plugin-per-session behaviour).
    pub op_fallback: Option<bool>,
    /// Plugin options set by the embedding program (CLI flags, agent
    /// configuration), e.g. `onnx.engine = tract`. Built-in plugin
    /// constructors read them before falling back to their environment variables.
    pub options: std::collections::BTreeMap<String, String>,
    /// Warnings found while reading the configuration (e.g. deprecated
    /// variables), logged when the runtime is built — after logging is set up.
    pub warnings: Vec<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable: time, level, message, `key=value` fields.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `span`s),
    /// for log collectors.
    Json,
}

/// Parse `VACCEL_LOG_FORMAT`.
pub fn parse_log_format(v: &str) -> Result<LogFormat> {
    match v.trim().to_ascii_lowercase().as_str() {
        "text" | "" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(Error::inval(format!(
            "VACCEL_LOG_FORMAT={v}: expected text or json"
        ))),
    }
}

/// Parse a boolean flag the way users write them.
pub fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(Error::inval(format!(
            "{name}={v}: expected 1/0, true/false, yes/no or on/off"
        ))),
    }
}

/// Parse `VACCEL_LOG_LEVEL`.
pub fn parse_log_level(v: &str) -> Result<u8> {
    match v.trim() {
        "1" | "error" => Ok(1),
        "2" | "warn" | "warning" => Ok(2),
        "3" | "info" => Ok(3),
        "4" | "debug" => Ok(4),
        "5" | "trace" => Ok(5),
        _ => Err(Error::inval(format!(
            "VACCEL_LOG_LEVEL={v}: expected 1 (error), 2 (warn), 3 (info) or 4 (debug)"
        ))),
    }
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Config> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read the configuration through `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let mut warnings = Vec::new();
        let plugins = match (get("VACCEL_PLUGINS"), get("VACCEL_BACKENDS")) {
            (Some(p), _) => Some(p),
            (None, Some(b)) => {
                warnings.push("VACCEL_BACKENDS is deprecated: use VACCEL_PLUGINS".to_string());
                Some(b)
            }
            (None, None) => None,
        };
        Ok(Config {
            plugins,
            log_level: get("VACCEL_LOG_LEVEL")
                .map(|v| parse_log_level(&v))
                .transpose()?
                .unwrap_or(1),
            log_format: get("VACCEL_LOG_FORMAT")
                .map(|v| parse_log_format(&v))
                .transpose()?
                .unwrap_or_default(),
            profiling: get("VACCEL_PROFILING_ENABLED")
                .map(|v| parse_bool("VACCEL_PROFILING_ENABLED", &v))
                .transpose()?
                .unwrap_or(false),
            op_fallback: get("VACCEL_OP_FALLBACK")
                .map(|v| parse_bool("VACCEL_OP_FALLBACK", &v))
                .transpose()?,
            options: Default::default(),
            warnings,
        })
    }

    /// Whether per-op fallback is in force (see [`Config::op_fallback`]).
    pub fn fallback_enabled(&self) -> bool {
        self.op_fallback.unwrap_or(self.plugins.is_none())
    }

    /// A plugin option (see [`Config::options`]).
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}

/// Install a `tracing` subscriber writing text to stderr at `level` (1–4).
/// Does nothing if the process already has one.
pub fn init_logging(level: u8) {
    init_logging_with(level, LogFormat::Text);
}

/// Install a `tracing` subscriber writing to stderr at `level` (1–4) in
/// `format`. Does nothing if the process already has one.
pub fn init_logging_with(level: u8, format: LogFormat) {
    let filter = match level {
        0 | 1 => tracing::Level::ERROR,
        2 => tracing::Level::WARN,
        3 => tracing::Level::INFO,
        4 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let b = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => b.try_init(),
        LogFormat::Json => b.json().flatten_event(true).try_init(),
    };
}

/// [`init_logging_with`] at the level and format `VACCEL_LOG_LEVEL` and
/// `VACCEL_LOG_FORMAT` ask for (invalid values: level 1, text).
pub fn init_logging_from_env() {
    let level = std::env::var("VACCEL_LOG_LEVEL")
        .ok()
        .and_then(|v| parse_log_level(&v).ok())
        .unwrap_or(1);
    let format = std::env::var("VACCEL_LOG_FORMAT")
        .ok()
        .and_then(|v| parse_log_format(&v).ok())
        .unwrap_or_default();
    init_logging_with(level, format);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            c,
            Config {
                log_level: 1,
                ..Config::default()
            }
        );
    }

    #[test]
    fn backends_alias_and_precedence() {
        let c = cfg(&[("VACCEL_BACKENDS", "noop")]).unwrap();
        assert_eq!(c.plugins.as_deref(), Some("noop"));
        assert_eq!(
            c.warnings,
            vec!["VACCEL_BACKENDS is deprecated: use VACCEL_PLUGINS".to_string()]
        );
        let c = cfg(&[("VACCEL_BACKENDS", "noop"), ("VACCEL_PLUGINS", "exec")]).unwrap();
        assert_eq!(c.plugins.as_deref(), Some("exec"));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn fallback_defaults_follow_the_plugin_list() {
        assert!(cfg(&[]).unwrap().fallback_enabled());
        assert!(
            !cfg(&[("VACCEL_PLUGINS", "cpu:onnx")])
                .unwrap()
                .fallback_enabled()
        );
        assert!(
            cfg(&[("VACCEL_PLUGINS", "cpu"), ("VACCEL_OP_FALLBACK", "1")])
                .unwrap()
                .fallback_enabled()
        );
        assert!(
            !cfg(&[("VACCEL_OP_FALLBACK", "0")])
                .unwrap()
                .fallback_enabled()
        );
    }

    #[test]
    fn log_format() {
        assert_eq!(cfg(&[]).unwrap().log_format, LogFormat::Text);
        let c = cfg(&[("VACCEL_LOG_FORMAT", "JSON")]).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        let e = cfg(&[("VACCEL_LOG_FORMAT", "xml")]).unwrap_err();
        assert!(e.message().contains("VACCEL_LOG_FORMAT=xml"), "{e}");
        assert!(e.message().contains("text or json"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = cfg(&[("VACCEL_LOG_LEVEL", "9")]).unwrap_err();
        assert!(e.message().contains("VACCEL_LOG_LEVEL=9"));
        let e = cfg(&[("VACCEL_PROFILING_ENABLED", "maybe")]).unwrap_err();
        assert!(e.message().contains("VACCEL_PROFILING_ENABLED=maybe"));
        let c = cfg(&[("VACCEL_PROFILING_ENABLED", "1"), ("VACCEL_LOG_LEVEL", "4")]).unwrap();
        assert!(c.profiling);
        assert_eq!(c.log_level, 4);
    }
}
