//! A study: every configuration of the matrix (`--threads 1,2,4 --think 0,1,5`,
//! or `--rate 10,50`), one after another with a pause between, into one
//! results folder.
//!
//! ```text
//! <out>/study.json                  this file's StudyFile: settings, command line, configurations in run order
//! <out>/<label>/results.jtl         one line per request (JMeter CSV + our columns, see `jtl`)
//! <out>/<label>/summary.json        `summary::Summary`
//! <out>/<label>/histograms.hlog     HdrHistogram interval log, one interval per second and tag (see `hlog`)
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::client::{Target, Url};
use crate::engine::{self, Model, Plan, Sink};
use crate::error::{Error, Result};
use crate::inputs::{self, Input};
use crate::model::{ConfigKey, ConfigResult};
use crate::progress::{Progress, ProgressMode};
use crate::spec::{Schedule, Stage, Think, format_duration};
use crate::summary::{Stats, Summary};
use crate::thresholds::{self, Failure, Threshold};

/// The schema id of `study.json`.
pub const STUDY_SCHEMA: &str = "vaccel-bench-study/1";

/// The default per-request timeout: the OpenFaaS gateway's 25 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(25);

/// Everything a study needs. [`Options::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// The function's URL (`http://host:port/function/blur`).
    pub url: String,
    /// HTTP method (default: POST with a body, GET without).
    pub method: Option<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Request bodies.
    pub input: Input,
    /// Wrap each body as `{"FIELD": "<base64>"}`.
    pub json_frame: Option<String>,
    /// `Content-Type` for every request (default: from the input).
    pub content_type: Option<String>,
    /// The JTL `label` column (default: the URL's last path segment).
    pub label: Option<String>,
    /// Client threads (closed model) / connections (open model): one configuration per value.
    /// Empty: 1 (closed) or 64 (open).
    pub threads: Vec<usize>,
    /// Think times (closed model): one configuration per value. Empty: no think time.
    pub think: Vec<Think>,
    /// Open model: constant rates, one configuration per value.
    pub rates: Vec<f64>,
    /// Open model: ramping stages (one configuration).
    pub stages: Option<Vec<Stage>>,
    /// Open model with stages: the rate the first stage starts from.
    pub start_rate: f64,
    /// Closed model: threads start evenly over this period.
    pub ramp_up: Duration,
    /// How long each configuration runs (default 10 s unless `iterations`).
    pub duration: Option<Duration>,
    /// Closed model: requests per thread.
    pub iterations: Option<u64>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Keep connections between requests (one per thread).
    pub keep_alive: bool,
    /// Pause between configurations.
    pub pause: Duration,
    /// Runtime worker threads (default: the CPUs).
    pub workers: Option<usize>,
    /// Open model: late when sent more than this after its due time.
    pub late_tolerance: Duration,
    /// Open model: dropped when no connection is free this long after its due time (`None`: never).
    pub max_delay: Option<Duration>,
    /// Results folder (default `vaccel-bench-YYYYmmdd-HHMMSS`).
    pub out: Option<PathBuf>,
    /// Write into a non-empty results folder.
    pub force: bool,
    /// Write `results.jtl`.
    pub jtl: bool,
    /// Pass/fail criteria, checked per configuration.
    pub thresholds: Vec<Threshold>,
    /// Live status line, or nothing.
    pub progress: ProgressMode,
    /// Print the summaries as a JSON array instead of a table.
    pub json: bool,
    /// Print nothing on the output but the JSON (with `json`).
    pub quiet: bool,
    /// Seed of the think-time generator.
    pub seed: u64,
    /// Stop at Ctrl-C (finish the configuration's in-flight requests, write what was measured).
    pub handle_ctrl_c: bool,
    /// The command line, recorded in study.json.
    pub command: Vec<String>,
}

impl Options {
    /// Defaults for `url`: 1 thread, no think time, 10 s, 25 s timeout, keep-alive, 5 s pause.
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            method: None,
            headers: Vec::new(),
            input: Input::None,
            json_frame: None,
            content_type: None,
            label: None,
            threads: Vec::new(),
            think: Vec::new(),
            rates: Vec::new(),
            stages: None,
            start_rate: 0.0,
            ramp_up: Duration::ZERO,
            duration: None,
            iterations: None,
            timeout: DEFAULT_TIMEOUT,
            keep_alive: true,
            pause: Duration::from_secs(5),
            workers: None,
            late_tolerance: Duration::from_millis(10),
            max_delay: Some(Duration::from_secs(1)),
            out: None,
            force: false,
            jtl: true,
            thresholds: Vec::new(),
            progress: ProgressMode::Auto,
            json: false,
            quiet: false,
            seed: 1,
            handle_ctrl_c: false,
            command: Vec::new(),
        }
    }

    /// Whether this is an open-model study.
    pub fn is_open(&self) -> bool {
        !self.rates.is_empty() || self.stages.is_some()
    }
}

/// `study.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyFile {
    /// Always [`STUDY_SCHEMA`].
    pub schema: String,
    /// The command line.
    pub command: Vec<String>,
    /// The target.
    pub url: String,
    /// The JTL label.
    pub request_label: String,
    /// `closed` or `open`.
    pub model: String,
    /// Unix epoch ms.
    pub started_ms: u64,
    /// Unix epoch ms; `null` while running (or if it was killed).
    pub ended_ms: Option<u64>,
    /// Finished configurations, in run order (each has a folder named after its label).
    pub configurations: Vec<ConfigKey>,
    /// Every configuration of the study, in run order.
    pub planned: Vec<ConfigKey>,
    /// The settings shared by all configurations.
    pub settings: StudySettings,
    /// Stopped early (Ctrl-C).
    pub interrupted: bool,
}

/// The settings of a study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudySettings {
    /// Seconds per configuration (`null`: by iterations).
    pub duration_s: Option<f64>,
    /// Requests per thread (closed model).
    pub iterations: Option<u64>,
    /// Ramp-up, seconds (closed model).
    pub ramp_up_s: f64,
    /// Per-request timeout, seconds.
    pub timeout_s: f64,
    /// Keep-alive.
    pub keep_alive: bool,
    /// Pause between configurations, seconds.
    pub pause_s: f64,
    /// Think-time specifications (closed model), as given.
    pub think: Vec<String>,
    /// Stages (open model), `10s:50,30s:100`.
    pub stages: Option<String>,
    /// Late tolerance, seconds (open model).
    pub late_tolerance_s: f64,
    /// Dropped after, seconds (open model; `null`: never).
    pub max_delay_s: Option<f64>,
    /// The input.
    pub input: String,
    /// The HTTP method.
    pub method: String,
    /// Whether bodies are wrapped as JSON frames, and the field.
    pub json_frame: Option<String>,
}

/// What a study produced.
#[derive(Debug)]
pub struct StudyReport {
    /// The results folder.
    pub dir: PathBuf,
    /// Aggregates, in run order.
    pub results: Vec<ConfigResult>,
    /// Their summaries.
    pub summaries: Vec<Summary>,
    /// Thresholds that did not hold.
    pub failures: Vec<Failure>,
    /// Stopped early by Ctrl-C.
    pub interrupted: bool,
}

/// The thresholds that failed, as an error (the CLI exits with [`ThresholdsFailed::EXIT_CODE`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdsFailed(pub Vec<Failure>);

impl ThresholdsFailed {
    /// The exit status of `vaccel bench` when a threshold failed.
    pub const EXIT_CODE: u8 = 3;
}

impl std::fmt::Display for ThresholdsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} threshold(s) failed", self.0.len())?;
        for x in &self.0 {
            write!(f, "\n  {x}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ThresholdsFailed {}

fn rate_label(r: f64) -> String {
    let s = format!("{r:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn stages_text(st: &[Stage]) -> String {
    st.iter()
        .map(|s| format!("{}:{}", format_duration(s.duration), rate_label(s.target)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Expand the options into the configurations to run, in order.
pub fn plans(o: &Options) -> Result<Vec<Plan>> {
    if o.timeout.is_zero() {
        return Err(Error::Usage("--timeout must be over 0".into()));
    }
    if o.threads.contains(&0) {
        return Err(Error::Usage("--threads must be at least 1".into()));
    }
    if o.iterations == Some(0) {
        return Err(Error::Usage("--iterations must be at least 1".into()));
    }
    if o.duration.is_some_and(|d| d.is_zero()) {
        return Err(Error::Usage("--duration must be over 0".into()));
    }
    let mut out = Vec::new();
    if o.is_open() {
        if !o.rates.is_empty() && o.stages.is_some() {
            return Err(Error::Usage(
                "--rate and --stages do not go together".into(),
            ));
        }
        if !o.think.is_empty() {
            return Err(Error::Usage(
                "--think is for the closed model; the open model (--rate, --stages) sends on a schedule".into(),
            ));
        }
        if o.iterations.is_some() {
            return Err(Error::Usage("--iterations is for the closed model".into()));
        }
        if !o.ramp_up.is_zero() {
            return Err(Error::Usage(
                "--ramp-up is for the closed model; ramp the rate with --stages".into(),
            ));
        }
        if o.rates.iter().any(|r| *r <= 0.0) {
            return Err(Error::Usage("--rate must be over 0".into()));
        }
        if o.stages.is_some() && o.duration.is_some() {
            return Err(Error::Usage(
                "--duration does not go with --stages (the stages set the length)".into(),
            ));
        }
        let threads = if o.threads.is_empty() {
            vec![64]
        } else {
            o.threads.clone()
        };
        let many_threads = threads.len() > 1;
        let duration = o.duration.unwrap_or(Duration::from_secs(10));
        for &t in &threads {
            let prefix = if many_threads {
                format!("t{t}-")
            } else {
                String::new()
            };
            let mut push = |label: String, rate: Option<f64>, schedule: Schedule| {
                out.push(Plan {
                    key: ConfigKey {
                        label,
                        threads: t,
                        think_s: 0.0,
                        rate,
                    },
                    model: Model::Open {
                        schedule: Arc::new(schedule),
                        late_tolerance: o.late_tolerance,
                        max_delay: o.max_delay,
                    },
                    duration: None,
                    timeout: o.timeout,
                    seed: o.seed,
                });
            };
            if let Some(st) = &o.stages {
                let schedule = Schedule::stages(o.start_rate, st);
                let peak = st.iter().map(|s| s.target).fold(o.start_rate, f64::max);
                push(format!("{prefix}stages"), Some(peak), schedule);
            } else {
                for &r in &o.rates {
                    push(
                        format!("{prefix}rate{}", rate_label(r)),
                        Some(r),
                        Schedule::constant(r, duration),
                    );
                }
            }
        }
    } else {
        if o.start_rate != 0.0 {
            return Err(Error::Usage("--start-rate goes with --stages".into()));
        }
        let threads = if o.threads.is_empty() {
            vec![1]
        } else {
            o.threads.clone()
        };
        let thinks = if o.think.is_empty() {
            vec![Think::ZERO]
        } else {
            o.think.clone()
        };
        let duration = match (o.duration, o.iterations) {
            (None, None) => Some(Duration::from_secs(10)),
            (d, _) => d,
        };
        if duration.is_some_and(|d| d <= o.ramp_up) {
            return Err(Error::Usage(format!(
                "--ramp-up ({}) must be shorter than --duration ({})",
                format_duration(o.ramp_up),
                format_duration(duration.unwrap_or_default())
            )));
        }
        for &t in &threads {
            for th in &thinks {
                out.push(Plan {
                    key: ConfigKey {
                        label: format!("t{t}-think{}", th.label()),
                        threads: t,
                        think_s: th.mean_s(),
                        rate: None,
                    },
                    model: Model::Closed {
                        think: *th,
                        ramp_up: o.ramp_up,
                        iterations: o.iterations,
                    },
                    duration,
                    timeout: o.timeout,
                    seed: o.seed,
                });
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &out {
        if !seen.insert(p.key.label.clone()) {
            return Err(Error::Usage(format!(
                "configuration '{}' appears twice (repeated --threads/--think/--rate value?)",
                p.key.label
            )));
        }
    }
    Ok(out)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Calendar date and time of day (UTC) of `secs` since the Unix epoch:
/// (year, month, day, hour, minute, second); `None` beyond the calendar's
/// range (timestamps come from files, too).
pub(crate) fn civil(secs: u64) -> Option<(i32, u8, u8, u8, u8, u8)> {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    Some((
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    ))
}

/// `vaccel-bench-YYYYmmdd-HHMMSS` (UTC).
pub fn default_out_dir() -> PathBuf {
    let (y, m, d, h, mi, s) = civil(now_ms() / 1000).unwrap_or((1970, 1, 1, 0, 0, 0));
    PathBuf::from(format!(
        "vaccel-bench-{y:04}{m:02}{d:02}-{h:02}{mi:02}{s:02}"
    ))
}

fn prepare_out(dir: &Path, force: bool) -> Result<()> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() && !force {
            return Err(Error::Usage(format!(
                "results folder {} exists and is not empty (choose another --out, or --force to write into it)",
                dir.display()
            )));
        }
    } else if dir.exists() {
        return Err(Error::Usage(format!(
            "results folder {} is not a directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Output {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<()> {
    let data = serde_json::to_vec_pretty(v).expect("serialisable");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, data)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| Error::Output {
            path: path.to_path_buf(),
            source,
        })
}

fn describe_plan(p: &Plan) -> String {
    match &p.model {
        Model::Closed {
            think,
            ramp_up,
            iterations,
        } => {
            let mut s = format!("{} thread(s), think {think}", p.key.threads);
            if !ramp_up.is_zero() {
                s += &format!(", ramp-up {}", format_duration(*ramp_up));
            }
            if let Some(d) = p.duration {
                s += &format!(", {}", format_duration(d));
            }
            if let Some(n) = iterations {
                s += &format!(", {n} iteration(s) per thread");
            }
            s
        }
        Model::Open { schedule, .. } => format!(
            "open model, {} request(s) over {}, up to {} connection(s)",
            schedule.total(),
            format_duration(Duration::from_secs_f64(schedule.duration_s())),
            p.key.threads
        ),
    }
}

/// Run a whole study: every configuration, results in the folder,
/// summaries (a table, or JSON with `json`) on `out`.
///
/// Failed thresholds are in the report, not an error: see [`ThresholdsFailed`].
pub fn run(o: &Options, out: &mut dyn Write) -> Result<StudyReport> {
    let plans = plans(o)?;
    let url = Url::parse(&o.url)?;
    let request_label = o.label.clone().unwrap_or_else(|| url.default_label.clone());
    let payloads = inputs::load(&o.input, o.json_frame.as_deref())?;
    let target = Arc::new(Target::new(
        url,
        o.method.as_deref(),
        &o.headers,
        o.content_type.as_deref(),
        payloads,
        o.keep_alive,
    )?);
    let dir = o.out.clone().unwrap_or_else(default_out_dir);
    prepare_out(&dir, o.force)?;

    let workers = o.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    // Nobody stops the study without Ctrl-C: the sender just has to outlive it.
    let mut _keep_stop_tx = None;
    if o.handle_ctrl_c {
        // A small runtime of its own waits for Ctrl-C for the whole study.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                what: "starting the signal handler",
                source,
            })?;
        std::thread::Builder::new()
            .name("vaccel-bench-signal".into())
            .spawn(move || {
                rt.block_on(async move {
                    // First Ctrl-C: stop after the in-flight requests; second: exit now.
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => {
                            if r.is_err() {
                                return;
                            }
                            eprintln!("\nstopping after the requests in flight (Ctrl-C again to quit now)");
                            let _ = stop_tx.send(true);
                        }
                        _ = stop_tx.closed() => return,
                    }
                    tokio::select! {
                        r = tokio::signal::ctrl_c() => {
                            if r.is_ok() {
                                std::process::exit(130);
                            }
                        }
                        _ = stop_tx.closed() => {}
                    }
                });
            })
            .map_err(|source| Error::Io {
                what: "starting the signal handler",
                source,
            })?;
    } else {
        _keep_stop_tx = Some(stop_tx);
    }

    let mut study = StudyFile {
        schema: STUDY_SCHEMA.into(),
        command: o.command.clone(),
        url: o.url.clone(),
        request_label: request_label.clone(),
        model: if o.is_open() { "open" } else { "closed" }.into(),
        started_ms: now_ms(),
        ended_ms: None,
        configurations: Vec::new(),
        planned: plans.iter().map(|p| p.key.clone()).collect(),
        settings: StudySettings {
            duration_s: plans
                .first()
                .and_then(|p| match &p.model {
                    Model::Closed { .. } => p.duration,
                    Model::Open { schedule, .. } => {
                        Some(Duration::from_secs_f64(schedule.duration_s()))
                    }
                })
                .map(|d| d.as_secs_f64()),
            iterations: o.iterations,
            ramp_up_s: o.ramp_up.as_secs_f64(),
            timeout_s: o.timeout.as_secs_f64(),
            keep_alive: o.keep_alive,
            pause_s: o.pause.as_secs_f64(),
            think: o.think.iter().map(|t| t.to_string()).collect(),
            stages: o.stages.as_deref().map(stages_text),
            late_tolerance_s: o.late_tolerance.as_secs_f64(),
            max_delay_s: o.max_delay.map(|d| d.as_secs_f64()),
            input: o.input.describe(),
            method: target.request(0).0.method().to_string(),
            json_frame: o.json_frame.clone(),
        },
        interrupted: false,
    };
    let study_path = dir.join("study.json");
    write_json(&study_path, &study)?;

    let mut progress = Progress::new(o.progress);
    let mut results = Vec::new();
    let mut summaries = Vec::new();
    let total = plans.len();
    for (i, plan) in plans.iter().enumerate() {
        if *stop_rx.borrow() {
            break;
        }
        if i > 0 && !o.pause.is_zero() {
            progress.note(&format!("pause {}", format_duration(o.pause)));
            let end = std::time::Instant::now() + o.pause;
            while !*stop_rx.borrow() {
                let now = std::time::Instant::now();
                if now >= end {
                    break;
                }
                std::thread::sleep((end - now).min(Duration::from_millis(50)));
            }
            if *stop_rx.borrow() {
                break;
            }
        }
        progress.note(&format!(
            "[{}/{}] {}: {}",
            i + 1,
            total,
            plan.key.label,
            describe_plan(plan)
        ));
        let sink = Sink {
            dir: dir.join(&plan.key.label),
            jtl: o.jtl,
            request_label: request_label.clone(),
        };
        let r = engine::run_config(workers, &target, plan, &sink, &stop_rx, &mut progress)?;
        let s = Summary::from_result(&r);
        progress.note(&format!("  {}", one_line(&s)));
        study.configurations.push(r.key.clone());
        write_json(&study_path, &study)?;
        results.push(r);
        summaries.push(s);
    }
    let interrupted = *stop_rx.borrow();
    study.ended_ms = Some(now_ms());
    study.interrupted = interrupted;
    write_json(&study_path, &study)?;

    let failures = thresholds::check_all(&o.thresholds, &results);
    // The HTML report, from what was just written (the same code as
    // `vaccel bench report`). A report failure does not lose the results.
    let report_path = dir.join("report.html");
    let report = crate::report::write_report(&dir, &report_path);
    let io = |source| Error::Io {
        what: "writing the summaries",
        source,
    };
    if o.json {
        serde_json::to_writer_pretty(&mut *out, &summaries)
            .map_err(std::io::Error::from)
            .map_err(io)?;
        writeln!(out).map_err(io)?;
    } else if !o.quiet {
        out.write_all(table(&summaries).as_bytes()).map_err(io)?;
        writeln!(out, "results: {}", dir.display()).map_err(io)?;
    }
    match report {
        Ok(_) if !o.quiet && !o.json => {
            writeln!(out, "report:  {}", report_path.display()).map_err(io)?;
        }
        Ok(_) => {}
        // stderr: `out` may be machine-read JSON.
        Err(e) => eprintln!(
            "warning: could not write {}: {e} (the results are complete; try `vaccel bench report {}`)",
            report_path.display(),
            dir.display()
        ),
    }
    Ok(StudyReport {
        dir,
        results,
        summaries,
        failures,
        interrupted,
    })
}

/// Milliseconds with two decimals under 10 ms, one above.
pub fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

fn ms(s: &Option<Stats>, f: impl Fn(&Stats) -> f64) -> String {
    s.as_ref().map_or("-".into(), |s| fmt_ms(f(s)))
}

/// One line per configuration: requests, success, rate, latency.
pub fn one_line(s: &Summary) -> String {
    let mut line = format!(
        "{} requests, {:.2}% ok, {:.1} req/s, rtt mean {} ms, p50 {} ms, p95 {} ms, p99 {} ms",
        s.count,
        s.success_rate * 100.0,
        s.throughput_rps,
        ms(&s.rtt_ms, |x| x.mean),
        ms(&s.rtt_ms, |x| x.median),
        ms(&s.rtt_ms, |x| x.p95),
        ms(&s.rtt_ms, |x| x.p99),
    );
    if s.errors > 0 {
        let classes: Vec<String> = s
            .outcomes
            .iter()
            .filter(|(k, v)| **v > 0 && k.as_str() != "2xx")
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        line += &format!(", errors {} ({})", s.errors, classes.join(", "));
    }
    if s.late > 0 || s.dropped > 0 {
        line += &format!(", late {}, dropped {}", s.late, s.dropped);
    }
    line
}

/// The summaries as a text table (times in ms).
pub fn table(summaries: &[Summary]) -> String {
    let head = [
        "config", "requests", "ok%", "req/s", "mean", "median", "p90", "p95", "p99", "max",
        "handler", "op", "errors",
    ];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for s in summaries {
        let r = &s.rtt_ms;
        rows.push(vec![
            s.config.label.clone(),
            s.count.to_string(),
            format!("{:.2}", s.success_rate * 100.0),
            format!("{:.1}", s.throughput_rps),
            ms(r, |x| x.mean),
            ms(r, |x| x.median),
            ms(r, |x| x.p90),
            ms(r, |x| x.p95),
            ms(r, |x| x.p99),
            ms(r, |x| x.max),
            ms(&s.handler_ms, |x| x.median),
            ms(&s.op_ms, |x| x.median),
            s.errors.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (c, cell) in r.iter().enumerate() {
            if c == 0 {
                out += &format!("{cell:<w$}", w = widths[c]);
            } else {
                out += &format!("  {cell:>w$}", w = widths[c]);
            }
        }
        out.push('\n');
    }
    out += "(times in ms: round trip; handler and op are medians of X-Duration-Seconds and X-Vaccel-Op-Seconds)\n";
    out
}

#[cfg(test)]
mod tests {
    use super::civil;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), Some((1970, 1, 1, 0, 0, 0)));
        // A leap day, and the last second of a century year.
        assert_eq!(civil(951_782_400 + 3_723), Some((2000, 2, 29, 1, 2, 3)));
        assert_eq!(civil(4_102_444_799), Some((2099, 12, 31, 23, 59, 59)));
        assert_eq!(civil(u64::MAX), None);
    }
}
