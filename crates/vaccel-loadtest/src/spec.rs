//! The small languages of the command line: durations, think-time
//! distributions and arrival-rate stages, plus the random numbers that
//! think times draw from.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A malformed value, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} '{value}': {expected}")]
pub struct SpecError {
    /// What kind of value (e.g. `think time`).
    pub what: &'static str,
    /// The text given.
    pub value: String,
    /// The accepted forms.
    pub expected: String,
}

fn err(what: &'static str, value: &str, expected: impl Into<String>) -> SpecError {
    SpecError {
        what,
        value: value.to_string(),
        expected: expected.into(),
    }
}

const DURATION_FORMS: &str =
    "expected a duration such as 250ms, 1.5s, 2m, 1m30s, 1h or 500us (a bare number is seconds)";

/// Parse a duration: `500ms`, `1.5s`, `2m`, `1m30s`, `1h`, `250us`, or a
/// bare number of seconds (`5`, `0.5`).
pub fn parse_duration(s: &str) -> Result<Duration, SpecError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(err("duration", s, DURATION_FORMS));
    }
    if let Ok(secs) = t.parse::<f64>() {
        return secs_to_duration(secs).ok_or_else(|| err("duration", s, DURATION_FORMS));
    }
    let mut total = 0.0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("duration", s, DURATION_FORMS))?;
        if num_end == 0 {
            return Err(err("duration", s, DURATION_FORMS));
        }
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| err("duration", s, DURATION_FORMS))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" | "min" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(err("duration", s, DURATION_FORMS)),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    secs_to_duration(total).ok_or_else(|| err("duration", s, DURATION_FORMS))
}

fn secs_to_duration(secs: f64) -> Option<Duration> {
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// A duration written back compactly for labels: `0s`, `500ms`, `1s`, `1.5s`, `2m`.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        "0s".into()
    } else if us % 60_000_000 == 0 {
        format!("{}m", us / 60_000_000)
    } else if us >= 1_000_000 {
        trim_float(d.as_secs_f64(), "s")
    } else if us % 1000 == 0 {
        format!("{}ms", us / 1000)
    } else if us >= 1000 {
        trim_float(us as f64 / 1000.0, "ms")
    } else {
        format!("{us}us")
    }
}

fn trim_float(v: f64, unit: &str) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

/// How long a client thread waits between two of its requests (closed model).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Think {
    /// Always the same: `0`, `1`, `500ms`, `1.5s`.
    Constant(Duration),
    /// Uniform between two bounds: `uniform:500ms..1.5s` or `0.5..1.5`.
    Uniform(Duration, Duration),
    /// Gaussian, truncated at 0: `gauss:1s/200ms` (mean / standard deviation).
    Gaussian {
        /// Mean.
        mean: Duration,
        /// Standard deviation.
        sd: Duration,
    },
    /// Exponential with this mean (a Poisson process of requests per thread): `exp:1s` or `poisson:1s`.
    Exponential(Duration),
}

const THINK_FORMS: &str = "expected a constant (0, 1, 500ms, 1.5s), uniform:MIN..MAX (or MIN..MAX), gauss:MEAN/SD, or exp:MEAN (also poisson:MEAN)";

impl FromStr for Think {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Think, SpecError> {
        let t = s.trim();
        let bad = || err("think time", s, THINK_FORMS);
        let dur = |x: &str| parse_duration(x).map_err(|_| bad());
        let (kind, arg) = match t.split_once(':') {
            Some((k, a)) => (k.trim().to_ascii_lowercase(), a.trim()),
            None if t.contains("..") => ("uniform".to_string(), t),
            None => ("constant".to_string(), t),
        };
        match kind.as_str() {
            "constant" | "const" => Ok(Think::Constant(dur(arg)?)),
            "uniform" | "u" => {
                let (a, b) = arg.split_once("..").ok_or_else(bad)?;
                let (a, b) = (dur(a)?, dur(b)?);
                if a > b {
                    return Err(err("think time", s, "uniform MIN must not exceed MAX"));
                }
                Ok(Think::Uniform(a, b))
            }
            "gauss" | "gaussian" | "normal" | "g" => {
                let (m, sd) = arg.split_once('/').ok_or_else(bad)?;
                Ok(Think::Gaussian {
                    mean: dur(m)?,
                    sd: dur(sd)?,
                })
            }
            "exp" | "exponential" | "poisson" | "e" => Ok(Think::Exponential(dur(arg)?)),
            _ => Err(bad()),
        }
    }
}

impl Think {
    /// Zero think time.
    pub const ZERO: Think = Think::Constant(Duration::ZERO);

    /// The mean, seconds.
    pub fn mean_s(&self) -> f64 {
        match *self {
            Think::Constant(d) | Think::Exponential(d) => d.as_secs_f64(),
            Think::Uniform(a, b) => (a.as_secs_f64() + b.as_secs_f64()) / 2.0,
            Think::Gaussian { mean, .. } => mean.as_secs_f64(),
        }
    }

    /// Whether it is always zero.
    pub fn is_zero(&self) -> bool {
        matches!(*self, Think::Constant(d) if d.is_zero())
    }

    /// Draw one think time.
    pub fn sample(&self, rng: &mut Rng) -> Duration {
        let secs = match *self {
            Think::Constant(d) => return d,
            Think::Uniform(a, b) => {
                a.as_secs_f64() + (b.as_secs_f64() - a.as_secs_f64()) * rng.next_f64()
            }
            Think::Gaussian { mean, sd } => mean.as_secs_f64() + sd.as_secs_f64() * rng.normal(),
            Think::Exponential(m) => -m.as_secs_f64() * (1.0 - rng.next_f64()).ln(),
        };
        Duration::from_secs_f64(secs.clamp(0.0, 1e6))
    }

    /// A file-name-safe label part: `0s`, `1s`, `500ms`, `u500ms-1.5s`, `g1s-200ms`, `e1s`.
    pub fn label(&self) -> String {
        match *self {
            Think::Constant(d) => format_duration(d),
            Think::Uniform(a, b) => format!("u{}-{}", format_duration(a), format_duration(b)),
            Think::Gaussian { mean, sd } => {
                format!("g{}-{}", format_duration(mean), format_duration(sd))
            }
            Think::Exponential(m) => format!("e{}", format_duration(m)),
        }
    }
}

impl fmt::Display for Think {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Think::Constant(d) => write!(f, "{}", format_duration(d)),
            Think::Uniform(a, b) => {
                write!(f, "uniform:{}..{}", format_duration(a), format_duration(b))
            }
            Think::Gaussian { mean, sd } => {
                write!(f, "gauss:{}/{}", format_duration(mean), format_duration(sd))
            }
            Think::Exponential(m) => write!(f, "exp:{}", format_duration(m)),
        }
    }
}

/// One stage of an open-model run: over `duration`, the arrival rate moves
/// linearly from the previous stage's target (or the start rate) to `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Requests per second at the end of the stage.
    pub target: f64,
}

const STAGES_FORMS: &str =
    "expected DURATION:RATE[,DURATION:RATE...], e.g. 10s:50,30s:100 (rates in requests per second)";

/// Parse k6-style stages: `10s:50,30s:100`.
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, SpecError> {
    let mut v = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (d, r) = part
            .split_once(':')
            .ok_or_else(|| err("stages", s, STAGES_FORMS))?;
        let duration = parse_duration(d).map_err(|_| err("stages", s, STAGES_FORMS))?;
        let target = parse_rate(r).map_err(|_| err("stages", s, STAGES_FORMS))?;
        v.push(Stage { duration, target });
    }
    if v.is_empty() {
        return Err(err("stages", s, STAGES_FORMS));
    }
    if v.iter().all(|st| st.duration.is_zero()) {
        return Err(err("stages", s, "the stages must last longer than 0 s"));
    }
    Ok(v)
}

/// Parse a rate in requests per second (`50`, `12.5`, `50/s`).
pub fn parse_rate(s: &str) -> Result<f64, SpecError> {
    let t = s.trim().trim_end_matches("/s");
    match t.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(err(
            "rate",
            s,
            "expected requests per second, a number >= 0 (e.g. 50 or 12.5)",
        )),
    }
}

/// When each request of an open-model run is due: the arrival schedule.
///
/// Request `n` (from 0) is due when the integral of the rate reaches `n`,
/// so a constant rate `r` sends at `0, 1/r, 2/r, ...` and a ramp follows the
/// rate exactly; the count over any period is what the rate says.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// (start s, duration s, rate at start, rate at end, arrivals before the segment)
    segments: Vec<(f64, f64, f64, f64, f64)>,
    total_s: f64,
}

impl Schedule {
    /// A constant rate for `duration`.
    pub fn constant(rate: f64, duration: Duration) -> Schedule {
        Schedule::stages(
            rate,
            &[Stage {
                duration,
                target: rate,
            }],
        )
    }

    /// Stages starting from `start_rate`.
    pub fn stages(start_rate: f64, stages: &[Stage]) -> Schedule {
        let mut segments = Vec::new();
        let (mut t, mut r, mut n) = (0.0, start_rate, 0.0);
        for st in stages {
            let d = st.duration.as_secs_f64();
            segments.push((t, d, r, st.target, n));
            n += (r + st.target) / 2.0 * d;
            t += d;
            r = st.target;
        }
        Schedule {
            segments,
            total_s: t,
        }
    }

    /// Length of the schedule, seconds.
    pub fn duration_s(&self) -> f64 {
        self.total_s
    }

    /// Requests due over the whole schedule.
    pub fn total(&self) -> u64 {
        let mut n = 0u64;
        // Count exactly with the same arithmetic as `due_s`.
        if let Some(&(_, d, r0, r1, before)) = self.segments.last() {
            let all = before + (r0 + r1) / 2.0 * d;
            n = all.ceil() as u64;
            while n > 0 && self.due_s(n - 1).is_none() {
                n -= 1;
            }
            while self.due_s(n).is_some() {
                n += 1;
            }
        }
        n
    }

    /// When request `n` is due, seconds from the start; `None` when past the end.
    pub fn due_s(&self, n: u64) -> Option<f64> {
        let n = n as f64;
        for &(start, d, r0, r1, before) in &self.segments {
            let in_seg = (r0 + r1) / 2.0 * d;
            if n < before + in_seg {
                let k = n - before;
                if k <= 0.0 {
                    return Some(start);
                }
                // r0 t + (r1 - r0) t² / (2d) = k, solved in the stable form.
                let a = if d > 0.0 { (r1 - r0) / (2.0 * d) } else { 0.0 };
                let disc = (r0 * r0 + 4.0 * a * k).max(0.0);
                let denom = r0 + disc.sqrt();
                let t = if denom > 0.0 { 2.0 * k / denom } else { d };
                let t = start + t.min(d);
                return (t < self.total_s).then_some(t);
            }
        }
        None
    }
}

/// A small, fast random number generator (xoshiro256**, seeded by SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
    spare: Option<f64>,
}

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
            spare: None,
        }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        let th = std::f64::consts::TAU * u2;
        self.spare = Some(r * th.sin());
        r * th.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
        for bad in ["", "abc", "5x", "-1", "ms", "1s5", "s1"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn thinks() {
        assert_eq!("0".parse::<Think>().unwrap(), Think::ZERO);
        assert_eq!(
            "1".parse::<Think>().unwrap(),
            Think::Constant(Duration::from_secs(1))
        );
        assert_eq!(
            "0.5..1.5".parse::<Think>().unwrap(),
            Think::Uniform(Duration::from_millis(500), Duration::from_millis(1500))
        );
        assert_eq!(
            "gauss:1s/200ms".parse::<Think>().unwrap(),
            Think::Gaussian {
                mean: Duration::from_secs(1),
                sd: Duration::from_millis(200)
            }
        );
        assert_eq!(
            "poisson:2s".parse::<Think>().unwrap(),
            Think::Exponential(Duration::from_secs(2))
        );
        for bad in ["x", "uniform:2..1", "gauss:1s", "weird:1s", "exp:", ""] {
            let e = bad.parse::<Think>().unwrap_err().to_string();
            assert!(e.contains("think time"), "{e}");
        }
        assert_eq!("1".parse::<Think>().unwrap().label(), "1s");
        assert_eq!(
            "uniform:0.5..1.5".parse::<Think>().unwrap().label(),
            "u500ms-1.5s"
        );
        let mut rng = Rng::new(7);
        let e: Think = "exp:100ms".parse().unwrap();
        let n = 20_000;
        let mean = (0..n)
            .map(|_| e.sample(&mut rng).as_secs_f64())
            .sum::<f64>()
            / n as f64;
        assert!((mean - 0.1).abs() < 0.005, "{mean}");
        let g: Think = "gauss:1s/100ms".parse().unwrap();
        let mean = (0..n)
            .map(|_| g.sample(&mut rng).as_secs_f64())
            .sum::<f64>()
            / n as f64;
        assert!((mean - 1.0).abs() < 0.01, "{mean}");
        let u: Think = "0.2..0.4".parse().unwrap();
        assert!((0..1000).all(|_| {
            let x = u.sample(&mut rng).as_secs_f64();
            (0.2..=0.4).contains(&x)
        }));
    }

    #[test]
    fn schedules() {
        let s = Schedule::constant(100.0, Duration::from_secs(10));
        assert_eq!(s.due_s(0), Some(0.0));
        assert!((s.due_s(50).unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(s.total(), 1000);
        assert_eq!(s.due_s(1000), None);
        // Ramp 0 -> 100 over 10 s: 500 requests, the 125th at 5 s.
        let s = Schedule::stages(0.0, &parse_stages("10s:100,10s:100,5s:0").unwrap());
        assert!((s.due_s(125).unwrap() - 5.0).abs() < 1e-6);
        assert!((s.due_s(500).unwrap() - 10.0).abs() < 1e-6);
        assert!((s.due_s(1000).unwrap() - 15.0).abs() < 1e-6);
        assert_eq!(s.total(), 500 + 1000 + 250);
        assert!(parse_stages("10s").is_err());
        assert!(parse_stages("x:1").is_err());
        assert!(parse_stages("10s:-1").is_err());
        assert!(parse_stages("").is_err());
    }
}
