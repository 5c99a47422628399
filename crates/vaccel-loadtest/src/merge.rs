//! `vaccel bench merge`: combine the results folders of several bench
//! instances that ran the same study at the same time (e.g. the pods of a
//! Kubernetes Job, each driving part of the load) into one results folder,
//! as if one client had sent everything.
//!
//! - **Configurations** must be the same, in the same order (labels, threads,
//!   think time, rate, model): anything else is refused, naming the
//!   instances that differ.
//! - **Histograms** are merged exactly from the `histograms.hlog` files
//!   (HdrHistogram addition); the merged log has one interval per second
//!   and tag, counted from the earliest instance's start.
//! - **JTLs** are merged as streams (one row per input in memory), in
//!   completion-time order (`timeStamp` + `elapsed`: each input is already
//!   in that order, as JMeter and `vaccel bench` write rows when requests
//!   complete). `threadName` gets the instance's name in front
//!   (`0-vaccel-bench 1-3`), as JMeter's distributed mode prefixes the
//!   engine's host, so threads stay distinct.
//! - **Outcomes**, `late` and `dropped` are summed; the **timeline** is
//!   rebuilt from the merged rows, by second since the earliest start (the
//!   active threads of a second are summed over instances).
//! - A configuration starts at the earliest instance's start and lasts until
//!   the latest instance's end. Its **threads** (and open-model rate) are the
//!   sums over the instances: the load the target saw; the label stays.
//! - `summary.json` is recomputed from the merged aggregate; `study.json`
//!   is the first instance's with the merged times and keys; `merge.json`
//!   lists the sources; `report.html` is written unless told not to.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use crate::jtl::read::{Accumulator, JtlRows, ReadError, SecondLatency};
use crate::jtl::write::JtlWriter;
use crate::model::{ConfigKey, ConfigResult, Outcome};
use crate::report::{self, ReportError};
use crate::study::StudyFile;
use crate::summary::Summary;

/// The schema id of `merge.json`.
pub const MERGE_SCHEMA: &str = "vaccel-bench-merge/1";

/// Why results could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Bad arguments (no inputs, output folder not empty, ...).
    #[error("{0}")]
    Usage(String),
    /// The instances did not run the same study.
    #[error("cannot merge: {0}")]
    Mismatch(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A results file is malformed.
    #[error("{}: {why}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A JTL could not be read.
    #[error(transparent)]
    Jtl(#[from] ReadError),
    /// `study.json`, `summary.json` or the report.
    #[error(transparent)]
    Report(#[from] ReportError),
}

/// How to merge.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// Write into a non-empty output folder.
    pub force: bool,
    /// Do not write `report.html`.
    pub no_report: bool,
    /// The command line, recorded in `merge.json`.
    pub command: Vec<String>,
}

/// `merge.json`: where a merged folder came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeFile {
    /// Always [`MERGE_SCHEMA`].
    pub schema: String,
    /// The merge command line.
    pub command: Vec<String>,
    /// The instances' results folders, as given.
    pub sources: Vec<String>,
    /// The names put in front of their thread names.
    pub instance_names: Vec<String>,
    /// Rows written to each configuration's JTL (by label).
    pub rows: BTreeMap<String, u64>,
}

/// What a merge produced.
#[derive(Debug)]
pub struct MergeReport {
    /// The output folder.
    pub dir: PathBuf,
    /// Merged aggregates, in run order.
    pub results: Vec<ConfigResult>,
    /// Their summaries.
    pub summaries: Vec<Summary>,
    /// Rows in the merged JTLs, all configurations.
    pub rows: u64,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> MergeError + '_ {
    move |source| MergeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn same_key(a: &ConfigKey, b: &ConfigKey) -> bool {
    a.label == b.label
        && a.threads == b.threads
        && (a.think_s - b.think_s).abs() < 1e-9
        && match (a.rate, b.rate) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-9,
            (None, None) => true,
            _ => false,
        }
}

fn describe_keys(keys: &[ConfigKey]) -> String {
    let v: Vec<String> = keys
        .iter()
        .map(|k| match k.rate {
            Some(r) => format!("{} ({} conn, {r}/s)", k.label, k.threads),
            None => format!("{} ({} thr, think {}s)", k.label, k.threads, k.think_s),
        })
        .collect();
    format!("[{}]", v.join(", "))
}

/// Instance names: the folders' own names when they are distinct, else `i0`, `i1`, ...
fn instance_names(inputs: &[PathBuf]) -> Vec<String> {
    let names: Vec<String> = inputs
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    let distinct = names
        .iter()
        .all(|n| !n.is_empty() && !n.contains(',') && seen.insert(n.clone()));
    if distinct {
        names
    } else {
        (0..inputs.len()).map(|i| format!("i{i}")).collect()
    }
}

/// Merge the results folders `inputs` into `out` (see the module docs).
pub fn merge(
    inputs: &[PathBuf],
    out: &Path,
    opts: &MergeOptions,
) -> Result<MergeReport, MergeError> {
    if inputs.is_empty() {
        return Err(MergeError::Usage(
            "merge needs at least one results folder".into(),
        ));
    }
    let studies: Vec<StudyFile> = inputs
        .iter()
        .map(|d| report::read_study(d))
        .collect::<Result<_, _>>()?;
    let first = &studies[0];
    for (d, s) in inputs.iter().zip(&studies).skip(1) {
        if s.model != first.model {
            return Err(MergeError::Mismatch(format!(
                "{} ran the {} model but {} the {} model",
                d.display(),
                s.model,
                inputs[0].display(),
                first.model
            )));
        }
        let same = s.configurations.len() == first.configurations.len()
            && s.configurations
                .iter()
                .zip(&first.configurations)
                .all(|(a, b)| same_key(a, b));
        if !same {
            return Err(MergeError::Mismatch(format!(
                "the instances ran different configurations: {} has {} but {} has {}{}",
                inputs[0].display(),
                describe_keys(&first.configurations),
                d.display(),
                describe_keys(&s.configurations),
                if s.interrupted || first.interrupted {
                    " (one of them was interrupted)"
                } else {
                    ""
                }
            )));
        }
    }
    if first.configurations.is_empty() {
        return Err(MergeError::Mismatch(format!(
            "{} has no finished configuration",
            inputs[0].display()
        )));
    }
    prepare_out(inputs, out, opts.force)?;
    let names = instance_names(inputs);
    let tolerance_ms = (first.settings.late_tolerance_s * 1000.0).round().max(0.0) as u64;
    let n = inputs.len();

    let mut results = Vec::new();
    let mut summaries = Vec::new();
    let mut latency = BTreeMap::new();
    let mut rows_by_label = BTreeMap::new();
    let mut total_rows = 0;
    for key in &first.configurations {
        let dirs: Vec<PathBuf> = inputs.iter().map(|d| d.join(&key.label)).collect();
        let sums: Vec<Summary> = dirs
            .iter()
            .map(|d| {
                let p = d.join("summary.json");
                report::read_summary(&p)?.ok_or_else(|| MergeError::Bad {
                    path: p,
                    why: "missing: each configuration folder needs its summary.json".into(),
                })
            })
            .collect::<Result<_, _>>()?;
        let start_ms = sums.iter().map(|s| s.started_ms).min().unwrap_or(0);
        let end_ms = sums
            .iter()
            .map(|s| s.started_ms as f64 + s.duration_s * 1000.0)
            .fold(0.0, f64::max);
        let mut merged_key = key.clone();
        merged_key.threads = key.threads * n;
        merged_key.rate = key.rate.map(|r| r * n as f64);
        let odir = out.join(&key.label);
        std::fs::create_dir_all(&odir).map_err(io_err(&odir))?;

        // JTL: stream merge, rebuilding the timeline on the way.
        let jtls: Vec<PathBuf> = dirs.iter().map(|d| d.join("results.jtl")).collect();
        let mut r;
        if jtls.iter().all(|p| p.is_file()) {
            let mut acc = Accumulator::new(key.label.clone(), start_ms, tolerance_ms);
            let rows = merge_jtls(&jtls, &names, &odir.join("results.jtl"), &mut acc)?;
            rows_by_label.insert(key.label.clone(), rows);
            total_rows += rows;
            let (res, lat): (ConfigResult, Vec<SecondLatency>) = acc.finish();
            latency.insert(key.label.clone(), lat);
            r = res;
        } else {
            if let Some(p) = jtls.iter().find(|p| !p.is_file()) {
                if jtls.iter().any(|p| p.is_file()) {
                    return Err(MergeError::Bad {
                        path: p.clone(),
                        why: "missing, while other instances have their results.jtl (ran with different --no-jtl?)".into(),
                    });
                }
            }
            r = ConfigResult::new(merged_key.clone(), start_ms);
        }
        r.key = merged_key;
        r.started_ms = start_ms;
        r.duration_s = (end_ms - start_ms as f64).max(0.0) / 1000.0;
        r.outcomes.clear();
        for s in &sums {
            for o in Outcome::ALL {
                let c = s.outcome(o);
                if c > 0 {
                    *r.outcomes.entry(o).or_insert(0) += c;
                }
            }
        }
        r.late = sums.iter().map(|s| s.late).sum();
        r.dropped = sums.iter().map(|s| s.dropped).sum();

        // Histograms: exact, from the interval logs.
        let hlogs: Vec<PathBuf> = dirs.iter().map(|d| d.join("histograms.hlog")).collect();
        let totals = merge_hlogs(&hlogs, start_ms, &odir.join("histograms.hlog"), &key.label)?;
        let take = |tag: &str| {
            totals
                .get(tag)
                .cloned()
                .unwrap_or_else(crate::model::histogram)
        };
        r.rtt = take("rtt");
        r.ttfb = take("ttfb");
        r.connect = take("connect");
        r.handler = take("handler");
        r.op = take("op");
        r.rtt_corrected = totals.get("rtt_corrected").cloned();

        let summary = Summary::from_result(&r);
        write_json(&odir.join("summary.json"), &summary)?;
        summaries.push(summary);
        results.push(r);
    }

    let mut study = first.clone();
    study.started_ms = studies.iter().map(|s| s.started_ms).min().unwrap_or(0);
    study.ended_ms = studies
        .iter()
        .map(|s| s.ended_ms)
        .collect::<Option<Vec<u64>>>()
        .and_then(|v| v.into_iter().max());
    study.interrupted = studies.iter().any(|s| s.interrupted);
    study.configurations = results.iter().map(|r| r.key.clone()).collect();
    for k in &mut study.planned {
        k.threads *= n;
        k.rate = k.rate.map(|r| r * n as f64);
    }
    write_json(&out.join("study.json"), &study)?;
    write_json(
        &out.join("merge.json"),
        &MergeFile {
            schema: MERGE_SCHEMA.into(),
            command: opts.command.clone(),
            sources: inputs.iter().map(|p| p.display().to_string()).collect(),
            instance_names: names,
            rows: rows_by_label,
        },
    )?;
    if !opts.no_report {
        let mut meta = report::load(out)?.meta;
        meta.title = format!("{} ({} instances merged)", meta.title, n);
        meta.notes.push(format!(
            "Merged from {} instances: {}. Threads and rates are the sums over the instances.",
            n,
            inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        meta.latency = latency;
        let page = report::render(&results, &meta);
        let p = out.join("report.html");
        std::fs::write(&p, page).map_err(io_err(&p))?;
    }
    Ok(MergeReport {
        dir: out.to_path_buf(),
        results,
        summaries,
        rows: total_rows,
    })
}

fn prepare_out(inputs: &[PathBuf], out: &Path, force: bool) -> Result<(), MergeError> {
    let canon = |p: &Path| p.canonicalize().ok();
    if let Some(o) = canon(out) {
        if inputs.iter().any(|i| canon(i).as_ref() == Some(&o)) {
            return Err(MergeError::Usage(format!(
                "the output folder {} is one of the inputs",
                out.display()
            )));
        }
    }
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() && !force {
                return Err(MergeError::Usage(format!(
                    "output folder {} exists and is not empty (choose another -o, or --force)",
                    out.display()
                )));
            }
        }
        Err(_) if out.exists() => {
            return Err(MergeError::Usage(format!(
                "output {} is not a folder",
                out.display()
            )));
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(out).map_err(io_err(out))
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<(), MergeError> {
    let data = serde_json::to_vec_pretty(v).expect("serialisable");
    std::fs::write(path, data).map_err(io_err(path))
}

/// Completion time of a row, µs since the epoch.
fn end_us(r: &crate::jtl::Row) -> u64 {
    r.timestamp_ms
        .saturating_mul(1000)
        .saturating_add(r.elapsed_us.unwrap_or(r.elapsed_ms.saturating_mul(1000)))
}

/// K-way merge of JTL files by completion time into `out`, feeding `acc`.
fn merge_jtls(
    inputs: &[PathBuf],
    names: &[String],
    out: &Path,
    acc: &mut Accumulator,
) -> Result<u64, MergeError> {
    let mut readers: Vec<JtlRows> = inputs
        .iter()
        .map(|p| JtlRows::open(p))
        .collect::<Result<_, _>>()?;
    let f = std::fs::File::create(out).map_err(io_err(out))?;
    let mut w = JtlWriter::new(BufWriter::with_capacity(256 * 1024, f)).map_err(io_err(out))?;
    let mut heads: Vec<Option<crate::jtl::Row>> = Vec::with_capacity(readers.len());
    let mut heap = BinaryHeap::new();
    for (i, r) in readers.iter_mut().enumerate() {
        let row = r.next_row()?.map(|(_, row)| row);
        if let Some(row) = &row {
            heap.push(Reverse((end_us(row), i)));
        }
        heads.push(row);
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let Some(mut row) = heads[i].take() else {
            continue;
        };
        acc.add_from(&row, i);
        row.thread_name = format!("{}-{}", names[i], row.thread_name);
        w.write_row(&row).map_err(io_err(out))?;
        if let Some((_, next)) = readers[i].next_row()? {
            heap.push(Reverse((end_us(&next), i)));
            heads[i] = Some(next);
        }
    }
    let rows = w.rows();
    let mut inner = w.finish().map_err(io_err(out))?;
    inner.flush().map_err(io_err(out))?;
    Ok(rows)
}

/// One interval of an hlog: absolute start (ms since the epoch), tag, histogram.
type Interval = (u64, String, Histogram<u64>);

fn read_intervals(path: &Path) -> Result<Vec<Interval>, MergeError> {
    let data = std::fs::read(path).map_err(io_err(path))?;
    let bad = |why: String| MergeError::Bad {
        path: path.to_path_buf(),
        why,
    };
    let mut base: Option<Duration> = None;
    let mut out = Vec::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(&data) {
        match entry.map_err(|e| bad(format!("not an HdrHistogram interval log: {e:?}")))? {
            LogEntry::BaseTime(t) => base = Some(t),
            LogEntry::StartTime(t) => {
                base.get_or_insert(t);
            }
            LogEntry::Interval(ivl) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(ivl.encoded_histogram())
                    .map_err(|e| bad(format!("interval histogram: {e}")))?;
                let h: Histogram<u64> = de
                    .deserialize(&mut io::Cursor::new(raw))
                    .map_err(|e| bad(format!("interval histogram: {e:?}")))?;
                let abs = base.unwrap_or_default() + ivl.start_timestamp();
                let tag = ivl
                    .tag()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default();
                out.push((abs.as_millis() as u64, tag, h));
            }
        }
    }
    Ok(out)
}

/// Merge the interval logs: intervals summed per (second since `start_ms`,
/// tag) into `out`; returns the totals per tag.
fn merge_hlogs(
    inputs: &[PathBuf],
    start_ms: u64,
    out: &Path,
    label: &str,
) -> Result<BTreeMap<String, Histogram<u64>>, MergeError> {
    let mut per_sec: BTreeMap<(u64, String), Histogram<u64>> = BTreeMap::new();
    let mut totals: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let add = |into: &mut Histogram<u64>, h: &Histogram<u64>, path: &Path| {
        into.add(h).map_err(|e| MergeError::Bad {
            path: path.to_path_buf(),
            why: format!("histogram out of range: {e:?}"),
        })
    };
    for p in inputs {
        if !p.is_file() {
            return Err(MergeError::Bad {
                path: p.clone(),
                why: "missing: each configuration folder needs its histograms.hlog".into(),
            });
        }
        for (abs_ms, tag, h) in read_intervals(p)? {
            let sec = abs_ms.saturating_sub(start_ms) / 1000;
            let slot = per_sec
                .entry((sec, tag.clone()))
                .or_insert_with(crate::model::histogram);
            add(slot, &h, p)?;
            let total = totals.entry(tag).or_insert_with(crate::model::histogram);
            add(total, &h, p)?;
        }
    }
    let f = std::fs::File::create(out).map_err(io_err(out))?;
    let mut bw = BufWriter::new(f);
    let mut ser = V2DeflateSerializer::new();
    {
        let start = UNIX_EPOCH + Duration::from_millis(start_ms);
        let mut log = crate::hlog::begin(
            &mut bw,
            &mut ser,
            start,
            &format!("vaccel-bench {label} (merged)"),
        )
        .map_err(io_err(out))?;
        // Seconds in order, tags in the usual order within a second.
        let mut secs: Vec<u64> = per_sec.keys().map(|k| k.0).collect();
        secs.dedup();
        for sec in secs {
            let mut tags: Vec<&String> = per_sec
                .range((sec, String::new())..(sec + 1, String::new()))
                .map(|((_, t), _)| t)
                .collect();
            tags.sort_by_key(|t| {
                crate::hlog::TAGS
                    .iter()
                    .position(|x| x == t)
                    .unwrap_or(usize::MAX)
            });
            for tag in tags {
                let h = &per_sec[&(sec, tag.clone())];
                crate::hlog::write_interval(
                    &mut log,
                    h,
                    Duration::from_secs(sec),
                    Duration::from_secs(1),
                    tag,
                )
                .map_err(io_err(out))?;
            }
        }
    }
    bw.flush().map_err(io_err(out))?;
    Ok(totals)
}
