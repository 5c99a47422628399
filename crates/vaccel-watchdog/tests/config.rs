//! Configuration from of-watchdog's environment variables.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::env;
use vaccel_watchdog::{Config, ConfigError, Mode};

fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_env_map(&env(pairs))
}

#[test]
fn defaults_match_of_watchdog() {
    let c = parse(&[("fprocess", "cat"), ("TMPDIR", "/some/tmp")]).unwrap();
    assert_eq!(c.mode, Mode::Streaming);
    assert_eq!(c.function_process.as_deref(), Some("cat"));
    assert_eq!(c.port, 8080);
    assert_eq!(c.metrics_port, Some(8081));
    assert_eq!(c.read_timeout, Duration::from_secs(10));
    assert_eq!(c.write_timeout, Duration::from_secs(10));
    assert_eq!(c.exec_timeout, Duration::from_secs(10));
    assert_eq!(c.healthcheck_interval, Duration::from_secs(10));
    assert_eq!(c.max_inflight, 0);
    assert_eq!(c.content_type, "application/octet-stream");
    assert!(!c.suppress_lock);
    assert!(c.prefix_logs);
    assert_eq!(c.log_buffer_size, 65536);
    assert!(!c.buffer_http_body);
    assert_eq!(c.upstream_url, None);
    assert_eq!(c.ready_path, None);
    assert_eq!(c.lock_path, PathBuf::from("/some/tmp/.lock"));
    assert_eq!(c.bind_address.to_string(), "0.0.0.0");
}

#[test]
fn healthcheck_interval_defaults_to_write_timeout() {
    let c = parse(&[("fprocess", "cat"), ("write_timeout", "30s")]).unwrap();
    assert_eq!(c.healthcheck_interval, Duration::from_secs(30));
    let c = parse(&[
        ("fprocess", "cat"),
        ("write_timeout", "30s"),
        ("healthcheck_interval", "5"),
    ])
    .unwrap();
    assert_eq!(c.healthcheck_interval, Duration::from_secs(5));
}

#[test]
fn durations_are_go_durations_or_bare_seconds() {
    let c = parse(&[
        ("fprocess", "cat"),
        ("read_timeout", "1m30s"),
        ("write_timeout", "15"),
        ("exec_timeout", "500ms"),
        ("healthcheck_interval", "1h"),
    ])
    .unwrap();
    assert_eq!(c.read_timeout, Duration::from_secs(90));
    assert_eq!(c.write_timeout, Duration::from_secs(15));
    assert_eq!(c.exec_timeout, Duration::from_millis(500));
    assert_eq!(c.healthcheck_interval, Duration::from_secs(3600));
    assert_eq!(c.call_deadline(), Duration::from_millis(500));

    // exec_timeout=0 disables it; write_timeout still bounds a call.
    let c = parse(&[("fprocess", "cat"), ("exec_timeout", "0")]).unwrap();
    assert_eq!(c.exec_timeout, Duration::ZERO);
    assert_eq!(c.call_deadline(), Duration::from_secs(10));
}

#[test]
fn every_variable_is_read() {
    let c = parse(&[
        ("mode", "http"),
        ("function_process", "node index.js"),
        ("port", "9000"),
        ("metrics_port", "0"),
        ("upstream_url", "http://127.0.0.1:3000"),
        ("http_buffer_req_body", "true"),
        ("max_inflight", "7"),
        ("content_type", "text/plain"),
        ("suppress_lock", "true"),
        ("prefix_logs", "false"),
        ("log_buffer_size", "1024"),
        ("ready_path", "/ready"),
    ])
    .unwrap();
    assert_eq!(c.mode, Mode::Http);
    assert_eq!(
        c.command().unwrap(),
        Some(vec!["node".to_string(), "index.js".to_string()])
    );
    assert_eq!(c.port, 9000);
    assert_eq!(c.metrics_port, Some(0));
    assert_eq!(c.upstream_url.as_deref(), Some("http://127.0.0.1:3000"));
    assert!(c.buffer_http_body);
    assert_eq!(c.max_inflight, 7);
    assert_eq!(c.content_type, "text/plain");
    assert!(c.suppress_lock);
    assert!(!c.prefix_logs);
    assert_eq!(c.log_buffer_size, 1024);
    assert_eq!(c.ready_path.as_deref(), Some("/ready"));
}

#[test]
fn later_aliases_win_like_of_watchdog() {
    let c = parse(&[("fprocess", "a"), ("function_process", "b")]).unwrap();
    assert_eq!(c.function_process.as_deref(), Some("b"));
    let c = parse(&[
        ("mode", "http"),
        ("upstream_url", "http://127.0.0.1:1"),
        ("http_upstream_url", "http://127.0.0.1:2"),
    ])
    .unwrap();
    assert_eq!(c.upstream_url.as_deref(), Some("http://127.0.0.1:2"));
    let c = parse(&[("fprocess", "cat"), ("buffer_http", "1")]).unwrap();
    assert!(c.buffer_http_body);
}

#[test]
fn modes_by_name() {
    for (name, mode) in [
        ("streaming", Mode::Streaming),
        ("serializing", Mode::Serializing),
        ("inproc", Mode::InProc),
    ] {
        let c = parse(&[("mode", name), ("fprocess", "echo")]).unwrap();
        assert_eq!(c.mode, mode);
        assert_eq!(c.mode.to_string(), name);
    }
}

#[test]
fn bad_values_name_the_variable_and_the_accepted_forms() {
    let cases: &[(&str, &str, &str)] = &[
        ("port", "eighty", "TCP port"),
        ("port", "70000", "TCP port"),
        ("metrics_port", "-1", "TCP port"),
        ("read_timeout", "10x", "Go duration"),
        ("write_timeout", "-5s", "Go duration"),
        ("exec_timeout", "soon", "Go duration"),
        ("healthcheck_interval", "1.2.3", "Go duration"),
        ("max_inflight", "-1", "whole number"),
        ("max_inflight", "lots", "whole number"),
        ("mode", "turbo", "streaming, serializing, http, inproc"),
        ("prefix_logs", "maybe", "true or false"),
        ("suppress_lock", "yes", "true or false"),
        ("log_buffer_size", "0", "bytes"),
    ];
    for (var, value, expected) in cases {
        let err = parse(&[("fprocess", "cat"), (var, value)]).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(&err, ConfigError::Invalid { var: v, .. } if v == var),
            "{var}={value}: {err:?}"
        );
        assert!(msg.starts_with(&format!("{var}=")), "{msg}");
        assert!(msg.contains(value), "{msg}");
        assert!(msg.contains(expected), "{var}: {msg}");
    }
}

#[test]
fn missing_or_inconsistent_settings_are_errors() {
    let err = parse(&[]).unwrap_err();
    assert!(matches!(err, ConfigError::MissingFunctionProcess { .. }));
    assert!(err.to_string().contains("fprocess"), "{err}");

    let err = parse(&[("mode", "inproc")]).unwrap_err();
    assert!(err.to_string().contains("built-in function"), "{err}");

    let err = parse(&[("mode", "http")]).unwrap_err();
    assert_eq!(err, ConfigError::MissingUpstream);

    let err = parse(&[("mode", "http"), ("upstream_url", "ftp://x:1")]).unwrap_err();
    assert!(err.to_string().starts_with("upstream_url="), "{err}");

    let err = parse(&[("fprocess", "cat"), ("write_timeout", "0s")]).unwrap_err();
    assert_eq!(err, ConfigError::ZeroWriteTimeout);

    let err = parse(&[("fprocess", "sh -c 'unterminated")]).unwrap_err();
    assert!(err.to_string().starts_with("fprocess="), "{err}");
}

#[test]
fn http_mode_may_proxy_without_starting_a_process() {
    let c = parse(&[("mode", "http"), ("upstream_url", "127.0.0.1:5000")]).unwrap();
    assert_eq!(c.command().unwrap(), None);
}

#[test]
fn empty_values_count_as_unset() {
    let c = parse(&[("fprocess", "cat"), ("port", ""), ("exec_timeout", " ")]).unwrap();
    assert_eq!(c.port, 8080);
    assert_eq!(c.exec_timeout, Duration::from_secs(10));
}

#[test]
fn command_lines_may_quote() {
    let c = parse(&[("fprocess", "sh -c 'echo a b; exit 3'")]).unwrap();
    assert_eq!(
        c.command().unwrap().unwrap(),
        ["sh", "-c", "echo a b; exit 3"]
    );
}
