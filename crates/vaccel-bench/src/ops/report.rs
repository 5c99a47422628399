//! Plain-text tables and the machine line.

use serde::Serialize;

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model (`model name` in `/proc/cpuinfo`).
    pub cpu: String,
    /// Logical CPUs this process may use.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// 1-minute load average when the run started.
    pub load_average: Option<f64>,
    /// UTC date and time the run started (`YYYY-MM-DD HH:MM UTC`).
    pub date: String,
}

impl Machine {
    /// Read the machine's description from `/proc`.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok());
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Machine {
            cpu,
            cpus,
            kernel,
            load_average,
            date: utc_date(secs),
        }
    }

    /// One line for the top of the report.
    pub fn line(&self) -> String {
        let load = self
            .load_average
            .map_or(String::new(), |l| format!(", load average {l:.2}"));
        format!(
            "machine: {}, {} logical CPU(s), Linux {}{load}; date: {}",
            self.cpu, self.cpus, self.kernel, self.date
        )
    }
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the Unix epoch (`N s since
/// 1970 UTC` beyond the calendar's range).
pub fn utc_date(secs: u64) -> String {
    match i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
    {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        None => format!("{secs} s since 1970 UTC"),
    }
}

/// A table of strings: the first column left-aligned, the others right-aligned.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row (as many cells as headers).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Render with aligned columns (widths counted in characters).
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0usize; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (w, c) in width.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |r: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in r.iter().zip(&width).enumerate() {
                let pad = w - c.chars().count();
                if i == 0 {
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str("  ");
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                }
            }
            s.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        let total: usize = width.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}

/// A number with about 3–4 significant digits.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else if a >= 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

/// A ratio such as `1.073×` (three decimals below 10, so targets like
/// 1.02× can be read; one above).
pub fn ratio(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() < 10.0 {
        format!("{v:.3}×")
    } else {
        format!("{v:.1}×")
    }
}

/// A byte count in B, KiB or MiB.
pub fn bytes(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 && n % (1 << 10) == 0 {
        format!("{} KiB", n >> 10)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// `met` / `missed` for a value against an upper bound.
pub fn verdict(v: f64, target: f64) -> &'static str {
    if !v.is_finite() {
        "–"
    } else if v <= target {
        "met"
    } else {
        "missed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date(1_795_000_000), "2026-11-18 11:06 UTC");
        assert_eq!(utc_date(u64::MAX), format!("{} s since 1970 UTC", u64::MAX));
    }

    #[test]
    fn tables_align() {
        let mut t = Table::new(["path", "µs/call"]);
        t.row(vec!["local".into(), "0.014".into()]);
        t.row(vec!["remote unix".into(), "25.10".into()]);
        let s = t.render();
        let lines: Vec<_> = s.lines().collect();
        assert_eq!(lines[0], "path         µs/call");
        assert_eq!(lines[2], "local          0.014");
        assert_eq!(lines[3], "remote unix    25.10");
    }

    #[test]
    fn formatting() {
        assert_eq!(num(1234.6), "1235");
        assert_eq!(num(12.345), "12.35");
        assert_eq!(num(0.01234), "0.0123");
        assert_eq!(ratio(1.2345), "1.234×");
        assert_eq!(ratio(123.45), "123.5×");
        assert_eq!(bytes(64), "64 B");
        assert_eq!(bytes(4096), "4 KiB");
        assert_eq!(bytes(3 << 20), "3 MiB");
        assert_eq!(verdict(1.1, 1.3), "met");
        assert_eq!(verdict(1.4, 1.3), "missed");
    }
}
