//! Video input: an H.264 `.mp4` turned into JPEG frames, as the clients of
//! the published serverless-AI studies do (they read a video, encode each
//! frame as JPEG and post the frames to a face-blur function).
//!
//! Demuxing is done by the `mp4` crate, decoding by Cisco's OpenH264 (the
//! `openh264` crate builds it from source with the C++ compiler), JPEG
//! encoding by `image`. The samples of an MP4 H.264 track are in AVCC form
//! (each NAL unit prefixed with its length); they are rewritten into Annex-B
//! (start codes), preceded once by the SPS and PPS from the `avcC` box, which
//! is what the decoder reads.
//!
//! Bad input is an error naming the file, never a panic: a file that is not
//! MP4, one without an H.264 video track, truncated or corrupt samples. Both
//! libraries run under `catch_unwind`, so a panic inside them becomes
//! [`VideoError::Corrupt`] too.

use std::fs::File;
use std::io::BufReader;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;

/// JPEG quality of the encoded frames (the studies' clients use OpenCV's
/// default, 95, or PIL's, 75; 85 sits between, at about 25 KB for 640x360).
pub const JPEG_QUALITY: u8 = 85;

/// Largest frame accepted, in pixels (8K UHD).
pub const MAX_FRAME_PIXELS: usize = 7680 * 4320;

/// Why a video could not be turned into frames.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The video.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an MP4 (ISO base media) file the demuxer can read.
    #[error("{}: not an MP4 file: {why}", path.display())]
    NotMp4 {
        /// The video.
        path: PathBuf,
        /// What the demuxer said.
        why: String,
    },
    /// The file has no H.264 (`avc1`) video track.
    #[error("{}: no H.264 video track (tracks: {found})", path.display())]
    NoH264 {
        /// The video.
        path: PathBuf,
        /// The tracks it has, e.g. `1: H.265 video, 2: AAC audio`, or `none`.
        found: String,
    },
    /// A sample could not be read or decoded.
    #[error("{}: corrupt H.264 data{}: {why}", path.display(), sample.map(|s| format!(" in sample {s}")).unwrap_or_default())]
    Corrupt {
        /// The video.
        path: PathBuf,
        /// The 1-based sample (frame in decoding order), when known.
        sample: Option<u32>,
        /// What went wrong.
        why: String,
    },
    /// The track decoded to no picture at all.
    #[error("{}: the H.264 track decoded to no frame", path.display())]
    NoFrames {
        /// The video.
        path: PathBuf,
    },
    /// A decoded frame could not be encoded as JPEG.
    #[error("{}: encoding frame {frame} as JPEG: {why}", path.display())]
    Encode {
        /// The video.
        path: PathBuf,
        /// 0-based frame index.
        frame: usize,
        /// What the encoder said.
        why: String,
    },
}

/// Decode the first H.264 track of the `.mp4` at `path` and JPEG-encode each
/// frame (quality [`JPEG_QUALITY`]), in display order; at most `max_frames`
/// frames when given (decoding stops there). Every frame is held in memory:
/// about 25 KB per 640x360 frame.
pub fn frames(path: &Path, max_frames: Option<usize>) -> Result<Vec<Bytes>, VideoError> {
    let max = max_frames.unwrap_or(usize::MAX);
    if max == 0 {
        return Ok(Vec::new());
    }
    let io = |source| VideoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let reader = BufReader::new(file);
    match catch_unwind(AssertUnwindSafe(|| decode(path, reader, size, max))) {
        Ok(r) => r,
        Err(panic) => Err(VideoError::Corrupt {
            path: path.to_path_buf(),
            sample: None,
            why: format!("the demuxer or decoder panicked: {}", panic_message(&panic)),
        }),
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn decode(
    path: &Path,
    reader: BufReader<File>,
    size: u64,
    max: usize,
) -> Result<Vec<Bytes>, VideoError> {
    let corrupt = |sample: Option<u32>, why: String| VideoError::Corrupt {
        path: path.to_path_buf(),
        sample,
        why,
    };
    let mut mp4 = mp4::Mp4Reader::read_header(reader, size).map_err(|e| VideoError::NotMp4 {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;

    // The H.264 video track with the lowest id.
    let mut ids: Vec<u32> = mp4.tracks().keys().copied().collect();
    ids.sort_unstable();
    let track_id = ids
        .iter()
        .copied()
        .find(|id| mp4.tracks()[id].trak.mdia.minf.stbl.stsd.avc1.is_some())
        .ok_or_else(|| VideoError::NoH264 {
            path: path.to_path_buf(),
            found: describe_tracks(&mp4, &ids),
        })?;
    let track = &mp4.tracks()[&track_id];
    let Some(avc1) = track.trak.mdia.minf.stbl.stsd.avc1.as_ref() else {
        unreachable!("the track was chosen for its avc1 entry")
    };
    let avcc = &avc1.avcc;
    let length_size = usize::from(avcc.length_size_minus_one & 0x3) + 1;
    if length_size == 3 {
        return Err(corrupt(
            None,
            "avcC: NAL unit length size 3 is not allowed".into(),
        ));
    }
    // Annex-B parameter sets, fed to the decoder before the first sample.
    let mut header = Vec::new();
    for ps in avcc
        .sequence_parameter_sets
        .iter()
        .chain(&avcc.picture_parameter_sets)
    {
        header.extend_from_slice(&[0, 0, 0, 1]);
        header.extend_from_slice(&ps.bytes);
    }
    // Sample sizes come from the file: refuse any larger than the file
    // before the demuxer allocates a buffer for one.
    let stsz = &track.trak.mdia.minf.stbl.stsz;
    let largest = stsz
        .sample_sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(stsz.sample_size);
    if u64::from(largest) > size {
        return Err(corrupt(
            None,
            format!("a sample of {largest} bytes in a file of {size} bytes"),
        ));
    }
    let count = mp4
        .sample_count(track_id)
        .map_err(|e| corrupt(None, e.to_string()))?;

    // No flush after each packet: with B-frames the decoder holds pictures
    // back for reordering, and flushing them early breaks its reference lists.
    let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    let mut decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| corrupt(None, format!("starting OpenH264: {e}")))?;
    let mut out: Vec<Bytes> = Vec::new();
    let mut packet = header;
    for id in 1..=count {
        let sample = mp4
            .read_sample(track_id, id)
            .map_err(|e| corrupt(Some(id), e.to_string()))?
            .ok_or_else(|| corrupt(Some(id), "listed in the sample table but not found".into()))?;
        avcc_to_annex_b(&sample.bytes, length_size, &mut packet)
            .map_err(|why| corrupt(Some(id), why))?;
        let decoded = decoder
            .decode(&packet)
            .map_err(|e| corrupt(Some(id), format!("OpenH264: {e}")))?;
        packet.clear();
        if let Some(yuv) = decoded {
            out.push(jpeg(path, out.len(), &yuv)?);
            if out.len() >= max {
                return Ok(out);
            }
        }
    }
    let rest = decoder
        .flush_remaining()
        .map_err(|e| corrupt(None, format!("OpenH264 flushing the last frames: {e}")))?;
    for yuv in &rest {
        out.push(jpeg(path, out.len(), yuv)?);
        if out.len() >= max {
            break;
        }
    }
    if out.is_empty() {
        return Err(VideoError::NoFrames {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

fn describe_tracks<R: std::io::Read + std::io::Seek>(
    mp4: &mp4::Mp4Reader<R>,
    ids: &[u32],
) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(|id| {
            let stsd = &mp4.tracks()[id].trak.mdia.minf.stbl.stsd;
            let what = if stsd.hev1.is_some() {
                "H.265 video"
            } else if stsd.vp09.is_some() {
                "VP9 video"
            } else if stsd.mp4a.is_some() {
                "AAC audio"
            } else if stsd.tx3g.is_some() {
                "text"
            } else {
                "unsupported codec"
            };
            format!("{id}: {what}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Append the NAL units of one AVCC sample (each prefixed by its big-endian
/// length of `length_size` bytes) to `out` in Annex-B form (each prefixed by
/// the start code `00 00 00 01`).
pub fn avcc_to_annex_b(sample: &[u8], length_size: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if !matches!(length_size, 1 | 2 | 4) {
        return Err(format!(
            "NAL unit length size {length_size} (1, 2 or 4 expected)"
        ));
    }
    let mut rest = sample;
    let mut n = 0usize;
    while !rest.is_empty() {
        if rest.len() < length_size {
            return Err(format!(
                "NAL unit {n}: {} bytes left, too short for its {length_size}-byte length",
                rest.len()
            ));
        }
        let (len, tail) = rest.split_at(length_size);
        let len = len.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
        if len == 0 || len > tail.len() {
            return Err(format!(
                "NAL unit {n}: length {len}, but {} bytes are left in the sample",
                tail.len()
            ));
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&tail[..len]);
        rest = &tail[len..];
        n += 1;
    }
    if n == 0 {
        return Err("empty sample".into());
    }
    Ok(())
}

fn jpeg(path: &Path, frame: usize, yuv: &DecodedYUV<'_>) -> Result<Bytes, VideoError> {
    let enc = |why: String| VideoError::Encode {
        path: path.to_path_buf(),
        frame,
        why,
    };
    let (w, h) = yuv.dimensions();
    if w == 0 || h == 0 || w.saturating_mul(h) > MAX_FRAME_PIXELS {
        return Err(enc(format!("frame size {w}x{h}")));
    }
    let mut rgb = vec![0u8; w * h * 3];
    yuv.write_rgb8(&mut rgb);
    let mut out = Vec::with_capacity(w * h / 4);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode(&rgb, w as u32, h as u32, image::ExtendedColorType::Rgb8)
        .map_err(|e| enc(e.to_string()))?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_from_avcc() {
        let mut out = Vec::new();
        avcc_to_annex_b(&[0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x41], 4, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x65, 0xaa, 0, 0, 0, 1, 0x41]);
        out.clear();
        avcc_to_annex_b(&[0, 1, 0x09], 2, &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x09]);
        for (bad, ls) in [
            (&[0u8, 0, 0, 5, 1, 2][..], 4),
            (&[0, 0][..], 4),
            (&[0, 0, 0, 0][..], 4),
            (&[][..], 4),
            (&[1, 1][..], 3),
        ] {
            assert!(
                avcc_to_annex_b(bad, ls, &mut Vec::new()).is_err(),
                "{bad:?}"
            );
        }
    }
}
