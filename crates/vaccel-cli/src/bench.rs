//! `vaccel bench`: benchmarks that compare vAccel with its peers in one run.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use vaccel_bench::ops::{AgentSpec, Options, Transport};

use crate::Cli;

/// Arguments of `vaccel bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// The same op local vs remote (agent process over unix and tcp), side by side, as ratios.
    Ops(OpsArgs),
}

/// Arguments of `vaccel bench ops`.
#[derive(Debug, clap::Args)]
pub struct OpsArgs {
    /// Shorter run: SGEMM up to n=256, three image sizes, less time per point.
    #[arg(long)]
    pub quick: bool,
    /// Directory for the SVG plots and results.json.
    #[arg(long, value_name = "DIR", default_value = "target/bench-ops")]
    pub out: PathBuf,
    /// Transports to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "unix,tcp", value_parser = ["unix", "tcp"])]
    pub transports: Vec<String>,
    /// Directory with the source photo for the generated JPEGs (default: the repository's test-data/images).
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Milliseconds per variant and point (overrides the full/quick default; tests use a few).
    #[arg(long, hide = true, value_name = "MS")]
    pub budget_ms: Option<u64>,
    /// Run only these sections, comma-separated (the socket bandwidth runs with sgemm).
    #[arg(long, value_delimiter = ',', value_parser = vaccel_bench::ops::SECTIONS)]
    pub only: Option<Vec<String>>,
    /// The `vaccel` executable to run the agent with (default: this one).
    #[arg(long, hide = true, value_name = "PATH")]
    pub agent_exe: Option<PathBuf>,
}

/// The `vaccel` executable that runs the agent: `--agent-exe`, or this
/// process's executable when it is the `vaccel` binary (in-process callers,
/// such as test harnesses, must name it).
fn agent_exe(a: &OpsArgs) -> anyhow::Result<PathBuf> {
    if let Some(p) = &a.agent_exe {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().context("finding this executable to run the agent")?;
    if exe.file_stem().is_some_and(|s| s == "vaccel") {
        Ok(exe)
    } else {
        bail!(
            "`bench ops` runs the agent as `vaccel agent`, but this process is {}: run the vaccel binary",
            exe.display()
        )
    }
}

/// Global flags the agent needs to load the same plugins the same way.
fn agent_args(cli: &Cli) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    if let Some(p) = &cli.plugins {
        v.extend(["--plugins".into(), p.into()]);
    }
    if let Some(l) = &cli.log_level {
        v.extend(["--log-level".into(), l.into()]);
    }
    if let Some(e) = &cli.engine {
        v.extend(["--engine".into(), e.into()]);
    }
    if cli.profile {
        v.push("--profile".into());
    }
    v
}

pub fn run(cli: &Cli, rt: &vaccel::Runtime, a: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    match &a.command {
        BenchCommand::Ops(o) => {
            let agent = AgentSpec::Spawn {
                exe: agent_exe(o)?,
                args: agent_args(cli),
            };
            let mut opts = Options::new(agent);
            opts.quick = o.quick;
            opts.out_dir = o.out.clone();
            opts.transports = o
                .transports
                .iter()
                .map(|t| t.parse::<Transport>())
                .collect::<Result<_, _>>()?;
            opts.images_dir = o.images.clone();
            opts.budget = o.budget_ms.map(|ms| Duration::from_millis(ms.max(1)));
            opts.hint = vaccel::PluginType::parse(&cli.hint)?;
            opts.only = o.only.clone();
            opts.command = std::iter::once("vaccel".to_string())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" ");
            vaccel_bench::ops::run(rt, &opts, out)?;
            Ok(())
        }
    }
}
