//! The `vaccel` command line.
//!
//! Every subcommand translates its arguments into the library API and
//! prints the result; [`run`] is callable in-process from tests.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod agent;
mod bench;
mod exec;
mod function;
mod ops;
mod plugins;
mod up;
mod watchdog;

/// vAccel: hardware acceleration for serverless functions, VMs and sandboxes.
#[derive(Debug, Parser)]
#[command(name = "vaccel", version, about, long_about = None)]
pub struct Cli {
    /// Plugins to load, `:`-separated names or .so paths (overrides VACCEL_PLUGINS).
    #[arg(long, global = true, value_name = "LIST")]
    pub plugins: Option<String>,
    /// Session hint: a number (0x4000) or names (cpu|remote); 0 = any plugin.
    #[arg(long, global = true, default_value = "0")]
    pub hint: String,
    /// Log level 1 (error) … 4 (debug) (overrides VACCEL_LOG_LEVEL).
    #[arg(long, global = true, value_name = "N")]
    pub log_level: Option<String>,
    /// Log format: text or json, one object per line (overrides VACCEL_LOG_FORMAT).
    #[arg(long, global = true, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// Record per-op profiling regions and print them at exit.
    #[arg(long, global = true)]
    pub profile: bool,
    /// ONNX engine for the onnx plugin: auto, tract or ort (overrides VACCEL_ONNX_ENGINE).
    #[arg(long, global = true, value_parser = ["auto", "tract", "ort"])]
    pub engine: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the loaded plugins: name, version, types, ops, source.
    Plugins(plugins::Args),
    /// Run NOOP N times and print the time per call.
    Noop {
        /// Number of calls.
        #[arg(short = 'n', long, default_value_t = 1)]
        count: u64,
    },
    /// Call SYMBOL in LIBRARY through the EXEC op.
    Exec(exec::Args),
    /// Run the host agent that remote plugins (in VMs, sandboxes, containers) connect to.
    Agent(agent::Args),
    /// Classify images: top-k ImageNet labels with probabilities.
    Classify(ops::ClassifyArgs),
    /// Detect faces: boxes and scores.
    Detect(ops::DetectArgs),
    /// Blur every face in an image and write a JPEG.
    Blur(ops::BlurArgs),
    /// Multiply random matrices (row-major SGEMM) and report GFLOP/s.
    Sgemm(ops::SgemmArgs),
    /// AES-CBC encrypt or decrypt a file (PKCS#7 padding).
    Aes(ops::AesArgs),
    /// Benchmarks: load-test a function (`bench URL`), the same op local vs remote (`bench ops`).
    Bench(bench::Args),
    /// Serve one request with a built-in function, as a forking watchdog runs it (stdin to stdout).
    Function(function::Args),
    /// Serve a function over HTTP: an OpenFaaS of-watchdog drop-in, configured from its environment variables.
    Watchdog(Box<watchdog::Args>),
    /// The local serverless stack: agent on a Unix socket + OpenFaaS-style gateway on 127.0.0.1:8080.
    Up(up::Args),
}

/// Build the runtime the command line asks for.
pub fn runtime(cli: &Cli) -> vaccel::Result<vaccel::Runtime> {
    let mut cfg = vaccel::Config::from_env()?;
    if let Some(p) = &cli.plugins {
        cfg.plugins = Some(p.clone());
    }
    if let Some(l) = &cli.log_level {
        cfg.log_level = vaccel::config::parse_log_level(l)?;
    }
    if let Some(f) = &cli.log_format {
        cfg.log_format = vaccel::config::parse_log_format(f)?;
    }
    cfg.profiling |= cli.profile;
    if let Some(e) = &cli.engine {
        cfg.options.insert("onnx.engine".into(), e.clone());
    }
    vaccel::config::init_logging_with(cfg.log_level, cfg.log_format);
    vaccel::runtime_with(cfg)
}

/// Open a session with the command line's hint.
pub fn session(cli: &Cli, rt: &vaccel::Runtime) -> vaccel::Result<vaccel::Session> {
    rt.session(vaccel::PluginType::parse(&cli.hint)?)
}

/// Print profiling regions of a session, upstream style.
pub fn print_profile(out: &mut dyn Write, sess: &vaccel::Session) -> anyhow::Result<()> {
    for (op, s) in sess.profile() {
        writeln!(
            out,
            "[prof] {}: total_time: {} nsec nr_entries: {} min: {} nsec max: {} nsec",
            vaccel::profiling::region_name(op),
            s.total.as_nanos(),
            s.count,
            s.min.as_nanos(),
            s.max.as_nanos()
        )?;
    }
    Ok(())
}

/// Run a parsed command line, writing results to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    let rt = runtime(&cli)?;
    match &cli.command {
        Command::Plugins(a) => plugins::run(&rt, a, out),
        Command::Agent(a) => agent::run(rt, a, out),
        Command::Bench(a) => bench::run(&cli, &rt, a, out),
        Command::Function(a) => function::run(rt, vaccel::PluginType::parse(&cli.hint)?, a, out),
        Command::Up(a) => up::run(rt, a, out),
        Command::Watchdog(a) => watchdog::run(rt, vaccel::PluginType::parse(&cli.hint)?, a, out),
        Command::Noop { count } => {
            let sess = session(&cli, &rt)?;
            let t0 = std::time::Instant::now();
            for _ in 0..*count {
                sess.noop()?;
            }
            let el = t0.elapsed();
            writeln!(
                out,
                "noop: {count} call(s) on plugin '{}' (session {}), {:.3} µs/call",
                sess.plugin().name,
                sess.id(),
                el.as_secs_f64() * 1e6 / (*count).max(1) as f64
            )?;
            print_profile(out, &sess)?;
            Ok(())
        }
        other => {
            let sess = session(&cli, &rt)?;
            match other {
                Command::Exec(a) => exec::run(&sess, a, out)?,
                Command::Classify(a) => ops::classify(&sess, a, out)?,
                Command::Detect(a) => ops::detect(&sess, a, out)?,
                Command::Blur(a) => ops::blur(&sess, a, out)?,
                Command::Sgemm(a) => ops::sgemm(&sess, a, out)?,
                Command::Aes(a) => ops::aes(&sess, a, out)?,
                Command::Plugins(_)
                | Command::Noop { .. }
                | Command::Agent(_)
                | Command::Bench(_)
                | Command::Function(_)
                | Command::Watchdog(_)
                | Command::Up(_) => {
                    unreachable!("handled above")
                }
            }
            print_profile(out, &sess)
        }
    }
}

/// Format an error for people: the message, and the vAccel code if there is one.
pub fn describe(e: &anyhow::Error) -> String {
    match e.downcast_ref::<vaccel::Error>() {
        Some(v) => format!("{} ({})", v.message(), v.code()),
        None => format!("{e:#}"),
    }
}

/// Parse, run, print one clear line on error. Used by `main`.
pub fn main_with_args<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("vaccel: internal error: {info}");
    }));
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match run(cli, &mut lock) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = lock.flush();
            eprintln!("error: {}", describe(&e));
            if e.downcast_ref::<vaccel_loadtest::ThresholdsFailed>()
                .is_some()
            {
                return ExitCode::from(vaccel_loadtest::ThresholdsFailed::EXIT_CODE);
            }
            ExitCode::FAILURE
        }
    }
}
