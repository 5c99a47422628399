//! Streaming JTL reader: ours, or one written by JMeter, back into
//! [`ConfigResult`]s.
//!
//! Columns are found **by header name**, so JMeter files with optional
//! columns switched off (`jmeter.save.saveservice.*=false`), extra ones
//! switched on, or another order all read. A file without a header line
//! (`jmeter.save.saveservice.print_field_names=false`) is read in the
//! default column order: JMeter 5's 17 columns, followed by ours when a row
//! has 25 fields. Fields follow RFC 4180 (quoted fields may hold commas,
//! quotes and newlines). Only `timeStamp` (epoch milliseconds, JMeter's
//! default format) and `elapsed` are required.
//!
//! # Grouping into configurations
//!
//! - **Our files** (a `config` column): one configuration per `config`
//!   value, in order of first appearance.
//! - **JMeter files**: one configuration per thread group and sampler label.
//!   The thread group is `threadName` without JMeter's ` <group>-<thread>`
//!   suffix (`Thread Group 1-3` → `Thread Group`). It is named after the
//!   file's stem when the file holds a single group (a study run as one
//!   JMeter run per configuration, `-l t4-think1s.jtl`), else after the
//!   thread group, or `group / label` when a group has several labels.
//!
//! A configuration's threads are the largest `grpThreads` seen (JMeter's
//! active threads of the group; from its name, `t4-…`, when the column is
//! missing); its think time and rate are read from its name when it
//! follows our labels (`t4-think1s`, `think500ms`, `rate50`), else 0 and
//! none. A results folder's `study.json` overrides all three.
//!
//! # What is exact
//!
//! Our files carry µs columns, so the histograms rebuilt from them are the
//! ones the run recorded. JMeter's give milliseconds (multiplied by 1000).
//! Round trip, time to first byte, handler and op times are recorded for
//! requests that got an HTTP status, connect times whenever one was
//! measured (`connectUs`; for JMeter files, a non-zero `Connect`), as the
//! engine does. The per-second timeline counts a request in the second of
//! its completion (`timeStamp` + `elapsed`, `timeStamp` being the start as
//! JMeter writes it by default), relative to the configuration's start: the
//! one given in [`ReadOptions::starts`] (from `summary.json`), else the
//! earliest `timeStamp` of the configuration. The open model's corrected
//! latency and its late count come from the millisecond timestamps, so
//! they are approximate; `vaccel bench report` on a results folder takes
//! them, and `dropped`, from `histograms.hlog` and `summary.json` instead.
//!
//! # Outcomes
//!
//! Our `outcome` column when present. Otherwise: a numeric `responseCode`
//! is an HTTP status ([`Outcome::of_status`]), except that JMeter's
//! `success` wins where it disagrees (a 2xx that an assertion failed is
//! `other_status`, a status an assertion accepted is a success). A
//! non-HTTP failure (`Non HTTP response code: java.net.SocketTimeoutException`)
//! is a [`Outcome::Timeout`] when the code or message speaks of a time-out,
//! and a [`Outcome::ConnectionError`] otherwise (refused, reset, no
//! response, unknown host, ...).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::{EXTRA_COLUMNS, JMETER_COLUMNS, Row, parse_outcome};
use crate::model::{ConfigKey, ConfigResult, Outcome, Second};

/// Why a JTL could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The content is not a JTL, or a row is malformed.
    #[error("{}:{line}: {why}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// 1-based line of the record (of its first line, for a quoted multi-line one).
        line: u64,
        /// What is wrong.
        why: String,
    },
}

/// Who wrote a file, as far as its columns tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JtlKind {
    /// `vaccel bench`: the µs columns and `config` are there.
    Ours,
    /// JMeter (or anything else with JMeter's columns), with a header line.
    JMeter,
    /// JMeter without a header line, read in the default column order.
    JMeterNoHeader,
}

/// Where each known column is, by header name.
#[derive(Debug, Clone, Default)]
struct Columns {
    jmeter: [Option<usize>; 17],
    extra: [Option<usize>; 8],
}

impl Columns {
    fn default_order(fields: usize) -> Columns {
        let mut c = Columns::default();
        for (i, slot) in c.jmeter.iter_mut().enumerate() {
            *slot = (i < fields).then_some(i);
        }
        if fields >= JMETER_COLUMNS.len() + EXTRA_COLUMNS.len() {
            for (i, slot) in c.extra.iter_mut().enumerate() {
                *slot = Some(JMETER_COLUMNS.len() + i);
            }
        }
        c
    }

    fn from_header(fields: &[String]) -> Columns {
        let mut c = Columns::default();
        for (i, name) in fields.iter().enumerate() {
            let name = name.trim();
            if let Some(k) = JMETER_COLUMNS.iter().position(|n| *n == name) {
                c.jmeter[k].get_or_insert(i);
            } else if let Some(k) = EXTRA_COLUMNS.iter().position(|n| *n == name) {
                c.extra[k].get_or_insert(i);
            }
        }
        c
    }

    fn j(&self, name: &str) -> Option<usize> {
        let k = JMETER_COLUMNS.iter().position(|n| *n == name)?;
        self.jmeter[k]
    }

    fn x(&self, name: &str) -> Option<usize> {
        let k = EXTRA_COLUMNS.iter().position(|n| *n == name)?;
        self.extra[k]
    }

    fn ours(&self) -> bool {
        self.x("elapsedUs").is_some() && self.x("config").is_some()
    }
}

/// A streaming reader of the rows of one JTL file.
pub struct JtlRows {
    path: PathBuf,
    csv: csv::Reader<Box<dyn Read>>,
    cols: Columns,
    kind: JtlKind,
    record: csv::ByteRecord,
    /// A first record that was a row, not a header.
    pending: Option<csv::ByteRecord>,
    line: u64,
    done: bool,
}

impl std::fmt::Debug for JtlRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JtlRows")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

fn is_epoch_ms(field: &[u8]) -> bool {
    !field.is_empty() && field.len() <= 19 && field.iter().all(u8::is_ascii_digit)
}

impl JtlRows {
    /// Open `path` and read its header (or detect that it has none).
    pub fn open(path: &Path) -> Result<JtlRows, ReadError> {
        let file = File::open(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        JtlRows::from_reader(path, Box::new(BufReader::with_capacity(256 * 1024, file)))
    }

    /// Read a JTL from `reader`; `path` names it in errors.
    pub fn from_reader(path: &Path, reader: Box<dyn Read>) -> Result<JtlRows, ReadError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let bad = |line: u64, why: String| ReadError::Bad {
            path: path.to_path_buf(),
            line,
            why,
        };
        let mut first = csv::ByteRecord::new();
        let got = csv
            .read_byte_record(&mut first)
            .map_err(|e| csv_error(path, e))?;
        if !got {
            return Err(bad(1, "empty file: no header line and no rows".into()));
        }
        let line = first.position().map_or(1, |p| p.line());
        let (cols, kind, pending) = if is_epoch_ms(first.get(0).unwrap_or_default()) {
            let cols = Columns::default_order(first.len());
            if first.len() < 2 {
                return Err(bad(
                    line,
                    "a row without a header needs at least timeStamp and elapsed".into(),
                ));
            }
            (cols, JtlKind::JMeterNoHeader, Some(first))
        } else {
            let names: Vec<String> = first
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            let cols = Columns::from_header(&names);
            let missing: Vec<&str> = ["timeStamp", "elapsed"]
                .into_iter()
                .filter(|n| cols.j(n).is_none())
                .collect();
            if !missing.is_empty() {
                let shown: String = names.join(",").chars().take(120).collect();
                let why = if cols.jmeter.iter().chain(&cols.extra).all(Option::is_none) {
                    format!(
                        "not a JTL (JMeter CSV) file: the first line is neither a header naming \
                         timeStamp and elapsed nor a row starting with an epoch-ms timestamp \
                         (it reads: {shown:?})"
                    )
                } else {
                    format!(
                        "the header lacks the required column(s) {} (it has: {shown})",
                        missing.join(", ")
                    )
                };
                return Err(bad(line, why));
            }
            let kind = if cols.ours() {
                JtlKind::Ours
            } else {
                JtlKind::JMeter
            };
            (cols, kind, None)
        };
        Ok(JtlRows {
            path: path.to_path_buf(),
            csv,
            cols,
            kind,
            record: csv::ByteRecord::new(),
            pending,
            line,
            done: false,
        })
    }

    /// Who wrote the file.
    pub fn kind(&self) -> JtlKind {
        self.kind
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file has our columns (µs times, outcome, config).
    pub fn has_our_columns(&self) -> bool {
        self.cols.ours()
    }

    /// The next row and its line number, `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<(u64, Row)>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let record = match self.pending.take() {
            Some(r) => r,
            None => {
                let got = self
                    .csv
                    .read_byte_record(&mut self.record)
                    .map_err(|e| csv_error(&self.path, e))?;
                if !got {
                    self.done = true;
                    return Ok(None);
                }
                std::mem::take(&mut self.record)
            }
        };
        self.line = record.position().map_or(self.line + 1, |p| p.line());
        // A blank line (a single empty field) is skipped, as JMeter does.
        if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
            self.record = record;
            return self.next_row();
        }
        let row = parse_row(&record, &self.cols).map_err(|why| ReadError::Bad {
            path: self.path.clone(),
            line: self.line,
            why,
        })?;
        self.record = record;
        Ok(Some((self.line, row)))
    }
}

fn csv_error(path: &Path, e: csv::Error) -> ReadError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => ReadError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => ReadError::Bad {
            path: path.to_path_buf(),
            line,
            why: format!("not valid CSV: {other:?}"),
        },
    }
}

fn text(rec: &csv::ByteRecord, i: Option<usize>) -> String {
    i.and_then(|i| rec.get(i))
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

fn number(rec: &csv::ByteRecord, i: Option<usize>, name: &str) -> Result<Option<u64>, String> {
    let Some(b) = i.and_then(|i| rec.get(i)) else {
        return Ok(None);
    };
    let s = std::str::from_utf8(b).unwrap_or("").trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Some(n));
    }
    // JMeter writes -1 for some unknown values; a negative time is none.
    if s.parse::<i64>().is_ok() {
        return Ok(None);
    }
    Err(format!(
        "{name} is {:?}, not a whole number",
        String::from_utf8_lossy(b)
    ))
}

/// One record into a [`Row`] (missing columns are left empty / `None`).
fn parse_row(rec: &csv::ByteRecord, c: &Columns) -> Result<Row, String> {
    let ts_raw = text(rec, c.j("timeStamp"));
    let timestamp_ms = match number(rec, c.j("timeStamp"), "timeStamp") {
        Ok(Some(v)) => v,
        Ok(None) => return Err("timeStamp is empty".into()),
        Err(_) => {
            return Err(format!(
                "timeStamp is {ts_raw:?}, not epoch milliseconds (JMeter writes those by default; \
                 set jmeter.save.saveservice.timestamp_format=ms if it was changed)"
            ));
        }
    };
    let elapsed_ms =
        number(rec, c.j("elapsed"), "elapsed")?.ok_or_else(|| "elapsed is empty".to_string())?;
    let code = text(rec, c.j("responseCode"));
    let success = match c.j("success").and_then(|i| rec.get(i)) {
        Some(b) if b.eq_ignore_ascii_case(b"true") => true,
        Some(b) if b.eq_ignore_ascii_case(b"false") => false,
        Some(b) if !b.is_empty() => {
            return Err(format!(
                "success is {:?}, not true or false",
                String::from_utf8_lossy(b)
            ));
        }
        // No success column: a 2xx status is a success.
        _ => code
            .trim()
            .parse::<u16>()
            .is_ok_and(|s| (200..300).contains(&s)),
    };
    let outcome = match c.x("outcome").and_then(|i| rec.get(i)) {
        Some(b) if !b.is_empty() => {
            let s = String::from_utf8_lossy(b);
            Some(parse_outcome(&s).ok_or_else(|| {
                format!(
                    "outcome is {s:?}, not one of {}",
                    Outcome::ALL.map(Outcome::as_str).join(", ")
                )
            })?)
        }
        _ => None,
    };
    Ok(Row {
        timestamp_ms,
        elapsed_ms,
        label: text(rec, c.j("label")),
        response_code: code,
        response_message: text(rec, c.j("responseMessage")),
        thread_name: text(rec, c.j("threadName")),
        data_type: text(rec, c.j("dataType")),
        success,
        failure_message: text(rec, c.j("failureMessage")),
        bytes: number(rec, c.j("bytes"), "bytes")?.unwrap_or(0),
        sent_bytes: number(rec, c.j("sentBytes"), "sentBytes")?.unwrap_or(0),
        grp_threads: number(rec, c.j("grpThreads"), "grpThreads")?.unwrap_or(0),
        all_threads: number(rec, c.j("allThreads"), "allThreads")?.unwrap_or(0),
        url: text(rec, c.j("URL")),
        latency_ms: number(rec, c.j("Latency"), "Latency")?.unwrap_or(0),
        idle_time_ms: number(rec, c.j("IdleTime"), "IdleTime")?.unwrap_or(0),
        connect_ms: number(rec, c.j("Connect"), "Connect")?.unwrap_or(0),
        elapsed_us: number(rec, c.x("elapsedUs"), "elapsedUs")?,
        latency_us: number(rec, c.x("latencyUs"), "latencyUs")?,
        connect_us: number(rec, c.x("connectUs"), "connectUs")?,
        handler_us: number(rec, c.x("handlerUs"), "handlerUs")?,
        op_us: number(rec, c.x("opUs"), "opUs")?,
        outcome,
        config: text(rec, c.x("config")),
        intended_timestamp_ms: number(rec, c.x("intendedTimeStamp"), "intendedTimeStamp")?,
    })
}

/// The HTTP status of a row, when it got one.
pub fn status_of(row: &Row) -> Option<u16> {
    row.response_code
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|s| (100..=999).contains(s))
}

/// How a row ended: its `outcome` cell, else from `responseCode`,
/// `success`, `responseMessage` and `failureMessage` (see the module docs).
pub fn outcome_of(row: &Row) -> Outcome {
    if let Some(o) = row.outcome {
        return o;
    }
    if let Some(status) = status_of(row) {
        let by_status = Outcome::of_status(status);
        return match (by_status, row.success) {
            (Outcome::Success, false) => Outcome::OtherStatus,
            (_, true) => Outcome::Success,
            (o, false) => o,
        };
    }
    if row.success {
        return Outcome::Success;
    }
    let all = format!(
        "{} {} {}",
        row.response_code, row.response_message, row.failure_message
    )
    .to_ascii_lowercase();
    if ["timeout", "timed out", "time out"]
        .iter()
        .any(|w| all.contains(w))
    {
        Outcome::Timeout
    } else {
        Outcome::ConnectionError
    }
}

/// Percentiles of the round-trip times of the requests that completed in
/// one second of a configuration (requests that got an HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecondLatency {
    /// Seconds since the start of the configuration (as [`Second::t`]).
    pub t: u64,
    /// Median, µs (2 significant digits).
    pub p50_us: u64,
    /// 95th percentile, µs (2 significant digits).
    pub p95_us: u64,
    /// Largest, µs (exact).
    pub max_us: u64,
}

/// What to know about the configurations before reading.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Start of each configuration (by label), Unix epoch ms, as in
    /// `summary.json`; the timeline is counted from it. A configuration
    /// not listed starts at its earliest `timeStamp` (the file is then
    /// read twice).
    pub starts: BTreeMap<String, u64>,
    /// Open model: a request that left more than this after its intended
    /// time is late (the engine's default is 10 ms).
    pub late_tolerance_ms: u64,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            starts: BTreeMap::new(),
            late_tolerance_ms: 10,
        }
    }
}

/// Everything read from one JTL file.
#[derive(Debug)]
pub struct JtlData {
    /// The file.
    pub path: PathBuf,
    /// Who wrote it.
    pub kind: JtlKind,
    /// Rows read.
    pub rows: u64,
    /// One aggregate per configuration, in order of first appearance.
    pub results: Vec<ConfigResult>,
    /// Per configuration (by label): round-trip percentiles per second.
    pub latency: BTreeMap<String, Vec<SecondLatency>>,
    /// The `URL` of the first row, when there was one.
    pub url: Option<String>,
    /// The sampler `label` of the first row.
    pub request_label: Option<String>,
}

/// Read a JTL file into aggregates (see the module docs for the grouping).
///
/// The file is read twice unless it is ours and `opts.starts` is given: a
/// first pass names the groups and finds their earliest start.
pub fn read_file(path: &Path, opts: &ReadOptions) -> Result<JtlData, ReadError> {
    let mut rows = JtlRows::open(path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "jtl".into());
    let mut starts = opts.starts.clone();
    let mut names: Option<Vec<String>> = None;
    if rows.kind() != JtlKind::Ours || opts.starts.is_empty() {
        let mut scan = JtlRows::open(path)?;
        let mut groups = Groups::new(stem.clone());
        let mut earliest: Vec<u64> = Vec::new();
        while let Some((_, row)) = scan.next_row()? {
            let g = groups.index(&row);
            if g == earliest.len() {
                earliest.push(u64::MAX);
            }
            earliest[g] = earliest[g].min(row.timestamp_ms);
        }
        let labels = groups.labels();
        for (label, t) in labels.iter().zip(earliest) {
            starts.entry(label.clone()).or_insert(t);
        }
        names = Some(labels);
    }
    let mut groups = Groups::new(stem);
    let mut acc: Vec<Accumulator> = Vec::new();
    let (mut n, mut url, mut request_label) = (0u64, None, None);
    while let Some((_, row)) = rows.next_row()? {
        n += 1;
        if url.is_none() && !row.url.is_empty() {
            url = Some(row.url.clone());
        }
        if request_label.is_none() && !row.label.is_empty() {
            request_label = Some(row.label.clone());
        }
        let g = groups.index(&row);
        if g == acc.len() {
            let label = match &names {
                Some(names) => names[g].clone(),
                None if row.config.is_empty() => groups.stem.clone(),
                None => row.config.clone(),
            };
            let start = starts.get(&label).copied().unwrap_or(row.timestamp_ms);
            acc.push(Accumulator::new(label, start, opts.late_tolerance_ms));
        }
        acc[g].add(&row);
    }
    let mut latency = BTreeMap::new();
    let mut results = Vec::new();
    for a in acc {
        let (r, l) = a.finish();
        latency.insert(r.key.label.clone(), l);
        results.push(r);
    }
    Ok(JtlData {
        path: path.to_path_buf(),
        kind: rows.kind(),
        rows: n,
        results,
        latency,
        url,
        request_label,
    })
}

/// Assigns rows to groups (configurations) and names them.
#[derive(Debug)]
struct Groups {
    stem: String,
    /// (config, thread group, label) of each group, in order of appearance.
    keys: Vec<(String, String, String)>,
    index: BTreeMap<(String, String, String), usize>,
}

/// `Thread Group 1-3` → `Thread Group`; `vaccel-bench 1-12` → `vaccel-bench`.
pub fn thread_group(thread_name: &str) -> &str {
    let t = thread_name.trim_end();
    if let Some((head, tail)) = t.rsplit_once(' ') {
        if let Some((a, b)) = tail.split_once('-') {
            if !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
            {
                return head.trim_end();
            }
        }
    }
    t
}

impl Groups {
    fn new(stem: String) -> Groups {
        Groups {
            stem,
            keys: Vec::new(),
            index: BTreeMap::new(),
        }
    }

    fn index(&mut self, row: &Row) -> usize {
        let key = if !row.config.is_empty() {
            (row.config.clone(), String::new(), String::new())
        } else {
            (
                String::new(),
                thread_group(&row.thread_name).to_string(),
                row.label.clone(),
            )
        };
        if let Some(i) = self.index.get(&key) {
            return *i;
        }
        let i = self.keys.len();
        self.keys.push(key.clone());
        self.index.insert(key, i);
        i
    }

    /// Final names, by group index.
    fn labels(&self) -> Vec<String> {
        let jmeter: Vec<&(String, String, String)> =
            self.keys.iter().filter(|k| k.0.is_empty()).collect();
        let mut per_group: BTreeMap<&str, usize> = BTreeMap::new();
        for k in &jmeter {
            *per_group.entry(k.1.as_str()).or_insert(0) += 1;
        }
        self.keys
            .iter()
            .map(|(config, group, label)| {
                if !config.is_empty() {
                    config.clone()
                } else if jmeter.len() == 1 && !self.stem.is_empty() {
                    self.stem.clone()
                } else if per_group.get(group.as_str()).copied().unwrap_or(0) > 1 {
                    format!("{group} / {label}")
                } else if group.is_empty() {
                    label.clone()
                } else {
                    group.clone()
                }
            })
            .collect()
    }
}

/// Threads, think time and rate from a label such as `t4-think1s`,
/// `t8-rate50`, `think500ms` (`None` for what it does not say).
pub fn parse_label(label: &str) -> (Option<usize>, Option<f64>, Option<f64>) {
    let mut threads = None;
    let mut think = None;
    let mut rate = None;
    for part in label.split(['-', '_', ' ', '/']) {
        let p = part.trim().to_ascii_lowercase();
        if let Some(n) = p.strip_prefix("think") {
            if let Ok(d) = crate::spec::parse_duration(n) {
                think = Some(d.as_secs_f64());
            }
        } else if let Some(n) = p.strip_prefix("rate") {
            if let Ok(r) = n.parse::<f64>() {
                rate = Some(r);
            }
        } else if let Some(n) = p.strip_prefix('t') {
            if let Ok(t) = n.parse::<usize>() {
                threads = Some(t);
            }
        } else if let Some(n) = p.strip_suffix("threads") {
            if let Ok(t) = n.parse::<usize>() {
                threads = Some(t);
            }
        }
    }
    (threads, think, rate)
}

/// Builds one [`ConfigResult`] from rows, as the engine would have.
#[derive(Debug)]
pub(crate) struct Accumulator {
    result: ConfigResult,
    start_ms: u64,
    late_tolerance_ms: u64,
    first_ts: u64,
    last_end_us: u64,
    max_grp_threads: u64,
    seconds: Vec<Second>,
    lat: Vec<Option<Histogram<u32>>>,
    /// Per second, per instance (merge): the largest `grpThreads`.
    threads: Vec<Vec<u64>>,
    corrected: Option<Histogram<u64>>,
}

impl Accumulator {
    pub(crate) fn new(label: String, start_ms: u64, late_tolerance_ms: u64) -> Accumulator {
        let (threads, think, rate) = parse_label(&label);
        let key = ConfigKey {
            label,
            threads: threads.unwrap_or(0),
            think_s: think.unwrap_or(0.0),
            rate,
        };
        Accumulator {
            result: ConfigResult::new(key, start_ms),
            start_ms,
            late_tolerance_ms,
            first_ts: u64::MAX,
            last_end_us: 0,
            max_grp_threads: 0,
            seconds: Vec::new(),
            lat: Vec::new(),
            threads: Vec::new(),
            corrected: None,
        }
    }

    /// Count one row.
    pub(crate) fn add(&mut self, row: &Row) {
        self.add_from(row, 0);
    }

    /// Count one row of instance `instance` (a merge adds up the instances'
    /// active threads per second).
    pub(crate) fn add_from(&mut self, row: &Row, instance: usize) {
        let r = &mut self.result;
        let outcome = outcome_of(row);
        *r.outcomes.entry(outcome).or_insert(0) += 1;
        self.first_ts = self.first_ts.min(row.timestamp_ms);
        self.max_grp_threads = self.max_grp_threads.max(row.grp_threads);
        let rtt_us = row
            .elapsed_us
            .unwrap_or(row.elapsed_ms.saturating_mul(1000));
        let got_response = status_of(row).is_some();
        let ours = row.elapsed_us.is_some();
        if got_response {
            r.rtt.saturating_record(rtt_us);
            // JMeter's Latency is 0 when it was not measured (or the column is off).
            let ttfb = if ours {
                row.latency_us
            } else {
                Some(row.latency_ms.saturating_mul(1000)).filter(|v| *v > 0)
            };
            if let Some(v) = ttfb {
                r.ttfb.saturating_record(v);
            }
            if let Some(v) = row.handler_us {
                r.handler.saturating_record(v);
            }
            if let Some(v) = row.op_us {
                r.op.saturating_record(v);
            }
        }
        let connect = if ours {
            row.connect_us
        } else {
            (row.connect_ms > 0).then(|| row.connect_ms.saturating_mul(1000))
        };
        if let Some(v) = connect {
            r.connect.saturating_record(v);
        }
        let start_us = row
            .timestamp_ms
            .saturating_sub(self.start_ms)
            .saturating_mul(1000);
        let end_us = start_us.saturating_add(rtt_us);
        self.last_end_us = self.last_end_us.max(end_us);
        if let Some(intended) = row.intended_timestamp_ms {
            if row.timestamp_ms.saturating_sub(intended) > self.late_tolerance_ms {
                r.late += 1;
            }
            if got_response {
                let end_abs_us = row.timestamp_ms.saturating_mul(1000).saturating_add(rtt_us);
                let c = end_abs_us.saturating_sub(intended.saturating_mul(1000));
                self.corrected
                    .get_or_insert_with(crate::model::histogram)
                    .saturating_record(c);
            }
        }
        let sec = (end_us / 1_000_000) as usize;
        // A corrupt timestamp far in the future must not allocate years of seconds.
        if sec > 31 * 24 * 3600 {
            return;
        }
        while self.seconds.len() <= sec {
            let t = self.seconds.len() as u64;
            self.seconds.push(Second {
                t,
                ..Second::default()
            });
            self.lat.push(None);
            self.threads.push(Vec::new());
        }
        let s = &mut self.seconds[sec];
        s.completed += 1;
        if outcome == Outcome::Success {
            s.ok += 1;
        }
        let th = &mut self.threads[sec];
        if th.len() <= instance {
            th.resize(instance + 1, 0);
        }
        th[instance] = th[instance].max(row.grp_threads);
        if got_response {
            s.rtt_sum_us += rtt_us;
            s.rtt_max_us = s.rtt_max_us.max(rtt_us);
            self.lat[sec]
                .get_or_insert_with(|| {
                    Histogram::new_with_bounds(1, crate::model::MAX_TRACKABLE_US, 2)
                        .expect("valid histogram bounds")
                })
                .saturating_record(rtt_us);
        }
    }

    /// The aggregate and its per-second latency percentiles.
    pub(crate) fn finish(mut self) -> (ConfigResult, Vec<SecondLatency>) {
        let r = &mut self.result;
        if self.max_grp_threads > 0 {
            r.key.threads = self.max_grp_threads as usize;
        } else if r.key.threads == 0 {
            r.key.threads = 1;
        }
        r.rtt_corrected = self.corrected;
        r.duration_s = self.last_end_us as f64 / 1e6;
        r.timeline = self.seconds;
        for (s, th) in r.timeline.iter_mut().zip(&self.threads) {
            s.threads = th.iter().sum();
        }
        let latency = self
            .lat
            .iter()
            .enumerate()
            .filter_map(|(t, h)| {
                let h = h.as_ref()?;
                let max = r.timeline[t].rtt_max_us;
                // Bucket upper bounds may lie above the exact maximum.
                Some(SecondLatency {
                    t: t as u64,
                    p50_us: h.value_at_quantile(0.5).min(max),
                    p95_us: h.value_at_quantile(0.95).min(max),
                    max_us: max,
                })
            })
            .collect();
        (self.result, latency)
    }
}
