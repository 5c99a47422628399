//! The agent the remote sessions talk to: a separate `vaccel agent` process
//! (realistic, and its memory can be read), or one that is already running.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vaccel_transport::Address;

use super::Transport;
use crate::{Error, Result};

/// How long the agent may take to print its addresses.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the agent may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// The line prefix `vaccel agent` prints for each bound address.
const LISTENING: &str = "vaccel agent listening on ";

/// Which agent to use.
#[derive(Debug, Clone)]
pub enum AgentSpec {
    /// Start `exe [args…] agent --listen … ` (the `vaccel` binary itself), with
    /// this process's environment, so the agent loads the same plugins.
    Spawn {
        /// The `vaccel` executable.
        exe: PathBuf,
        /// Global flags placed before `agent` (e.g. `--plugins noop`).
        args: Vec<OsString>,
    },
    /// An agent that is already listening (tests, or an agent started by hand).
    Existing {
        /// Its Unix socket address, if any.
        unix: Option<Address>,
        /// Its TCP address, if any.
        tcp: Option<Address>,
        /// The token its TCP listener wants.
        token: Option<String>,
        /// Its process id, to read its memory use (none: not measured).
        pid: Option<u32>,
    },
}

/// A running agent and how to reach it.
#[derive(Debug)]
pub struct Agent {
    /// Unix socket address (if Unix is benchmarked).
    pub unix: Option<Address>,
    /// TCP address (if TCP is benchmarked).
    pub tcp: Option<Address>,
    /// TCP token.
    pub token: Option<String>,
    /// Process id (memory is read from `/proc/<pid>/status`).
    pub pid: Option<u32>,
    /// The agent's `plugins:` line, when it printed one.
    pub plugins: Option<String>,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Agent {
    /// The address for `t`.
    pub fn address(&self, t: Transport) -> Option<&Address> {
        match t {
            Transport::Unix => self.unix.as_ref(),
            Transport::Tcp => self.tcp.as_ref(),
        }
    }

    /// Start or adopt the agent described by `spec`, listening on
    /// `transports`; a started agent busy-polls for `busy_poll` (`None`:
    /// its default).
    pub fn start(
        spec: &AgentSpec,
        transports: &[Transport],
        busy_poll: Option<Duration>,
    ) -> Result<Agent> {
        match spec {
            AgentSpec::Existing {
                unix,
                tcp,
                token,
                pid,
            } => Ok(Agent {
                unix: unix.clone(),
                tcp: tcp.clone(),
                token: token.clone(),
                pid: *pid,
                plugins: None,
                child: None,
                _dir: None,
            }),
            AgentSpec::Spawn { exe, args } => spawn(exe, args, transports, busy_poll),
        }
    }

    /// Stop the agent (SIGTERM, then SIGKILL after a grace period) and wait for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let term = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if term.is_ok_and(|s| s.success()) {
            let t0 = Instant::now();
            while t0.elapsed() < STOP_TIMEOUT {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            tracing::warn!(
                pid = child.id(),
                "agent did not stop within {STOP_TIMEOUT:?} of SIGTERM; killing it"
            );
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A random hex token (from the standard library's per-process random hash keys).
fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    if tail.trim().is_empty() {
        "(nothing on stderr)".into()
    } else {
        tail
    }
}

fn spawn(
    exe: &Path,
    args: &[OsString],
    transports: &[Transport],
    busy_poll: Option<Duration>,
) -> Result<Agent> {
    let dir = tempfile::Builder::new()
        .prefix("vaccel-bench-")
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory", e))?;
    let token = random_token();
    let mut cmd = Command::new(exe);
    cmd.args(args).arg("agent");
    if transports.contains(&Transport::Unix) {
        cmd.arg("--listen").arg(format!(
            "unix://{}",
            dir.path().join("agent.sock").display()
        ));
    }
    if transports.contains(&Transport::Tcp) {
        cmd.arg("--listen").arg("tcp://127.0.0.1:0");
    }
    if let Some(d) = busy_poll {
        cmd.arg("--busy-poll-us").arg(d.as_micros().to_string());
    }
    // The token travels in the environment, not on the (world-readable) command line.
    let log = dir.path().join("agent.log");
    let stderr = std::fs::File::create(&log).map_err(|e| Error::io(log.display(), e))?;
    cmd.env("VACCEL_AGENT_TOKEN", &token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format_args!("starting {} agent", exe.display()), e))?;
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped stdout");
    // A reader thread, so a hung agent cannot hang the benchmark: lines come
    // over a channel with a deadline. It drains stdout until the agent exits.
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::Builder::new()
        .name("agent-stdout".into())
        .spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Once nobody listens any more, keep draining.
                let _ = tx.send(line);
            }
        })
        .map_err(|e| Error::io("starting the agent reader thread", e))?;
    let mut agent = Agent {
        unix: None,
        tcp: None,
        token: Some(token),
        pid: Some(pid),
        plugins: None,
        child: Some(child),
        _dir: None,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix(LISTENING) {
                    let a: Address = url.trim().parse().map_err(|e| {
                        Error::Agent(format!("cannot parse the agent's address '{url}': {e}"))
                    })?;
                    match a {
                        Address::Unix(_) => agent.unix = Some(a),
                        Address::Tcp(_) => agent.tcp = Some(a),
                        other => tracing::debug!(address = %other, "ignoring agent address"),
                    }
                } else if let Some(p) = line.strip_prefix("plugins:") {
                    agent.plugins = Some(p.trim().to_string());
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                agent.stop();
                return Err(Error::Agent(format!(
                    "{} agent printed no addresses within {START_TIMEOUT:?}; its stderr:\n{}",
                    exe.display(),
                    log_tail(&log)
                )));
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                agent.stop();
                return Err(Error::Agent(format!(
                    "{} agent exited before listening; its stderr:\n{}",
                    exe.display(),
                    log_tail(&log)
                )));
            }
        }
    }
    for t in transports {
        if agent.address(*t).is_none() {
            agent.stop();
            return Err(Error::Agent(format!(
                "the agent did not report a {t} address; its stderr:\n{}",
                log_tail(&log)
            )));
        }
    }
    agent._dir = Some(dir);
    Ok(agent)
}

/// Memory of a process from `/proc/<pid>/status`, in KiB: (VmRSS, VmHWM).
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hex_and_differ() {
        let a = random_token();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_token());
    }

    #[test]
    fn own_memory_is_readable() {
        let (rss, hwm) = memory_kib(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss);
    }

    #[test]
    fn a_missing_executable_is_a_clear_error() {
        let e = Agent::start(
            &AgentSpec::Spawn {
                exe: "/nonexistent/vaccel".into(),
                args: vec![],
            },
            &[Transport::Unix],
            None,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("starting /nonexistent/vaccel agent"),
            "{e}"
        );
    }

    #[test]
    fn an_agent_that_exits_early_is_a_clear_error() {
        // `false` exits at once without printing anything.
        let e = Agent::start(
            &AgentSpec::Spawn {
                exe: "false".into(),
                args: vec![],
            },
            &[Transport::Unix],
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("exited before listening"), "{e}");
    }
}
