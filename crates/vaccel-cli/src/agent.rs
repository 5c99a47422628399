//! `vaccel agent`: the host daemon.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use vaccel_agent::{Agent, AgentConfig};
use vaccel_transport::Address;

/// Arguments of `vaccel agent`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (repeatable): unix:///path, tcp://host:port, vsock://cid:port,
    /// hybrid-vsock:///path/to/vmm.vsock:port.
    #[arg(long = "listen", short = 'l', required = true, value_name = "URL")]
    pub listen: Vec<String>,
    /// Shared token TCP clients must present (VACCEL_RPC_TOKEN on the client side).
    #[arg(long, env = "VACCEL_AGENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Accept TCP clients without a token.
    #[arg(long)]
    pub insecure: bool,
    /// Mode of created Unix sockets, octal.
    #[arg(long, default_value = "600", value_parser = parse_mode)]
    pub unix_mode: u32,
    /// Maximum simultaneous connections.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Maximum sessions per connection.
    #[arg(long, default_value_t = 1024)]
    pub max_sessions: usize,
    /// Maximum resource bytes per connection.
    #[arg(long, default_value_t = 2 << 30)]
    pub max_resource_bytes: u64,
    /// Maximum frame payload in bytes.
    #[arg(long, default_value_t = vaccel_proto_max())]
    pub max_frame: u32,
    /// Per-op timeout in seconds.
    #[arg(long, default_value_t = 120.0)]
    pub op_timeout: f64,
    /// Ops running at once (NOOP and control requests not counted); default 4 × cores.
    #[arg(long)]
    pub max_parallel_ops: Option<usize>,
    /// Busy polling, in microseconds: how long a connection's reader keeps polling
    /// the socket for the next request before it sleeps (0: never). Saves the
    /// thread wake-up (5-15 µs on a VM) for clients that call back soon, for a
    /// little CPU; at most --busy-pollers readers poll at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub busy_poll_us: u64,
    /// Readers that may busy-poll at once; default half the cores (at least 1).
    #[arg(long)]
    pub busy_pollers: Option<usize>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9100).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Host directory clients may reference resources from by path (repeatable).
    #[arg(long = "host-path", value_name = "DIR")]
    pub host_paths: Vec<PathBuf>,
}

const fn vaccel_proto_max() -> u32 {
    256 << 20
}

fn parse_mode(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("'{s}' is not an octal file mode such as 600 or 660"))
}

/// Build the agent configuration from the flags.
pub fn config(a: &Args) -> anyhow::Result<AgentConfig> {
    let listen = a
        .listen
        .iter()
        .map(|s| s.parse::<Address>().map_err(anyhow::Error::from))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if !(a.op_timeout.is_finite() && a.op_timeout > 0.0) {
        anyhow::bail!("--op-timeout must be a positive number of seconds");
    }
    let mut c = AgentConfig {
        listen,
        unix_mode: a.unix_mode,
        token: a.token.clone().filter(|t| !t.is_empty()),
        insecure: a.insecure,
        max_connections: a.max_connections,
        max_sessions: a.max_sessions,
        max_resource_bytes: a.max_resource_bytes,
        max_frame: a.max_frame,
        op_timeout: Duration::from_secs_f64(a.op_timeout),
        host_paths: a.host_paths.clone(),
        metrics: a.metrics,
        busy_poll: Duration::from_micros(a.busy_poll_us),
        ..AgentConfig::default()
    };
    if let Some(n) = a.busy_pollers {
        c.busy_pollers = n;
    }
    if let Some(n) = a.max_parallel_ops {
        c.max_parallel_ops = n.max(1);
    }
    Ok(c)
}

/// Wait for SIGTERM or SIGINT.
async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

pub fn run(rt: vaccel::Runtime, a: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = config(a)?;
    let rt = Arc::new(rt);
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio_rt.block_on(async {
        let agent = Agent::bind(rt.clone(), config).await?;
        for addr in agent.addresses() {
            writeln!(out, "vaccel agent listening on {addr}")?;
        }
        if let Some(m) = agent.metrics_address() {
            writeln!(out, "metrics: http://{m}/metrics")?;
        }
        let names: Vec<_> = rt.plugins().iter().map(|p| p.info().name.clone()).collect();
        writeln!(out, "plugins: {}", names.join(", "))?;
        out.flush()?;
        agent.serve(terminated()).await;
        writeln!(out, "vaccel agent stopped")?;
        anyhow::Ok(())
    })
}
