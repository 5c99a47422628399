//! Running one configuration: client threads (tokio tasks, one connection
//! each, spread over `workers` OS threads that each run a single-threaded
//! runtime) send requests and queue one small `Sample` per request in
//! their OS thread's buffer; every 10 ms the buffer goes, as one batch,
//! through a bounded channel to the aggregator, which records the
//! histograms and the timeline and streams the JTL. Nothing per request is
//! kept in memory.
//!
//! - **Closed model** (JMeter's thread group): `threads` clients, started
//!   evenly over the ramp-up (client `i` at `ramp_up * i / threads`), each
//!   sending a request, waiting for the whole response, thinking, again,
//!   until the duration is over or it has done its iterations.
//! - **Open model** (wrk2, k6's arrival-rate executors): requests are due
//!   on a fixed [`Schedule`]; `threads` connections take the next due
//!   request as soon as they are free. Latency is measured from the
//!   intended send time (`rtt_corrected`, coordinated omission corrected)
//!   and from the actual one (`rtt`). A request sent more than the late
//!   tolerance after its time is *late*; one that found no free connection
//!   until `max_delay` after its time is *dropped* (not sent).
//!
//! Requests in flight at the end of the duration are waited for (each is
//! bounded by the request timeout) and counted.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use tokio::sync::{mpsc, watch};

use crate::client::{self, Conn, Target};
use crate::error::{Error, Result};
use crate::hlog;
use crate::jtl::Row;
use crate::jtl::write::JtlWriter;
use crate::model::{ConfigKey, ConfigResult, Outcome, Second, histogram};
use crate::progress::Progress;
use crate::spec::{Rng, Schedule, Think, format_duration};

/// How the load is generated.
#[derive(Debug, Clone)]
pub enum Model {
    /// Client threads that wait for each response, then think.
    Closed {
        /// Think time between a thread's requests.
        think: Think,
        /// Threads start evenly over this period.
        ramp_up: Duration,
        /// Requests per thread (instead of, or as well as, a duration).
        iterations: Option<u64>,
    },
    /// Requests due on a schedule, on at most `threads` connections.
    Open {
        /// When each request is due.
        schedule: Arc<Schedule>,
        /// Sent later than this after its due time: counted late.
        late_tolerance: Duration,
        /// No free connection until this long after its due time: dropped. `None`: never drop.
        max_delay: Option<Duration>,
    },
}

/// One configuration to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Label, threads, think time / rate.
    pub key: ConfigKey,
    /// Closed or open.
    pub model: Model,
    /// Stop starting requests after this (closed model; the open model stops with its schedule).
    pub duration: Option<Duration>,
    /// Per-request timeout (connect + request + whole response).
    pub timeout: Duration,
    /// Seed of the think-time generator.
    pub seed: u64,
}

/// Where one configuration's results go, and how it is labelled.
#[derive(Debug, Clone)]
pub struct Sink {
    /// The configuration's folder (`<out>/<label>`); created.
    pub dir: PathBuf,
    /// Write `results.jtl`.
    pub jtl: bool,
    /// The JTL `label` column (e.g. `blur`).
    pub request_label: String,
}

/// What a client thread reports per request.
#[derive(Debug)]
pub(crate) struct Sample {
    vu: u32,
    start: Instant,
    end: Instant,
    intended: Option<Instant>,
    head_at: Option<Instant>,
    connect_us: Option<u64>,
    handler_us: Option<u64>,
    op_us: Option<u64>,
    status: u16,
    outcome: Outcome,
    bytes: u64,
    sent_bytes: u64,
    text: bool,
    late: bool,
    active: u32,
    error: Option<Box<str>>,
}

struct Ctx {
    target: Arc<Target>,
    tx: mpsc::Sender<Vec<Sample>>,
    active: Arc<AtomicU32>,
    next_payload: AtomicUsize,
    timeout: Duration,
    stop: watch::Receiver<bool>,
}

impl Ctx {
    async fn one(
        &self,
        vu: u32,
        slot: &mut Option<Conn>,
        intended: Option<Instant>,
        late: bool,
    ) -> Sample {
        let i = if self.target.payload_count() > 1 {
            self.next_payload.fetch_add(1, Ordering::Relaxed)
        } else {
            0
        };
        let (req, sent_bytes) = self.target.request(i);
        let mut connect_us = None;
        let start = Instant::now();
        let r = tokio::time::timeout(
            self.timeout,
            client::send(&self.target, slot, req, &mut connect_us),
        )
        .await;
        let end = Instant::now();
        let mut s = Sample {
            vu,
            start,
            end,
            intended,
            head_at: None,
            connect_us,
            handler_us: None,
            op_us: None,
            status: 0,
            outcome: Outcome::Timeout,
            bytes: 0,
            sent_bytes,
            text: false,
            late,
            active: self.active.load(Ordering::Relaxed),
            error: None,
        };
        match r {
            Ok(Ok(reply)) => {
                s.head_at = Some(reply.head_at);
                s.handler_us = reply.handler_us;
                s.op_us = reply.op_us;
                s.status = reply.status;
                s.outcome = Outcome::of_status(reply.status);
                s.bytes = reply.bytes;
                s.text = reply.text;
            }
            Ok(Err(e)) => {
                s.outcome = e.outcome;
                s.error = Some(e.message.into());
            }
            Err(_) => {
                // The connection is mid-request: drop it.
                *slot = None;
                s.error = Some(client::timeout_message(self.timeout).into());
            }
        }
        s
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleep until `t`; false when the run was stopped meanwhile.
    async fn sleep_until(&self, t: Instant) -> bool {
        tokio::select! {
            _ = tokio::time::sleep_until(t.into()) => true,
            _ = stopped(self.stop.clone()) => false,
        }
    }
}

/// How often a generator thread hands its samples to the aggregator.
const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Batches queued for the aggregator, at most.
const CHANNEL_BATCHES: usize = 32;
/// A generator thread's pending samples, at most (then the client thread
/// that adds one hands them over itself, waiting if the aggregator is behind).
const BATCH_MAX: usize = 4096;

thread_local! {
    /// Samples of this generator thread not yet handed to the aggregator
    /// (one buffer per thread: adding a sample touches no shared memory).
    static PENDING: std::cell::RefCell<Vec<Sample>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Queue a sample; false when the aggregator is gone.
async fn emit(tx: &mpsc::Sender<Vec<Sample>>, s: Sample) -> bool {
    let full = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.push(s);
        p.len() >= BATCH_MAX
    });
    !full || flush(tx).await
}

/// Hand this thread's pending samples to the aggregator; false when it is gone.
async fn flush(tx: &mpsc::Sender<Vec<Sample>>) -> bool {
    let batch = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
    batch.is_empty() || tx.send(batch).await.is_ok()
}

/// Resolves when `stop` turns true (never, if its sender is gone without doing so).
pub(crate) async fn stopped(mut stop: watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn closed_vu(
    ctx: Arc<Ctx>,
    vu: u32,
    start_at: Instant,
    deadline: Option<Instant>,
    think: Think,
    iterations: Option<u64>,
    seed: u64,
) {
    if !ctx.sleep_until(start_at).await || deadline.is_some_and(|d| Instant::now() >= d) {
        return;
    }
    ctx.active.fetch_add(1, Ordering::Relaxed);
    let mut rng = Rng::new(seed ^ (u64::from(vu) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut slot = None;
    let mut done = 0u64;
    loop {
        if ctx.stopped()
            || iterations.is_some_and(|n| done >= n)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        let s = ctx.one(vu, &mut slot, None, false).await;
        if !emit(&ctx.tx, s).await {
            break;
        }
        done += 1;
        if !think.is_zero() && iterations.is_none_or(|n| done < n) {
            let wake = Instant::now() + think.sample(&mut rng);
            if deadline.is_some_and(|d| wake >= d) || !ctx.sleep_until(wake).await {
                break;
            }
        }
    }
    ctx.active.fetch_sub(1, Ordering::Relaxed);
}

#[allow(clippy::too_many_arguments)]
async fn open_conn(
    ctx: Arc<Ctx>,
    vu: u32,
    t0: Instant,
    schedule: Arc<Schedule>,
    tickets: Arc<AtomicU64>,
    late_tolerance: Duration,
    max_delay: Option<Duration>,
    dropped: Arc<AtomicU64>,
) {
    let mut slot = None;
    loop {
        if ctx.stopped() {
            break;
        }
        let n = tickets.fetch_add(1, Ordering::Relaxed);
        let Some(due) = schedule.due_s(n) else { break };
        let intended = t0 + Duration::from_secs_f64(due);
        let now = Instant::now();
        if max_delay.is_some_and(|m| now > intended + m) {
            dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if intended > now && !ctx.sleep_until(intended).await {
            break;
        }
        let late = Instant::now().saturating_duration_since(intended) > late_tolerance;
        ctx.active.fetch_add(1, Ordering::Relaxed);
        let s = ctx.one(vu, &mut slot, Some(intended), late).await;
        ctx.active.fetch_sub(1, Ordering::Relaxed);
        if !emit(&ctx.tx, s).await {
            break;
        }
    }
}

fn epoch_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn out_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Output {
        path: path.to_path_buf(),
        source,
    }
}

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Run one configuration and write its folder. The client threads are
/// spread over `workers` OS threads, each with its own single-threaded
/// runtime (like wrk's threads: no work stealing, no cross-thread
/// wake-ups). `stop` ends the run early.
pub fn run_config(
    workers: usize,
    target: &Arc<Target>,
    plan: &Plan,
    sink: &Sink,
    stop: &watch::Receiver<bool>,
    progress: &mut Progress,
) -> Result<ConfigResult> {
    std::fs::create_dir_all(&sink.dir).map_err(out_err(&sink.dir))?;
    let threads = plan.key.threads.max(1);
    let workers = workers.clamp(1, threads);
    // Bounded: a full channel makes the client threads wait for the aggregator
    // (at most CHANNEL_BATCHES x BATCH_MAX samples queued).
    let (tx, rx) = mpsc::channel::<Vec<Sample>>(CHANNEL_BATCHES);
    let active = Arc::new(AtomicU32::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let ctx = Arc::new(Ctx {
        target: target.clone(),
        tx: tx.clone(),
        active: active.clone(),
        next_payload: AtomicUsize::new(0),
        timeout: plan.timeout,
        stop: stop.clone(),
    });
    let runtimes = (0..workers)
        .map(|_| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| Error::Io {
                    what: "starting a generator runtime",
                    source,
                })
        })
        .collect::<Result<Vec<_>>>()?;

    // Give the threads a moment to start before the clock does.
    let lead = Duration::from_millis(20);
    let t0 = Instant::now() + lead;
    let start_wall = SystemTime::now() + lead;
    let (planned_end, open) = match &plan.model {
        Model::Closed { .. } => (plan.duration.map(|d| t0 + d), false),
        Model::Open { schedule, .. } => (
            Some(t0 + Duration::from_secs_f64(schedule.duration_s())),
            true,
        ),
    };

    let mut result = ConfigResult::new(plan.key.clone(), epoch_us(start_wall) / 1000);
    if open {
        result.rtt_corrected = Some(histogram());
    }
    let agg = Aggregator::new(result, sink, target, t0, start_wall, active.clone())?;

    let mut tasks: Vec<Vec<Task>> = (0..workers).map(|_| Vec::new()).collect();
    match &plan.model {
        Model::Closed {
            think,
            ramp_up,
            iterations,
        } => {
            for i in 0..threads {
                let offset = ramp_up.mul_f64(i as f64 / threads as f64);
                tasks[i % workers].push(Box::pin(closed_vu(
                    ctx.clone(),
                    i as u32,
                    t0 + offset,
                    planned_end,
                    *think,
                    *iterations,
                    plan.seed,
                )));
            }
        }
        Model::Open {
            schedule,
            late_tolerance,
            max_delay,
        } => {
            let tickets = Arc::new(AtomicU64::new(0));
            for i in 0..threads {
                tasks[i % workers].push(Box::pin(open_conn(
                    ctx.clone(),
                    i as u32,
                    t0,
                    schedule.clone(),
                    tickets.clone(),
                    *late_tolerance,
                    *max_delay,
                    dropped.clone(),
                )));
            }
        }
    }
    drop(ctx);

    let planned = planned_end.map(|e| e - t0);
    let (mut result, last_end_us) = std::thread::scope(|s| {
        let mut spawn_error = None;
        for (i, (rt, mine)) in runtimes.into_iter().zip(tasks).enumerate() {
            let tx = tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("vaccel-bench-{i}"))
                .spawn_scoped(s, move || {
                    rt.block_on(async move {
                        let mut set = tokio::task::JoinSet::new();
                        for t in mine {
                            set.spawn(t);
                        }
                        let mut tick = tokio::time::interval(FLUSH_EVERY);
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        loop {
                            tokio::select! {
                                r = set.join_next() => if r.is_none() { break },
                                _ = tick.tick() => { flush(&tx).await; }
                            }
                        }
                        flush(&tx).await;
                    });
                });
            if let Err(source) = spawned {
                spawn_error.get_or_insert(Error::Io {
                    what: "starting a generator thread",
                    source,
                });
            }
        }
        drop(tx);
        // The aggregator runs here; it ends when every client thread has
        // (the tasks of a thread that did not start are dropped with it).
        let r = agg.run(rx, progress, planned);
        match spawn_error {
            Some(e) => Err(e),
            None => r,
        }
    })?;
    result.dropped = dropped.load(Ordering::Relaxed);
    result.duration_s = measured(last_end_us, t0, planned_end, stop).as_secs_f64();
    let summary = crate::summary::Summary::from_result(&result);
    let path = sink.dir.join("summary.json");
    let json = serde_json::to_vec_pretty(&summary).expect("summary serialises");
    std::fs::write(&path, json).map_err(out_err(&path))?;
    Ok(result)
}

/// The measured duration: to the planned end, or to the last completion if later
/// (or if the run was stopped early or had no planned end).
fn measured(
    last_end_us: u64,
    t0: Instant,
    planned_end: Option<Instant>,
    stop: &watch::Receiver<bool>,
) -> Duration {
    let last = Duration::from_micros(last_end_us);
    match planned_end {
        Some(e) if !*stop.borrow() => last.max(e - t0),
        _ => last,
    }
}

const TAG_RTT: usize = 0;
const TAG_TTFB: usize = 1;
const TAG_CONNECT: usize = 2;
const TAG_HANDLER: usize = 3;
const TAG_OP: usize = 4;
const TAG_CORRECTED: usize = 5;

struct Aggregator {
    result: ConfigResult,
    jtl: Option<(PathBuf, JtlWriter<BufWriter<std::fs::File>>)>,
    hlog_path: PathBuf,
    t0: Instant,
    start_wall: SystemTime,
    epoch_us: u64,
    active: Arc<AtomicU32>,
    row: Row,
    interval: Vec<Histogram<u64>>,
    interval_sec: u64,
    last_end_us: u64,
}

fn us(d: Duration) -> u64 {
    d.as_micros() as u64
}

fn ms_round(us: u64) -> u64 {
    (us + 500) / 1000
}

impl Aggregator {
    fn new(
        result: ConfigResult,
        sink: &Sink,
        target: &Target,
        t0: Instant,
        start_wall: SystemTime,
        active: Arc<AtomicU32>,
    ) -> Result<Aggregator> {
        let jtl = if sink.jtl {
            let path = sink.dir.join("results.jtl");
            let f = std::fs::File::create(&path).map_err(out_err(&path))?;
            let w =
                JtlWriter::new(BufWriter::with_capacity(256 * 1024, f)).map_err(out_err(&path))?;
            Some((path, w))
        } else {
            None
        };
        let row = Row {
            label: sink.request_label.clone(),
            url: target.url.text.clone(),
            config: result.key.label.clone(),
            ..Row::default()
        };
        Ok(Aggregator {
            result,
            jtl,
            hlog_path: sink.dir.join("histograms.hlog"),
            t0,
            start_wall,
            epoch_us: epoch_us(start_wall),
            active,
            row,
            interval: (0..hlog::TAGS.len()).map(|_| histogram()).collect(),
            interval_sec: 0,
            last_end_us: 0,
        })
    }

    fn second(&mut self, t: u64) -> &mut Second {
        let tl = &mut self.result.timeline;
        while tl.len() as u64 <= t {
            let n = tl.len() as u64;
            tl.push(Second {
                t: n,
                ..Second::default()
            });
        }
        &mut tl[t as usize]
    }

    fn record(&mut self, s: &Sample) -> std::io::Result<()> {
        let start_us = us(s.start.saturating_duration_since(self.t0));
        let end_us = us(s.end.saturating_duration_since(self.t0));
        let rtt_us = us(s.end - s.start);
        let ttfb_us = s.head_at.map(|h| us(h - s.start));
        self.last_end_us = self.last_end_us.max(end_us);
        let r = &mut self.result;
        *r.outcomes.entry(s.outcome).or_insert(0) += 1;
        if s.late {
            r.late += 1;
        }
        let got_response = s.status != 0;
        let mut vals: [Option<u64>; 6] = [None; 6];
        if got_response {
            vals[TAG_RTT] = Some(rtt_us);
            vals[TAG_TTFB] = ttfb_us;
            vals[TAG_HANDLER] = s.handler_us;
            vals[TAG_OP] = s.op_us;
            vals[TAG_CORRECTED] = s.intended.map(|i| us(s.end.saturating_duration_since(i)));
        }
        vals[TAG_CONNECT] = s.connect_us;
        let total: [Option<&mut Histogram<u64>>; 6] = [
            Some(&mut r.rtt),
            Some(&mut r.ttfb),
            Some(&mut r.connect),
            Some(&mut r.handler),
            Some(&mut r.op),
            r.rtt_corrected.as_mut(),
        ];
        for ((v, h), ivl) in vals.iter().zip(total).zip(self.interval.iter_mut()) {
            if let (Some(v), Some(h)) = (v, h) {
                h.saturating_record(*v);
                ivl.saturating_record(*v);
            }
        }
        let sec = end_us / 1_000_000;
        let ok = s.outcome == Outcome::Success;
        let slot = self.second(sec);
        slot.completed += 1;
        if ok {
            slot.ok += 1;
        }
        if got_response {
            slot.rtt_sum_us += rtt_us;
            slot.rtt_max_us = slot.rtt_max_us.max(rtt_us);
        }

        let Some((_, w)) = self.jtl.as_mut() else {
            return Ok(());
        };
        let row = &mut self.row;
        row.timestamp_ms = (self.epoch_us + start_us) / 1000;
        row.elapsed_ms = ms_round(rtt_us);
        row.response_code.clear();
        row.response_message.clear();
        row.failure_message.clear();
        row.data_type.clear();
        if got_response {
            row.response_code
                .push_str(itoa::Buffer::new().format(s.status));
            let reason = http::StatusCode::from_u16(s.status)
                .ok()
                .and_then(|c| c.canonical_reason())
                .unwrap_or("");
            row.response_message.push_str(reason);
            row.data_type.push_str(if s.text { "text" } else { "bin" });
            if !ok {
                row.failure_message.push_str("HTTP ");
                row.failure_message
                    .push_str(itoa::Buffer::new().format(s.status));
                if !reason.is_empty() {
                    row.failure_message.push(' ');
                    row.failure_message.push_str(reason);
                }
            }
        } else {
            let kind = match s.outcome {
                Outcome::Timeout => "timeout",
                _ => "connection error",
            };
            row.response_code.push_str("Non HTTP response code: ");
            row.response_code.push_str(kind);
            row.response_message.push_str("Non HTTP response message: ");
            let msg = s.error.as_deref().unwrap_or(kind);
            row.response_message.push_str(msg);
            row.failure_message.push_str(msg);
        }
        row.success = ok;
        row.thread_name.clear();
        row.thread_name.push_str("vaccel-bench 1-");
        row.thread_name
            .push_str(itoa::Buffer::new().format(s.vu + 1));
        row.bytes = s.bytes;
        row.sent_bytes = s.sent_bytes;
        row.grp_threads = u64::from(s.active);
        row.all_threads = u64::from(s.active);
        row.latency_ms = ttfb_us.map_or(0, ms_round);
        row.idle_time_ms = 0;
        row.connect_ms = s.connect_us.map_or(0, ms_round);
        row.elapsed_us = Some(rtt_us);
        row.latency_us = ttfb_us;
        row.connect_us = s.connect_us;
        row.handler_us = s.handler_us;
        row.op_us = s.op_us;
        row.outcome = Some(s.outcome);
        row.intended_timestamp_ms = s
            .intended
            .map(|i| (self.epoch_us + us(i.saturating_duration_since(self.t0))) / 1000);
        w.write_row(row)
    }

    fn flush_interval<W: Write>(
        &mut self,
        log: &mut hdrhistogram::serialization::interval_log::IntervalLogWriter<
            '_,
            '_,
            W,
            V2DeflateSerializer,
        >,
    ) -> std::io::Result<()> {
        let start = Duration::from_secs(self.interval_sec);
        for (h, tag) in self.interval.iter_mut().zip(hlog::TAGS) {
            hlog::write_interval(log, h, start, Duration::from_secs(1), tag)?;
            h.reset();
        }
        Ok(())
    }

    fn status_line(&self, planned: Option<Duration>, last: &mut (u64, Instant)) -> String {
        let now = Instant::now();
        let el = now.saturating_duration_since(self.t0);
        let count = self.result.count();
        let rps = (count - last.0) as f64 / now.duration_since(last.1).as_secs_f64().max(1e-3);
        *last = (count, now);
        let ok = self
            .result
            .outcomes
            .get(&Outcome::Success)
            .copied()
            .unwrap_or(0);
        let pct = |q: f64| {
            if self.result.rtt.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{}ms",
                    crate::study::fmt_ms(self.result.rtt.value_at_quantile(q) as f64 / 1000.0)
                )
            }
        };
        let time = match planned {
            Some(p) => format!(
                "{}/{}",
                format_duration(Duration::from_secs(el.as_secs())),
                format_duration(p)
            ),
            None => format_duration(Duration::from_secs(el.as_secs())),
        };
        format!(
            "[{}] {}  threads {}  {} req  {:.1} req/s  ok {:.1}%  p50 {}  p95 {}  errors {}",
            self.result.key.label,
            time,
            self.active.load(Ordering::Relaxed),
            count,
            rps,
            if count == 0 {
                100.0
            } else {
                ok as f64 * 100.0 / count as f64
            },
            pct(0.5),
            pct(0.95),
            count - ok,
        )
    }

    fn run(
        mut self,
        mut rx: mpsc::Receiver<Vec<Sample>>,
        progress: &mut Progress,
        planned: Option<Duration>,
    ) -> Result<(ConfigResult, u64)> {
        let hlog_path = self.hlog_path.clone();
        let file = std::fs::File::create(&hlog_path).map_err(out_err(&hlog_path))?;
        let mut hlog_out = BufWriter::new(file);
        let mut ser = V2DeflateSerializer::new();
        let comment = format!(
            "vaccel-bench {} {}",
            self.result.key.label,
            self.row.url.clone()
        );
        let mut log = hlog::begin(&mut hlog_out, &mut ser, self.start_wall, &comment)
            .map_err(out_err(&hlog_path))?;
        let mut io_error: Option<Error> = None;
        // Poll the channel every few ms rather than wait on it: senders then
        // never have to wake this thread (no futex per request).
        let poll = Duration::from_millis(4);
        let tick = Duration::from_millis(200);
        let mut next_tick = Instant::now() + tick;
        let mut ticks = 0u64;
        let mut last = (0u64, Instant::now());
        let mut open = true;
        while open {
            loop {
                match rx.try_recv() {
                    Ok(batch) => {
                        for s in batch {
                            let sec = us(s.end.saturating_duration_since(self.t0)) / 1_000_000;
                            if sec > self.interval_sec {
                                if let Err(e) = self.flush_interval(&mut log) {
                                    io_error.get_or_insert(out_err(&hlog_path)(e));
                                }
                                self.interval_sec = sec;
                            }
                            if let Err(e) = self.record(&s) {
                                let p = self.jtl.as_ref().map(|j| j.0.clone()).unwrap_or_default();
                                io_error.get_or_insert(Error::Output { path: p, source: e });
                                // Keep counting, stop writing rows.
                                self.jtl = None;
                            }
                        }
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + tick;
                ticks += 1;
                if now >= self.t0 {
                    let sec = (now - self.t0).as_secs();
                    let active = u64::from(self.active.load(Ordering::Relaxed));
                    self.second(sec).threads = active;
                    if sec > self.interval_sec {
                        if let Err(e) = self.flush_interval(&mut log) {
                            io_error.get_or_insert(out_err(&hlog_path)(e));
                        }
                        self.interval_sec = sec;
                    }
                }
                if ticks % 5 == 0 && progress.is_live() {
                    let line = self.status_line(planned, &mut last);
                    progress.status(&line);
                }
            }
            if open {
                std::thread::sleep(poll);
            }
        }
        progress.clear();
        if let Err(e) = self.flush_interval(&mut log) {
            io_error.get_or_insert(out_err(&hlog_path)(e));
        }
        drop(log);
        if let Err(e) = hlog_out.flush() {
            io_error.get_or_insert(out_err(&hlog_path)(e));
        }
        if let Some((path, w)) = self.jtl.take() {
            if let Err(e) = w.finish() {
                io_error.get_or_insert(out_err(&path)(e));
            }
        }
        if let Some(e) = io_error {
            return Err(e);
        }
        // Trim the timeline after the last completion (ticks may run past it).
        let last_sec = self.last_end_us / 1_000_000;
        let keep = (last_sec + 1).max(planned.map_or(0, |p| p.as_secs_f64().ceil() as u64));
        self.result.timeline.truncate(keep as usize);
        Ok((self.result, self.last_end_us))
    }
}
