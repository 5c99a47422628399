//! The HTML report of a study: one self-contained file (inline CSS, charts
//! as inline SVG drawn with plotters, no script, nothing fetched), readable
//! offline and attachable to a paper's artefacts.
//!
//! Sections: overview cards; a summary table per configuration (count,
//! success rate, throughput, mean, median, p90/p95/p99/p99.9, max, outcome
//! counts) and one for handler and ML (op) times; scaling charts (success
//! rate, mean and median RTT, handler and op times, throughput vs threads,
//! one line per think time; vs rate per connection count in the open
//! model); distributions (box-and-whisker per configuration and percentile
//! curves, for RTT, handler and op time); per configuration, a histogram of
//! the three times, latency (p50/p95/max) per second and throughput per
//! second.
//!
//! [`render`] draws aggregates; [`load`] reads them from a results folder
//! (`study.json`, per configuration `results.jtl`, `summary.json`,
//! `histograms.hlog`), a folder of JMeter `.jtl` files, or one JTL file;
//! [`write_report`] does both.

mod charts;
mod html;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::jtl::read::{self, JtlKind, ReadError, ReadOptions, SecondLatency};
use crate::model::{ConfigResult, Outcome};
use crate::study::StudyFile;
use crate::summary::Summary;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A JTL could not be read.
    #[error(transparent)]
    Jtl(#[from] ReadError),
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A results file is not what it should be.
    #[error("{}: {why}", path.display())]
    Bad {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// What the report says besides the aggregates.
#[derive(Debug, Clone, Default)]
pub struct ReportMeta {
    /// Page title.
    pub title: String,
    /// Where the data came from (a folder or a file), shown under the title.
    pub source: String,
    /// The target URL.
    pub url: Option<String>,
    /// The command line of the run.
    pub command: Option<String>,
    /// `closed` or `open`.
    pub model: Option<String>,
    /// Start of the study, Unix epoch ms.
    pub started_ms: Option<u64>,
    /// End of the study, Unix epoch ms.
    pub ended_ms: Option<u64>,
    /// Remarks listed at the end (how the data was read, what is approximate).
    pub notes: Vec<String>,
    /// Per configuration label: round-trip percentiles per second. Without
    /// them the latency-over-time chart shows the mean and max per second.
    pub latency: BTreeMap<String, Vec<SecondLatency>>,
}

impl ReportMeta {
    /// Meta with a title and nothing else.
    pub fn new(title: impl Into<String>) -> ReportMeta {
        ReportMeta {
            title: title.into(),
            ..ReportMeta::default()
        }
    }
}

/// The report of `results` (in run order) as one HTML document.
pub fn render(results: &[ConfigResult], meta: &ReportMeta) -> String {
    html::page(results, meta)
}

/// Aggregates and their meta, as [`load`] found them.
#[derive(Debug)]
pub struct Loaded {
    /// In run order.
    pub results: Vec<ConfigResult>,
    /// For [`render`].
    pub meta: ReportMeta,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Read `study.json` of a results folder.
pub fn read_study(dir: &Path) -> Result<StudyFile, ReportError> {
    let path = dir.join("study.json");
    let data = std::fs::read(&path).map_err(io_err(&path))?;
    serde_json::from_slice(&data).map_err(|e| ReportError::Bad {
        path,
        why: format!("not a vaccel bench study.json: {e}"),
    })
}

/// Read a configuration's `summary.json`, when there is one.
pub fn read_summary(path: &Path) -> Result<Option<Summary>, ReportError> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| ReportError::Bad {
                path: path.to_path_buf(),
                why: format!("not a vaccel bench summary.json: {e}"),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Load what to report from `path`: a results folder (with `study.json`),
/// a folder of `.jtl` files (JMeter's, one or more configurations each), or
/// one JTL file (ours or JMeter's).
pub fn load(path: &Path) -> Result<Loaded, ReportError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_dir() {
        return load_jtl(path);
    }
    if path.join("study.json").is_file() {
        return load_study(path);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io_err(path))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jtl")) && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ReportError::Bad {
            path: path.to_path_buf(),
            why: "neither a vaccel bench results folder (no study.json) nor a folder of .jtl files"
                .into(),
        });
    }
    let mut all = Loaded {
        results: Vec::new(),
        meta: ReportMeta::new("Load test report"),
    };
    all.meta.source = path.display().to_string();
    for f in &files {
        let one = load_jtl(f)?;
        for mut r in one.results {
            if all.results.iter().any(|x| x.key.label == r.key.label) {
                let stem = f
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let old = r.key.label.clone();
                r.key.label = format!("{stem}/{old}");
                if let Some(l) = one.meta.latency.get(&old) {
                    all.meta.latency.insert(r.key.label.clone(), l.clone());
                }
            } else if let Some(l) = one.meta.latency.get(&r.key.label) {
                all.meta.latency.insert(r.key.label.clone(), l.clone());
            }
            all.results.push(r);
        }
        if all.meta.url.is_none() {
            all.meta.url = one.meta.url;
        }
        for n in one.meta.notes {
            if !all.meta.notes.contains(&n) {
                all.meta.notes.push(n);
            }
        }
    }
    all.meta
        .notes
        .insert(0, format!("Read from {} JTL file(s).", files.len()));
    Ok(all)
}

fn kind_note(kind: JtlKind) -> Option<String> {
    match kind {
        JtlKind::Ours => None,
        JtlKind::JMeter | JtlKind::JMeterNoHeader => Some(
            "JMeter results: times are whole milliseconds; no handler or ML (op) times; \
             configurations are JMeter thread groups (threads: the largest grpThreads seen)."
                .into(),
        ),
    }
}

fn load_jtl(path: &Path) -> Result<Loaded, ReportError> {
    let data = read::read_file(path, &ReadOptions::default())?;
    if data.results.is_empty() {
        return Err(ReportError::Bad {
            path: path.to_path_buf(),
            why: "no requests in this JTL (a header line only)".into(),
        });
    }
    let mut meta = ReportMeta::new("Load test report");
    meta.source = path.display().to_string();
    meta.url = data.url.clone();
    meta.latency = data.latency;
    meta.notes.extend(kind_note(data.kind));
    if data.kind == JtlKind::JMeterNoHeader {
        meta.notes
            .push("The file has no header line: read in JMeter 5's default column order.".into());
    }
    if data.kind == JtlKind::Ours {
        meta.notes.push(
            "Read from the JTL alone: a configuration starts at its first request, its duration ends at its \
             last completion, and the open model's corrected latency and late count come from millisecond \
             timestamps. Report the results folder for the exact figures."
                .into(),
        );
    }
    meta.started_ms = data.results.iter().map(|r| r.started_ms).min();
    Ok(Loaded {
        results: data.results,
        meta,
    })
}

fn load_study(dir: &Path) -> Result<Loaded, ReportError> {
    let study = read_study(dir)?;
    let mut meta = ReportMeta::new(format!(
        "Load test of {}",
        if study.request_label.is_empty() {
            study.url.as_str()
        } else {
            study.request_label.as_str()
        }
    ));
    meta.source = dir.display().to_string();
    meta.url = Some(study.url.clone());
    meta.command = (!study.command.is_empty()).then(|| study.command.join(" "));
    meta.model = Some(study.model.clone());
    meta.started_ms = Some(study.started_ms);
    meta.ended_ms = study.ended_ms;
    if study.interrupted {
        meta.notes.push(
            "The study was interrupted (Ctrl-C): the last configuration may be short.".into(),
        );
    }
    if study.configurations.len() < study.planned.len() && !study.interrupted {
        meta.notes.push(format!(
            "{} of {} planned configurations finished.",
            study.configurations.len(),
            study.planned.len()
        ));
    }
    let tolerance_ms = (study.settings.late_tolerance_s * 1000.0).round().max(0.0) as u64;
    let mut results = Vec::new();
    for key in &study.configurations {
        let cdir = dir.join(&key.label);
        let (r, lat) = load_config(&cdir, key, tolerance_ms)?;
        if let Some(l) = lat {
            meta.latency.insert(key.label.clone(), l);
        }
        results.push(r);
    }
    if results.is_empty() {
        return Err(ReportError::Bad {
            path: dir.join("study.json"),
            why: "no finished configuration to report".into(),
        });
    }
    Ok(Loaded { results, meta })
}

/// One configuration of a results folder: the JTL for outcomes, timeline
/// and per-second percentiles; `histograms.hlog` for the exact histograms;
/// `summary.json` for start, duration, late and dropped.
fn load_config(
    cdir: &Path,
    key: &crate::model::ConfigKey,
    tolerance_ms: u64,
) -> Result<(ConfigResult, Option<Vec<SecondLatency>>), ReportError> {
    let summary = read_summary(&cdir.join("summary.json"))?;
    let jtl = cdir.join("results.jtl");
    let hlog_path = cdir.join("histograms.hlog");
    let mut lat = None;
    let mut r = if jtl.is_file() {
        let mut opts = ReadOptions {
            late_tolerance_ms: tolerance_ms,
            ..ReadOptions::default()
        };
        if let Some(s) = &summary {
            opts.starts.insert(key.label.clone(), s.started_ms);
        }
        let data = read::read_file(&jtl, &opts)?;
        let mut data_results = data.results;
        let pos = data_results.iter().position(|r| r.key.label == key.label);
        match pos {
            Some(i) => {
                lat = data.latency.get(&key.label).cloned();
                data_results.swap_remove(i)
            }
            None if data_results.is_empty() => {
                ConfigResult::new(key.clone(), summary.as_ref().map_or(0, |s| s.started_ms))
            }
            None => {
                return Err(ReportError::Bad {
                    path: jtl,
                    why: format!("no rows of configuration '{}'", key.label),
                });
            }
        }
    } else if let Some(s) = &summary {
        let mut r = ConfigResult::new(key.clone(), s.started_ms);
        for o in Outcome::ALL {
            let n = s.outcome(o);
            if n > 0 {
                r.outcomes.insert(o, n);
            }
        }
        r
    } else {
        return Err(ReportError::Bad {
            path: cdir.to_path_buf(),
            why: "neither results.jtl nor summary.json: not a configuration folder".into(),
        });
    };
    r.key = key.clone();
    if hlog_path.is_file() {
        let totals = crate::hlog::read_totals(&hlog_path).map_err(io_err(&hlog_path))?;
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
    }
    if let Some(s) = &summary {
        r.started_ms = s.started_ms;
        r.duration_s = s.duration_s;
        r.late = s.late;
        r.dropped = s.dropped;
    }
    Ok((r, lat))
}

/// Load `dir_or_jtl` (see [`load`]) and write its report to `out_html`.
pub fn write_report(dir_or_jtl: &Path, out_html: &Path) -> Result<Loaded, ReportError> {
    let loaded = load(dir_or_jtl)?;
    let page = render(&loaded.results, &loaded.meta);
    if let Some(parent) = out_html.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::write(out_html, page).map_err(io_err(out_html))?;
    Ok(loaded)
}

/// Where `vaccel bench report` writes by default: `report.html` inside a
/// results folder, else beside the JTL (`x.jtl` → `x.html`).
pub fn default_output(dir_or_jtl: &Path) -> PathBuf {
    if dir_or_jtl.is_dir() {
        dir_or_jtl.join("report.html")
    } else {
        dir_or_jtl.with_extension("html")
    }
}
