//! Image decoding and the classification preprocessing contract:
//!
//! 1. decode (JPEG, PNG or WebP), convert to 8-bit RGB;
//! 2. resize so the short side is `S` (256 for a 224 crop) and the long side
//!    `round(long * S / short)`, with a bilinear filter that widens with the
//!    scale factor when downscaling (antialiasing), computed exactly like
//!    Pillow's `Image.resize(..., BILINEAR)`: double-precision weights turned
//!    into 22-bit fixed point, a horizontal pass then a vertical pass, each
//!    rounding to 8 bits;
//! 3. centre crop at `((w - cw) / 2, (h - ch) / 2)`;
//! 4. `(x - 127) / 128` as `f32`, NCHW (or NHWC).
//!
//! Only the cropped region is resampled: each output pixel depends on its
//! own filter window alone, so the result equals resizing the whole image
//! then cropping, at a fraction of the work.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits, RgbImage};
use vaccel_core::{Error, Result};

/// Default largest image accepted, in pixels (40 megapixels).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// Formats this plugin decodes.
pub const SUPPORTED: &str = "JPEG, PNG and WebP";

fn format_name(f: ImageFormat) -> String {
    f.extensions_str()
        .first()
        .map(|e| e.to_ascii_uppercase())
        .unwrap_or_else(|| format!("{f:?}"))
}

/// Decode `bytes` into 8-bit RGB. The size is read from the header and checked
/// against `max_pixels` before any pixel is decoded, and the decoder runs under
/// memory limits derived from that size.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<RgbImage> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::inval(format!("cannot decode image: {e}")))?;
    let format = match reader.format() {
        None => {
            return Err(Error::inval(format!(
                "cannot decode image: unrecognised format (the supported formats are {SUPPORTED})"
            )));
        }
        Some(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)) => f,
        Some(f) => {
            return Err(Error::inval(format!(
                "unsupported image format {}: the supported formats are {SUPPORTED}",
                format_name(f)
            )));
        }
    };
    if format == ImageFormat::Jpeg {
        check_jpeg_complete(bytes)?;
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| Error::inval(format!("cannot decode image: {e}")))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels == 0 {
        return Err(Error::inval(format!(
            "cannot decode image: it is {w}x{h} pixels"
        )));
    }
    if pixels > max_pixels {
        return Err(Error::inval(format!(
            "image is {w}x{h} ({pixels} pixels), above the limit of {max_pixels} pixels (VACCEL_MAX_IMAGE_PIXELS)"
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    // Decoded pixels (at most 16-bit RGBA) plus decoder working memory.
    limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(64 << 20));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| Error::inval(format!("cannot decode image: {e}")))?;
    Ok(img.into_rgb8())
}

/// JPEG decoders fill in missing data silently; refuse a truncated file as
/// Pillow does. Entropy-coded data never holds `FF DA` (start of scan) or
/// `FF D9` (end of image): an `FF` there is always followed by `00` or a
/// restart marker. So a complete file has an end-of-image marker after its
/// last start-of-scan marker.
fn check_jpeg_complete(b: &[u8]) -> Result<()> {
    let last_sos = b
        .windows(2)
        .rposition(|w| w == [0xff, 0xda])
        .ok_or_else(|| {
            Error::inval(
                "cannot decode image: the JPEG has no image data (no start-of-scan marker)",
            )
        })?;
    if !b[last_sos + 2..].windows(2).any(|w| w == [0xff, 0xd9]) {
        return Err(Error::inval(
            "cannot decode image: the JPEG is truncated (no end-of-image marker after its last scan)",
        ));
    }
    Ok(())
}

/// Tensor layout of an image input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[1, 3, H, W]`.
    Nchw,
    /// `[1, H, W, 3]`.
    Nhwc,
}

/// Geometry of the preprocessing for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Resized width.
    pub resized_w: usize,
    /// Resized height.
    pub resized_h: usize,
    /// Crop left edge.
    pub left: usize,
    /// Crop top edge.
    pub top: usize,
}

/// The resize and crop for an image of `w`×`h` and a crop of `cw`×`ch`: the
/// short side goes to `round(max(cw, ch) * 256 / 224)`.
pub fn geometry(w: usize, h: usize, cw: usize, ch: usize) -> Geometry {
    let short = ((cw.max(ch) as f64) * 256.0 / 224.0 + 0.5) as usize;
    let (rw, rh) = if w <= h {
        (
            short,
            ((h as f64) * (short as f64) / (w as f64) + 0.5) as usize,
        )
    } else {
        (
            ((w as f64) * (short as f64) / (h as f64) + 0.5) as usize,
            short,
        )
    };
    // Rounding never makes a side shorter than the crop, but stay safe.
    let (rw, rh) = (rw.max(cw), rh.max(ch));
    Geometry {
        resized_w: rw,
        resized_h: rh,
        left: (rw - cw) / 2,
        top: (rh - ch) / 2,
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point filter weights for a run of output positions.
struct Weights {
    /// First input index of each output's window.
    start: Vec<usize>,
    /// Window length of each output.
    len: Vec<usize>,
    /// Row stride of `w`.
    ksize: usize,
    /// `w[i * ksize + j]`: weight of input `start[i] + j` for output `i`.
    w: Vec<i32>,
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Weights for resampling `in_size` samples to `out_size`, for the outputs
/// `first .. first + count`.
fn weights(in_size: usize, out_size: usize, first: usize, count: usize) -> Weights {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle filter has support 1
    let ksize = support.ceil() as usize * 2 + 1;
    let mut start = Vec::with_capacity(count);
    let mut len = Vec::with_capacity(count);
    let mut w = vec![0i32; count * ksize];
    let mut k = vec![0f64; ksize];
    for (i, xx) in (first..first + count).enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        // `as` truncates toward zero, as C's (int) does.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).clamp(0, in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut total = 0.0;
        for (j, kj) in k.iter_mut().enumerate().take(n) {
            let v = triangle(((j + xmin) as f64 - center + 0.5) / filterscale);
            *kj = v;
            total += v;
        }
        let row = &mut w[i * ksize..i * ksize + n];
        for (dst, &v) in row.iter_mut().zip(&k[..n]) {
            let v = if total != 0.0 { v / total } else { v };
            let f = v * f64::from(1u32 << PRECISION_BITS);
            *dst = if f < 0.0 {
                (f - 0.5) as i32
            } else {
                (f + 0.5) as i32
            };
        }
        start.push(xmin);
        len.push(n);
    }
    Weights {
        start,
        len,
        ksize,
        w,
    }
}

#[inline]
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Scratch buffers reused between calls on one thread.
#[derive(Debug, Default)]
pub struct Scratch {
    rows: Vec<u8>,
}

/// Resize and crop `img` per [`geometry`], then write the normalised tensor of
/// shape `[1, 3, ch, cw]` (NCHW) or `[1, ch, cw, 3]` (NHWC) into `out`.
pub fn preprocess(
    img: &RgbImage,
    cw: usize,
    ch: usize,
    layout: Layout,
    scratch: &mut Scratch,
    out: &mut [f32],
) -> Result<()> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if out.len() != 3 * cw * ch {
        return Err(Error::backend(format!(
            "preprocess: output holds {} values, {cw}x{ch}x3 needed",
            out.len()
        )));
    }
    let g = geometry(w, h, cw, ch);
    let src = img.as_raw();
    let hw = weights(w, g.resized_w, g.left, cw);
    let vw = weights(h, g.resized_h, g.top, ch);
    // Input rows the vertical pass reads.
    let row0 = vw.start[0];
    let row1 = (0..ch)
        .map(|r| vw.start[r] + vw.len[r])
        .max()
        .unwrap_or(row0);
    let nrows = row1 - row0;
    let stride = cw * 3;
    let rows = &mut scratch.rows;
    rows.clear();
    rows.resize(nrows * stride, 0);
    // Horizontal pass: input rows row0..row1, crop columns only.
    for (y, dst) in (row0..row1).zip(rows.chunks_exact_mut(stride)) {
        let line = &src[y * w * 3..(y + 1) * w * 3];
        for x in 0..cw {
            let (s, n) = (hw.start[x], hw.len[x]);
            let kw = &hw.w[x * hw.ksize..x * hw.ksize + n];
            let px = &line[s * 3..(s + n) * 3];
            let (mut r, mut gg, mut b) = (
                1i32 << (PRECISION_BITS - 1),
                1i32 << (PRECISION_BITS - 1),
                1i32 << (PRECISION_BITS - 1),
            );
            for (p, &k) in px.chunks_exact(3).zip(kw) {
                r += i32::from(p[0]) * k;
                gg += i32::from(p[1]) * k;
                b += i32::from(p[2]) * k;
            }
            dst[x * 3] = clip8(r);
            dst[x * 3 + 1] = clip8(gg);
            dst[x * 3 + 2] = clip8(b);
        }
    }
    // Vertical pass, normalising straight into the tensor.
    let lut: [f32; 256] = std::array::from_fn(|v| (v as f32 - 127.0) / 128.0);
    let plane = cw * ch;
    let mut acc = vec![0i32; stride];
    for r in 0..ch {
        let (s, n) = (vw.start[r], vw.len[r]);
        let kw = &vw.w[r * vw.ksize..r * vw.ksize + n];
        acc.fill(1i32 << (PRECISION_BITS - 1));
        for (j, &k) in kw.iter().enumerate() {
            let line = &rows[(s + j - row0) * stride..(s + j - row0 + 1) * stride];
            for (a, &p) in acc.iter_mut().zip(line) {
                *a += i32::from(p) * k;
            }
        }
        match layout {
            Layout::Nchw => {
                for x in 0..cw {
                    for c in 0..3 {
                        out[c * plane + r * cw + x] = lut[clip8(acc[x * 3 + c]) as usize];
                    }
                }
            }
            Layout::Nhwc => {
                for (dst, &a) in out[r * stride..(r + 1) * stride].iter_mut().zip(&acc) {
                    *dst = lut[clip8(a) as usize];
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_the_reference() {
        // dog.jpg: 768x576 -> 341x256, crop at (58, 16).
        assert_eq!(
            geometry(768, 576, 224, 224),
            Geometry {
                resized_w: 341,
                resized_h: 256,
                left: 58,
                top: 16
            }
        );
        // cat.jpg: 451x300 -> 385x256 (451*256/300 = 384.85).
        assert_eq!(geometry(451, 300, 224, 224).resized_w, 385);
        assert_eq!(
            geometry(1, 1, 224, 224),
            Geometry {
                resized_w: 256,
                resized_h: 256,
                left: 16,
                top: 16
            }
        );
        assert_eq!(geometry(300, 600, 224, 224).resized_h, 512);
    }

    #[test]
    fn weights_are_normalised_and_identity_at_scale_one() {
        let w = weights(10, 10, 0, 10);
        for i in 0..10 {
            assert_eq!(w.start[i], i);
            assert_eq!(w.w[i * w.ksize], 1 << PRECISION_BITS);
        }
        let w = weights(1000, 256, 0, 256);
        for i in 0..256 {
            let sum: i32 = w.w[i * w.ksize..i * w.ksize + w.len[i]].iter().sum();
            assert!(
                (sum - (1 << PRECISION_BITS)).abs() <= w.len[i] as i32,
                "{i}: {sum}"
            );
        }
    }

    #[test]
    fn constant_images_stay_constant() {
        for (iw, ih) in [(1, 1), (3, 500), (640, 480), (224, 224), (256, 256)] {
            let img = RgbImage::from_pixel(iw, ih, image::Rgb([10, 127, 255]));
            let mut out = vec![0f32; 3 * 224 * 224];
            preprocess(
                &img,
                224,
                224,
                Layout::Nchw,
                &mut Scratch::default(),
                &mut out,
            )
            .unwrap();
            let plane = 224 * 224;
            assert!(
                out[..plane].iter().all(|&v| v == (10.0 - 127.0) / 128.0),
                "{iw}x{ih}"
            );
            assert!(out[plane..2 * plane].iter().all(|&v| v == 0.0));
            assert!(out[2 * plane..].iter().all(|&v| v == 1.0));
        }
    }

    #[test]
    fn crop_of_an_exact_size_image_is_a_copy() {
        // 256x256 needs no resize: the output is the centre 224x224, unchanged.
        let img = RgbImage::from_fn(256, 256, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        });
        let mut out = vec![0f32; 3 * 224 * 224];
        preprocess(
            &img,
            224,
            224,
            Layout::Nhwc,
            &mut Scratch::default(),
            &mut out,
        )
        .unwrap();
        for (y, x) in [(0usize, 0usize), (10, 200), (223, 223)] {
            let p = img.get_pixel(x as u32 + 16, y as u32 + 16);
            for c in 0..3 {
                assert_eq!(out[(y * 224 + x) * 3 + c], (p[c] as f32 - 127.0) / 128.0);
            }
        }
    }

    #[test]
    fn downscale_averages() {
        // 2:1 horizontal downscale of alternating 0/200 columns gives ~100.
        let img = RgbImage::from_fn(1024, 512, |x, _| {
            if x % 2 == 0 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([200, 200, 200])
            }
        });
        let mut out = vec![0f32; 3 * 224 * 224];
        preprocess(
            &img,
            224,
            224,
            Layout::Nchw,
            &mut Scratch::default(),
            &mut out,
        )
        .unwrap();
        let v = out[224 * 100 + 100] * 128.0 + 127.0;
        assert!((v - 100.0).abs() <= 1.0, "{v}");
    }
}
