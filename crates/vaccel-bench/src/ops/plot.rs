//! One SVG line plot per comparison (plotters, SVG backend).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{Error, Result};

/// One line.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// (x, y) points, x ascending, x in plot coordinates.
    pub points: Vec<(f64, f64)>,
}

/// A plot description. The x axis is linear in plot coordinates; callers
/// that want a log axis pass `log2(x)` and label the ticks with the sizes
/// (so every tick sits on a measured size and reads `1 KiB`, `1280×720`).
/// The y axis is logarithmic.
#[derive(Debug, Clone)]
pub struct Plot {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_desc: String,
    /// Y axis description.
    pub y_desc: String,
    /// X ticks: (position in plot coordinates, label).
    pub x_ticks: Vec<(f64, String)>,
    /// Lines.
    pub series: Vec<Series>,
}

fn color(name: &str) -> RGBColor {
    match name {
        "local" => RGBColor(31, 119, 180),
        "unix" => RGBColor(44, 160, 44),
        "unix shm" => RGBColor(148, 103, 189),
        "tcp" => RGBColor(214, 39, 40),
        "floor unix" => RGBColor(120, 200, 110),
        "floor unix shm" => RGBColor(197, 176, 213),
        "floor tcp" => RGBColor(250, 140, 135),
        _ => RGBColor(110, 110, 110),
    }
}

fn style(name: &str) -> ShapeStyle {
    ShapeStyle {
        color: color(name).to_rgba(),
        filled: false,
        stroke_width: if name.starts_with("floor") { 1 } else { 2 },
    }
}

/// A y tick label: at most 3 significant digits, no trailing zeros.
fn label_y(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e6).contains(&a) {
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

/// Tick values in [lo, hi] for a log axis: 1-2-5 steps, or 1…9 steps
/// when that gives fewer than three.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && lo.is_finite() && hi.is_finite()) {
        return Vec::new();
    }
    let (d0, d1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let ticks = |ms: &[f64]| -> Vec<f64> {
        (d0..=d1)
            .flat_map(|d| ms.iter().map(move |m| m * 10f64.powi(d)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let coarse = ticks(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 3 {
        coarse
    } else {
        ticks(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    }
}

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;
const LEGEND: u32 = 175;

/// Write `plot` to `path` as SVG.
pub fn write_svg(path: &Path, plot: &Plot) -> Result<()> {
    let err = |why: String| Error::Plot {
        path: path.display().to_string(),
        why,
    };
    let pts: Vec<(f64, f64)> = plot
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite() && *y > 0.0)
        .collect();
    if pts.is_empty() {
        return Err(err("nothing to plot".into()));
    }
    let (x0, x1) = pts
        .iter()
        .map(|p| p.0)
        .chain(plot.x_ticks.iter().map(|t| t.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
    let (y0, y1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, y)| {
            (a.min(*y), b.max(*y))
        });
    let pad = ((x1 - x0) * 0.04).max(0.25);
    let (x0, x1) = (x0 - pad, x1 + pad);
    // At least a factor of 4 on the log axis, so it gets labelled ticks.
    let mid = (y0 * y1).sqrt();
    let span = (y1 / y0).max(4.0).sqrt() * 1.3;
    let (y0, y1) = (mid / span, mid * span);
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    render(&root, plot, (x0, x1), (y0, y1)).map_err(err)?;
    root.present().map_err(|e| err(e.to_string()))
}

fn render(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    plot: &Plot,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (area, legend) = root.split_horizontally(WIDTH - LEGEND);
    let mut chart = ChartBuilder::on(&area)
        .caption(&plot.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
        .map_err(|x| e(&x))?;
    // Ticks are drawn by hand on both axes: on the measured sizes (x) and
    // at 1-2-5 steps (y), which plotters' log axis does not label when the
    // data spans less than a decade.
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|_| String::new())
        .x_desc(plot.x_desc.as_str())
        .y_desc(plot.y_desc.as_str())
        .draw()
        .map_err(|x| e(&x))?;
    let y_font = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    for y in log_ticks(y0, y1) {
        chart
            .draw_series(LineSeries::new(
                [(x0, y), (x1, y)],
                RGBColor(225, 225, 225).stroke_width(1),
            ))
            .map_err(|x| e(&x))?;
        let (px, py) = chart.backend_coord(&(x0, y));
        area.draw(&Text::new(label_y(y), (px - 6, py), y_font.clone()))
            .map_err(|x| e(&x))?;
    }
    // X ticks on the measured sizes: a grid line and a label under the axis.
    let tick_font = ("sans-serif", 13)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (x, label) in &plot.x_ticks {
        chart
            .draw_series(LineSeries::new(
                [(*x, y0), (*x, y1)],
                RGBColor(215, 215, 215).stroke_width(1),
            ))
            .map_err(|x| e(&x))?;
        let (px, py) = chart.backend_coord(&(*x, y0));
        area.draw(&Text::new(label.clone(), (px, py + 6), tick_font.clone()))
            .map_err(|x| e(&x))?;
    }
    let legend_font = ("sans-serif", 14).into_font().color(&BLACK);
    let mut ly = 60;
    for s in &plot.series {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && *y > 0.0)
            .collect();
        if pts.is_empty() {
            continue;
        }
        let st = style(&s.name);
        let c = color(&s.name);
        chart
            .draw_series(LineSeries::new(pts.clone(), st))
            .map_err(|x| e(&x))?;
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(|x| e(&x))?;
        legend
            .draw(&PathElement::new(vec![(6, ly), (34, ly)], st))
            .map_err(|x| e(&x))?;
        legend
            .draw(&Circle::new((20, ly), 3, c.filled()))
            .map_err(|x| e(&x))?;
        legend
            .draw(&Text::new(
                s.name.clone(),
                (42, ly),
                legend_font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(|x| e(&x))?;
        ly += 24;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_svg_with_ticks_and_legend() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.svg");
        write_svg(
            &p,
            &Plot {
                title: "t".into(),
                x_desc: "x".into(),
                y_desc: "y".into(),
                x_ticks: vec![(6.0, "64 B".into()), (10.0, "1 KiB".into())],
                series: vec![
                    Series {
                        name: "local".into(),
                        points: vec![(6.0, 34.0), (7.0, 36.0), (8.0, 35.0), (10.0, 35.5)],
                    },
                    Series {
                        name: "floor tcp".into(),
                        points: vec![(6.0, 34.5), (8.0, 36.0), (10.0, 37.0)],
                    },
                ],
            },
        )
        .unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.trim_start().starts_with("<svg"), "{s}");
        assert!(s.trim_end().ends_with("</svg>"));
        for t in ["floor tcp", "local", "1 KiB", "64 B"] {
            assert!(s.contains(t), "{t}");
        }
        let empty = write_svg(
            &dir.path().join("empty.svg"),
            &Plot {
                title: "t".into(),
                x_desc: "x".into(),
                y_desc: "y".into(),
                x_ticks: vec![],
                series: vec![],
            },
        )
        .unwrap_err();
        assert!(empty.to_string().contains("nothing to plot"));
    }

    #[test]
    fn y_labels_are_short() {
        assert_eq!(label_y(20.0), "20");
        assert_eq!(label_y(0.05), "0.05");
        assert_eq!(label_y(1.25), "1.25");
        assert_eq!(label_y(1500.0), "1500");
        assert_eq!(label_y(2e-5), "2e-5");
    }

    #[test]
    fn log_ticks_step_1_2_5_or_finer() {
        assert_eq!(
            log_ticks(0.9, 120.0),
            [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
        let t = log_ticks(30.0, 45.0);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(log_ticks(17.0, 70.0).len() >= 3);
        assert!(log_ticks(0.0, 1.0).is_empty());
    }
}
