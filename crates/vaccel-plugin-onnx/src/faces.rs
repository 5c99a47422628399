//! Face detection (MediaPipe BlazeFace, run as ONNX) and face blurring.
//!
//! Everything here follows `docs/faces-model.md`: letterbox the image to the
//! model's square input, run it, decode the SSD anchors, merge overlapping
//! boxes with MediaPipe's weighted non-maximum suppression, and map the
//! boxes back to image pixels. Blurring pads each box, blurs that region on
//! its own and re-encodes the image as JPEG.

use image::imageops::{self, FilterType};
use image::{ImageBuffer, Rgb, RgbImage};
use vaccel_core::{Detection, Error, Result, TensorRef};

use crate::engine::Model;

/// Which BlazeFace model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceModelKind {
    /// 128×128 input, 896 anchors: faces within ~2 m (portraits, video calls).
    Short,
    /// 192×192 input, 2304 anchors: faces up to ~5 m (group photos).
    Full,
}

impl FaceModelKind {
    /// The model file name in the models directory.
    pub fn file(self) -> &'static str {
        match self {
            FaceModelKind::Short => "face_detection_short_range.onnx",
            FaceModelKind::Full => "face_detection_full_range.onnx",
        }
    }

    /// Parse `short` or `full` (`VACCEL_FACE_MODEL`).
    pub fn parse(s: &str) -> Result<FaceModelKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "short" | "short_range" | "short-range" => Ok(FaceModelKind::Short),
            "" | "full" | "full_range" | "full-range" => Ok(FaceModelKind::Full),
            other => Err(Error::inval(format!(
                "unknown face model '{other}' (VACCEL_FACE_MODEL): use short or full"
            ))),
        }
    }

    /// Square input size.
    pub fn size(self) -> usize {
        match self {
            FaceModelKind::Short => 128,
            FaceModelKind::Full => 192,
        }
    }

    /// Minimum score of a detection.
    pub fn min_score(self) -> f32 {
        match self {
            FaceModelKind::Short => 0.5,
            FaceModelKind::Full => 0.6,
        }
    }

    /// Anchor centres, normalised to the input square.
    pub fn anchors(self) -> Vec<(f32, f32)> {
        // (feature map size, anchors per cell) per distinct stride.
        let maps: &[(usize, usize)] = match self {
            FaceModelKind::Short => &[(16, 2), (8, 6)],
            FaceModelKind::Full => &[(48, 1)],
        };
        let mut v = Vec::new();
        for &(fm, per_cell) in maps {
            for y in 0..fm {
                for x in 0..fm {
                    let c = ((x as f32 + 0.5) / fm as f32, (y as f32 + 0.5) / fm as f32);
                    v.extend(std::iter::repeat_n(c, per_cell));
                }
            }
        }
        v
    }
}

/// How an image was placed on the model's square canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    /// Canvas size.
    pub size: usize,
    /// Image placed at (off_x, off_y) with size nw × nh.
    pub off_x: usize,
    /// Vertical offset.
    pub off_y: usize,
    /// Scaled width.
    pub nw: usize,
    /// Scaled height.
    pub nh: usize,
    /// Original width.
    pub w: usize,
    /// Original height.
    pub h: usize,
}

impl Letterbox {
    /// Geometry for an image `w` × `h` on an `s` × `s` canvas.
    pub fn new(w: usize, h: usize, s: usize) -> Letterbox {
        let l = w.max(h).max(1) as f64;
        let nw = ((w as f64 * s as f64 / l).round() as usize).clamp(1, s);
        let nh = ((h as f64 * s as f64 / l).round() as usize).clamp(1, s);
        Letterbox {
            size: s,
            off_x: (s - nw) / 2,
            off_y: (s - nh) / 2,
            nw,
            nh,
            w,
            h,
        }
    }

    /// Map a normalised canvas point to image pixels.
    pub fn to_image(&self, u: f32, v: f32) -> (f32, f32) {
        let s = self.size as f32;
        (
            (u * s - self.off_x as f32) * self.w as f32 / self.nw as f32,
            (v * s - self.off_y as f32) * self.h as f32 / self.nh as f32,
        )
    }
}

/// The model input: NCHW RGB in [-1, 1], letterboxed on black.
pub fn letterbox_input(img: &RgbImage, s: usize) -> (Vec<f32>, Letterbox) {
    let lb = Letterbox::new(img.width() as usize, img.height() as usize, s);
    let scaled = imageops::resize(img, lb.nw as u32, lb.nh as u32, FilterType::Triangle);
    let plane = s * s;
    let mut t = vec![-1.0f32; 3 * plane];
    for (x, y, p) in scaled.enumerate_pixels() {
        let i = (y as usize + lb.off_y) * s + x as usize + lb.off_x;
        for c in 0..3 {
            t[c * plane + i] = p[c] as f32 / 127.5 - 1.0;
        }
    }
    (t, lb)
}

/// A raw detection, normalised to the canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Raw {
    score: f32,
    b: [f32; 4],
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Decode model outputs (`regressors` [N×16], `classificators` [N]) into
/// detections in image pixels, best first.
pub fn decode(
    kind: FaceModelKind,
    regressors: &[f32],
    logits: &[f32],
    lb: &Letterbox,
) -> Result<Vec<Detection>> {
    let anchors = kind.anchors();
    let n = anchors.len();
    if regressors.len() != n * 16 || logits.len() != n {
        return Err(Error::inval(format!(
            "face model outputs have {} regressor values and {} scores; expected {} and {n}",
            regressors.len(),
            logits.len(),
            n * 16
        )));
    }
    let s = kind.size() as f32;
    let mut raw: Vec<Raw> = Vec::new();
    for (i, &(ax, ay)) in anchors.iter().enumerate() {
        let score = 1.0 / (1.0 + (-logits[i].clamp(-100.0, 100.0)).exp());
        if score < kind.min_score() {
            continue;
        }
        let r = &regressors[i * 16..i * 16 + 4];
        let (cx, cy, w, h) = (r[0] / s + ax, r[1] / s + ay, r[2] / s, r[3] / s);
        raw.push(Raw {
            score,
            b: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
        });
    }
    raw.sort_by(|a, b| b.score.total_cmp(&a.score));
    // MediaPipe's weighted NMS: merge each group into a score-weighted box.
    let mut out = Vec::new();
    while let Some(top) = raw.first().copied() {
        let (group, rest): (Vec<Raw>, Vec<Raw>) =
            raw.into_iter().partition(|d| iou(&d.b, &top.b) > 0.3);
        let group = if group.is_empty() { vec![top] } else { group };
        let total: f32 = group.iter().map(|d| d.score).sum();
        let mut b = [0.0f32; 4];
        for d in &group {
            for (acc, v) in b.iter_mut().zip(d.b) {
                *acc += v * d.score / total;
            }
        }
        let (x0, y0) = lb.to_image(b[0], b[1]);
        let (x1, y1) = lb.to_image(b[2], b[3]);
        out.push(Detection {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
            score: top.score,
        });
        raw = rest
            .into_iter()
            .filter(|d| d.b != top.b || d.score != top.score)
            .collect();
    }
    Ok(out)
}

/// Run a face model on an image.
pub fn detect(model: &dyn Model, kind: FaceModelKind, img: &RgbImage) -> Result<Vec<Detection>> {
    let s = kind.size();
    let (input, lb) = letterbox_input(img, s);
    let name = model
        .inputs()
        .first()
        .map(|i| i.name.clone())
        .unwrap_or_default();
    let t = TensorRef::from_f32(name, vec![1, 3, s, s], &input)?;
    let outs = model.run(&[&t])?;
    let find = |name: &str, idx: usize| {
        outs.iter()
            .find(|o| o.name == name)
            .or_else(|| outs.get(idx))
    };
    let (Some(reg), Some(cls)) = (find("regressors", 0), find("classificators", 1)) else {
        return Err(Error::backend("face model returned fewer than two outputs"));
    };
    decode(kind, &reg.as_f32()?, &cls.as_f32()?, &lb)
}

/// Blur every face (box padded by `padding` of its size on each side).
/// Returns the number of regions blurred.
pub fn blur_faces(img: &mut RgbImage, faces: &[Detection], padding: f32) -> u32 {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let mut n = 0;
    for f in faces {
        let x0 = (f.x - padding * f.width).floor().clamp(0.0, w) as u32;
        let y0 = (f.y - padding * f.height).floor().clamp(0.0, h) as u32;
        let x1 = (f.x + f.width + padding * f.width).ceil().clamp(0.0, w) as u32;
        let y1 = (f.y + f.height + padding * f.height).ceil().clamp(0.0, h) as u32;
        if x1 <= x0 || y1 <= y0 {
            continue;
        }
        let region: ImageBuffer<Rgb<u8>, Vec<u8>> =
            imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image();
        let sigma = (0.1 * (x1 - x0).max(y1 - y0) as f32).max(2.0);
        let blurred = imageops::fast_blur(&region, sigma);
        imageops::replace(img, &blurred, i64::from(x0), i64::from(y0));
        n += 1;
    }
    n
}

/// Encode as baseline JPEG.
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(img.len() / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .map_err(|e| Error::backend(format!("cannot encode JPEG: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_counts_and_centres() {
        let s = FaceModelKind::Short.anchors();
        assert_eq!(s.len(), 896);
        assert_eq!(s[0], (0.5 / 16.0, 0.5 / 16.0));
        assert_eq!(s[1], s[0]);
        assert_eq!(s[512], (0.5 / 8.0, 0.5 / 8.0));
        assert_eq!(s[895], (7.5 / 8.0, 7.5 / 8.0));
        let f = FaceModelKind::Full.anchors();
        assert_eq!(f.len(), 2304);
        assert_eq!(f[49], (1.5 / 48.0, 1.5 / 48.0));
    }

    #[test]
    fn letterbox_geometry_round_trips() {
        let lb = Letterbox::new(1000, 500, 192);
        assert_eq!((lb.nw, lb.nh, lb.off_x, lb.off_y), (192, 96, 0, 48));
        let (x, y) = lb.to_image((96.0 + 0.0) / 192.0, (48.0 + 48.0) / 192.0);
        assert!(
            (x - 500.0).abs() < 1e-3 && (y - 250.0).abs() < 1e-3,
            "{x} {y}"
        );
        let tiny = Letterbox::new(1, 1, 128);
        assert_eq!((tiny.nw, tiny.nh), (128, 128));
    }

    #[test]
    fn weighted_nms_merges_overlaps_and_keeps_separate_faces() {
        let kind = FaceModelKind::Full;
        let n = 2304;
        let mut reg = vec![0.0f32; n * 16];
        let mut logits = vec![-10.0f32; n];
        // Two overlapping detections around anchor 0 and one far away at anchor 2000.
        for (i, score_logit, dx) in [(0usize, 3.0f32, 0.0f32), (1, 2.0, 1.0), (2000, 4.0, 0.0)] {
            reg[i * 16] = dx;
            reg[i * 16 + 2] = 20.0;
            reg[i * 16 + 3] = 20.0;
            logits[i] = score_logit;
        }
        let lb = Letterbox::new(192, 192, 192);
        let d = decode(kind, &reg, &logits, &lb).unwrap();
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].score > d[1].score);
        assert!((d[0].width - 20.0).abs() < 1e-3);
        assert!(decode(kind, &reg[..10], &logits, &lb).is_err());
    }

    #[test]
    fn blur_changes_only_the_face_region() {
        let mut img = RgbImage::from_fn(100, 100, |x, y| {
            Rgb([
                ((x * 7) % 256) as u8,
                ((y * 13) % 256) as u8,
                ((x * y) % 256) as u8,
            ])
        });
        let orig = img.clone();
        let n = blur_faces(
            &mut img,
            &[Detection {
                x: 40.0,
                y: 40.0,
                width: 20.0,
                height: 20.0,
                score: 0.9,
            }],
            0.2,
        );
        assert_eq!(n, 1);
        assert_ne!(img.get_pixel(50, 50), orig.get_pixel(50, 50));
        assert_eq!(img.get_pixel(5, 5), orig.get_pixel(5, 5));
        assert_eq!(img.get_pixel(95, 95), orig.get_pixel(95, 95));
        let jpeg = encode_jpeg(&img, 90).unwrap();
        assert_eq!(&jpeg[..2], &[0xff, 0xd8]);
    }
}
