//! The report's charts: inline SVG drawn with plotters' SVG backend into a
//! string. Axes are linear in plot coordinates; a log axis is drawn by
//! passing `log10(v)` (or `log2`) and labelling the ticks with the values,
//! so every chart goes through one frame function with hand-made ticks.
//! Titles and legends are HTML around the SVG (see `html`).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Series colours (Tableau 10), cycled.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th palette colour.
pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// `#rrggbb`.
pub(crate) fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

const GRID: RGBColor = RGBColor(230, 232, 236);
const AXIS: RGBColor = RGBColor(120, 126, 136);
const INK: RGBColor = RGBColor(55, 60, 70);
const FONT: &str = "sans-serif";

/// How values map to plot coordinates on one axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    Linear,
    /// log10; values must be > 0.
    Log10,
    /// log2; values must be > 0.
    Log2,
}

impl Scale {
    pub(crate) fn to_plot(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log10 => v.max(1e-12).log10(),
            Scale::Log2 => v.max(1e-12).log2(),
        }
    }
}

/// One axis: range and ticks in plot coordinates.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<(f64, String)>,
    pub desc: String,
}

/// A short number: at most 3 significant digits, no trailing zeros.
pub(crate) fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() {
        return "0".into();
    }
    if a >= 1e5 {
        let (d, unit) = if a >= 1e9 {
            (1e9, "G")
        } else if a >= 1e6 {
            (1e6, "M")
        } else {
            (1e3, "k")
        };
        return format!("{}{unit}", short(v / d));
    }
    if a < 1e-3 {
        return format!("{v:.0e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// "Nice" linear ticks covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `n`.
pub(crate) fn linear_axis(lo: f64, hi: f64, n: usize, desc: &str, zero: bool) -> Axis {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() && hi >= lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    if zero && lo > 0.0 {
        lo = 0.0;
    }
    if hi - lo < 1e-9 {
        let pad = if hi.abs() > 0.0 { hi.abs() * 0.1 } else { 1.0 };
        lo -= if zero && lo >= 0.0 { 0.0 } else { pad };
        hi += pad;
    }
    let raw = (hi - lo) / n.max(2) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut v = start;
    while v <= end + step * 1e-6 {
        let x = if v.abs() < step * 1e-9 { 0.0 } else { v };
        ticks.push((x, short(x)));
        v += step;
    }
    Axis {
        lo: start,
        hi: end,
        ticks,
        desc: desc.into(),
    }
}

/// A log10 axis over [lo, hi] (> 0) with 1-2-5 ticks (1…9 when that gives fewer than 3).
pub(crate) fn log_axis(lo: f64, hi: f64, desc: &str) -> Axis {
    let lo = if lo > 0.0 && lo.is_finite() { lo } else { 1e-3 };
    let hi = if hi > lo && hi.is_finite() {
        hi
    } else {
        lo * 10.0
    };
    // Pad to at least a factor of 4 around the geometric middle.
    let mid = (lo * hi).sqrt();
    let span = (hi / lo).max(4.0).sqrt() * 1.15;
    let (lo, hi) = (mid / span, mid * span);
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let pick = |ms: &[f64]| -> Vec<f64> {
        (d0..=d1)
            .flat_map(|d| ms.iter().map(move |m| m * 10f64.powi(d)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let mut vals = pick(&[1.0, 2.0, 5.0]);
    if vals.len() < 3 {
        vals = pick(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    }
    if vals.len() > 12 {
        vals = pick(&[1.0]);
    }
    Axis {
        lo: lo.log10(),
        hi: hi.log10(),
        ticks: vals.into_iter().map(|v| (v.log10(), short(v))).collect(),
        desc: desc.into(),
    }
}

/// Ticks on given values (e.g. the measured thread counts), padded range.
pub(crate) fn value_axis(values: &[f64], scale: Scale, desc: &str) -> Axis {
    let pts: Vec<f64> = values.iter().map(|v| scale.to_plot(*v)).collect();
    let lo = pts.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = pts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.06).max(if scale == Scale::Linear { 0.5 } else { 0.25 });
    let mut ticks: Vec<(f64, String)> = values
        .iter()
        .map(|v| (scale.to_plot(*v), short(*v)))
        .collect();
    ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
    ticks.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-9);
    Axis {
        lo: lo - pad,
        hi: hi + pad,
        ticks,
        desc: desc.into(),
    }
}

/// One line of an x/y chart.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub color: RGBColor,
    pub dashed: bool,
    pub width: u32,
    pub markers: bool,
    /// Plot coordinates.
    pub points: Vec<(f64, f64)>,
    /// Fill the area under the line (translucent).
    pub fill: bool,
}

impl Line {
    pub(crate) fn new(color: RGBColor, points: Vec<(f64, f64)>) -> Line {
        Line {
            color,
            dashed: false,
            width: 2,
            markers: false,
            points,
            fill: false,
        }
    }
}

/// A filled rectangle in plot coordinates (histogram bars, boxes).
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub x0: f64,
    pub x1: f64,
    pub y0: f64,
    pub y1: f64,
    pub color: RGBColor,
    pub opacity: f64,
    pub outline: bool,
}

/// A text label under the x axis at a plot x position (group captions).
#[derive(Debug, Clone)]
pub(crate) struct Caption {
    pub x: f64,
    pub text: String,
}

/// A straight segment: from, to, colour, width.
pub(crate) type Segment = ((f64, f64), (f64, f64), RGBColor, u32);

/// Everything one chart draws.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    pub width: u32,
    pub height: u32,
    pub x: Axis,
    pub y: Axis,
    pub bars: Vec<Bar>,
    pub lines: Vec<Line>,
    /// Extra segments (whiskers, medians): (from, to, colour, width).
    pub segments: Vec<Segment>,
    /// Diamond markers (means).
    pub diamonds: Vec<((f64, f64), RGBColor)>,
    /// Captions on a second row under the x tick labels.
    pub captions: Vec<Caption>,
    /// Vertical separators between groups, at plot x.
    pub separators: Vec<f64>,
}

impl Chart {
    pub(crate) fn new(x: Axis, y: Axis) -> Chart {
        Chart {
            width: 640,
            height: 340,
            x,
            y,
            bars: Vec::new(),
            lines: Vec::new(),
            segments: Vec::new(),
            diamonds: Vec::new(),
            captions: Vec::new(),
            separators: Vec::new(),
        }
    }

    /// The chart as an `<svg>` element (no XML declaration, no xmlns URL).
    pub(crate) fn svg(&self) -> String {
        let mut buf = String::new();
        let res = {
            let root =
                SVGBackend::with_string(&mut buf, (self.width, self.height)).into_drawing_area();
            let r = self.draw(&root);
            r.and_then(|()| root.present().map_err(|e| e.to_string()))
        };
        match res {
            Ok(()) => clean_svg(&buf),
            Err(e) => format!(
                "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\"><text x=\"20\" y=\"40\">chart failed: {}</text></svg>",
                super::html::esc(&e),
                w = self.width,
                h = self.height
            ),
        }
    }

    fn draw(&self, root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String> {
        let e = |x: &dyn std::fmt::Display| x.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let bottom = if self.captions.is_empty() { 46 } else { 64 };
        let mut chart = ChartBuilder::on(root)
            .margin_top(10)
            .margin_right(18)
            .margin_left(6)
            .margin_bottom(4)
            .x_label_area_size(bottom)
            .y_label_area_size(64)
            .build_cartesian_2d(self.x.lo..self.x.hi, self.y.lo..self.y.hi)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|_| String::new())
            .axis_style(AXIS.stroke_width(1))
            .x_desc(self.x.desc.as_str())
            .y_desc(self.y.desc.as_str())
            .axis_desc_style((FONT, 13).into_font().color(&INK))
            .draw()
            .map_err(|x| e(&x))?;
        let tick_font = (FONT, 12).into_font().color(&INK);
        let (x0, x1, y0, y1) = (self.x.lo, self.x.hi, self.y.lo, self.y.hi);
        for (y, label) in &self.y.ticks {
            if *y < y0 - 1e-9 || *y > y1 + 1e-9 {
                continue;
            }
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x0, *y), (x1, *y)],
                    GRID.stroke_width(1),
                )))
                .map_err(|x| e(&x))?;
            let (px, py) = chart.backend_coord(&(x0, *y));
            root.draw(&Text::new(
                label.clone(),
                (px - 6, py),
                tick_font.clone().pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(|x| e(&x))?;
        }
        for (x, label) in &self.x.ticks {
            if *x < x0 - 1e-9 || *x > x1 + 1e-9 {
                continue;
            }
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(*x, y0), (*x, y1)],
                    GRID.stroke_width(1),
                )))
                .map_err(|x| e(&x))?;
            let (px, py) = chart.backend_coord(&(*x, y0));
            root.draw(&Text::new(
                label.clone(),
                (px, py + 6),
                tick_font.clone().pos(Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(|x| e(&x))?;
        }
        for x in &self.separators {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(*x, y0), (*x, y1)],
                    RGBColor(200, 204, 212).stroke_width(1),
                )))
                .map_err(|x| e(&x))?;
        }
        let cap_font = (FONT, 12)
            .into_font()
            .style(FontStyle::Bold)
            .color(&INK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        for c in &self.captions {
            let (px, py) = chart.backend_coord(&(c.x, y0));
            root.draw(&Text::new(c.text.clone(), (px, py + 24), cap_font.clone()))
                .map_err(|x| e(&x))?;
        }
        let clamp = |(x, y): (f64, f64)| (x.clamp(x0, x1), y.clamp(y0, y1));
        for b in &self.bars {
            let (a, c) = (clamp((b.x0, b.y0)), clamp((b.x1, b.y1)));
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [a, c],
                    b.color.mix(b.opacity).filled(),
                )))
                .map_err(|x| e(&x))?;
            if b.outline {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [a, c],
                        b.color.stroke_width(1),
                    )))
                    .map_err(|x| e(&x))?;
            }
        }
        for l in &self.lines {
            let pts: Vec<(f64, f64)> = l
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(clamp)
                .collect();
            if pts.is_empty() {
                continue;
            }
            if l.fill && pts.len() > 1 {
                let mut poly = pts.clone();
                poly.push((pts[pts.len() - 1].0, y0));
                poly.push((pts[0].0, y0));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        poly,
                        l.color.mix(0.12).filled(),
                    )))
                    .map_err(|x| e(&x))?;
            }
            let style = l.color.stroke_width(l.width);
            if l.dashed {
                chart
                    .draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))
                    .map_err(|x| e(&x))?;
            } else {
                chart
                    .draw_series(LineSeries::new(pts.clone(), style))
                    .map_err(|x| e(&x))?;
            }
            if l.markers {
                chart
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 3, l.color.filled())))
                    .map_err(|x| e(&x))?;
            }
        }
        for (a, b, c, w) in &self.segments {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![clamp(*a), clamp(*b)],
                    c.stroke_width(*w),
                )))
                .map_err(|x| e(&x))?;
        }
        for (p, c) in &self.diamonds {
            let (px, py) = chart.backend_coord(&clamp(*p));
            let d = 4;
            root.draw(&Polygon::new(
                vec![(px, py - d), (px + d, py), (px, py + d), (px - d, py)],
                WHITE.filled(),
            ))
            .map_err(|x| e(&x))?;
            root.draw(&PathElement::new(
                vec![
                    (px, py - d),
                    (px + d, py),
                    (px, py + d),
                    (px - d, py),
                    (px, py - d),
                ],
                c.stroke_width(2),
            ))
            .map_err(|x| e(&x))?;
        }
        Ok(())
    }
}

/// Make plotters' SVG document an inline element: drop the XML namespace
/// attribute (HTML5 does not need it; the report names no URL) and give it
/// a viewBox so it scales with the page.
fn clean_svg(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .unwrap_or(s);
    let s = s.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    // <svg width="W" height="H" viewBox="0 0 W H" ...>: make the size CSS's.
    match s.find('>') {
        Some(end) if s.starts_with("<svg") => {
            let head = &s[..end];
            let w = attr(head, "width").unwrap_or("640").to_string();
            let h = attr(head, "height").unwrap_or("340").to_string();
            format!(
                "<svg viewBox=\"0 0 {w} {h}\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\">{}",
                &s[end + 1..]
            )
        }
        _ => s.to_string(),
    }
}

fn attr<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let i = head.find(&key)? + key.len();
    let j = head[i..].find('"')? + i;
    Some(&head[i..j])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(1.0), "1");
        assert_eq!(short(12.345), "12.3");
        assert_eq!(short(0.05), "0.05");
        assert_eq!(short(1500.0), "1500");
        assert_eq!(short(250_000.0), "250k");
        assert_eq!(short(3_000_000.0), "3M");
    }

    #[test]
    fn axes() {
        let a = linear_axis(3.0, 97.0, 6, "x", true);
        assert_eq!(a.lo, 0.0);
        assert!(a.hi >= 97.0);
        assert!(a.ticks.len() >= 4 && a.ticks.len() <= 12, "{:?}", a.ticks);
        let l = log_axis(40.0, 4000.0, "y");
        assert!(l.ticks.iter().any(|t| t.1 == "100"), "{:?}", l.ticks);
        assert!(l.lo <= 40f64.log10() && l.hi >= 4000f64.log10());
        let v = value_axis(&[1.0, 2.0, 4.0, 16.0], Scale::Log2, "threads");
        assert_eq!(v.ticks.len(), 4);
        assert_eq!(v.ticks[3], (4.0, "16".to_string()));
    }

    #[test]
    fn svg_is_inline() {
        let mut c = Chart::new(
            linear_axis(0.0, 10.0, 5, "x", true),
            linear_axis(0.0, 5.0, 5, "y", true),
        );
        c.lines.push(Line::new(
            color(0),
            vec![(0.0, 1.0), (5.0, 3.0), (10.0, 2.0)],
        ));
        let s = c.svg();
        assert!(
            s.starts_with("<svg viewBox=\"0 0 640 340\""),
            "{}",
            &s[..80]
        );
        assert!(s.ends_with("</svg>"));
        assert!(!s.contains("http"), "no URL in an inline chart");
    }
}
