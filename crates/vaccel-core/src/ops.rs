//! One place per op: its argument layout in the generic shape, the typed
//! view plugins decode it into, and the output helpers plugins write with.
//! The typed `Session` methods (in [`crate::session`]) encode with the same
//! layouts, so a layout is defined exactly once.
//!
//! | op | read arguments | write arguments |
//! |---|---|---|
//! | NOOP | – | – |
//! | BLAS_SGEMM | m i64, n i64, k i64, α f32, A f32[], lda i64, B f32[], ldb i64, β f32, ldc i64 | C f32[] (in/out) |
//! | MINMAX | data f64[], low f64, high f64 | clamped f64[], min f64, max f64 |
//! | IMAGE_CLASSIFY | image bytes, [top_k u32] | text, [image name], [labels] |
//! | IMAGE_DETECT | image bytes | [text / image name], [detections] |
//! | IMAGE_SEGMENT / POSE / DEPTH | image bytes | image name |
//! | IMAGE_BLUR_FACES | image bytes, [padding f32], [JPEG quality u8] | JPEG bytes, [face count u32] |
//! | EXEC | library string, symbol string, user args… | user args… |
//! | EXEC_WITH_RESOURCE | resource id u64, symbol string, user args… | user args… |
//! | MODEL_LOAD / MODEL_UNLOAD | resource id u64 | – |
//! | MODEL_RUN | resource id u64 (0: default), then per input: header, data | tensor list |
//! | AES_CBC_ENCRYPT / DECRYPT | key (16/24/32 bytes), iv (16 bytes), data | output bytes |
//!
//! `[x]` marks an optional argument. Labels, detections and tensor lists use
//! the little-endian encodings of [`crate::codec`]; see `docs/ops.md`.

use std::borrow::Cow;

use crate::arg::ArgExt;
use crate::codec::{Reader, Writer};
use crate::tensor::{TensorRef, decode_tensors, encode_tensors};
use crate::{Arg, ArgOut, ArgType, Error, OpType, ResourceId, Result};

fn count(op: OpType, read: &[Arg<'_>], min: usize, max: usize) -> Result<()> {
    if read.len() < min || read.len() > max {
        let want = if min == max {
            format!("{min}")
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(Error::inval(format!(
            "{op} expects {want} read argument(s), got {}",
            read.len()
        )));
    }
    Ok(())
}

/// The write argument `i`, or `EINVAL` naming what is missing.
pub fn out<'w, 'a>(
    op: OpType,
    write: &'w mut [ArgOut<'a>],
    i: usize,
    what: &str,
) -> Result<&'w mut ArgOut<'a>> {
    let n = write.len();
    write.get_mut(i).ok_or_else(|| {
        Error::inval(format!(
            "{op} needs write argument {i} ({what}), got {n} write argument(s)"
        ))
    })
}

/// Write text: a fixed (C) buffer gets as much as fits plus a NUL terminator;
/// a growable one gets the exact bytes.
pub fn write_text(o: &mut ArgOut<'_>, text: &str) -> Result<()> {
    if o.is_growable() {
        return o.write(text.as_bytes());
    }
    let cap = o.capacity();
    if cap == 0 {
        return Err(Error::inval("text output buffer has zero size"));
    }
    let n = text.len().min(cap - 1);
    let buf = o.reserve(n + 1)?;
    buf[..n].copy_from_slice(&text.as_bytes()[..n]);
    buf[n] = 0;
    Ok(())
}

fn usize_dim(v: i64, what: &str) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::inval(format!("{what} must not be negative (got {v})")))
}

// ---------------------------------------------------------------- SGEMM

/// Decoded BLAS_SGEMM arguments: C = αAB + βC, row-major.
#[derive(Debug)]
pub struct Sgemm<'a> {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// α.
    pub alpha: f32,
    /// A (m × k, leading dimension `lda`).
    pub a: Cow<'a, [f32]>,
    /// Leading dimension of A.
    pub lda: usize,
    /// B (k × n, leading dimension `ldb`).
    pub b: Cow<'a, [f32]>,
    /// Leading dimension of B.
    pub ldb: usize,
    /// β.
    pub beta: f32,
    /// Leading dimension of C.
    pub ldc: usize,
}

/// Elements a row-major matrix of `rows` × `cols` with leading dimension `ld` spans.
pub fn matrix_span(rows: usize, cols: usize, ld: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(ld)?.checked_add(cols)
}

impl<'a> Sgemm<'a> {
    /// Decode and validate every dimension against the buffers.
    pub fn decode(read: &[Arg<'a>]) -> Result<Sgemm<'a>> {
        count(OpType::BlasSgemm, read, 10, 10)?;
        let m = usize_dim(read[0].scalar::<i64>("sgemm m")?, "sgemm m")?;
        let n = usize_dim(read[1].scalar::<i64>("sgemm n")?, "sgemm n")?;
        let k = usize_dim(read[2].scalar::<i64>("sgemm k")?, "sgemm k")?;
        let s = Sgemm {
            m,
            n,
            k,
            alpha: read[3].scalar("sgemm alpha")?,
            a: read[4].f32s("sgemm A")?,
            lda: usize_dim(read[5].scalar::<i64>("sgemm lda")?, "sgemm lda")?,
            b: read[6].f32s("sgemm B")?,
            ldb: usize_dim(read[7].scalar::<i64>("sgemm ldb")?, "sgemm ldb")?,
            beta: read[8].scalar("sgemm beta")?,
            ldc: usize_dim(read[9].scalar::<i64>("sgemm ldc")?, "sgemm ldc")?,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<()> {
        if self.lda < self.k.max(1) {
            return Err(Error::inval(format!(
                "sgemm: lda ({}) must be >= k ({})",
                self.lda, self.k
            )));
        }
        if self.ldb < self.n.max(1) {
            return Err(Error::inval(format!(
                "sgemm: ldb ({}) must be >= n ({})",
                self.ldb, self.n
            )));
        }
        if self.ldc < self.n.max(1) {
            return Err(Error::inval(format!(
                "sgemm: ldc ({}) must be >= n ({})",
                self.ldc, self.n
            )));
        }
        let need_a = matrix_span(self.m, self.k, self.lda)
            .ok_or_else(|| Error::inval("sgemm: A dimensions overflow"))?;
        if self.a.len() < need_a {
            return Err(Error::inval(format!(
                "sgemm: A has {} elements but m={} k={} lda={} needs {need_a}",
                self.a.len(),
                self.m,
                self.k,
                self.lda
            )));
        }
        let need_b = matrix_span(self.k, self.n, self.ldb)
            .ok_or_else(|| Error::inval("sgemm: B dimensions overflow"))?;
        if self.b.len() < need_b {
            return Err(Error::inval(format!(
                "sgemm: B has {} elements but k={} n={} ldb={} needs {need_b}",
                self.b.len(),
                self.k,
                self.n,
                self.ldb
            )));
        }
        Ok(())
    }

    /// Elements C must hold.
    pub fn c_span(&self) -> usize {
        matrix_span(self.m, self.n, self.ldc).unwrap_or(usize::MAX)
    }

    /// The C buffer from the write arguments, checked against m, n, ldc.
    pub fn c<'w>(&self, write: &'w mut [ArgOut<'_>]) -> Result<&'w mut [f32]> {
        let need = self.c_span();
        let o = out(OpType::BlasSgemm, write, 0, "C")?;
        let cap = o.capacity();
        let c = o
            .as_f32_mut()
            .ok_or_else(|| Error::inval("sgemm: C buffer is not 4-byte aligned"))?;
        if c.len() < need {
            return Err(Error::inval(format!(
                "sgemm: C has {} elements ({cap} bytes) but m={} n={} ldc={} needs {need}",
                c.len(),
                self.m,
                self.n,
                self.ldc
            )));
        }
        Ok(c)
    }
}

/// Plain triple-loop SGEMM: the reference every implementation is tested against.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_reference(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += a[i * lda + p] as f64 * b[p * ldb + j] as f64;
            }
            let prev = if beta == 0.0 {
                0.0
            } else {
                beta * c[i * ldc + j]
            };
            c[i * ldc + j] = alpha * acc as f32 + prev;
        }
    }
}

// ---------------------------------------------------------------- MINMAX

/// Decoded MINMAX arguments.
#[derive(Debug)]
pub struct Minmax<'a> {
    /// Input values.
    pub data: Cow<'a, [f64]>,
    /// Lower clamp bound.
    pub low: f64,
    /// Upper clamp bound.
    pub high: f64,
}

impl<'a> Minmax<'a> {
    /// Decode and validate.
    pub fn decode(read: &[Arg<'a>]) -> Result<Minmax<'a>> {
        count(OpType::Minmax, read, 3, 3)?;
        let m = Minmax {
            data: read[0].f64s("minmax data")?,
            low: read[1].scalar("minmax low")?,
            high: read[2].scalar("minmax high")?,
        };
        if m.low.is_nan() || m.high.is_nan() || m.low > m.high {
            return Err(Error::inval(format!(
                "minmax: low ({}) must be <= high ({})",
                m.low, m.high
            )));
        }
        Ok(m)
    }

    /// Compute: clamp into the first write argument, min and max into the next two.
    pub fn compute(&self, write: &mut [ArgOut<'_>]) -> Result<()> {
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        {
            let o = out(OpType::Minmax, write, 0, "output data")?;
            let bytes = o.reserve(self.data.len() * 8)?;
            for (dst, &v) in bytes.chunks_exact_mut(8).zip(self.data.iter()) {
                min = min.min(v);
                max = max.max(v);
                dst.copy_from_slice(&v.clamp(self.low, self.high).to_ne_bytes());
            }
        }
        out(OpType::Minmax, write, 1, "min")?.write_scalar(min)?;
        out(OpType::Minmax, write, 2, "max")?.write_scalar(max)?;
        Ok(())
    }
}

// ---------------------------------------------------------------- images

/// One classification result.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// Class index in the model's label set.
    pub index: u32,
    /// Class name(s), e.g. `malamute, malemute, Alaskan malamute`.
    pub label: String,
    /// Probability in [0, 1].
    pub score: f32,
}

/// The upstream vAccel text form of the top label:
/// `classification tags: 60.547% malamute, malemute, Alaskan malamute`.
pub fn classification_text(labels: &[Label]) -> String {
    match labels.first() {
        Some(l) => format!("classification tags: {:.3}% {}", l.score * 100.0, l.label),
        None => "classification tags: (none)".to_string(),
    }
}

/// Encode labels for the third IMAGE_CLASSIFY write argument.
pub fn encode_labels(labels: &[Label]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(labels.len() as u32);
    for l in labels {
        w.u32(l.index).f32(l.score).str(&l.label);
    }
    w.finish()
}

/// Decode labels.
pub fn decode_labels(b: &[u8]) -> Result<Vec<Label>> {
    let mut r = Reader::new(b, "labels");
    let n = r.count(12)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let index = r.u32()?;
        let score = r.f32()?;
        let label = r.str()?.to_string();
        v.push(Label {
            index,
            label,
            score,
        });
    }
    r.finish()?;
    Ok(v)
}

/// Decoded IMAGE_CLASSIFY arguments.
#[derive(Debug)]
pub struct Classify<'a> {
    /// Encoded image (JPEG, PNG, WebP…).
    pub image: &'a [u8],
    /// How many labels to return.
    pub top_k: usize,
}

/// Default top-k for classification.
pub const DEFAULT_TOP_K: usize = 5;

fn image_arg<'a>(op: OpType, read: &[Arg<'a>]) -> Result<&'a [u8]> {
    let img = read[0].bytes();
    if img.is_empty() {
        return Err(Error::inval(format!("{op}: the image is empty")));
    }
    Ok(img)
}

impl<'a> Classify<'a> {
    /// Decode.
    pub fn decode(read: &[Arg<'a>]) -> Result<Classify<'a>> {
        count(OpType::ImageClassify, read, 1, 2)?;
        let top_k = match read.get(1) {
            Some(a) => a.scalar::<u32>("classify top_k")? as usize,
            None => DEFAULT_TOP_K,
        };
        if top_k == 0 {
            return Err(Error::inval("classify: top_k must be at least 1"));
        }
        Ok(Classify {
            image: image_arg(OpType::ImageClassify, read)?,
            top_k,
        })
    }

    /// Write the results: text (write 0), image name (write 1, if given),
    /// encoded labels (write 2, if given).
    pub fn write_outputs(write: &mut [ArgOut<'_>], labels: &[Label], imgname: &str) -> Result<()> {
        write_text(
            out(OpType::ImageClassify, write, 0, "text")?,
            &classification_text(labels),
        )?;
        if let Some(o) = write.get_mut(1) {
            write_text(o, imgname)?;
        }
        if let Some(o) = write.get_mut(2) {
            o.write(&encode_labels(labels))?;
        }
        Ok(())
    }
}

/// One detected object (face): a box in pixels of the input image, and a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
    /// Confidence in [0, 1].
    pub score: f32,
}

/// Encode detections.
pub fn encode_detections(d: &[Detection]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(d.len() as u32);
    for x in d {
        w.f32(x.x).f32(x.y).f32(x.width).f32(x.height).f32(x.score);
    }
    w.finish()
}

/// Decode detections.
pub fn decode_detections(b: &[u8]) -> Result<Vec<Detection>> {
    let mut r = Reader::new(b, "detections");
    let n = r.count(20)?;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(Detection {
            x: r.f32()?,
            y: r.f32()?,
            width: r.f32()?,
            height: r.f32()?,
            score: r.f32()?,
        });
    }
    r.finish()?;
    Ok(v)
}

/// Decoded arguments of the single-image ops (DETECT, SEGMENT, POSE, DEPTH).
#[derive(Debug)]
pub struct ImageOp<'a> {
    /// Encoded image.
    pub image: &'a [u8],
}

impl<'a> ImageOp<'a> {
    /// Decode.
    pub fn decode(op: OpType, read: &[Arg<'a>]) -> Result<ImageOp<'a>> {
        count(op, read, 1, 1)?;
        Ok(ImageOp {
            image: image_arg(op, read)?,
        })
    }

    /// Write DETECT results: a summary text (write 0, if given) and encoded
    /// detections (write 1, if given).
    pub fn write_detections(write: &mut [ArgOut<'_>], dets: &[Detection]) -> Result<()> {
        if let Some(o) = write.get_mut(0) {
            write_text(o, &format!("detected {} face(s)", dets.len()))?;
        }
        if let Some(o) = write.get_mut(1) {
            o.write(&encode_detections(dets))?;
        }
        Ok(())
    }
}

/// Decoded IMAGE_BLUR_FACES arguments.
#[derive(Debug)]
pub struct BlurFaces<'a> {
    /// Encoded image.
    pub image: &'a [u8],
    /// Fraction each face box is padded by on every side.
    pub padding: f32,
    /// JPEG quality, 1–100.
    pub quality: u8,
}

/// Default padding of face boxes before blurring (20 %).
pub const DEFAULT_BLUR_PADDING: f32 = 0.2;
/// Default JPEG quality of blurred output.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;

impl<'a> BlurFaces<'a> {
    /// Decode and validate.
    pub fn decode(read: &[Arg<'a>]) -> Result<BlurFaces<'a>> {
        count(OpType::ImageBlurFaces, read, 1, 3)?;
        let padding = match read.get(1) {
            Some(a) => a.scalar::<f32>("blur padding")?,
            None => DEFAULT_BLUR_PADDING,
        };
        if !(0.0..=2.0).contains(&padding) {
            return Err(Error::inval(format!(
                "blur: padding {padding} must be within 0..=2"
            )));
        }
        let quality = match read.get(2) {
            Some(a) => a.scalar::<u8>("blur quality")?,
            None => DEFAULT_JPEG_QUALITY,
        };
        if !(1..=100).contains(&quality) {
            return Err(Error::inval(format!(
                "blur: JPEG quality {quality} must be within 1..=100"
            )));
        }
        Ok(BlurFaces {
            image: image_arg(OpType::ImageBlurFaces, read)?,
            padding,
            quality,
        })
    }

    /// Write the JPEG (write 0) and the face count (write 1, if given).
    pub fn write_outputs(write: &mut [ArgOut<'_>], jpeg: &[u8], faces: u32) -> Result<()> {
        out(OpType::ImageBlurFaces, write, 0, "JPEG output")?.write(jpeg)?;
        if let Some(o) = write.get_mut(1) {
            o.write_scalar(faces)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- exec

/// Decoded EXEC arguments.
#[derive(Debug)]
pub struct Exec<'r, 'a> {
    /// Library path.
    pub library: &'a str,
    /// Function symbol.
    pub symbol: &'a str,
    /// The callee's read arguments.
    pub args: &'r [Arg<'a>],
}

impl<'r, 'a> Exec<'r, 'a> {
    /// Decode.
    pub fn decode(read: &'r [Arg<'a>]) -> Result<Exec<'r, 'a>> {
        count(OpType::Exec, read, 2, usize::MAX)?;
        let library = read[0].str("exec library")?;
        let symbol = read[1].str("exec symbol")?;
        if library.is_empty() || symbol.is_empty() {
            return Err(Error::inval("exec: library and symbol must not be empty"));
        }
        Ok(Exec {
            library,
            symbol,
            args: &read[2..],
        })
    }
}

/// Decoded EXEC_WITH_RESOURCE arguments.
#[derive(Debug)]
pub struct ExecWithResource<'r, 'a> {
    /// The LIB resource.
    pub resource: ResourceId,
    /// Function symbol.
    pub symbol: &'a str,
    /// The callee's read arguments.
    pub args: &'r [Arg<'a>],
}

impl<'r, 'a> ExecWithResource<'r, 'a> {
    /// Decode.
    pub fn decode(read: &'r [Arg<'a>]) -> Result<ExecWithResource<'r, 'a>> {
        count(OpType::ExecWithResource, read, 2, usize::MAX)?;
        let symbol = read[1].str("exec symbol")?;
        if symbol.is_empty() {
            return Err(Error::inval("exec_with_resource: symbol must not be empty"));
        }
        Ok(ExecWithResource {
            resource: read[0].scalar::<u64>("exec resource id")?,
            symbol,
            args: &read[2..],
        })
    }
}

// ---------------------------------------------------------------- models

/// Decoded MODEL_LOAD / MODEL_UNLOAD arguments.
#[derive(Debug, Clone, Copy)]
pub struct ModelRef {
    /// The MODEL resource; 0 means the plugin's default model.
    pub resource: ResourceId,
}

impl ModelRef {
    /// Decode.
    pub fn decode(op: OpType, read: &[Arg<'_>]) -> Result<ModelRef> {
        count(op, read, 1, 1)?;
        Ok(ModelRef {
            resource: read[0].scalar::<u64>("model resource id")?,
        })
    }
}

/// Decoded MODEL_RUN arguments.
#[derive(Debug)]
pub struct ModelRun<'a> {
    /// The MODEL resource; 0 means the plugin's default model.
    pub resource: ResourceId,
    /// Inputs.
    pub inputs: Vec<TensorRef<'a>>,
}

impl<'a> ModelRun<'a> {
    /// Decode.
    pub fn decode(read: &[Arg<'a>]) -> Result<ModelRun<'a>> {
        count(OpType::ModelRun, read, 1, usize::MAX)?;
        let rest = &read[1..];
        if rest.len() % 2 != 0 {
            return Err(Error::inval(
                "model_run: inputs come in (header, data) pairs; got an odd number of arguments",
            ));
        }
        let inputs = rest
            .chunks_exact(2)
            .map(|p| TensorRef::decode_with_data(p[0].bytes(), p[1].bytes()))
            .collect::<Result<Vec<_>>>()?;
        Ok(ModelRun {
            resource: read[0].scalar::<u64>("model resource id")?,
            inputs,
        })
    }

    /// Write the output tensors (write 0).
    pub fn write_outputs(write: &mut [ArgOut<'_>], outputs: &[TensorRef<'_>]) -> Result<()> {
        out(OpType::ModelRun, write, 0, "output tensors")?.write(&encode_tensors(outputs))
    }

    /// Decode the outputs written by a plugin.
    pub fn decode_outputs(b: &[u8]) -> Result<Vec<TensorRef<'_>>> {
        decode_tensors(b)
    }
}

// ---------------------------------------------------------------- AES

/// Decoded AES_CBC_ENCRYPT / AES_CBC_DECRYPT arguments.
#[derive(Debug)]
pub struct AesCbc<'a> {
    /// Key: 16, 24 or 32 bytes.
    pub key: &'a [u8],
    /// Initialisation vector.
    pub iv: [u8; 16],
    /// Plaintext (encrypt) or ciphertext (decrypt).
    pub data: &'a [u8],
}

impl<'a> AesCbc<'a> {
    /// Decode and validate key, IV and (for decryption) the data length.
    pub fn decode(op: OpType, read: &[Arg<'a>]) -> Result<AesCbc<'a>> {
        count(op, read, 3, 3)?;
        let key = read[0].bytes();
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(Error::inval(format!(
                "aes-cbc: key must be 16, 24 or 32 bytes (AES-128/192/256), got {}",
                key.len()
            )));
        }
        let iv: [u8; 16] = read[1].bytes().try_into().map_err(|_| {
            Error::inval(format!(
                "aes-cbc: IV must be 16 bytes, got {}",
                read[1].len()
            ))
        })?;
        let data = read[2].bytes();
        if op == OpType::AesCbcDecrypt && (data.is_empty() || data.len() % 16 != 0) {
            return Err(Error::inval(format!(
                "aes-cbc decrypt: ciphertext length {} is not a non-zero multiple of 16",
                data.len()
            )));
        }
        Ok(AesCbc { key, iv, data })
    }

    /// Size of the ciphertext for `len` bytes of plaintext (PKCS#7 always pads).
    pub fn padded_len(len: usize) -> usize {
        (len / 16 + 1) * 16
    }
}

/// The argument type used for outputs that hold raw bytes.
pub const BYTES: ArgType = ArgType::Buffer;

/// Feed `data` to every decoder of untrusted bytes: the structured payload
/// decoders directly, and every op's argument decoder with `data` split into
/// arguments (first byte: argument count; then `u16` length-prefixed
/// chunks). Used by the fuzz target and by the randomized tests; it must
/// never panic, whatever the input.
#[doc(hidden)]
pub fn fuzz_decoders(data: &[u8]) {
    let _ = decode_labels(data);
    let _ = decode_detections(data);
    let _ = decode_tensors(data);
    let (n, mut rest) = match data.split_first() {
        Some((n, r)) => (*n as usize % 16, r),
        None => (0, data),
    };
    let mut chunks = Vec::with_capacity(n);
    for _ in 0..n {
        if rest.len() < 2 {
            break;
        }
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        let take = len.min(rest.len() - 2);
        chunks.push(&rest[2..2 + take]);
        rest = &rest[2 + take..];
    }
    let read: Vec<Arg<'_>> = chunks.iter().map(|c| Arg::raw(c)).collect();
    let _ = TensorRef::decode_with_data(data, rest);
    if let Ok(s) = Sgemm::decode(&read) {
        // Exercise the C checks against a small buffer too.
        let mut c = vec![0.0f32; s.c_span().min(1 << 16)];
        let mut w = [ArgOut::inout(
            ArgType::Float32Array,
            bytemuck::cast_slice_mut(&mut c),
        )];
        let _ = s.c(&mut w);
    }
    if let Ok(m) = Minmax::decode(&read) {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        let mut w = [
            ArgOut::growable(ArgType::Float64Array, &mut a),
            ArgOut::growable(ArgType::Float64, &mut b),
            ArgOut::growable(ArgType::Float64, &mut c),
        ];
        let _ = m.compute(&mut w);
    }
    let _ = Classify::decode(&read);
    let _ = BlurFaces::decode(&read);
    let _ = Exec::decode(&read);
    let _ = ExecWithResource::decode(&read);
    let _ = ModelRun::decode(&read);
    for op in OpType::ALL {
        let _ = ImageOp::decode(*op, &read);
        let _ = ModelRef::decode(*op, &read);
        let _ = AesCbc::decode(*op, &read);
    }
}

/// Index of the read argument that holds a resource id (`u64`), for ops
/// that reference a resource. Transports use it to translate ids between
/// the two sides; 0 in a model op means "the plugin's default model".
pub fn resource_arg_index(op: OpType) -> Option<usize> {
    match op {
        OpType::ExecWithResource | OpType::ModelLoad | OpType::ModelUnload | OpType::ModelRun => {
            Some(0)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sgemm_args<'a>(
        v: &'a [i64; 6],
        f: &'a [f32; 2],
        a: &'a [f32],
        b: &'a [f32],
    ) -> Vec<Arg<'a>> {
        vec![
            Arg::scalar(&v[0]),
            Arg::scalar(&v[1]),
            Arg::scalar(&v[2]),
            Arg::scalar(&f[0]),
            Arg::f32s(a),
            Arg::scalar(&v[3]),
            Arg::f32s(b),
            Arg::scalar(&v[4]),
            Arg::scalar(&f[1]),
            Arg::scalar(&v[5]),
        ]
    }

    #[test]
    fn sgemm_validation_names_the_problem() {
        let a = [0.0f32; 6];
        let b = [0.0f32; 6];
        // m=2 n=3 k=3 lda=3 ldb=3 ldc=3: B needs 9 elements.
        let dims = [2, 3, 3, 3, 3, 3];
        let e = Sgemm::decode(&sgemm_args(&dims, &[1.0, 0.0], &a, &b)).unwrap_err();
        assert!(e.message().contains("B has 6 elements"), "{e}");
        let dims = [2, 3, 3, 2, 3, 3];
        let e = Sgemm::decode(&sgemm_args(&dims, &[1.0, 0.0], &a, &b)).unwrap_err();
        assert!(e.message().contains("lda (2) must be >= k (3)"), "{e}");
        let dims = [-1, 3, 3, 3, 3, 3];
        let e = Sgemm::decode(&sgemm_args(&dims, &[1.0, 0.0], &a, &b)).unwrap_err();
        assert!(e.message().contains("must not be negative"), "{e}");
        let dims = [2, 3, 2, 3, 3, 3];
        let s = Sgemm::decode(&sgemm_args(&dims, &[1.0, 0.0], &a, &b)).unwrap();
        assert_eq!(s.c_span(), 6);
        let mut c = [0.0f32; 5];
        let mut w = [ArgOut::inout(
            ArgType::Float32Array,
            bytemuck::cast_slice_mut(&mut c),
        )];
        assert!(
            s.c(&mut w)
                .unwrap_err()
                .message()
                .contains("C has 5 elements")
        );
        assert!(
            Sgemm::decode(&[])
                .unwrap_err()
                .message()
                .contains("expects 10")
        );
    }

    #[test]
    fn reference_sgemm() {
        // [1 2; 3 4] x [5 6; 7 8] = [19 22; 43 50]
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [1.0f32; 4];
        sgemm_reference(2, 2, 2, 1.0, &a, 2, &b, 2, 1.0, &mut c, 2);
        assert_eq!(c, [20.0, 23.0, 44.0, 51.0]);
    }

    #[test]
    fn labels_round_trip_and_text() {
        let l = vec![
            Label {
                index: 249,
                label: "malamute, malemute, Alaskan malamute".into(),
                score: 0.60547,
            },
            Label {
                index: 1,
                label: "goldfish".into(),
                score: 0.1,
            },
        ];
        assert_eq!(decode_labels(&encode_labels(&l)).unwrap(), l);
        assert_eq!(
            classification_text(&l),
            "classification tags: 60.547% malamute, malemute, Alaskan malamute"
        );
        let enc = encode_labels(&l);
        for cut in 0..enc.len() {
            assert!(decode_labels(&enc[..cut]).is_err());
        }
    }

    #[test]
    fn text_into_small_c_buffer_is_truncated_with_nul() {
        let mut buf = [0xffu8; 8];
        let mut o = ArgOut::fixed(ArgType::String, &mut buf);
        write_text(&mut o, "classification tags").unwrap();
        assert_eq!(o.written(), b"classif\0");
    }

    #[test]
    fn aes_validation() {
        let key = [0u8; 15];
        let iv = [0u8; 16];
        let e = AesCbc::decode(
            OpType::AesCbcEncrypt,
            &[Arg::raw(&key), Arg::raw(&iv), Arg::raw(b"x")],
        )
        .unwrap_err();
        assert!(e.message().contains("got 15"));
        let key = [0u8; 16];
        let e = AesCbc::decode(
            OpType::AesCbcDecrypt,
            &[Arg::raw(&key), Arg::raw(&iv), Arg::raw(b"x")],
        )
        .unwrap_err();
        assert!(e.message().contains("not a non-zero multiple of 16"));
        let e = AesCbc::decode(
            OpType::AesCbcEncrypt,
            &[Arg::raw(&key), Arg::raw(&iv[..8]), Arg::raw(b"x")],
        )
        .unwrap_err();
        assert!(e.message().contains("IV must be 16 bytes"));
        assert_eq!(AesCbc::padded_len(0), 16);
        assert_eq!(AesCbc::padded_len(16), 32);
    }

    #[test]
    fn minmax_compute() {
        let d = [3.0f64, -1.0, 10.0];
        let (lo, hi) = (0.0f64, 5.0f64);
        let m = Minmax::decode(&[Arg::f64s(&d), Arg::scalar(&lo), Arg::scalar(&hi)]).unwrap();
        let mut outv = Vec::new();
        let (mut mn, mut mx) = ([0u8; 8], [0u8; 8]);
        let mut w = [
            ArgOut::growable(ArgType::Float64Array, &mut outv),
            ArgOut::fixed(ArgType::Float64, &mut mn),
            ArgOut::fixed(ArgType::Float64, &mut mx),
        ];
        m.compute(&mut w).unwrap();
        let clamped: Vec<f64> = bytemuck::pod_collect_to_vec(&outv);
        assert_eq!(clamped, vec![3.0, 0.0, 5.0]);
        assert_eq!(f64::from_ne_bytes(mn), -1.0);
        assert_eq!(f64::from_ne_bytes(mx), 10.0);
        let e = Minmax::decode(&[Arg::f64s(&d), Arg::scalar(&hi), Arg::scalar(&lo)]).unwrap_err();
        assert!(e.message().contains("low (5) must be <= high (0)"));
    }

    #[test]
    fn image_ops_reject_empty_images() {
        let e = Classify::decode(&[Arg::raw(&[])]).unwrap_err();
        assert!(e.message().contains("image is empty"));
        let e = ImageOp::decode(OpType::ImageDetect, &[]).unwrap_err();
        assert!(e.message().contains("IMAGE_DETECT expects 1"));
        let d = vec![Detection {
            x: 1.0,
            y: 2.0,
            width: 3.0,
            height: 4.0,
            score: 0.9,
        }];
        assert_eq!(decode_detections(&encode_detections(&d)).unwrap(), d);
    }
}
