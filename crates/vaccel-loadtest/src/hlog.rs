//! `histograms.hlog`: HdrHistogram interval logs (the format of
//! HdrHistogram's `HistogramLogWriter`, readable by its `HistogramLogProcessor`
//! and by HdrHistogram's plotting tools).
//!
//! One interval per second of the run and per tag, values in **µs**,
//! compressed V2 encoding. Intervals with no samples are left out.
//! Tags: [`TAGS`]. Timestamps are relative to the `#[BaseTime: ...]` line
//! (the start of the configuration).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriter, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use crate::model::ConfigResult;

/// The tags, in the order of [`series`]: round trip, time to first byte,
/// connect, handler (`X-Duration-Seconds`), op (`X-Vaccel-Op-Seconds`),
/// and the open model's corrected latency.
pub const TAGS: [&str; 6] = ["rtt", "ttfb", "connect", "handler", "op", "rtt_corrected"];

/// The histograms of a result, in [`TAGS`] order (`rtt_corrected` only in the open model).
pub fn series(r: &ConfigResult) -> [Option<&Histogram<u64>>; 6] {
    [
        Some(&r.rtt),
        Some(&r.ttfb),
        Some(&r.connect),
        Some(&r.handler),
        Some(&r.op),
        r.rtt_corrected.as_ref(),
    ]
}

/// Start a log on `w` (header comments, base and start time).
pub fn begin<'a, 'b, W: Write>(
    w: &'a mut W,
    ser: &'b mut V2DeflateSerializer,
    start: SystemTime,
    comment: &str,
) -> io::Result<IntervalLogWriter<'a, 'b, W, V2DeflateSerializer>> {
    IntervalLogWriterBuilder::new()
        .add_comment(comment)
        .add_comment("values in microseconds; tags: rtt ttfb connect handler op rtt_corrected")
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1000.0)
        .begin_log_with(w, ser)
}

/// Append one interval of one tag (skipped when empty).
pub fn write_interval<W: Write>(
    log: &mut IntervalLogWriter<'_, '_, W, V2DeflateSerializer>,
    h: &Histogram<u64>,
    start: Duration,
    length: Duration,
    tag: &str,
) -> io::Result<()> {
    if h.is_empty() {
        return Ok(());
    }
    log.write_histogram(h, start, length, Tag::new(tag))
        .map_err(|e| io::Error::other(e.to_string()))
}

/// Write a whole result as one interval per tag to `path`.
pub fn write_file(path: &Path, r: &ConfigResult, start: SystemTime) -> io::Result<()> {
    let mut f = io::BufWriter::new(std::fs::File::create(path)?);
    let mut ser = V2DeflateSerializer::new();
    {
        let mut log = begin(
            &mut f,
            &mut ser,
            start,
            &format!("vaccel-bench {}", r.key.label),
        )?;
        let len = Duration::from_secs_f64(r.duration_s.max(0.0));
        for (h, tag) in series(r).into_iter().zip(TAGS) {
            if let Some(h) = h {
                write_interval(&mut log, h, Duration::ZERO, len, tag)?;
            }
        }
    }
    f.flush()
}

/// Read a log: every interval of each tag added up (untagged intervals under `""`).
pub fn read_totals(path: &Path) -> io::Result<BTreeMap<String, Histogram<u64>>> {
    let data = std::fs::read(path)?;
    let mut out: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    let mut de = Deserializer::new();
    for entry in IntervalLogIterator::new(&data) {
        let entry = entry.map_err(|e| io::Error::other(format!("{e:?}")))?;
        if let LogEntry::Interval(ivl) = entry {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(ivl.encoded_histogram())
                .map_err(io::Error::other)?;
            let h: Histogram<u64> = de
                .deserialize(&mut io::Cursor::new(raw))
                .map_err(|e| io::Error::other(format!("{e:?}")))?;
            let tag = ivl
                .tag()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default();
            match out.get_mut(&tag) {
                Some(total) => total
                    .add(&h)
                    .map_err(|e| io::Error::other(format!("{e:?}")))?,
                None => {
                    let mut total = crate::model::histogram();
                    total
                        .add(&h)
                        .map_err(|e| io::Error::other(format!("{e:?}")))?;
                    out.insert(tag, total);
                }
            }
        }
    }
    Ok(out)
}
