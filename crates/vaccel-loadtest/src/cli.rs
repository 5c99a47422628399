//! The arguments of `vaccel bench URL [flags]`, as a clap struct the CLI
//! flattens, and their translation into [`Options`].

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::inputs::Input;
use crate::progress::ProgressMode;
use crate::spec::{Stage, Think, parse_duration, parse_rate, parse_stages};
use crate::study::Options;
use crate::thresholds::Threshold;

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn think(s: &str) -> Result<Think, String> {
    s.parse::<Think>().map_err(|e| e.to_string())
}

fn rate(s: &str) -> Result<f64, String> {
    parse_rate(s).map_err(|e| e.to_string())
}

/// `--stages` as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Stages(pub Vec<Stage>);

fn stages(s: &str) -> Result<Stages, String> {
    parse_stages(s).map(Stages).map_err(|e| e.to_string())
}

/// `--max-delay`: a duration, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxDelay(pub Option<Duration>);

impl Default for MaxDelay {
    fn default() -> MaxDelay {
        MaxDelay(Some(Duration::from_secs(1)))
    }
}

fn threshold(s: &str) -> Result<Threshold, String> {
    s.parse::<Threshold>().map_err(|e| e.to_string())
}

fn max_delay(s: &str) -> Result<MaxDelay, String> {
    if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("never") {
        Ok(MaxDelay(None))
    } else {
        duration(s).map(|d| MaxDelay(Some(d)))
    }
}

fn header(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("header '{s}': expected 'Name: value'")),
    }
}

/// Load-test a function over HTTP: a closed model (threads, think time,
/// ramp-up) or an open one (`--rate`, `--stages`); every combination of
/// `--threads` and `--think` (or `--rate`) is one configuration of the study.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LoadArgs {
    /// The function's URL, e.g. http://127.0.0.1:8080/function/blur.
    #[arg(value_name = "URL", required = true)]
    pub url: Option<String>,

    /// Client threads, comma-separated for a study (closed model; connections in the open model).
    #[arg(
        short = 't',
        long,
        value_name = "N,...",
        value_delimiter = ',',
        visible_alias = "connections"
    )]
    pub threads: Vec<usize>,
    /// Think time between a thread's requests, comma-separated for a study: 0, 1, 500ms,
    /// uniform:0.5s..1.5s, gauss:1s/200ms, exp:1s (Poisson).
    #[arg(long, value_name = "SPEC,...", value_delimiter = ',', value_parser = think)]
    pub think: Vec<Think>,
    /// Start the threads evenly over this period.
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub ramp_up: Option<Duration>,
    /// How long each configuration runs (default 10s, unless --iterations).
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = duration)]
    pub duration: Option<Duration>,
    /// Requests per thread (closed model), instead of or as well as --duration.
    #[arg(short = 'n', long, value_name = "N")]
    pub iterations: Option<u64>,

    /// Open model: requests per second, comma-separated for a study.
    #[arg(short = 'r', long, value_name = "RPS,...", value_delimiter = ',', value_parser = rate)]
    pub rate: Vec<f64>,
    /// Open model: k6-style stages, the rate ramping linearly to each target: 10s:50,30s:100.
    #[arg(long, value_name = "DUR:RPS,...", value_parser = stages, conflicts_with = "rate")]
    pub stages: Option<Stages>,
    /// Open model with --stages: the rate the first stage starts from.
    #[arg(long, value_name = "RPS", value_parser = rate, requires = "stages")]
    pub start_rate: Option<f64>,
    /// Open model: a request sent more than this after its due time counts as late.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "10ms")]
    pub late_tolerance: Duration,
    /// Open model: a request with no free connection this long after its due time is dropped
    /// (`none`: never drop, send late).
    #[arg(long, value_name = "DURATION|none", value_parser = max_delay, default_value = "1s")]
    pub max_delay: MaxDelay,

    /// Send this file as every request's body.
    #[arg(long, value_name = "FILE", group = "input")]
    pub body: Option<PathBuf>,
    /// Send the images of this directory, round-robin.
    #[arg(long, value_name = "DIR", group = "input")]
    pub images: Option<PathBuf>,
    /// Send the frames of this .mp4 (JPEG-encoded), round-robin.
    #[arg(long, value_name = "FILE", group = "input")]
    pub video: Option<PathBuf>,
    /// With --video: use at most this many frames.
    #[arg(long, value_name = "N", requires = "video")]
    pub max_frames: Option<usize>,
    /// Wrap each body as JSON {"FIELD": "BASE64"} (Content-Type application/json).
    #[arg(long, value_name = "FIELD")]
    pub json_frame: Option<String>,
    /// HTTP method (default POST with a body, GET without).
    #[arg(short = 'X', long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Extra request header, repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = header)]
    pub headers: Vec<(String, String)>,
    /// Content-Type of the requests (default: from the input).
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// The JTL label column (default: the URL's last path segment).
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,

    /// Per-request timeout (connect + request + whole response).
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "25s")]
    pub timeout: Duration,
    /// A new connection for every request (Connection: close).
    #[arg(long)]
    pub no_keep_alive: bool,
    /// Pause between the configurations of a study.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "5s")]
    pub pause: Duration,
    /// Threads of the load generator itself (default: the CPUs).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Seed of the think-time random numbers.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// Results folder (default vaccel-bench-YYYYmmdd-HHMMSS).
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into a results folder that is not empty.
    #[arg(long)]
    pub force: bool,
    /// Do not write results.jtl (summaries and histograms only).
    #[arg(long)]
    pub no_jtl: bool,
    /// Fail (exit status 3) unless this holds for every configuration, repeatable:
    /// 'p95<500ms', 'handler_p99<2s', 'success>=0.99', 'rps>50', 'errors==0'.
    #[arg(long = "fail-if", value_name = "EXPR", value_parser = threshold)]
    pub fail_if: Vec<Threshold>,
    /// No status line, no table.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print the summaries as a JSON array on stdout (for CI).
    #[arg(long)]
    pub json: bool,
}

impl LoadArgs {
    /// The study options these arguments describe.
    pub fn to_options(&self, command: Vec<String>) -> Result<Options> {
        let url = self
            .url
            .clone()
            .ok_or_else(|| Error::Usage("a URL is required".into()))?;
        let mut o = Options::new(url);
        o.threads = self.threads.clone();
        o.think = self.think.clone();
        o.ramp_up = self.ramp_up.unwrap_or_default();
        o.duration = self.duration;
        o.iterations = self.iterations;
        o.rates = self.rate.clone();
        o.stages = self.stages.clone().map(|s| s.0);
        o.start_rate = self.start_rate.unwrap_or(0.0);
        o.late_tolerance = self.late_tolerance;
        o.max_delay = self.max_delay.0;
        o.input = match (&self.body, &self.images, &self.video) {
            (Some(p), _, _) => Input::Body(p.clone()),
            (_, Some(p), _) => Input::Images(p.clone()),
            (_, _, Some(p)) => Input::Video {
                path: p.clone(),
                max_frames: self.max_frames,
            },
            _ => Input::None,
        };
        o.json_frame = self.json_frame.clone();
        o.method = self.method.clone();
        o.headers = self.headers.clone();
        o.content_type = self.content_type.clone();
        o.label = self.label.clone();
        o.timeout = self.timeout;
        o.keep_alive = !self.no_keep_alive;
        o.pause = self.pause;
        o.workers = self.workers;
        o.seed = self.seed;
        o.out = self.out.clone();
        o.force = self.force;
        o.jtl = !self.no_jtl;
        o.thresholds = self.fail_if.clone();
        o.progress = if self.quiet {
            ProgressMode::Quiet
        } else {
            ProgressMode::Auto
        };
        o.quiet = self.quiet;
        o.json = self.json;
        o.handle_ctrl_c = true;
        o.command = command;
        Ok(o)
    }
}

/// For tests and embedders: parse `vaccel-bench URL [flags]`-style arguments
/// (the first item is the program name).
pub fn parse<I, T>(args: I) -> Result<LoadArgs, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::{Args as _, FromArgMatches as _};
    let cmd = LoadArgs::augment_args(clap::Command::new("vaccel-bench"));
    let m = cmd.try_get_matches_from(args)?;
    LoadArgs::from_arg_matches(&m)
}

/// Run a study from arguments; the exit status `vaccel bench` uses:
/// 0 all thresholds held, 3 a threshold failed ([`crate::study::ThresholdsFailed`]),
/// 1 the study could not run (the error is returned).
pub fn run(args: &LoadArgs, command: Vec<String>, out: &mut dyn std::io::Write) -> Result<u8> {
    let mut o = args.to_options(command)?;
    o.handle_ctrl_c = false;
    let report = crate::study::run(&o, out)?;
    if report.failures.is_empty() {
        Ok(0)
    } else {
        for f in &report.failures {
            if !args.quiet {
                eprintln!("{f}");
            }
        }
        Ok(crate::study::ThresholdsFailed::EXIT_CODE)
    }
}
