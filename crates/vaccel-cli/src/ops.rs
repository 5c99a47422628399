//! Subcommands that run one accelerated op: classify, detect, blur, sgemm, aes.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vaccel::{OpType, Resource, ResourceType, Session};

fn who(sess: &Session, op: OpType) -> String {
    sess.op_plugin(op)
        .map_or_else(|_| sess.plugin().name.clone(), |p| p.name.clone())
}

fn read_input(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).context("reading stdin")?;
        return Ok(v);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `vaccel classify`.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Images (JPEG, PNG, WebP); `-` reads stdin.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Number of labels per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print upstream vAccel's one-line text form instead.
    #[arg(long)]
    pub text: bool,
    /// An ONNX classification model to use instead of the default (registered as a MODEL resource).
    #[arg(long, value_name = "ONNX")]
    pub model: Option<PathBuf>,
    /// Labels for --model: a text file with one class name per line.
    #[arg(long, value_name = "TXT", requires = "model")]
    pub labels: Option<PathBuf>,
    /// Repeat each classification N times and report the mean time.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
}

pub fn classify(sess: &Session, a: &ClassifyArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let model = match &a.model {
        Some(m) => {
            let mut files = vec![m.clone()];
            files.extend(a.labels.clone());
            let r = Resource::from_paths(&files, ResourceType::Model)?;
            sess.register(&r)?;
            Some(r)
        }
        None => None,
    };
    for path in &a.images {
        let img = read_input(path)?;
        let mut took = Duration::ZERO;
        for i in 0..a.repeat.max(1) {
            let t0 = Instant::now();
            if a.text {
                let t = sess.image_classify_text(&img)?;
                took += t0.elapsed();
                if i == 0 {
                    writeln!(out, "{}: {t}", path.display())?;
                }
            } else {
                let labels = sess.image_classify_top(&img, a.top)?;
                took += t0.elapsed();
                if i == 0 {
                    writeln!(out, "{}:", path.display())?;
                    for l in &labels {
                        writeln!(out, "  {:7.3}%  {} [{}]", l.score * 100.0, l.label, l.index)?;
                    }
                }
            }
        }
        writeln!(
            out,
            "  time: {:.3} ms/op (plugin '{}')",
            ms(took) / a.repeat.max(1) as f64,
            who(sess, OpType::ImageClassify)
        )?;
    }
    if let Some(r) = model {
        sess.unregister(&r)?;
    }
    Ok(())
}

/// `vaccel detect`.
#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// Image (JPEG, PNG, WebP); `-` reads stdin.
    pub image: PathBuf,
}

pub fn detect(sess: &Session, a: &DetectArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let img = read_input(&a.image)?;
    let t0 = Instant::now();
    let dets = sess.image_detect(&img)?;
    let el = t0.elapsed();
    writeln!(out, "{}: {} face(s)", a.image.display(), dets.len())?;
    for d in &dets {
        writeln!(
            out,
            "  x={:.0} y={:.0} w={:.0} h={:.0} score={:.3}",
            d.x, d.y, d.width, d.height, d.score
        )?;
    }
    writeln!(
        out,
        "  time: {:.3} ms/op (plugin '{}')",
        ms(el),
        who(sess, OpType::ImageDetect)
    )?;
    Ok(())
}

/// `vaccel blur`.
#[derive(Debug, clap::Args)]
pub struct BlurArgs {
    /// Image (JPEG, PNG, WebP); `-` reads stdin.
    pub image: PathBuf,
    /// Where to write the JPEG with faces blurred (`-`: stdout).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Padding added to each face box on every side, as a fraction of its size.
    #[arg(long, default_value_t = vaccel::ops::DEFAULT_BLUR_PADDING)]
    pub padding: f32,
    /// JPEG quality 1–100.
    #[arg(long, default_value_t = vaccel::ops::DEFAULT_JPEG_QUALITY)]
    pub quality: u8,
}

pub fn blur(sess: &Session, a: &BlurArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let img = read_input(&a.image)?;
    let t0 = Instant::now();
    let (jpeg, faces) = sess.image_blur_faces(&img, a.padding, a.quality)?;
    let el = t0.elapsed();
    if a.output.as_os_str() == "-" {
        out.write_all(&jpeg)?;
        return Ok(());
    }
    std::fs::write(&a.output, &jpeg)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    writeln!(
        out,
        "{}: blurred {faces} face(s) -> {} ({} bytes), {:.3} ms/op (plugin '{}')",
        a.image.display(),
        a.output.display(),
        jpeg.len(),
        ms(el),
        who(sess, OpType::ImageBlurFaces)
    )?;
    Ok(())
}

/// `vaccel sgemm`.
#[derive(Debug, clap::Args)]
pub struct SgemmArgs {
    /// Rows of A and C.
    #[arg(long, default_value_t = 512)]
    pub m: usize,
    /// Columns of B and C.
    #[arg(long, default_value_t = 512)]
    pub n: usize,
    /// Columns of A, rows of B.
    #[arg(long, default_value_t = 512)]
    pub k: usize,
    /// Number of multiplications to time.
    #[arg(long, default_value_t = 10)]
    pub iterations: u32,
    /// Check the result against a naive reference.
    #[arg(long)]
    pub check: bool,
}

/// Deterministic pseudo-random matrix values in [-1, 1).
pub fn fill(seed: u64, n: usize) -> Vec<f32> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

pub fn sgemm(sess: &Session, a: &SgemmArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let (m, n, k) = (a.m, a.n, a.k);
    if m == 0 || n == 0 || k == 0 {
        bail!("--m, --n and --k must be at least 1");
    }
    let elems = |x: usize, y: usize| x.checked_mul(y).filter(|v| *v <= 1 << 28);
    let (Some(ea), Some(eb), Some(ec)) = (elems(m, k), elems(k, n), elems(m, n)) else {
        bail!(
            "matrices of {m}x{k} and {k}x{n} are too large for this command (at most 2^28 elements each)"
        );
    };
    let ma = fill(1, ea);
    let mb = fill(2, eb);
    let mut c = vec![0.0f32; ec];
    sess.sgemm(m, n, k, 1.0, &ma, k, &mb, n, 0.0, &mut c, n)?; // warm-up
    let iters = a.iterations.max(1);
    let t0 = Instant::now();
    for _ in 0..iters {
        sess.sgemm(m, n, k, 1.0, &ma, k, &mb, n, 0.0, &mut c, n)?;
    }
    let per = t0.elapsed() / iters;
    let gflops = 2.0 * m as f64 * n as f64 * k as f64 / per.as_secs_f64() / 1e9;
    writeln!(
        out,
        "sgemm {m}x{k} * {k}x{n}: {:.3} ms/op, {gflops:.2} GFLOP/s (plugin '{}')",
        ms(per),
        who(sess, OpType::BlasSgemm)
    )?;
    if a.check {
        let mut r = vec![0.0f32; ec];
        vaccel::ops::sgemm_reference(m, n, k, 1.0, &ma, k, &mb, n, 0.0, &mut r, n);
        let worst = c
            .iter()
            .zip(&r)
            .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
            .fold(0.0f32, f32::max);
        writeln!(out, "check: max relative error {worst:.2e}")?;
        if worst > 1e-3 {
            bail!("result differs from the reference (max relative error {worst:.2e})");
        }
    }
    Ok(())
}

/// `vaccel aes`.
#[derive(Debug, clap::Args)]
pub struct AesArgs {
    /// encrypt or decrypt.
    #[arg(value_parser = ["encrypt", "decrypt"])]
    pub direction: String,
    /// Key as hex: 32, 48 or 64 digits (AES-128/192/256).
    #[arg(long)]
    pub key: String,
    /// IV as hex: 32 digits.
    #[arg(long)]
    pub iv: String,
    /// Input file (`-`: stdin).
    #[arg(long = "in", value_name = "FILE")]
    pub input: PathBuf,
    /// Output file (`-`: stdout).
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Decode a hex string.
pub fn hex(s: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        bail!(
            "{what}: hex needs an even number of digits, got {}",
            s.len()
        );
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{what}: '{s}' is not hex"))
}

pub fn aes(sess: &Session, a: &AesArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let key = hex(&a.key, "--key")?;
    let iv = hex(&a.iv, "--iv")?;
    let data = read_input(&a.input)?;
    let t0 = Instant::now();
    let res = if a.direction == "encrypt" {
        sess.aes_cbc_encrypt(&key, &iv, &data)?
    } else {
        sess.aes_cbc_decrypt(&key, &iv, &data)?
    };
    let el = t0.elapsed();
    if a.output.as_os_str() == "-" {
        out.write_all(&res)?;
        return Ok(());
    }
    std::fs::write(&a.output, &res)
        .with_context(|| format!("cannot write {}", a.output.display()))?;
    writeln!(
        out,
        "aes-{}-cbc {}: {} -> {} bytes, {:.3} ms/op (plugin '{}')",
        key.len() * 8,
        a.direction,
        data.len(),
        res.len(),
        ms(el),
        who(sess, OpType::AesCbcEncrypt)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decoding() {
        assert_eq!(hex("00ff10", "k").unwrap(), vec![0, 255, 16]);
        assert!(
            hex("0", "k")
                .unwrap_err()
                .to_string()
                .contains("even number")
        );
        assert!(hex("zz", "k").unwrap_err().to_string().contains("not hex"));
        assert!(hex("é0", "k").is_err());
    }

    #[test]
    fn fill_is_deterministic_and_bounded() {
        let a = fill(7, 1000);
        assert_eq!(a, fill(7, 1000));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
    }
}
