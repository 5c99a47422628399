//! `vaccel up`: the one-command local serverless stack.
//!
//! - the agent, on a Unix socket, with this build's real plugins (the host
//!   side: what owns the accelerator);
//! - the built-in functions (classify, blur, echo, noop), each calling
//!   vAccel through the **remote plugin** over that socket: the same path a
//!   function in a sandbox takes;
//! - a gateway on 127.0.0.1:8080 at OpenFaaS's paths (`/function/<name>`,
//!   `/system/functions`), so OpenFaaS clients work unchanged.
//!
//! Models are prepared first when missing. Ctrl-C or SIGTERM stops the
//! gateway (draining in-flight calls), then the agent.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use vaccel_agent::{Agent, AgentConfig};
use vaccel_plugin_onnx::paths;
use vaccel_plugin_remote::{RemotePlugin, Settings};
use vaccel_transport::Address;
use vaccel_watchdog::{Gateway, GatewayConfig, Registry};

/// Arguments of `vaccel up`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Gateway port (OpenFaaS's is 8080); 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Gateway address. Keep it on loopback unless the host is protected otherwise.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// The agent's Unix socket (default: a private directory under $XDG_RUNTIME_DIR or the temp dir).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Longest a function call may run before the client gets 504, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub exec_timeout: f64,
    /// Concurrent calls over all functions before 429; 0 = no limit.
    #[arg(long, default_value_t = 0)]
    pub max_inflight: usize,
    /// Do not prepare missing models (fail instead).
    #[arg(long)]
    pub no_setup: bool,
}

/// The models the functions need, as (file, what needs it).
const NEEDED: [(&str, &str); 3] = [
    (paths::DEFAULT_MODEL, "classify"),
    (paths::DEFAULT_LABELS, "classify"),
    ("face_detection_short_range.onnx", "blur"),
];

fn missing_models() -> Vec<&'static str> {
    let dirs = paths::models_dirs(None);
    NEEDED
        .iter()
        .filter(|(f, _)| paths::find_in(&dirs, f).is_none())
        .map(|(f, _)| *f)
        .collect()
}

/// `scripts/setup_models.py` of the source tree this binary runs from (or
/// the current directory's).
fn setup_script() -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = std::env::current_dir().into_iter().collect();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.extend(dir.ancestors().take(4).map(Path::to_path_buf));
    }
    roots
        .into_iter()
        .map(|r| r.join("scripts/setup_models.py"))
        .find(|p| p.is_file())
}

fn prepare_models(a: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let missing = missing_models();
    if missing.is_empty() {
        return Ok(());
    }
    let where_ = paths::describe(&paths::models_dirs(None));
    let script = match (a.no_setup, setup_script()) {
        (false, Some(s)) => s,
        _ => bail!(
            "models missing ({}) in {where_}: run `python3 scripts/setup_models.py` from the source tree or set VACCEL_MODELS_DIR",
            missing.join(", ")
        ),
    };
    writeln!(
        out,
        "preparing models ({} missing): python3 {}",
        missing.join(", "),
        script.display()
    )?;
    out.flush()?;
    let root = script
        .parent()
        .and_then(Path::parent)
        .context("setup script location")?;
    let st = Command::new("python3")
        .arg(&script)
        .current_dir(root)
        .status()
        .context("running python3 (install python3 to prepare the models)")?;
    if !st.success() {
        bail!("{} failed ({st})", script.display());
    }
    // The plugin looks in <cwd>/models and up to three levels above the
    // executable; a tree prepared elsewhere must be named explicitly.
    if !missing_models().is_empty() {
        bail!(
            "models still missing after setup in {where_}: set VACCEL_MODELS_DIR={}",
            root.join("models").display()
        );
    }
    Ok(())
}

/// A private directory for the agent's socket.
fn socket_path(a: &Args) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    if let Some(p) = &a.socket {
        return Ok((p.clone(), None));
    }
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("vaccel-up-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a socket directory in {}", base.display()))?;
    Ok((dir.path().join("agent.sock"), Some(dir)))
}

pub fn run(host: vaccel::Runtime, a: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    if !(a.exec_timeout.is_finite() && a.exec_timeout > 0.0) {
        bail!("--exec-timeout must be a positive number of seconds");
    }
    prepare_models(a, out)?;
    let (sock, _dir) = socket_path(a)?;
    let address: Address = format!("unix://{}", sock.display())
        .parse()
        .with_context(|| format!("socket path {}", sock.display()))?;
    let host = Arc::new(host);
    let plugins: Vec<String> = host
        .plugins()
        .iter()
        .map(|p| p.info().name.clone())
        .collect();
    let exec_timeout = Duration::from_secs_f64(a.exec_timeout);
    // The functions' side: only the remote plugin, like a sandboxed function.
    let guest = vaccel::Runtime::builder()
        .with_plugin(Arc::new(RemotePlugin::new(Settings {
            timeout: exec_timeout + Duration::from_secs(5),
            ..Settings::new(address.clone())
        })))
        .build()?;
    let functions: Registry = vaccel_functions::all(Arc::new(guest)).into_iter().collect();

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio_rt.block_on(async {
        let agent = Agent::bind(
            host.clone(),
            AgentConfig {
                listen: vec![address.clone()],
                op_timeout: exec_timeout,
                ..AgentConfig::default()
            },
        )
        .await
        .context("starting the agent")?;
        let (stop_agent, agent_stopped) = tokio::sync::oneshot::channel::<()>();
        let agent_task = tokio::spawn(agent.serve(async {
            let _ = agent_stopped.await;
        }));
        let gateway = Gateway::bind(
            GatewayConfig {
                bind_address: a.bind,
                port: a.port,
                exec_timeout,
                write_timeout: exec_timeout + Duration::from_secs(1),
                max_inflight: a.max_inflight,
                ..GatewayConfig::default()
            },
            &functions,
        )
        .await
        .with_context(|| {
            format!(
                "starting the gateway on {}:{} (is another server using the port? try --port)",
                a.bind, a.port
            )
        })?;
        let url = format!("http://{}", gateway.local_addr());
        writeln!(out, "vaccel up: agent on {address} (plugins: {})", plugins.join(", "))?;
        writeln!(out, "gateway:   {url}  (OpenFaaS paths)")?;
        for name in functions.names() {
            writeln!(out, "  {url}/function/{name}")?;
        }
        writeln!(out, "  {url}/system/functions")?;
        writeln!(out, "  {url}/metrics")?;
        writeln!(out, "try:")?;
        writeln!(
            out,
            "  curl --data-binary @test-data/images/dog.jpg {url}/function/classify"
        )?;
        writeln!(
            out,
            "  curl --data-binary @test-data/images/portrait.jpg -o blurred.jpg -D - {url}/function/blur"
        )?;
        writeln!(out, "  curl -d hello {url}/function/echo")?;
        writeln!(out, "Ctrl-C stops everything.")?;
        out.flush()?;
        let report = gateway.run_until_signal().await;
        let _ = stop_agent.send(());
        let _ = agent_task.await;
        let report = report.context("gateway")?;
        writeln!(
            out,
            "vaccel up: stopped{}",
            if report.drained {
                ""
            } else {
                " (some calls were still running at the drain deadline)"
            }
        )?;
        anyhow::Ok(())
    })
}
