//! `vaccel watchdog`: the function container's entrypoint, configured like
//! OpenFaaS's of-watchdog from the environment (`mode`, `fprocess`, `port`,
//! `exec_timeout`, ...), so `ENTRYPOINT ["vaccel", "watchdog"]` works with
//! an of-watchdog image's environment. Flags override the variables.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use vaccel_functions::{Options, SessionSource};
use vaccel_watchdog::{Config, Mode, Registry, Watchdog};

/// Arguments of `vaccel watchdog`. Each flag overrides the environment
/// variable named in its help.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How requests reach the function: streaming, serializing, http or inproc (`mode`).
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// The command forked per request, the http upstream server, or the inproc function (`fprocess`).
    #[arg(long, value_name = "CMD")]
    pub fprocess: Option<String>,
    /// Serve this built-in function in-process: classify, blur, echo, noop (implies --mode inproc).
    #[arg(long, value_name = "NAME", conflicts_with = "fprocess")]
    pub function: Option<String>,
    /// Largest request body an inproc function accepts, in bytes (default: the function's own).
    #[arg(long, value_name = "BYTES")]
    pub max_body: Option<usize>,
    /// Port to serve on; 0 picks a free one (`port`, default 8080).
    #[arg(long, value_name = "PORT")]
    pub port: Option<String>,
    /// Port for /metrics; 0 picks a free one (`metrics_port`, default 8081).
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<String>,
    /// Serve no metrics.
    #[arg(long, conflicts_with = "metrics_port")]
    pub no_metrics: bool,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Where http mode forwards requests, e.g. http://127.0.0.1:5000 (`upstream_url`).
    #[arg(long, value_name = "URL")]
    pub upstream_url: Option<String>,
    /// Longest a call may run before 504, e.g. 10s, 1m30s; 0 disables (`exec_timeout`).
    #[arg(long, value_name = "DURATION")]
    pub exec_timeout: Option<String>,
    /// Time to read a request (`read_timeout`).
    #[arg(long, value_name = "DURATION")]
    pub read_timeout: Option<String>,
    /// Longest a response may take; also bounds the drain at shutdown (`write_timeout`).
    #[arg(long, value_name = "DURATION")]
    pub write_timeout: Option<String>,
    /// After SIGTERM, how long to keep serving while /_/health says 503 (`healthcheck_interval`).
    #[arg(long, value_name = "DURATION")]
    pub healthcheck_interval: Option<String>,
    /// Concurrent requests allowed; over it, 429 (`max_inflight`, 0 = no limit).
    #[arg(long, value_name = "N")]
    pub max_inflight: Option<String>,
    /// Response Content-Type in the forking modes (`content_type`).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Path /_/ready asks the function for (`ready_path`).
    #[arg(long, value_name = "PATH")]
    pub ready_path: Option<String>,
    /// Write no lock file (`suppress_lock`).
    #[arg(long)]
    pub suppress_lock: bool,
    /// Check for the lock file and exit: 0 when present, 1 otherwise (an exec health check).
    #[arg(long)]
    pub run_healthcheck: bool,
}

/// The configuration: the environment, then the flags.
pub fn config(a: &Args) -> anyhow::Result<Config> {
    let mut env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let flags = [
        ("mode", &a.mode),
        ("fprocess", &a.fprocess),
        ("port", &a.port),
        ("metrics_port", &a.metrics_port),
        ("upstream_url", &a.upstream_url),
        ("exec_timeout", &a.exec_timeout),
        ("read_timeout", &a.read_timeout),
        ("write_timeout", &a.write_timeout),
        ("healthcheck_interval", &a.healthcheck_interval),
        ("max_inflight", &a.max_inflight),
        ("content_type", &a.content_type),
        ("ready_path", &a.ready_path),
    ];
    for (var, value) in flags {
        if let Some(v) = value {
            env.insert(var.to_string(), v.clone());
            if var == "fprocess" {
                env.remove("function_process");
            }
            if var == "upstream_url" {
                env.remove("http_upstream_url");
            }
        }
    }
    if let Some(f) = &a.function {
        env.insert("fprocess".into(), f.clone());
        env.remove("function_process");
        if a.mode.is_none() {
            env.insert("mode".into(), "inproc".into());
        }
    }
    if a.suppress_lock {
        env.insert("suppress_lock".into(), "true".into());
    }
    let mut c = Config::from_env_map(&env)?;
    c.bind_address = a.bind;
    if a.no_metrics {
        c.metrics_port = None;
    }
    Ok(c)
}

pub fn run(
    rt: vaccel::Runtime,
    hint: vaccel::PluginType,
    a: &Args,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let config = config(a)?;
    if a.run_healthcheck {
        if config.lock_path.exists() {
            return Ok(());
        }
        bail!("unable to find lock file {}", config.lock_path.display());
    }
    let mut functions = Registry::new();
    if config.mode == Mode::InProc {
        let name = config
            .function_process
            .as_deref()
            .unwrap_or_default()
            .trim();
        let mut options = Options::default();
        if let Some(m) = a.max_body {
            options = options.max_body(m);
        }
        let source = SessionSource::new(Arc::new(rt)).with_hint(hint);
        let Some(f) = vaccel_functions::builtin_with(name, source, &options) else {
            bail!(
                "unknown function '{name}' (fprocess): the built-in functions are {}",
                vaccel_functions::names().join(", ")
            );
        };
        functions.insert(f);
    }
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio_rt.block_on(async {
        let mode = config.mode;
        let what = config.function_process.clone().unwrap_or_default();
        let server = Watchdog::bind(config, &functions).await?;
        writeln!(
            out,
            "vaccel watchdog ({mode}: {what}) listening on {}",
            server.local_addr()
        )?;
        if let Some(m) = server.metrics_addr() {
            writeln!(out, "metrics: http://{m}/metrics")?;
        }
        out.flush()?;
        let report = server.run_until_signal().await?;
        writeln!(
            out,
            "vaccel watchdog stopped{}",
            if report.drained {
                ""
            } else {
                " (some requests were cut at the drain timeout)"
            }
        )?;
        anyhow::Ok(())
    })
}
