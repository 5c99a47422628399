//! `vaccel watchdog` as a container runs it: configured from of-watchdog's
//! environment variables, flags on top, SIGTERM for a clean exit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn watchdog(args: &[&str], env: &[(&str, &str)], tmp: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaccel"));
    cmd.arg("watchdog")
        .args(args)
        .env("VACCEL_PLUGINS", "noop")
        .env_remove("VACCEL_LOG_LEVEL")
        .env("TMPDIR", tmp);
    for var in [
        "mode",
        "fprocess",
        "function_process",
        "port",
        "metrics_port",
        "upstream_url",
        "http_upstream_url",
        "exec_timeout",
        "write_timeout",
        "read_timeout",
        "healthcheck_interval",
        "max_inflight",
        "suppress_lock",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Start it; return the child and the address it printed.
fn start(args: &[&str], env: &[(&str, &str)], tmp: &std::path::Path) -> (Child, String) {
    let mut child = watchdog(args, env, tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running vaccel watchdog");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .rsplit_once("listening on ")
        .map(|(_, a)| a.replace("0.0.0.0", "127.0.0.1"))
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    // Keep draining stdout so the process never blocks on it.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
    });
    (child, addr)
}

fn http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

fn sigterm_and_wait(mut child: Child) -> std::process::ExitStatus {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "vaccel watchdog did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_a_forked_function_from_the_environment_and_exits_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let (child, addr) = start(
        &["--bind", "127.0.0.1"],
        &[
            ("mode", "serializing"),
            ("fprocess", "cat"),
            ("port", "0"),
            ("metrics_port", "0"),
            ("healthcheck_interval", "0"),
        ],
        tmp.path(),
    );
    let reply = http(
        &addr,
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("x-duration-seconds: "),
        "{reply}"
    );
    assert!(reply.ends_with("hello"), "{reply}");
    assert!(tmp.path().join(".lock").exists());
    let st = sigterm_and_wait(child);
    assert_eq!(st.code(), Some(0));
    assert!(
        !tmp.path().join(".lock").exists(),
        "the lock file is removed"
    );
}

#[test]
fn serves_a_builtin_function_in_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (child, addr) = start(
        &[
            "--function",
            "echo",
            "--port",
            "0",
            "--no-metrics",
            "--healthcheck-interval",
            "0",
            "--bind",
            "127.0.0.1",
        ],
        &[("mode", "streaming"), ("fprocess", "cat")],
        tmp.path(),
    );
    let reply = http(
        &addr,
        "POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX-Call-Id: c-7\r\nContent-Length: 4\r\n\r\nping",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("x-call-id: c-7"),
        "{reply}"
    );
    assert!(reply.ends_with("ping"), "{reply}");
    let health = http(
        &addr,
        "GET /_/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert_eq!(sigterm_and_wait(child).code(), Some(0));
}

#[test]
fn bad_configuration_is_one_line_naming_the_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let o = watchdog(
        &[],
        &[("fprocess", "cat"), ("exec_timeout", "10x")],
        tmp.path(),
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("exec_timeout=\"10x\""), "{err}");
    assert!(err.contains("Go duration"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let o = watchdog(&["--function", "nosuch", "--port", "0"], &[], tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown function 'nosuch'"), "{err}");

    let o = watchdog(&[], &[], tmp.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("fprocess"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn run_healthcheck_checks_the_lock_file() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [("fprocess", "cat")];
    let o = watchdog(&["--run-healthcheck"], &env, tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    std::fs::write(tmp.path().join(".lock"), b"").unwrap();
    let o = watchdog(&["--run-healthcheck"], &env, tmp.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
}
