//! `vaccel bench`: benchmarks that compare vAccel with its peers in one run.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use vaccel_bench::ops::{AgentSpec, Options, Transport};

use crate::Cli;

/// Arguments of `vaccel bench`: a load test (`vaccel bench URL [flags]`)
/// or one of the subcommands.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// `vaccel bench URL [flags]`: load-test a function.
    #[command(flatten)]
    pub load: Box<vaccel_loadtest::cli::LoadArgs>,
}

/// Benchmarks.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// The same op local vs remote (agent process over unix and tcp), side by side, as ratios.
    Ops(OpsArgs),
    /// Render the HTML report of a results folder, or of a JTL file (ours or JMeter's).
    Report(ReportArgs),
    /// Combine the results folders of several bench instances (e.g. the pods of a Job) into one.
    Merge(MergeArgs),
}

/// Arguments of `vaccel bench report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A results folder (study.json …), a folder of .jtl files, or one .jtl file.
    #[arg(value_name = "RESULTS_DIR|FILE.jtl")]
    pub input: PathBuf,
    /// Where to write the report [default: report.html in the folder, or FILE.html beside the JTL].
    #[arg(short = 'o', long, value_name = "FILE.html")]
    pub output: Option<PathBuf>,
}

/// Arguments of `vaccel bench merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The instances' results folders (same study, run at the same time).
    #[arg(value_name = "DIR", required = true)]
    pub inputs: Vec<PathBuf>,
    /// The merged results folder.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write into a non-empty output folder.
    #[arg(long)]
    pub force: bool,
    /// Do not write report.html.
    #[arg(long)]
    pub no_report: bool,
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
    /// Busy polling on both ends in microseconds (clients, agent, floors); 0 compares
    /// with every wait blocking [default: VACCEL_RPC_BUSY_POLL_US, else 50].
    #[arg(long, value_name = "US", value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub busy_poll_us: Option<u64>,
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
    if let Some(f) = &cli.log_format {
        v.extend(["--log-format".into(), f.into()]);
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
        None => load(&a.load, out),
        Some(BenchCommand::Report(r)) => report(r, out),
        Some(BenchCommand::Merge(m)) => merge(m, out),
        Some(BenchCommand::Ops(o)) => {
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
            opts.busy_poll = match o.busy_poll_us {
                Some(us) => Duration::from_micros(us),
                None => vaccel_plugin_remote::busy_poll_from_env()?,
            };
            opts.command = std::iter::once("vaccel".to_string())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" ");
            vaccel_bench::ops::run(rt, &opts, out)?;
            Ok(())
        }
    }
}

/// `vaccel bench URL [flags]`: run the study; failed thresholds are a
/// [`vaccel_loadtest::ThresholdsFailed`] error (exit status 3).
fn load(a: &vaccel_loadtest::cli::LoadArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let command = std::iter::once("vaccel".to_string())
        .chain(std::env::args().skip(1))
        .collect();
    let opts = a.to_options(command)?;
    let report = vaccel_loadtest::run(&opts, out)?;
    if report.interrupted {
        bail!(
            "interrupted; the finished configurations are in {}",
            report.dir.display()
        );
    }
    if !report.failures.is_empty() {
        return Err(vaccel_loadtest::ThresholdsFailed(report.failures).into());
    }
    Ok(())
}

/// `vaccel bench report`: re-render the HTML report from a results folder or a JTL.
fn report(a: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let html = a
        .output
        .clone()
        .unwrap_or_else(|| vaccel_loadtest::report::default_output(&a.input));
    let loaded = vaccel_loadtest::report::write_report(&a.input, &html)?;
    let requests: u64 = loaded.results.iter().map(|r| r.count()).sum();
    writeln!(
        out,
        "report: {} ({} configuration(s), {requests} requests)",
        html.display(),
        loaded.results.len()
    )?;
    Ok(())
}

/// `vaccel bench merge`: combine several instances' results folders.
fn merge(a: &MergeArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let opts = vaccel_loadtest::merge::MergeOptions {
        force: a.force,
        no_report: a.no_report,
        command: std::iter::once("vaccel".to_string())
            .chain(std::env::args().skip(1))
            .collect(),
    };
    let m = vaccel_loadtest::merge::merge(&a.inputs, &a.out, &opts)?;
    out.write_all(vaccel_loadtest::study::table(&m.summaries).as_bytes())?;
    writeln!(
        out,
        "merged {} instance(s), {} rows: {}",
        a.inputs.len(),
        m.rows,
        m.dir.display()
    )?;
    Ok(())
}
