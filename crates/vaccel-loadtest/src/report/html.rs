//! The report page: one self-contained HTML file (inline CSS and SVG, no
//! script, no external resource).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use plotters::style::RGBColor;

use super::ReportMeta;
use super::charts::{self, Axis, Bar, Caption, Chart, Line, Scale, color, hex, short};
use crate::jtl::read::SecondLatency;
use crate::model::{ConfigResult, Outcome};

/// HTML-escape text.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// `2025-01-02 03:04:05 UTC` (`N ms since 1970 UTC` beyond the calendar).
pub(crate) fn utc(ms: u64) -> String {
    match crate::study::civil(ms / 1000) {
        Some((y, m, d, h, mi, s)) => format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC"),
        None => format!("{ms} ms since 1970 UTC"),
    }
}

/// A duration in seconds, short: `45 s`, `2 min 5 s`, `1 h 2 min`.
pub(crate) fn span(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".into();
    }
    if s < 60.0 {
        return format!("{} s", short(s));
    }
    let t = s.round() as u64;
    if t < 3600 {
        format!("{} min {} s", t / 60, t % 60)
    } else {
        format!("{} h {} min", t / 3600, t / 60 % 60)
    }
}

/// A think time: `0 s`, `500 ms`, `1.5 s`.
pub(crate) fn think(s: f64) -> String {
    if s > 0.0 && s < 1.0 {
        format!("{} ms", short(s * 1000.0))
    } else {
        format!("{} s", short(s))
    }
}

/// Milliseconds with 3 significant digits (table cells).
fn ms(us: f64) -> String {
    let v = us / 1000.0;
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// One latency metric of a configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    Rtt,
    Handler,
    Op,
}

impl Metric {
    const ALL: [Metric; 3] = [Metric::Rtt, Metric::Handler, Metric::Op];

    fn of(self, r: &ConfigResult) -> &Histogram<u64> {
        match self {
            Metric::Rtt => &r.rtt,
            Metric::Handler => &r.handler,
            Metric::Op => &r.op,
        }
    }

    fn id(self) -> &'static str {
        match self {
            Metric::Rtt => "rtt",
            Metric::Handler => "handler",
            Metric::Op => "op",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Metric::Rtt => "Round-trip time (RTT)",
            Metric::Handler => "Handler time",
            Metric::Op => "ML (op) time",
        }
    }

    fn short_name(self) -> &'static str {
        match self {
            Metric::Rtt => "RTT",
            Metric::Handler => "handler",
            Metric::Op => "ML (op)",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Metric::Rtt => "client-measured, request sent to last byte received",
            Metric::Handler => "the function's X-Duration-Seconds header",
            Metric::Op => {
                "the function's X-Vaccel-Op-Seconds header: time inside the accelerated op"
            }
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Metric::Rtt => color(0),
            Metric::Handler => color(1),
            Metric::Op => color(2),
        }
    }
}

/// A legend entry: colour, dashed, text.
type Legend = Vec<(RGBColor, bool, String)>;

struct Figure {
    id: String,
    title: String,
    note: String,
    svg: String,
    legend: Legend,
    wide: bool,
}

fn figure(out: &mut String, f: &Figure) {
    let _ = write!(
        out,
        "<figure class=\"chart{}\" data-chart=\"{}\"><figcaption><h4>{}</h4>",
        if f.wide { " wide" } else { "" },
        esc(&f.id),
        esc(&f.title)
    );
    if !f.note.is_empty() {
        let _ = write!(out, "<p>{}</p>", esc(&f.note));
    }
    out.push_str("</figcaption>");
    out.push_str(&f.svg);
    if !f.legend.is_empty() {
        out.push_str("<div class=\"legend\">");
        for (c, dashed, text) in &f.legend {
            let _ = write!(
                out,
                "<span><i style=\"border-top:3px {} {}\"></i>{}</span>",
                if *dashed { "dashed" } else { "solid" },
                hex(*c),
                esc(text)
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</figure>\n");
}

/// How configurations line up on the scaling charts: x = threads and one
/// series per think time (closed model), or x = rate and one series per
/// thread count (open model).
struct Layout {
    open: bool,
    /// Series key (think s, or threads) → indexes of results, sorted by x.
    series: Vec<(f64, Vec<usize>)>,
}

impl Layout {
    fn new(results: &[ConfigResult]) -> Layout {
        let open = !results.is_empty() && results.iter().all(|r| r.key.rate.is_some());
        let mut series: Vec<(f64, Vec<usize>)> = Vec::new();
        for (i, r) in results.iter().enumerate() {
            let key = if open {
                r.key.threads as f64
            } else {
                r.key.think_s
            };
            match series.iter_mut().find(|(k, _)| (*k - key).abs() < 1e-9) {
                Some((_, v)) => v.push(i),
                None => series.push((key, vec![i])),
            }
        }
        series.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, v) in &mut series {
            v.sort_by(|a, b| {
                Layout::x_of(open, &results[*a]).total_cmp(&Layout::x_of(open, &results[*b]))
            });
        }
        Layout { open, series }
    }

    fn x_of(open: bool, r: &ConfigResult) -> f64 {
        if open {
            r.key.rate.unwrap_or(0.0)
        } else {
            r.key.threads as f64
        }
    }

    fn x(&self, r: &ConfigResult) -> f64 {
        Layout::x_of(self.open, r)
    }

    fn series_name(&self, key: f64) -> String {
        if self.open {
            format!("{} connections", short(key))
        } else {
            format!("think {}", think(key))
        }
    }

    fn x_desc(&self) -> &'static str {
        if self.open {
            "target rate (requests/s)"
        } else {
            "client threads"
        }
    }

    fn distinct_x(&self, results: &[ConfigResult]) -> Vec<f64> {
        let mut xs: Vec<f64> = results.iter().map(|r| self.x(r)).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        xs
    }

    /// Configuration order on the box charts: by series, then x.
    fn order(&self) -> Vec<usize> {
        self.series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .collect()
    }
}

fn x_scale(xs: &[f64]) -> Scale {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if lo > 0.0 && hi / lo >= 8.0 {
        Scale::Log2
    } else {
        Scale::Linear
    }
}

/// A y axis for values (ms): log when they span more than `ratio`, else linear from 0.
fn y_axis(values: impl IntoIterator<Item = f64>, ratio: f64, desc: &str) -> (Axis, Scale) {
    let v: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
    let lo = v
        .iter()
        .copied()
        .filter(|x| *x > 0.0)
        .fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    if lo.is_finite() && hi / lo > ratio {
        (charts::log_axis(lo, hi, desc), Scale::Log10)
    } else {
        (
            charts::linear_axis(0.0, hi * 1.05, 6, desc, true),
            Scale::Linear,
        )
    }
}

fn us_to_ms(v: u64) -> f64 {
    v as f64 / 1000.0
}

fn scaling_charts(out: &mut String, results: &[ConfigResult], lay: &Layout) {
    let xs = lay.distinct_x(results);
    let xscale = x_scale(&xs);
    let xaxis = charts::value_axis(&xs, xscale, lay.x_desc());
    let mut legend: Legend = Vec::new();
    for (i, (key, _)) in lay.series.iter().enumerate() {
        legend.push((color(i), false, lay.series_name(*key)));
    }

    // Success rate.
    let mut c = Chart::new(
        xaxis.clone(),
        charts::linear_axis(0.0, 100.0, 5, "success rate (%)", true),
    );
    let rates: Vec<f64> = results.iter().map(|r| r.success_rate() * 100.0).collect();
    let lo = rates.iter().copied().fold(100.0, f64::min);
    if lo > 90.0 {
        c.y = charts::linear_axis(
            (lo - 1.0).floor().max(0.0),
            100.0,
            5,
            "success rate (%)",
            false,
        );
        c.y.hi = c.y.hi.max(100.5);
    }
    for (i, (_, idx)) in lay.series.iter().enumerate() {
        let mut l = Line::new(
            color(i),
            idx.iter()
                .map(|j| (xscale.to_plot(lay.x(&results[*j])), rates[*j]))
                .collect(),
        );
        l.markers = true;
        c.lines.push(l);
    }
    figure(
        out,
        &Figure {
            id: "success-rate".into(),
            title: format!("Success rate vs {}", lay.x_desc()),
            note: "Share of requests answered with a 2xx status.".into(),
            svg: c.svg(),
            legend: legend.clone(),
            wide: false,
        },
    );

    // Mean and median RTT, and handler and op time when the function
    // reported them.
    for m in Metric::ALL {
        if m != Metric::Rtt && results.iter().all(|r| m.of(r).is_empty()) {
            continue;
        }
        let vals = results
            .iter()
            .filter(|r| !m.of(r).is_empty())
            .flat_map(|r| {
                [
                    m.of(r).mean() / 1000.0,
                    us_to_ms(m.of(r).value_at_quantile(0.5)),
                ]
            });
        let (yaxis, ys) = y_axis(vals, 50.0, &format!("{} (ms)", m.short_name()));
        let mut c = Chart::new(xaxis.clone(), yaxis);
        for (i, (_, idx)) in lay.series.iter().enumerate() {
            let ok: Vec<usize> = idx
                .iter()
                .copied()
                .filter(|j| !m.of(&results[*j]).is_empty())
                .collect();
            let pts = |f: &dyn Fn(&Histogram<u64>) -> f64| -> Vec<(f64, f64)> {
                ok.iter()
                    .map(|j| {
                        (
                            xscale.to_plot(lay.x(&results[*j])),
                            ys.to_plot(f(m.of(&results[*j]))),
                        )
                    })
                    .collect()
            };
            let mut median = Line::new(color(i), pts(&|h| us_to_ms(h.value_at_quantile(0.5))));
            median.markers = true;
            let mut mean = Line::new(color(i), pts(&|h| h.mean() / 1000.0));
            mean.dashed = true;
            mean.markers = true;
            c.lines.push(median);
            c.lines.push(mean);
        }
        let mut lg = legend.clone();
        lg.push((RGBColor(90, 90, 90), false, "median".into()));
        lg.push((RGBColor(90, 90, 90), true, "mean".into()));
        let note = if m == Metric::Rtt {
            "Solid: median; dashed: mean.".to_string()
        } else {
            format!("From {}.", m.source())
        };
        figure(
            out,
            &Figure {
                id: format!("{}-mean-median", m.id()),
                title: format!("Mean and median {} vs {}", m.short_name(), lay.x_desc()),
                note,
                svg: c.svg(),
                legend: lg,
                wide: false,
            },
        );
    }

    // Throughput.
    let mut c = Chart::new(
        xaxis,
        charts::linear_axis(
            0.0,
            results.iter().map(throughput).fold(0.0, f64::max) * 1.05,
            6,
            "throughput (requests/s)",
            true,
        ),
    );
    for (i, (_, idx)) in lay.series.iter().enumerate() {
        let mut l = Line::new(
            color(i),
            idx.iter()
                .map(|j| {
                    (
                        xscale.to_plot(lay.x(&results[*j])),
                        throughput(&results[*j]),
                    )
                })
                .collect(),
        );
        l.markers = true;
        c.lines.push(l);
    }
    figure(
        out,
        &Figure {
            id: "throughput".into(),
            title: format!("Throughput vs {}", lay.x_desc()),
            note: "Completed requests (any outcome) per second over the measured duration.".into(),
            svg: c.svg(),
            legend,
            wide: false,
        },
    );
}

fn throughput(r: &ConfigResult) -> f64 {
    if r.duration_s > 0.0 {
        r.count() as f64 / r.duration_s
    } else {
        0.0
    }
}

/// Box-and-whisker chart of one metric, one box per configuration.
fn box_chart(results: &[ConfigResult], lay: &Layout, m: Metric) -> Figure {
    let order: Vec<usize> = lay
        .order()
        .into_iter()
        .filter(|i| !m.of(&results[*i]).is_empty())
        .collect();
    let q = |h: &Histogram<u64>, p: f64| us_to_ms(h.value_at_quantile(p));
    let vals = order.iter().flat_map(|i| {
        let h = m.of(&results[*i]);
        [q(h, 0.01), q(h, 0.99)]
    });
    let (yaxis, ys) = y_axis(vals, 30.0, &format!("{} (ms)", m.short_name()));
    // Positions: configurations in series order, a gap between series.
    let mut pos = Vec::new();
    let mut ticks = Vec::new();
    let mut captions = Vec::new();
    let mut separators = Vec::new();
    let mut x = 0.0;
    for (s, (key, idx)) in lay.series.iter().enumerate() {
        let members: Vec<usize> = idx.iter().copied().filter(|i| order.contains(i)).collect();
        if members.is_empty() {
            continue;
        }
        if !pos.is_empty() {
            separators.push(x - 0.8);
            x += 0.6;
        }
        let first = x;
        for i in &members {
            let r = &results[*i];
            let label = if lay.open {
                format!("{}/s", short(r.key.rate.unwrap_or(0.0)))
            } else {
                format!("t{}", r.key.threads)
            };
            pos.push((*i, x, s));
            ticks.push((x, label));
            x += 1.0;
        }
        captions.push(Caption {
            x: (first + x - 1.0) / 2.0,
            text: lay.series_name(*key),
        });
    }
    let xaxis = Axis {
        lo: -0.7,
        hi: (x - 0.3).max(0.7),
        ticks,
        desc: String::new(),
    };
    let mut c = Chart::new(xaxis, yaxis);
    c.captions = captions;
    c.separators = separators;
    for (i, x, s) in &pos {
        let h = m.of(&results[*i]);
        let col = color(*s);
        let y = |p: f64| ys.to_plot(q(h, p));
        c.bars.push(Bar {
            x0: x - 0.3,
            x1: x + 0.3,
            y0: y(0.25),
            y1: y(0.75),
            color: col,
            opacity: 0.25,
            outline: true,
        });
        c.segments
            .push(((x - 0.3, y(0.5)), (x + 0.3, y(0.5)), col, 3));
        c.segments.push(((*x, y(0.01)), (*x, y(0.25)), col, 1));
        c.segments.push(((*x, y(0.75)), (*x, y(0.99)), col, 1));
        c.segments
            .push(((x - 0.15, y(0.01)), (x + 0.15, y(0.01)), col, 1));
        c.segments
            .push(((x - 0.15, y(0.99)), (x + 0.15, y(0.99)), col, 1));
        c.diamonds.push(((*x, ys.to_plot(h.mean() / 1000.0)), col));
    }
    Figure {
        id: format!("{}-box", m.id()),
        title: format!("{} by configuration", m.name()),
        note: "Box: 25th to 75th percentile, bar: median, whiskers: 1st and 99th percentiles, ◆: mean.".into(),
        svg: c.svg(),
        legend: lay
            .series
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (color(i), false, lay.series_name(*k)))
            .collect(),
        wide: false,
    }
}

/// Percentile curves (HdrHistogram style): x = percentile on a "nines"
/// scale, one line per configuration.
fn percentile_chart(results: &[ConfigResult], m: Metric) -> Figure {
    let used: Vec<usize> = (0..results.len())
        .filter(|i| !m.of(&results[*i]).is_empty())
        .collect();
    let nines_max = used
        .iter()
        .map(|i| (m.of(&results[*i]).len() as f64).log10().floor())
        .fold(1.0, f64::max)
        .clamp(1.0, 5.0);
    let qs: Vec<f64> = (0..=(nines_max * 20.0) as usize)
        .map(|k| 1.0 - 10f64.powf(-(k as f64) / 20.0))
        .collect();
    let vals = used.iter().flat_map(|i| {
        let h = m.of(&results[*i]);
        [us_to_ms(h.value_at_quantile(0.0)), us_to_ms(h.max())]
    });
    let (yaxis, ys) = y_axis(vals, 30.0, &format!("{} (ms)", m.short_name()));
    let labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
    let xaxis = Axis {
        lo: 0.0,
        hi: nines_max,
        ticks: (0..=nines_max as usize)
            .map(|k| (k as f64, labels[k].to_string()))
            .collect(),
        desc: "percentile".into(),
    };
    let mut c = Chart::new(xaxis, yaxis);
    let mut legend = Legend::new();
    for (n, i) in used.iter().enumerate() {
        let h = m.of(&results[*i]);
        let pts = qs
            .iter()
            .map(|q| {
                (
                    -(1.0 - q).log10(),
                    ys.to_plot(us_to_ms(h.value_at_quantile(*q))),
                )
            })
            .collect();
        let mut l = Line::new(color(n), pts);
        l.dashed = n >= charts::PALETTE.len();
        c.lines.push(l);
        legend.push((
            color(n),
            n >= charts::PALETTE.len(),
            results[*i].key.label.clone(),
        ));
    }
    Figure {
        id: format!("{}-percentiles", m.id()),
        title: format!("{} percentile distribution", m.name()),
        note: "Value at each percentile; the right end is the tail (x: 90%, 99%, 99.9%, …).".into(),
        svg: c.svg(),
        legend,
        wide: false,
    }
}

/// Histogram of one configuration: RTT bars, handler and op as outlines.
fn histogram_chart(r: &ConfigResult, n: usize) -> Figure {
    let present: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| !m.of(r).is_empty())
        .collect();
    let lo = present.iter().map(|m| m.of(r).min()).min().unwrap_or(0);
    let hi = present
        .iter()
        .map(|m| m.of(r).value_at_quantile(0.995))
        .max()
        .unwrap_or(1)
        .max(lo + 1);
    let bins = 48usize;
    let lo_ms = us_to_ms(lo);
    let width = (us_to_ms(hi) - lo_ms) / bins as f64;
    let width = if width > 0.0 { width } else { 0.001 };
    let mut series: Vec<(Metric, Vec<f64>, u64)> = Vec::new();
    for m in &present {
        let h = m.of(r);
        let mut counts = vec![0u64; bins];
        let mut over = 0u64;
        for v in h.iter_recorded() {
            let x = us_to_ms(h.median_equivalent(v.value_iterated_to()));
            let b = ((x - lo_ms) / width).floor();
            if b >= bins as f64 {
                over += v.count_at_value();
            } else {
                counts[b.max(0.0) as usize] += v.count_at_value();
            }
        }
        let total = h.len().max(1) as f64;
        series.push((
            *m,
            counts.iter().map(|c| *c as f64 * 100.0 / total).collect(),
            over,
        ));
    }
    let top = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0, f64::max);
    let mut c = Chart::new(
        charts::linear_axis(lo_ms, lo_ms + width * bins as f64, 7, "time (ms)", false),
        charts::linear_axis(0.0, top * 1.08, 5, "requests (%)", true),
    );
    c.x.lo = lo_ms;
    c.x.hi = lo_ms + width * bins as f64;
    c.width = 460;
    c.height = 300;
    let mut legend = Legend::new();
    let mut notes = Vec::new();
    for (m, pcts, over) in &series {
        let col = m.color();
        if *m == Metric::Rtt {
            for (b, p) in pcts.iter().enumerate() {
                if *p > 0.0 {
                    c.bars.push(Bar {
                        x0: lo_ms + width * b as f64,
                        x1: lo_ms + width * (b as f64 + 1.0),
                        y0: 0.0,
                        y1: *p,
                        color: col,
                        opacity: 0.45,
                        outline: false,
                    });
                }
            }
        } else {
            let mut pts = Vec::new();
            for (b, p) in pcts.iter().enumerate() {
                pts.push((lo_ms + width * b as f64, *p));
                pts.push((lo_ms + width * (b as f64 + 1.0), *p));
            }
            c.lines.push(Line::new(col, pts));
        }
        legend.push((col, false, m.short_name().to_string()));
        if *over > 0 {
            notes.push(format!(
                "{over} {} value(s) beyond the axis",
                m.short_name()
            ));
        }
    }
    let mut note = format!(
        "Share of requests per {} ms bin, up to the 99.5th percentile.",
        short(width)
    );
    if !notes.is_empty() {
        note += &format!(" Not shown: {}.", notes.join(", "));
    }
    Figure {
        id: format!("hist-{n}"),
        title: "Time distribution".into(),
        note,
        svg: c.svg(),
        legend,
        wide: false,
    }
}

/// A line over time: points, colour, name, width.
type TimeSeries = (Vec<(f64, f64)>, RGBColor, String, u32);

/// Latency per second: p50 / p95 / max (or mean / max without percentiles).
fn latency_time_chart(r: &ConfigResult, lat: Option<&Vec<SecondLatency>>, n: usize) -> Figure {
    let secs = r
        .timeline
        .len()
        .max(lat.map_or(0, |l| l.last().map_or(0, |s| s.t as usize + 1)));
    let xaxis = charts::linear_axis(0.0, secs.max(1) as f64, 8, "time since start (s)", true);
    let mut lines: Vec<TimeSeries> = Vec::new();
    match lat.filter(|l| !l.is_empty()) {
        Some(l) => {
            let pt = |f: &dyn Fn(&SecondLatency) -> u64| -> Vec<(f64, f64)> {
                l.iter()
                    .map(|s| (s.t as f64 + 0.5, us_to_ms(f(s))))
                    .collect()
            };
            lines.push((pt(&|s| s.max_us), RGBColor(170, 174, 182), "max".into(), 1));
            lines.push((pt(&|s| s.p95_us), color(1), "p95".into(), 2));
            lines.push((pt(&|s| s.p50_us), color(0), "p50".into(), 2));
        }
        None => {
            let with: Vec<_> = r
                .timeline
                .iter()
                .filter(|s| s.completed > 0 && s.rtt_max_us > 0)
                .collect();
            lines.push((
                with.iter()
                    .map(|s| (s.t as f64 + 0.5, us_to_ms(s.rtt_max_us)))
                    .collect(),
                RGBColor(170, 174, 182),
                "max".into(),
                1,
            ));
            lines.push((
                with.iter()
                    .map(|s| {
                        (
                            s.t as f64 + 0.5,
                            s.rtt_sum_us as f64 / s.completed as f64 / 1000.0,
                        )
                    })
                    .collect(),
                color(0),
                "mean".into(),
                2,
            ));
        }
    }
    let (yaxis, ys) = y_axis(
        lines.iter().flat_map(|l| l.0.iter().map(|p| p.1)),
        50.0,
        "RTT (ms)",
    );
    let mut c = Chart::new(xaxis, yaxis);
    c.width = 460;
    c.height = 300;
    let mut legend = Legend::new();
    for (pts, col, name, w) in lines.into_iter().rev() {
        legend.push((col, false, name));
        let few = pts.len() <= 40;
        // One line per run of consecutive seconds: no line across seconds
        // in which nothing completed.
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut flush = |run: &mut Vec<(f64, f64)>| {
            if !run.is_empty() {
                let mut l = Line::new(col, std::mem::take(run));
                l.width = w;
                l.markers = few;
                c.lines.push(l);
            }
        };
        for (x, y) in pts {
            if run.last().is_some_and(|p| x - p.0 > 1.5) {
                flush(&mut run);
            }
            run.push((x, ys.to_plot(y)));
        }
        flush(&mut run);
    }
    legend.reverse();
    Figure {
        id: format!("latency-time-{n}"),
        title: "Latency over time".into(),
        note: "Round-trip time of the requests completed in each second.".into(),
        svg: c.svg(),
        legend,
        wide: false,
    }
}

/// Completions per second (all, 2xx, errors) and active threads.
fn throughput_time_chart(r: &ConfigResult, n: usize) -> Figure {
    let secs = r.timeline.len().max(1);
    let top = r.timeline.iter().map(|s| s.completed).max().unwrap_or(0) as f64;
    let mut c = Chart::new(
        charts::linear_axis(0.0, secs as f64, 8, "time since start (s)", true),
        charts::linear_axis(0.0, top.max(1.0) * 1.08, 5, "requests/s", true),
    );
    c.width = 460;
    c.height = 300;
    let at = |f: &dyn Fn(&crate::model::Second) -> u64| -> Vec<(f64, f64)> {
        r.timeline
            .iter()
            .map(|s| (s.t as f64 + 0.5, f(s) as f64))
            .collect()
    };
    let mut all = Line::new(color(0), at(&|s| s.completed));
    all.fill = true;
    c.lines.push(all);
    let mut legend: Legend = vec![(color(0), false, "completed".into())];
    let errors = r.timeline.iter().any(|s| s.completed > s.ok);
    if errors {
        c.lines.push(Line::new(color(2), at(&|s| s.ok)));
        legend.push((color(2), false, "2xx".into()));
        c.lines
            .push(Line::new(color(3), at(&|s| s.completed - s.ok)));
        legend.push((color(3), false, "errors".into()));
    }
    if r.timeline.iter().any(|s| s.threads > 0) {
        let mut t = Line::new(RGBColor(120, 120, 120), at(&|s| s.threads));
        t.dashed = true;
        t.width = 1;
        c.lines.push(t);
        legend.push((RGBColor(120, 120, 120), true, "active threads".into()));
    }
    Figure {
        id: format!("throughput-time-{n}"),
        title: "Throughput over time".into(),
        note: "Requests completed in each second.".into(),
        svg: c.svg(),
        legend,
        wide: false,
    }
}

const CSS: &str = r#"
:root{--ink:#1f2430;--muted:#5b6472;--line:#e3e6eb;--bg:#f6f7f9;--card:#fff;--accent:#1f77b4}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#1b2333;color:#fff;padding:28px 40px 24px}
header h1{margin:0 0 6px;font-size:24px;font-weight:600;letter-spacing:.2px}
header .sub{color:#b8c1d1;font-size:13px;word-break:break-all}
main{max-width:1480px;margin:0 auto;padding:24px 40px 48px}
section{margin:0 0 36px}
h2{font-size:18px;font-weight:600;margin:0 0 4px}
h2+p.lead{margin:0 0 14px;color:var(--muted)}
h3{font-size:16px;margin:0 0 10px}
.meta{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:6px 24px;margin:14px 0 0;font-size:13px}
.meta div{color:#d5dbe6}.meta b{color:#8f9bb0;font-weight:500;margin-right:6px}
.meta code{color:#fff;font-size:12px;word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:14px;margin:0 0 28px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card .v{font-size:24px;font-weight:600;font-variant-numeric:tabular-nums}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.5px}
.card.bad .v{color:#c0392b}
.tablewrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:10px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:7px 10px;text-align:right;white-space:nowrap;border-bottom:1px solid var(--line)}
th{background:#f0f2f5;font-weight:600;color:#394150;position:sticky;top:0}
th.l,td.l{text-align:left}
tbody tr:nth-child(even){background:#fafbfc}
tbody tr:hover{background:#eef4fb}
td.warn{color:#b9770e;font-weight:600}td.bad{color:#c0392b;font-weight:600}
th.grp{text-align:center;border-left:1px solid var(--line)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px}
.charts.trio{grid-template-columns:repeat(auto-fit,minmax(400px,1fr));gap:14px}
figure.chart{margin:0;background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px 10px}
figure.chart.wide{grid-column:1/-1}
figcaption h4{margin:0;font-size:14px;font-weight:600}
figcaption p{margin:2px 0 6px;color:var(--muted);font-size:12px}
figure svg{display:block;width:100%;height:auto}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:#394150;margin:6px 0 2px 8px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.legend i{display:inline-block;width:22px;height:0}
details.config{background:var(--card);border:1px solid var(--line);border-radius:10px;margin:0 0 14px;padding:0 16px}
details.config>summary{cursor:pointer;padding:12px 0;font-weight:600;font-size:15px;list-style-position:inside}
details.config>summary span{font-weight:400;color:var(--muted);margin-left:10px;font-size:13px}
details.config .charts{padding:0 0 16px}
details.config figure.chart{border-color:#edf0f3}
.outcomes{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 12px}
.pill{border-radius:999px;padding:2px 10px;font-size:12px;background:#eef1f5;color:#394150}
.pill.ok{background:#e6f4ea;color:#1e7b34}.pill.err{background:#fdecea;color:#a93226}
footer{color:var(--muted);font-size:12px;border-top:1px solid var(--line);padding-top:14px}
footer ul{margin:6px 0;padding-left:18px}
"#;

/// The whole page.
pub(crate) fn page(results: &[ConfigResult], meta: &ReportMeta) -> String {
    let mut o = String::with_capacity(256 * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"vaccel bench report {}\">\n<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&meta.title),
        CSS
    );
    header(&mut o, results, meta);
    o.push_str("<main>\n");
    cards(&mut o, results);
    table(&mut o, results);
    if results
        .iter()
        .any(|r| !r.handler.is_empty() || !r.op.is_empty())
    {
        time_table(&mut o, results);
    }
    let lay = Layout::new(results);
    if lay.distinct_x(results).len() >= 2 {
        let _ = writeln!(
            o,
            "<section id=\"scaling\"><h2>Scaling</h2><p class=\"lead\">How the function copes as {} grow{}.</p><div class=\"charts\">",
            if lay.open {
                "the request rate and connections"
            } else {
                "client threads"
            },
            if lay.open {
                ""
            } else {
                ", one line per think time"
            }
        );
        scaling_charts(&mut o, results, &lay);
        o.push_str("</div></section>\n");
    }
    let metrics: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| results.iter().any(|r| !m.of(r).is_empty()))
        .collect();
    if !metrics.is_empty() {
        o.push_str(
            "<section id=\"distributions\"><h2>Distributions</h2><p class=\"lead\">\
             Round-trip, handler and ML (op) times per configuration.</p>\n",
        );
        for m in &metrics {
            let _ = writeln!(
                o,
                "<h3>{}</h3><p class=\"lead\">{}.</p><div class=\"charts\">",
                esc(m.name()),
                esc(&capitalise(m.source()))
            );
            figure(&mut o, &box_chart(results, &lay, *m));
            figure(&mut o, &percentile_chart(results, *m));
            o.push_str("</div>\n");
        }
        o.push_str("</section>\n");
    }
    o.push_str(
        "<section id=\"configurations\"><h2>Per configuration</h2><p class=\"lead\">\
         Time distributions and the run second by second.</p>\n",
    );
    for (n, r) in results.iter().enumerate() {
        let _ = writeln!(
            o,
            "<details class=\"config\" id=\"config-{n}\" open><summary>{}<span>{}</span></summary>",
            esc(&r.key.label),
            esc(&describe(r))
        );
        outcome_pills(&mut o, r);
        o.push_str("<div class=\"charts trio\">\n");
        if Metric::ALL.iter().any(|m| !m.of(r).is_empty()) {
            figure(&mut o, &histogram_chart(r, n));
        }
        figure(
            &mut o,
            &latency_time_chart(r, meta.latency.get(&r.key.label), n),
        );
        figure(&mut o, &throughput_time_chart(r, n));
        o.push_str("</div></details>\n");
    }
    o.push_str("</section>\n");
    footer(&mut o, meta);
    o.push_str("</main>\n</body>\n</html>\n");
    o
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn describe(r: &ConfigResult) -> String {
    let mut s = match r.key.rate {
        Some(rate) => format!("{} req/s, up to {} connections", short(rate), r.key.threads),
        None => format!(
            "{} thread{}, think {}",
            r.key.threads,
            if r.key.threads == 1 { "" } else { "s" },
            think(r.key.think_s)
        ),
    };
    let _ = write!(
        s,
        " · {} requests · {:.2}% ok · {}",
        r.count(),
        r.success_rate() * 100.0,
        span(r.duration_s)
    );
    s
}

fn header(o: &mut String, results: &[ConfigResult], meta: &ReportMeta) {
    let _ = write!(
        o,
        "<header><h1>{}</h1><div class=\"sub\">{}</div><div class=\"meta\">",
        esc(&meta.title),
        esc(&meta.source)
    );
    let mut item = |k: &str, v: String, code: bool| {
        if code {
            let _ = write!(o, "<div><b>{}</b><code>{}</code></div>", esc(k), esc(&v));
        } else {
            let _ = write!(o, "<div><b>{}</b>{}</div>", esc(k), esc(&v));
        }
    };
    if let Some(u) = &meta.url {
        item("target", u.clone(), true);
    }
    let started = meta
        .started_ms
        .or_else(|| results.iter().map(|r| r.started_ms).min());
    if let Some(s) = started {
        item("started", utc(s), false);
    }
    if let (Some(s), Some(e)) = (started, meta.ended_ms) {
        item(
            "wall time",
            span(e.saturating_sub(s) as f64 / 1000.0),
            false,
        );
    }
    if let Some(m) = &meta.model {
        item("model", m.clone(), false);
    }
    item("configurations", results.len().to_string(), false);
    if let Some(c) = &meta.command {
        item("command", c.clone(), true);
    }
    o.push_str("</div></header>\n");
}

fn cards(o: &mut String, results: &[ConfigResult]) {
    let total: u64 = results.iter().map(|r| r.count()).sum();
    let ok: u64 = results
        .iter()
        .map(|r| r.outcomes.get(&Outcome::Success).copied().unwrap_or(0))
        .sum();
    let rate = if total > 0 {
        ok as f64 / total as f64
    } else {
        1.0
    };
    let mut rtt = crate::model::histogram();
    for r in results {
        let _ = rtt.add(&r.rtt);
    }
    let _ = write!(
        o,
        "<div class=\"cards\"><div class=\"card\"><div class=\"k\">requests</div><div class=\"v\">{total}</div></div>\
         <div class=\"card{}\"><div class=\"k\">success rate</div><div class=\"v\">{:.2}%</div></div>\
         <div class=\"card{}\"><div class=\"k\">errors</div><div class=\"v\">{}</div></div>",
        if rate < 0.99 { " bad" } else { "" },
        rate * 100.0,
        if total > ok { " bad" } else { "" },
        total - ok
    );
    if !rtt.is_empty() {
        let _ = write!(
            o,
            "<div class=\"card\"><div class=\"k\">median RTT, all</div><div class=\"v\">{} ms</div></div>\
             <div class=\"card\"><div class=\"k\">p99 RTT, all</div><div class=\"v\">{} ms</div></div>",
            ms(rtt.value_at_quantile(0.5) as f64),
            ms(rtt.value_at_quantile(0.99) as f64)
        );
    }
    let _ = writeln!(
        o,
        "<div class=\"card\"><div class=\"k\">configurations</div><div class=\"v\">{}</div></div></div>",
        results.len()
    );
}

/// Outcome classes that occur anywhere, in report order.
fn outcome_columns(results: &[ConfigResult]) -> Vec<Outcome> {
    Outcome::ALL
        .into_iter()
        .filter(|o| {
            *o != Outcome::Success
                && results
                    .iter()
                    .any(|r| r.outcomes.get(o).copied().unwrap_or(0) > 0)
        })
        .collect()
}

fn table(o: &mut String, results: &[ConfigResult]) {
    let outs = outcome_columns(results);
    let open = results.iter().any(|r| r.key.rate.is_some());
    let any_late = results.iter().any(|r| r.late > 0 || r.dropped > 0);
    o.push_str(
        "<section id=\"summary\"><h2>Summary</h2><p class=\"lead\">One row per configuration, in run order. \
         Times are round-trip times in milliseconds; throughput counts every completed request.</p>\
         <div class=\"tablewrap\"><table><thead><tr><th class=\"l\">configuration</th><th>threads</th>",
    );
    o.push_str(if open {
        "<th>rate</th>"
    } else {
        "<th>think</th>"
    });
    o.push_str(
        "<th>requests</th><th>success</th><th>req/s</th><th>mean</th><th>median</th>\
         <th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th>",
    );
    for c in &outs {
        let _ = write!(o, "<th>{}</th>", esc(c.as_str()));
    }
    if any_late {
        o.push_str("<th>late</th><th>dropped</th>");
    }
    o.push_str("</tr></thead><tbody>\n");
    for r in results {
        let _ = write!(
            o,
            "<tr data-config=\"{}\"><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&r.key.label),
            esc(&r.key.label),
            r.key.threads,
            if open {
                r.key.rate.map_or("-".into(), |x| format!("{}/s", short(x)))
            } else {
                think(r.key.think_s)
            },
            r.count()
        );
        let sr = r.success_rate();
        let cls = if sr < 0.95 {
            " class=\"bad\""
        } else if sr < 0.999 {
            " class=\"warn\""
        } else {
            ""
        };
        let _ = write!(
            o,
            "<td{cls}>{:.2}%</td><td>{:.2}</td>",
            sr * 100.0,
            throughput(r)
        );
        let h = &r.rtt;
        if h.is_empty() {
            o.push_str(&"<td>-</td>".repeat(8));
        } else {
            for v in [
                h.mean(),
                h.value_at_quantile(0.5) as f64,
                h.value_at_quantile(0.9) as f64,
                h.value_at_quantile(0.95) as f64,
                h.value_at_quantile(0.99) as f64,
                h.value_at_quantile(0.999) as f64,
                h.max() as f64,
            ] {
                let _ = write!(o, "<td>{}</td>", ms(v));
            }
        }
        for c in &outs {
            let n = r.outcomes.get(c).copied().unwrap_or(0);
            if n > 0 {
                let _ = write!(o, "<td class=\"bad\">{n}</td>");
            } else {
                o.push_str("<td>0</td>");
            }
        }
        if any_late {
            let _ = write!(o, "<td>{}</td><td>{}</td>", r.late, r.dropped);
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div></section>\n");
}

fn time_table(o: &mut String, results: &[ConfigResult]) {
    o.push_str(
        "<section id=\"server-times\"><h2>Handler and ML (op) time</h2><p class=\"lead\">What the function reported \
         (X-Duration-Seconds, X-Vaccel-Op-Seconds), in milliseconds; the RTT median for comparison.</p>\
         <div class=\"tablewrap\"><table><thead><tr><th class=\"l\" rowspan=\"2\">configuration</th>\
         <th rowspan=\"2\">RTT median</th><th class=\"grp\" colspan=\"5\">handler</th><th class=\"grp\" colspan=\"5\">ML (op)</th></tr><tr>",
    );
    for _ in 0..2 {
        o.push_str("<th>count</th><th>mean</th><th>median</th><th>p95</th><th>p99</th>");
    }
    o.push_str("</tr></thead><tbody>\n");
    for r in results {
        let _ = write!(
            o,
            "<tr><td class=\"l\">{}</td><td>{}</td>",
            esc(&r.key.label),
            if r.rtt.is_empty() {
                "-".into()
            } else {
                ms(r.rtt.value_at_quantile(0.5) as f64)
            }
        );
        for h in [&r.handler, &r.op] {
            if h.is_empty() {
                o.push_str("<td>0</td>");
                o.push_str(&"<td>-</td>".repeat(4));
            } else {
                let _ = write!(
                    o,
                    "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                    h.len(),
                    ms(h.mean()),
                    ms(h.value_at_quantile(0.5) as f64),
                    ms(h.value_at_quantile(0.95) as f64),
                    ms(h.value_at_quantile(0.99) as f64)
                );
            }
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table></div></section>\n");
}

fn outcome_pills(o: &mut String, r: &ConfigResult) {
    o.push_str("<div class=\"outcomes\">");
    let counts: BTreeMap<Outcome, u64> = r
        .outcomes
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, v)| (*k, *v))
        .collect();
    for (k, n) in &counts {
        let _ = write!(
            o,
            "<span class=\"pill {}\">{}: {}</span>",
            if *k == Outcome::Success { "ok" } else { "err" },
            esc(k.as_str()),
            n
        );
    }
    if r.late > 0 || r.dropped > 0 {
        let _ = write!(
            o,
            "<span class=\"pill\">late: {}</span><span class=\"pill\">dropped: {}</span>",
            r.late, r.dropped
        );
    }
    o.push_str("</div>\n");
}

fn footer(o: &mut String, meta: &ReportMeta) {
    o.push_str("<footer>");
    let _ = write!(
        o,
        "Generated by <b>vaccel bench report</b> {}.",
        env!("CARGO_PKG_VERSION")
    );
    if !meta.notes.is_empty() {
        o.push_str("<ul>");
        for n in &meta.notes {
            let _ = write!(o, "<li>{}</li>", esc(n));
        }
        o.push_str("</ul>");
    }
    o.push_str(
        "<p>Percentiles come from HdrHistograms (3 significant digits); per-second percentiles use 2. \
         RTT counts only requests that got an HTTP status; failed connections and time-outs are in the outcome counts.</p>\
         </footer>\n",
    );
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_times_and_out_of_range_timestamps() {
        assert_eq!(utc(1_709_251_199_000), "2024-02-29 23:59:59 UTC");
        // A JTL may carry any number: no panic, the raw value.
        assert_eq!(utc(u64::MAX), format!("{} ms since 1970 UTC", u64::MAX));
    }
}
