//! `vaccel bench ops`: the same op local vs remote, side by side, in one run.
//!
//! A `vaccel agent` is started as a separate process (same environment, so
//! the same `VACCEL_PLUGINS`) listening on a Unix socket and on TCP
//! loopback (with a random token). The caller's runtime gives the local
//! session; two more runtimes, each with only a [`RemotePlugin`], give the
//! remote sessions. Then, each as a median over repeats, with local and
//! remote timed in the same interleaved loop:
//!
//! 1. **NOOP round trip**, next to the raw floor: a ping-pong of exactly
//!    the NOOP frames' byte counts between two threads of this process.
//! 2. **Socket bandwidth** of a bulk transfer (for reference).
//! 3. **SGEMM** GFLOP/s for square sizes.
//! 4. **Image classification** of JPEGs made at run time from a real photo.
//! 5. **AES-128-CBC** throughput for chunk sizes from 64 B to 1 MiB.
//! 6. The agent's **memory** (VmRSS) after warm-up and at the end.
//!
//! Every remote variant of 3–5 has a **floor**: the local time plus a raw
//! ping-pong of exactly that op's request and reply frame sizes over the
//! same transport, timed in the same interleaved loop (so it sees the same
//! machine load and the same cache behaviour for that size).
//!
//! Over the Unix socket, SGEMM, classification and AES are also run with
//! their inputs (and SGEMM's output) in `vaccel::shm::SharedVec`s, which the
//! remote plugin passes by reference (`unix_shm`).
//!
//! An op the local plugin lacks is skipped with a `SKIPPED:` line. Output:
//! a table per comparison on the writer, an SVG plot per comparison and
//! `results.json` (every number) in the output directory.

mod agent;
mod floor;
mod images;
mod plot;
mod report;
mod soak;
mod timing;

pub use soak::Soak;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use vaccel::shm::SharedVec;
use vaccel::{Code, OpType, PluginType, Runtime, Session};
use vaccel_plugin_remote::{RemotePlugin, Settings};
use vaccel_transport::Address;

pub use agent::AgentSpec;
pub use report::Machine;
pub use timing::Stat;

use agent::Agent;
use floor::OpShape;
use plot::{Plot, Series};
use report::{Table, bytes, num, ratio, verdict};
use timing::{Budget, Runner, compare};

use crate::{Error, Result};

/// Target: remote NOOP round trip ÷ raw ping-pong floor.
pub const TARGET_NOOP_VS_FLOOR: f64 = 1.3;
/// Target: remote SGEMM time ÷ copy-floor time, over TCP.
pub const TARGET_SGEMM_VS_FLOOR: f64 = 1.2;
/// Target: remote image classification time ÷ local, over Unix sockets.
pub const TARGET_CLASSIFY_UNIX: f64 = 1.02;

/// Repeats per point in a full run (the median is reported): many short
/// repeats make the median robust to bursts of load on a shared machine.
pub const REPEATS: usize = 9;
/// Repeats per point with `--quick`.
pub const QUICK_REPEATS: usize = 5;
/// Time per variant and point in a full run.
pub const FULL_BUDGET: Duration = Duration::from_millis(500);
/// Time per variant and point with `--quick`.
pub const QUICK_BUDGET: Duration = Duration::from_millis(100);

/// SGEMM sizes (square); `--quick` stops at 256.
pub const SGEMM_SIZES: [usize; 5] = [64, 128, 256, 512, 1024];
/// Image sizes for classification; `--quick` uses the first three.
pub const IMAGE_SIZES: [(u32, u32); 5] = [
    (224, 224),
    (640, 480),
    (1280, 720),
    (1920, 1080),
    (3840, 2160),
];
/// AES-CBC chunk sizes.
pub const AES_SIZES: [usize; 8] = [
    64,
    256,
    1 << 10,
    4 << 10,
    16 << 10,
    64 << 10,
    256 << 10,
    1 << 20,
];

/// A transport between the remote plugin and the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Unix stream socket.
    Unix,
    /// TCP over loopback.
    Tcp,
}

impl Transport {
    /// The series / key name.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Unix => "unix",
            Transport::Tcp => "tcp",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Transport {
    type Err = Error;

    fn from_str(s: &str) -> Result<Transport> {
        match s.trim() {
            "unix" => Ok(Transport::Unix),
            "tcp" => Ok(Transport::Tcp),
            other => Err(Error::Options(format!(
                "unknown transport '{other}': use unix and/or tcp"
            ))),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Shorter run: smaller sizes, less time per point.
    pub quick: bool,
    /// Where to write the SVG plots and `results.json`.
    pub out_dir: PathBuf,
    /// Transports to compare (at least one).
    pub transports: Vec<Transport>,
    /// Directory of the source photo for the generated images (default: the repository's test photos).
    pub images_dir: Option<PathBuf>,
    /// Time per variant and point, overriding the full / quick default (tests use a few ms).
    pub budget: Option<Duration>,
    /// Session hint, local and remote.
    pub hint: PluginType,
    /// The agent.
    pub agent: AgentSpec,
    /// The command line, recorded in `results.json`.
    pub command: String,
    /// Run only these sections (`noop`, `sgemm`, `classify`, `aes`; the
    /// socket bandwidth runs with `sgemm`); `None` runs all.
    pub only: Option<Vec<String>>,
    /// Busy polling on both ends (the clients, an agent this run starts,
    /// and the floors' raw ping-pongs); zero: every wait blocks.
    pub busy_poll: Duration,
}

/// The sections `Options::only` may name.
pub const SECTIONS: [&str; 5] = ["noop", "sgemm", "classify", "aes", "soak"];

impl Options {
    /// Defaults: full run, both transports, `target/bench-ops`.
    pub fn new(agent: AgentSpec) -> Options {
        Options {
            quick: false,
            out_dir: PathBuf::from("target/bench-ops"),
            transports: vec![Transport::Unix, Transport::Tcp],
            images_dir: None,
            budget: None,
            hint: PluginType::empty(),
            agent,
            command: "vaccel bench ops".into(),
            only: None,
            busy_poll: vaccel_plugin_remote::DEFAULT_BUSY_POLL,
        }
    }

    fn runs(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == section))
    }

    fn not_selected() -> Section {
        Section {
            skipped: Some("not selected (--only)".into()),
            ..Section::default()
        }
    }

    fn budget(&self) -> Budget {
        Budget {
            per_point: self.budget.unwrap_or(if self.quick {
                QUICK_BUDGET
            } else {
                FULL_BUDGET
            }),
            repeats: if self.quick { QUICK_REPEATS } else { REPEATS },
        }
    }

    fn soak_spec(&self) -> soak::SoakSpec {
        let (clients, rounds, ops_per_round) = match self.budget {
            Some(b) if b < Duration::from_millis(20) => (8, 3, 20),
            _ if self.quick => (64, 4, 100),
            _ => (64, 8, 400),
        };
        soak::SoakSpec {
            clients,
            rounds,
            ops_per_round,
            busy_poll: self.busy_poll,
        }
    }

    fn bandwidth_bytes(&self) -> usize {
        match self.budget {
            Some(b) if b < Duration::from_millis(20) => 4 << 20,
            _ if self.quick => 16 << 20,
            _ => 64 << 20,
        }
    }
}

/// Run settings, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct RunSettings {
    /// `--quick`.
    pub quick: bool,
    /// Time per variant and point, milliseconds.
    pub budget_ms_per_point: f64,
    /// Repeats per point.
    pub repeats: usize,
    /// Transports compared.
    pub transports: Vec<Transport>,
    /// The local session's plugin.
    pub local_plugin: String,
    /// The agent's plugins, as it printed them.
    pub agent_plugins: Option<String>,
    /// The agent's process id (none: not a child of this run).
    pub agent_pid: Option<u32>,
    /// Bytes of a NOOP OP frame (the floor's request).
    pub noop_request_bytes: usize,
    /// Bytes of an empty OP_RESULT frame (the floor's reply).
    pub noop_reply_bytes: usize,
    /// Busy-poll window of the clients, the agent (when this run started
    /// it) and the floors, microseconds.
    pub busy_poll_us: u64,
}

/// One measured point of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Row label (`n=256`, `1280×720`, `4 KiB`).
    pub label: String,
    /// The x value plotted (n, megapixels, bytes).
    pub x: f64,
    /// Frame sizes of each remote variant (`unix`, `unix_shm`, `tcp`): what
    /// its raw ping-pong floor (`floor_<variant>`) sends and receives.
    pub frames: BTreeMap<String, Frames>,
    /// Timing of each variant (`local`, `unix`, `unix_shm`, `tcp`) and of
    /// each floor (`floor_unix`, …), seconds per op.
    pub variants: BTreeMap<String, Stat>,
    /// Derived numbers: throughputs, ratios, floors.
    pub derived: BTreeMap<String, f64>,
}

/// The bytes of one op on the wire, headers included.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Frames {
    /// OP request frame.
    pub request_bytes: usize,
    /// OP_RESULT reply frame.
    pub reply_bytes: usize,
}

/// One comparison.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Section {
    /// The local plugin that ran the op (the agent picks the same way).
    pub plugin: Option<String>,
    /// Why it did not run, if it did not.
    pub skipped: Option<String>,
    /// Points, in size order.
    pub points: Vec<Point>,
}

/// A socket bandwidth measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Bandwidth {
    /// Transport.
    pub transport: Transport,
    /// Bytes per transfer.
    pub bytes: usize,
    /// Median bytes per second.
    pub bytes_per_s: f64,
    /// Seconds of each transfer.
    pub samples_s: Vec<f64>,
}

/// The agent's memory, KiB.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// VmRSS after warm-up (sessions open, NOOP comparison done).
    pub after_warmup_rss_kib: u64,
    /// VmRSS after every comparison.
    pub end_rss_kib: u64,
    /// VmHWM (peak RSS) after every comparison.
    pub peak_rss_kib: u64,
}

/// Everything measured: what `results.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The command line.
    pub command: String,
    /// Where and when.
    pub machine: Machine,
    /// How.
    pub settings: RunSettings,
    /// NOOP round trip (variants include the floors `floor_unix`, `floor_tcp`).
    pub noop: Section,
    /// Socket bandwidth per transport.
    pub bandwidth: Vec<Bandwidth>,
    /// SGEMM.
    pub sgemm: Section,
    /// Image classification.
    pub classify: Section,
    /// AES-128-CBC encryption.
    pub aes: Section,
    /// The agent's memory (none when the agent is not a child of this run).
    pub agent_memory: Option<Memory>,
    /// The agent's memory under sustained mixed load from many connections
    /// (Unix socket), per round.
    pub soak: Option<Soak>,
}

/// What a run produced.
#[derive(Debug)]
pub struct Report {
    /// Every number.
    pub results: Results,
    /// Files written (SVG plots, `results.json`).
    pub files: Vec<PathBuf>,
}

/// The remote plugin sends arguments smaller than this by copy even when
/// they live in shared memory (a reference costs about as much).
const SHM_MIN_BYTES: usize = 4096;

/// One way of running an op: locally, or remotely over a transport,
/// optionally with the arguments in shared memory.
#[derive(Debug, Clone, Copy)]
struct Variant<'a> {
    /// Key in tables and `results.json`: `local`, `unix`, `unix_shm`, `tcp`.
    key: &'static str,
    session: &'a Session,
    /// None: local.
    transport: Option<Transport>,
    /// Arguments live in `SharedVec`s (Unix sockets only).
    shm: bool,
}

/// Shared state of one run.
struct Ctx<'a> {
    runtime: &'a Runtime,
    local: &'a Session,
    remotes: &'a [(Transport, Session)],
    budget: Budget,
    out: &'a mut dyn Write,
    out_dir: &'a Path,
    files: Vec<PathBuf>,
    /// Busy polling of the floors' ping-pongs.
    busy_poll: Duration,
}

impl<'a> Ctx<'a> {
    /// Local, then each transport (and `unix_shm` after `unix` when `shm`).
    fn variants(&self, shm: bool) -> Vec<Variant<'a>> {
        let mut v = vec![Variant {
            key: "local",
            session: self.local,
            transport: None,
            shm: false,
        }];
        for (t, s) in self.remotes {
            v.push(Variant {
                key: t.name(),
                session: s,
                transport: Some(*t),
                shm: false,
            });
            if shm && *t == Transport::Unix {
                v.push(Variant {
                    key: "unix_shm",
                    session: s,
                    transport: Some(*t),
                    shm: true,
                });
            }
        }
        v
    }

    fn transports(&self) -> Vec<Transport> {
        self.remotes.iter().map(|(t, _)| *t).collect()
    }

    /// Whether the local plugin implements `op`; if not, say so loudly.
    fn supports(&mut self, op: OpType, section: &mut Section) -> Result<bool> {
        if let Ok(p) = self.local.op_plugin(op) {
            let name = p.name.clone();
            let chosen = &self.local.plugin().name;
            if &name == chosen {
                writeln!(self.out, "{op} runs on plugin '{name}'")?;
            } else {
                writeln!(
                    self.out,
                    "{op} runs on plugin '{name}' (per-op fallback from the session's plugin '{chosen}')"
                )?;
            }
            section.plugin = Some(name);
            return Ok(true);
        }
        let others: Vec<String> = self
            .runtime
            .plugins()
            .iter()
            .filter(|p| p.info().ops.contains(op))
            .map(|p| p.info().name.clone())
            .collect();
        let why = if others.is_empty() {
            let load = if op == OpType::Noop {
                "noop/exec"
            } else {
                "cpu/onnx"
            };
            format!(
                "no loaded plugin implements {op} (load {load}); the session's plugin is '{}'",
                self.local.plugin().name
            )
        } else {
            format!(
                "the session's plugin '{}' does not implement {op} and per-op fallback is off; loaded plugin(s) that do: {} (set VACCEL_OP_FALLBACK=1, list one first in VACCEL_PLUGINS, or pick it with --hint)",
                self.local.plugin().name,
                others.join(", ")
            )
        };
        writeln!(self.out, "SKIPPED: {why}\n")?;
        section.skipped = Some(why);
        Ok(false)
    }

    /// For each remote variant, from its floor `floor_<key>` (a raw
    /// ping-pong of its exact frame sizes): `<key>_floor_s` (local + that
    /// round trip), `<key>/local`, `<key>_floor/local` and `<key>/floor`.
    fn ratios(&self, p: &mut Point, variants: &[Variant<'_>]) {
        let Some(t_local) = p.variants.get("local").map(|s| s.median_s) else {
            return;
        };
        for v in variants.iter().filter(|v| v.transport.is_some()) {
            let k = v.key;
            let (Some(tr), Some(raw)) = (
                p.variants.get(k).map(|s| s.median_s),
                p.variants.get(&floor_key(k)).map(|s| s.median_s),
            ) else {
                continue;
            };
            let floor = t_local + raw;
            p.derived.insert(format!("{k}_floor_s"), floor);
            p.derived.insert(format!("{k}/local"), tr / t_local);
            p.derived
                .insert(format!("{k}_floor/local"), floor / t_local);
            p.derived.insert(format!("{k}/floor"), tr / floor);
        }
    }

    fn write_plot(&mut self, name: &str, plot: &Plot) -> Result<()> {
        let path = self.out_dir.join(name);
        plot::write_svg(&path, plot)?;
        self.files.push(path);
        Ok(())
    }
}

/// `a/b/c` of the variants' operations per repeat.
fn iters(p: &Point, variants: &[Variant<'_>]) -> String {
    variants
        .iter()
        .filter_map(|v| p.variants.get(v.key).map(|s| s.iters.to_string()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Header of the [`iters`] column (values in the table's column order).
const ITERS_HEADER: &str = "ops/repeat";

/// The key of a remote variant's raw floor: `floor_unix`, `floor_unix_shm`, `floor_tcp`.
fn floor_key(key: &str) -> String {
    format!("floor_{key}")
}

/// `unix_shm` → `unix shm`.
fn display(key: &str) -> String {
    key.replace('_', " ")
}

fn stats_by_name(runners: &[Runner<'_>], stats: Vec<Stat>) -> BTreeMap<String, Stat> {
    runners.iter().map(|r| r.name.clone()).zip(stats).collect()
}

/// X ticks on the measured sizes (plotted at `log2(x)`).
fn ticks(points: &[Point], label: impl Fn(&Point) -> String) -> Vec<(f64, String)> {
    points.iter().map(|p| (p.x.log2(), label(p))).collect()
}

/// Series of `y(point, key)` for each key with at least one value, x at `log2(x)`.
fn series(points: &[Point], keys: &[&str], y: impl Fn(&Point, &str) -> Option<f64>) -> Vec<Series> {
    keys.iter()
        .map(|k| Series {
            name: display(k),
            points: points
                .iter()
                .filter_map(|p| y(p, k).map(|v| (p.x.log2(), v)))
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// Plotted series: measured variants, then the floors (local + raw ping-pong).
const SERIES: [&str; 7] = [
    "local",
    "unix",
    "unix_shm",
    "tcp",
    "floor_unix",
    "floor_unix_shm",
    "floor_tcp",
];

/// Seconds per op of `key` at `p`: a measured variant, or local + a raw floor.
fn seconds(p: &Point, key: &str) -> Option<f64> {
    match key.strip_prefix("floor_") {
        Some(t) => p.derived.get(&format!("{t}_floor_s")).copied(),
        None => p.variants.get(key).map(|s| s.median_s),
    }
}

/// A table with one throughput column per variant (`<key>_<metric>` in each
/// point's derived values, shown as `unit`), one remote/local time ratio per
/// remote variant, and the iteration counts.
fn throughput_table(
    points: &[Point],
    variants: &[Variant<'_>],
    first: &str,
    unit: &str,
    metric: &str,
) -> Table {
    let remote: Vec<&Variant<'_>> = variants.iter().filter(|v| v.transport.is_some()).collect();
    let mut header = vec![first.to_string()];
    header.extend(
        variants
            .iter()
            .map(|v| format!("{} {unit}", display(v.key))),
    );
    header.extend(remote.iter().map(|v| format!("{}/local", display(v.key))));
    header.push(ITERS_HEADER.into());
    let mut table = Table::new(header);
    for p in points {
        let d = |k: String| p.derived.get(&k).copied().unwrap_or(f64::NAN);
        let mut row = vec![p.label.clone()];
        row.extend(
            variants
                .iter()
                .map(|v| num(d(format!("{}_{metric}", v.key)))),
        );
        row.extend(remote.iter().map(|v| ratio(d(format!("{}/local", v.key)))));
        row.push(iters(p, variants));
        table.row(row);
    }
    table
}

/// The second table of a sized comparison: the copied frames' sizes, each
/// floor (local + raw ping-pong) as a ratio to local, and each remote
/// variant's time ÷ its floor.
fn floor_table(points: &[Point], variants: &[Variant<'_>], target: Option<(&str, f64)>) -> Table {
    let remote: Vec<&Variant<'_>> = variants.iter().filter(|v| v.transport.is_some()).collect();
    let mut header = vec!["size".to_string(), "request + reply".to_string()];
    header.extend(remote.iter().map(|v| format!("floor {}", display(v.key))));
    header.extend(remote.iter().map(|v| format!("{}÷floor", display(v.key))));
    let mut table = Table::new(header);
    for p in points {
        let d = |k: String| p.derived.get(&k).copied().unwrap_or(f64::NAN);
        let copied = remote
            .iter()
            .find(|v| !v.shm)
            .and_then(|v| p.frames.get(v.key))
            .map_or(String::new(), |f| {
                format!(
                    "{} + {}",
                    bytes(f.request_bytes as u64),
                    bytes(f.reply_bytes as u64)
                )
            });
        let mut row = vec![p.label.clone(), copied];
        for v in &remote {
            row.push(ratio(d(format!("{}_floor/local", v.key))));
        }
        for v in &remote {
            let r = d(format!("{}/floor", v.key));
            let mark = match target {
                Some((k, t)) if k == v.key => format!(" {}", verdict(r, t)),
                _ => String::new(),
            };
            row.push(format!("{}{mark}", ratio(r)));
        }
        table.row(row);
    }
    table
}

/// Run the comparison. `local` gives the local session; the agent and the
/// remote sessions are set up from `opts`. Tables go to `out`.
pub fn run(local: &Runtime, opts: &Options, out: &mut dyn Write) -> Result<Report> {
    if opts.transports.is_empty() {
        return Err(Error::Options(
            "give at least one transport (unix, tcp)".into(),
        ));
    }
    let mut transports = opts.transports.clone();
    transports.sort();
    transports.dedup();
    std::fs::create_dir_all(&opts.out_dir)
        .map_err(|e| Error::io(format_args!("creating {}", opts.out_dir.display()), e))?;
    let budget = opts.budget();
    let machine = Machine::detect();
    writeln!(
        out,
        "vaccel bench ops: the same op local vs remote, side by side"
    )?;
    writeln!(out, "{}", machine.line())?;

    let local_sess = local.session(opts.hint)?;
    // The agent is declared before the remote sessions, so it is dropped
    // (stopped) after them, also on errors.
    let agent = Agent::start(&opts.agent, &transports, Some(opts.busy_poll))?;
    let mut remote_rts = Vec::new();
    let mut remotes = Vec::new();
    for t in &transports {
        let address = agent
            .address(*t)
            .cloned()
            .ok_or_else(|| Error::Options(format!("no {t} address for the agent")))?;
        let token = matches!(t, Transport::Tcp)
            .then(|| agent.token.clone())
            .flatten();
        let rt = Runtime::builder()
            .with_plugin(Arc::new(RemotePlugin::new(Settings {
                token,
                busy_poll: opts.busy_poll,
                ..Settings::new(address)
            })))
            .build()?;
        let sess = rt
            .session(opts.hint)
            .map_err(|e| Error::Agent(format!("opening a remote session over {t}: {e}")))?;
        remotes.push((*t, sess));
        remote_rts.push(rt);
    }
    let (req_bytes, resp_bytes) = floor::noop_frame_sizes()?;
    let settings = RunSettings {
        quick: opts.quick,
        budget_ms_per_point: budget.per_point.as_secs_f64() * 1e3,
        repeats: budget.repeats,
        transports: transports.clone(),
        local_plugin: local_sess.plugin().name.clone(),
        agent_plugins: agent.plugins.clone(),
        agent_pid: agent.pid,
        noop_request_bytes: req_bytes,
        noop_reply_bytes: resp_bytes,
        busy_poll_us: u64::try_from(opts.busy_poll.as_micros()).unwrap_or(u64::MAX),
    };
    writeln!(
        out,
        "local plugin: {}; agent: pid {}, plugins: {}; transports: {}",
        settings.local_plugin,
        agent.pid.map_or("?".into(), |p| p.to_string()),
        agent.plugins.as_deref().unwrap_or("?"),
        transports
            .iter()
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        out,
        "busy polling: {} µs on both ends (VACCEL_RPC_BUSY_POLL_US, agent --busy-poll-us; --busy-poll-us 0 compares with every wait blocking), and in the floors' ping-pongs",
        settings.busy_poll_us
    )?;
    writeln!(
        out,
        "timing: warm-up, then {} repeats of ≥ {:.1} ms per variant and point, variants interleaved in a shuffled order with a {} ms pause before each batch; medians\n",
        budget.repeats,
        budget.per_repeat().as_secs_f64() * 1e3,
        num(budget.settle().as_secs_f64() * 1e3)
    )?;
    out.flush()?;

    let mut ctx = Ctx {
        runtime: local,
        local: &local_sess,
        remotes: &remotes,
        budget,
        out,
        out_dir: &opts.out_dir,
        files: Vec::new(),
        busy_poll: opts.busy_poll,
    };
    let noop = if opts.runs("noop") {
        noop_section(&mut ctx, req_bytes, resp_bytes)?
    } else {
        Options::not_selected()
    };
    let rss_warm = agent.pid.and_then(agent::memory_kib);
    let (bandwidth, sgemm) = if opts.runs("sgemm") {
        (
            bandwidth_section(&mut ctx, opts.bandwidth_bytes())?,
            sgemm_section(&mut ctx, opts.quick)?,
        )
    } else {
        (Vec::new(), Options::not_selected())
    };
    let classify = if opts.runs("classify") {
        classify_section(&mut ctx, opts)?
    } else {
        Options::not_selected()
    };
    let aes = if opts.runs("aes") {
        aes_section(&mut ctx)?
    } else {
        Options::not_selected()
    };
    let soak = match (opts.runs("soak"), agent.pid, agent.address(Transport::Unix)) {
        (true, Some(pid), Some(addr)) => Some(soak_section(&mut ctx, addr, pid, opts.soak_spec())?),
        (true, _, _) => {
            writeln!(
                ctx.out,
                "== agent memory under load ==\nnot measured: needs the agent as a child process of this run, on a Unix socket\n"
            )?;
            None
        }
        _ => None,
    };
    let rss_end = agent.pid.and_then(agent::memory_kib);
    let agent_memory = match (rss_warm, rss_end) {
        (Some((warm, _)), Some((end, peak))) => Some(Memory {
            after_warmup_rss_kib: warm,
            end_rss_kib: end,
            peak_rss_kib: peak,
        }),
        _ => None,
    };
    writeln!(ctx.out, "== agent memory ==")?;
    match &agent_memory {
        Some(m) => {
            writeln!(
                ctx.out,
                "agent VmRSS after warm-up (sessions open, NOOP comparison done): {:.1} MiB",
                m.after_warmup_rss_kib as f64 / 1024.0
            )?;
            writeln!(
                ctx.out,
                "agent VmRSS at the end: {:.1} MiB (peak VmHWM {:.1} MiB)\n",
                m.end_rss_kib as f64 / 1024.0,
                m.peak_rss_kib as f64 / 1024.0
            )?;
        }
        None => writeln!(
            ctx.out,
            "not measured: the agent is not a child process of this run\n"
        )?,
    }

    let results = Results {
        command: opts.command.clone(),
        machine,
        settings,
        noop,
        bandwidth,
        sgemm,
        classify,
        aes,
        agent_memory,
        soak,
    };
    let json = opts.out_dir.join("results.json");
    let f = std::fs::File::create(&json).map_err(|e| Error::io(json.display(), e))?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(f), &results)?;
    ctx.files.push(json);
    writeln!(ctx.out, "wrote:")?;
    for f in &ctx.files {
        writeln!(ctx.out, "  {}", f.display())?;
    }
    ctx.out.flush()?;
    let files = std::mem::take(&mut ctx.files);
    drop(ctx);
    // Close the remote connections before the agent stops.
    drop(remotes);
    drop(remote_rts);
    drop(agent);
    Ok(Report { results, files })
}

fn soak_section(ctx: &mut Ctx<'_>, addr: &Address, pid: u32, spec: soak::SoakSpec) -> Result<Soak> {
    writeln!(
        ctx.out,
        "== agent memory under load: {} clients (one connection each) × {} ops per round, mixed NOOP / AES 4 KiB / SGEMM 64 / MINMAX, {} rounds ==",
        spec.clients, spec.ops_per_round, spec.rounds
    )?;
    let s = soak::run(addr, None, pid, spec)?;
    let mut table = Table::new(["round", "agent VmRSS MiB"]);
    for (i, r) in s.rss_kib.iter().enumerate() {
        let label = if i == 0 {
            "1 (warm-up)".to_string()
        } else {
            (i + 1).to_string()
        };
        table.row(vec![label, format!("{:.1}", *r as f64 / 1024.0)]);
    }
    writeln!(ctx.out, "{}", table.render())?;
    writeln!(
        ctx.out,
        "{} ops in {:.1} s, {} failed; RSS growth after the warm-up round: {:+.1} %, over the second half of the rounds: {:+.1} %\n",
        s.ops,
        s.seconds,
        s.errors,
        s.growth() * 100.0,
        s.late_growth() * 100.0
    )?;
    ctx.out.flush()?;
    Ok(s)
}

fn noop_section(ctx: &mut Ctx<'_>, req: usize, resp: usize) -> Result<Section> {
    writeln!(ctx.out, "== NOOP round trip (µs/call) ==")?;
    writeln!(
        ctx.out,
        "floor: raw ping-pong between two threads of this process, {req}-byte request / {resp}-byte reply (the NOOP OP and OP_RESULT frames), TCP_NODELAY; target: remote ÷ floor ≤ {}",
        ratio(TARGET_NOOP_VS_FLOOR)
    )?;
    let mut section = Section::default();
    let run_ops = ctx.supports(OpType::Noop, &mut section)?;
    let mut pingpongs = Vec::new();
    for t in ctx.transports() {
        pingpongs.push((t, floor::PingPong::start(t, req, resp, ctx.busy_poll)?));
    }
    let variants = ctx.variants(false);
    let mut runners: Vec<Runner<'_>> = Vec::new();
    if run_ops {
        for v in &variants {
            let s = v.session;
            runners.push(Runner::new(v.key, move || Ok(s.noop()?)));
        }
    }
    for (t, p) in pingpongs.iter_mut() {
        runners.push(Runner::new(floor_key(t.name()), move || p.round_trip()));
    }
    let stats = compare(&mut runners, ctx.budget)?;
    let measured = stats_by_name(&runners, stats);
    drop(runners);
    drop(pingpongs);
    let frames = Frames {
        request_bytes: req,
        reply_bytes: resp,
    };
    let mut p = Point {
        label: "noop".into(),
        x: 0.0,
        frames: ctx
            .transports()
            .iter()
            .map(|t| (t.name().to_string(), frames))
            .collect(),
        variants: measured,
        derived: BTreeMap::new(),
    };
    for t in ctx.transports() {
        let (Some(r), Some(f)) = (
            p.variants.get(t.name()),
            p.variants.get(&floor_key(t.name())),
        ) else {
            continue;
        };
        let (r, f) = (r.median_s, f.median_s);
        p.derived.insert(format!("{t}/floor"), r / f);
        if let Some(l) = p.variants.get("local") {
            p.derived.insert(format!("{t}/local"), r / l.median_s);
        }
    }
    let mut table = Table::new([
        "path",
        "µs/call",
        "min",
        "max",
        "calls/repeat",
        "vs floor",
        "target",
    ]);
    let mut keys: Vec<String> = variants.iter().map(|v| v.key.to_string()).collect();
    keys.extend(ctx.transports().iter().map(|t| floor_key(t.name())));
    for k in &keys {
        let Some(s) = p.variants.get(k) else {
            continue;
        };
        let vs = p.derived.get(&format!("{k}/floor")).copied();
        table.row(vec![
            display(k),
            num(s.median_s * 1e6),
            num(s.min_s * 1e6),
            num(s.max_s * 1e6),
            s.iters.to_string(),
            vs.map_or(String::new(), ratio),
            vs.map_or(String::new(), |v| {
                format!(
                    "≤ {} {}",
                    ratio(TARGET_NOOP_VS_FLOOR),
                    verdict(v, TARGET_NOOP_VS_FLOOR)
                )
            }),
        ]);
    }
    writeln!(ctx.out, "{}", table.render())?;
    // One line per variant across repeats: shows stability as well as level.
    let plot = Plot {
        title: "NOOP round trip: local vs remote vs raw socket floor".into(),
        x_desc: "repeat (in run order)".into(),
        y_desc: "µs per call".into(),
        x_ticks: (1..=ctx.budget.repeats)
            .map(|i| (i as f64, i.to_string()))
            .collect(),
        series: keys
            .iter()
            .filter_map(|k| {
                let s = p.variants.get(k)?;
                Some(Series {
                    name: display(k),
                    points: s
                        .samples_s
                        .iter()
                        .enumerate()
                        .map(|(i, v)| ((i + 1) as f64, v * 1e6))
                        .collect(),
                })
            })
            .collect(),
    };
    ctx.write_plot("noop.svg", &plot)?;
    section.points.push(p);
    ctx.out.flush()?;
    Ok(section)
}

fn bandwidth_section(ctx: &mut Ctx<'_>, n: usize) -> Result<Vec<Bandwidth>> {
    writeln!(
        ctx.out,
        "== socket bandwidth: one-way bulk transfer of {} between two threads ==",
        bytes(n as u64)
    )?;
    writeln!(
        ctx.out,
        "for reference: the floors below are raw ping-pongs of each op's exact frame sizes, timed alongside it"
    )?;
    let mut table = Table::new(["transport", "GB/s", "ms/transfer", "transfers"]);
    let mut res = Vec::new();
    for t in ctx.transports() {
        let samples = floor::bandwidth(t, n, ctx.budget.repeats)?;
        let med = timing::median(&samples);
        let bps = n as f64 / med;
        table.row(vec![
            t.name().into(),
            num(bps / 1e9),
            num(med * 1e3),
            samples.len().to_string(),
        ]);
        res.push(Bandwidth {
            transport: t,
            bytes: n,
            bytes_per_s: bps,
            samples_s: samples,
        });
    }
    writeln!(ctx.out, "{}", table.render())?;
    ctx.out.flush()?;
    Ok(res)
}

/// Deterministic values in [-1, 1) (xorshift).
fn matrix(seed: u64, len: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Time one point: every variant, and for each remote variant its floor (a
/// raw ping-pong of the frame sizes `shape` gives), all interleaved.
fn measure_point<'s: 'r, 'r>(
    ctx: &Ctx<'_>,
    variants: &[Variant<'s>],
    shape: impl Fn(&Variant<'_>) -> OpShape,
    mut make: impl FnMut(Variant<'s>) -> Result<Box<dyn FnMut() -> Result<()> + 'r>>,
) -> Result<(BTreeMap<String, Stat>, BTreeMap<String, Frames>)> {
    let mut frames = BTreeMap::new();
    let mut pingpongs = Vec::new();
    for v in variants {
        let Some(t) = v.transport else { continue };
        let (request_bytes, reply_bytes) = floor::op_frame_sizes(&shape(v))?;
        frames.insert(
            v.key.to_string(),
            Frames {
                request_bytes,
                reply_bytes,
            },
        );
        pingpongs.push((
            floor_key(v.key),
            floor::PingPong::start(t, request_bytes, reply_bytes, ctx.busy_poll)?,
        ));
    }
    let mut runners = Vec::with_capacity(variants.len() + pingpongs.len());
    for v in variants {
        runners.push(Runner {
            name: v.key.to_string(),
            call: make(*v)?,
        });
    }
    for (k, p) in pingpongs.iter_mut() {
        runners.push(Runner::new(k.clone(), move || p.round_trip()));
    }
    let stats = compare(&mut runners, ctx.budget)?;
    Ok((stats_by_name(&runners, stats), frames))
}

/// A read argument's bytes on the wire: a 24-byte reference when it lives
/// in shared memory and is large enough, else its bytes.
fn wire_len(len: usize, shm: bool) -> usize {
    if shm && len >= SHM_MIN_BYTES { 24 } else { len }
}

fn sgemm_section(ctx: &mut Ctx<'_>, quick: bool) -> Result<Section> {
    writeln!(
        ctx.out,
        "== SGEMM n×n·n×n, α=1 β=0 (GFLOP/s; ratios are remote time ÷ local time) =="
    )?;
    let mut section = Section::default();
    if !ctx.supports(OpType::BlasSgemm, &mut section)? {
        return Ok(section);
    }
    let variants = ctx.variants(true);
    for n in SGEMM_SIZES.into_iter().filter(|n| !quick || *n <= 256) {
        let a = matrix(1, n * n);
        let b = matrix(2, n * n);
        let m = 4 * n * n;
        let shape = |v: &Variant<'_>| OpShape {
            read: vec![
                8,
                8,
                8,
                4,
                wire_len(m, v.shm),
                8,
                wire_len(m, v.shm),
                8,
                4,
                8,
            ],
            write: vec![(wire_len(m, v.shm), false)],
            outputs: vec![if v.shm { 8 } else { m }],
        };
        let (measured, frames) = measure_point(ctx, &variants, shape, |v| {
            let s = v.session;
            if v.shm {
                let a = SharedVec::from_slice(&a)?;
                let b = SharedVec::from_slice(&b)?;
                let mut c = SharedVec::<f32>::zeroed(n * n)?;
                Ok(Box::new(move || {
                    s.sgemm(n, n, n, 1.0, &a, n, &b, n, 0.0, &mut c, n)?;
                    Ok(())
                }))
            } else {
                let (a, b) = (&a, &b);
                let mut c = vec![0.0f32; n * n];
                Ok(Box::new(move || {
                    s.sgemm(n, n, n, 1.0, a, n, b, n, 0.0, &mut c, n)?;
                    Ok(())
                }))
            }
        })?;
        let mut p = Point {
            label: format!("n={n}"),
            x: n as f64,
            frames,
            variants: measured,
            derived: BTreeMap::new(),
        };
        ctx.ratios(&mut p, &variants);
        let flops = 2.0 * (n as f64).powi(3);
        for k in SERIES {
            if let Some(t) = seconds(&p, k) {
                p.derived.insert(format!("{k}_gflops"), flops / t / 1e9);
            }
        }
        section.points.push(p);
    }
    let table = throughput_table(&section.points, &variants, "size", "GFLOP/s", "gflops");
    writeln!(ctx.out, "{}", table.render())?;
    writeln!(
        ctx.out,
        "floor = local + a raw ping-pong of the op's request and reply frames (A, B, C in, C out: 16·n² bytes; with shared memory, references only), timed alongside; target: tcp ÷ floor ≤ {}",
        ratio(TARGET_SGEMM_VS_FLOOR)
    )?;
    let floors = floor_table(
        &section.points,
        &variants,
        Some(("tcp", TARGET_SGEMM_VS_FLOOR)),
    );
    writeln!(ctx.out, "{}", floors.render())?;
    let plot = Plot {
        title: "SGEMM (square, f32): local vs remote vs raw-transport floor".into(),
        x_desc: "n".into(),
        y_desc: "GFLOP/s".into(),
        x_ticks: ticks(&section.points, |p| format!("{}", p.x)),
        series: series(&section.points, &SERIES, |p, k| {
            p.derived.get(&format!("{k}_gflops")).copied()
        }),
    };
    ctx.write_plot("sgemm.svg", &plot)?;
    ctx.out.flush()?;
    Ok(section)
}

fn classify_section(ctx: &mut Ctx<'_>, opts: &Options) -> Result<Section> {
    writeln!(
        ctx.out,
        "== image classification (ms/image; JPEG quality {} resized from a photo) ==",
        images::QUALITY
    )?;
    let mut section = Section::default();
    if !ctx.supports(OpType::ImageClassify, &mut section)? {
        return Ok(section);
    }
    let photo = match images::find_photo(opts.images_dir.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            let why = e.to_string();
            writeln!(ctx.out, "SKIPPED: {why}\n")?;
            section.skipped = Some(why);
            return Ok(section);
        }
    };
    let sizes = if opts.quick {
        &IMAGE_SIZES[..3]
    } else {
        &IMAGE_SIZES[..]
    };
    let imgs = images::generate(&photo, sizes)?;
    // The default model must be there: try once, locally.
    if let Err(e) = ctx.local.image_classify(&imgs[0].jpeg) {
        if e.code() == Code::NoEnt {
            let why = format!("image classification needs its model: {}", e.message());
            writeln!(ctx.out, "SKIPPED: {why}\n")?;
            section.skipped = Some(why);
            return Ok(section);
        }
        return Err(e.into());
    }
    let variants = ctx.variants(true);
    for img in &imgs {
        let len = img.jpeg.len();
        // The reply's labels (a few hundred bytes) are left out: the floor stays a lower bound.
        let shape = |v: &Variant<'_>| OpShape {
            read: vec![wire_len(len, v.shm), 4],
            write: vec![(0, true); 3],
            outputs: vec![0; 3],
        };
        let (measured, frames) = measure_point(ctx, &variants, shape, |v| {
            let s = v.session;
            if v.shm {
                let jpeg = SharedVec::from_slice(&img.jpeg)?;
                Ok(Box::new(move || {
                    s.image_classify(&jpeg)?;
                    Ok(())
                }))
            } else {
                let jpeg = &img.jpeg;
                Ok(Box::new(move || {
                    s.image_classify(jpeg)?;
                    Ok(())
                }))
            }
        })?;
        let mut p = Point {
            label: format!("{}×{}", img.width, img.height),
            x: f64::from(img.width) * f64::from(img.height) / 1e6,
            frames,
            variants: measured,
            derived: BTreeMap::from([("jpeg_bytes".to_string(), len as f64)]),
        };
        ctx.ratios(&mut p, &variants);
        section.points.push(p);
    }
    let remote: Vec<&Variant<'_>> = variants.iter().filter(|v| v.transport.is_some()).collect();
    let mut header = vec!["size".to_string(), "JPEG".to_string()];
    header.extend(variants.iter().map(|v| format!("{} ms", display(v.key))));
    header.extend(remote.iter().map(|v| format!("{}/local", display(v.key))));
    header.push(ITERS_HEADER.into());
    let mut table = Table::new(header);
    for (p, img) in section.points.iter().zip(&imgs) {
        let d = |k: String| p.derived.get(&k).copied().unwrap_or(f64::NAN);
        let mut row = vec![p.label.clone(), bytes(img.jpeg.len() as u64)];
        row.extend(
            variants
                .iter()
                .map(|v| num(seconds(p, v.key).unwrap_or(f64::NAN) * 1e3)),
        );
        for v in &remote {
            let r = d(format!("{}/local", v.key));
            let mark = if v.key == "unix" {
                format!(" {}", verdict(r, TARGET_CLASSIFY_UNIX))
            } else {
                String::new()
            };
            row.push(format!("{}{mark}", ratio(r)));
        }
        row.push(iters(p, &variants));
        table.row(row);
    }
    writeln!(
        ctx.out,
        "source photo: {}; target: unix/local ≤ {}",
        std::env::current_dir()
            .ok()
            .and_then(|d| photo.strip_prefix(d).ok())
            .unwrap_or(&photo)
            .display(),
        ratio(TARGET_CLASSIFY_UNIX)
    )?;
    writeln!(ctx.out, "{}", table.render())?;
    writeln!(
        ctx.out,
        "floor = local + a raw ping-pong of the op's request (the JPEG; with shared memory, a reference) and reply frames, timed alongside"
    )?;
    writeln!(
        ctx.out,
        "{}",
        floor_table(&section.points, &variants, None).render()
    )?;
    let plot = Plot {
        title: "Image classification (JPEG): local vs remote vs raw-transport floor".into(),
        x_desc: "image size (pixels)".into(),
        y_desc: "ms per image".into(),
        x_ticks: ticks(&section.points, |p| p.label.clone()),
        series: series(&section.points, &SERIES, |p, k| {
            seconds(p, k).map(|s| s * 1e3)
        }),
    };
    ctx.write_plot("classify.svg", &plot)?;
    ctx.out.flush()?;
    Ok(section)
}

fn aes_section(ctx: &mut Ctx<'_>) -> Result<Section> {
    writeln!(
        ctx.out,
        "== AES-128-CBC encryption (MB/s of plaintext; ratios are remote time ÷ local time) =="
    )?;
    let mut section = Section::default();
    if !ctx.supports(OpType::AesCbcEncrypt, &mut section)? {
        return Ok(section);
    }
    let key = [0x2bu8; 16];
    let iv = [0x00u8; 16];
    let data: Vec<u8> = (0..AES_SIZES[AES_SIZES.len() - 1])
        .map(|i| (i * 131 % 251) as u8)
        .collect();
    let variants = ctx.variants(true);
    for len in AES_SIZES {
        let chunk = &data[..len];
        let (key, iv) = (&key, &iv);
        // PKCS#7 adds a block; the ciphertext (a growable output) is always copied back.
        let shape = |v: &Variant<'_>| OpShape {
            read: vec![16, 16, wire_len(len, v.shm)],
            write: vec![(0, true)],
            outputs: vec![len + 16],
        };
        let (measured, frames) = measure_point(ctx, &variants, shape, |v| {
            let s = v.session;
            if v.shm {
                let chunk = SharedVec::from_slice(chunk)?;
                Ok(Box::new(move || {
                    s.aes_cbc_encrypt(key, iv, &chunk)?;
                    Ok(())
                }))
            } else {
                Ok(Box::new(move || {
                    s.aes_cbc_encrypt(key, iv, chunk)?;
                    Ok(())
                }))
            }
        })?;
        let mut p = Point {
            label: bytes(len as u64),
            x: len as f64,
            frames,
            variants: measured,
            derived: BTreeMap::new(),
        };
        ctx.ratios(&mut p, &variants);
        for k in SERIES {
            if let Some(t) = seconds(&p, k) {
                p.derived.insert(format!("{k}_mb_s"), len as f64 / t / 1e6);
            }
        }
        section.points.push(p);
    }
    let table = throughput_table(&section.points, &variants, "chunk", "MB/s", "mb_s");
    writeln!(ctx.out, "{}", table.render())?;
    writeln!(
        ctx.out,
        "floor = local + a raw ping-pong of the op's request (plaintext; with shared memory, a reference from 4 KiB on) and reply (padded ciphertext) frames, timed alongside"
    )?;
    writeln!(
        ctx.out,
        "{}",
        floor_table(&section.points, &variants, None).render()
    )?;
    let plot = Plot {
        title: "AES-128-CBC encryption: local vs remote vs raw-transport floor".into(),
        x_desc: "chunk size".into(),
        y_desc: "MB/s".into(),
        x_ticks: ticks(&section.points, |p| p.label.clone()),
        series: series(&section.points, &SERIES, |p, k| {
            p.derived.get(&format!("{k}_mb_s")).copied()
        }),
    };
    ctx.write_plot("aes.svg", &plot)?;
    ctx.out.flush()?;
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse() {
        assert_eq!("unix".parse::<Transport>().unwrap(), Transport::Unix);
        assert_eq!(" tcp".parse::<Transport>().unwrap(), Transport::Tcp);
        let e = "vsock".parse::<Transport>().unwrap_err().to_string();
        assert!(e.contains("unknown transport 'vsock'"), "{e}");
    }

    #[test]
    fn matrices_are_deterministic_and_bounded() {
        let a = matrix(3, 4096);
        assert_eq!(a, matrix(3, 4096));
        assert_ne!(a, matrix(4, 4096));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
    }
}
