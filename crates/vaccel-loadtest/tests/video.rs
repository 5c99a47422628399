//! Video input: the committed H.264 test video decodes into distinct JPEG
//! frames; bad files are errors, never panics.

use std::path::{Path, PathBuf};

use vaccel_loadtest::video::{self, VideoError};

fn test_video() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/video/portrait-pan.mp4")
}

#[test]
fn decodes_every_frame_as_jpeg() {
    let frames = video::frames(&test_video(), None).unwrap();
    assert_eq!(frames.len(), 20, "2 s at 10 fps");
    let mut pixels = Vec::new();
    for f in &frames {
        assert_eq!(&f[..3], &[0xff, 0xd8, 0xff], "JPEG magic");
        assert_eq!(&f[f.len() - 2..], &[0xff, 0xd9], "JPEG end of image");
        let img = image::load_from_memory_with_format(f, image::ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (320, 240));
        pixels.push(img.to_rgb8().into_raw());
    }
    // The video pans and zooms: consecutive frames differ, and the first and
    // last differ a lot.
    let diff = |a: &[u8], b: &[u8]| -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (i32::from(*x) - i32::from(*y)).unsigned_abs() as f64)
            .sum::<f64>()
            / a.len() as f64
    };
    for w in pixels.windows(2) {
        assert!(diff(&w[0], &w[1]) > 0.5, "consecutive frames must differ");
    }
    assert!(
        diff(&pixels[0], &pixels[19]) > 10.0,
        "{}",
        diff(&pixels[0], &pixels[19])
    );
    // Display order: each frame is closer to its neighbour than to a frame
    // far away (B-frames reordered correctly).
    for i in 1..19 {
        assert!(
            diff(&pixels[i], &pixels[i - 1]) < diff(&pixels[i], &pixels[(i + 10) % 20]),
            "frame {i}"
        );
    }
    // A face-sized, natural picture: not a flat or garbage frame.
    let mean: f64 = pixels[0].iter().map(|v| f64::from(*v)).sum::<f64>() / pixels[0].len() as f64;
    assert!((40.0..220.0).contains(&mean), "{mean}");
}

#[test]
fn stops_at_max_frames() {
    assert_eq!(video::frames(&test_video(), Some(5)).unwrap().len(), 5);
    assert!(video::frames(&test_video(), Some(0)).unwrap().is_empty());
    let all = video::frames(&test_video(), Some(1000)).unwrap();
    assert_eq!(all.len(), 20);
    let first3 = video::frames(&test_video(), Some(3)).unwrap();
    assert_eq!(
        first3[..],
        all[..3],
        "the same frames, decoded the same way"
    );
}

#[test]
fn bad_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, data: &[u8]| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };

    let missing = dir.path().join("missing.mp4");
    let e = video::frames(&missing, None).unwrap_err();
    assert!(matches!(e, VideoError::Io { .. }), "{e}");
    assert!(e.to_string().contains("missing.mp4"), "{e}");

    let jpeg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-data/images/portrait.jpg");
    let e = video::frames(&jpeg, None).unwrap_err();
    assert!(matches!(e, VideoError::NotMp4 { .. }), "{e}");
    assert!(
        e.to_string().contains("portrait.jpg: not an MP4 file"),
        "{e}"
    );

    let e = video::frames(&write("empty.mp4", b""), None).unwrap_err();
    assert!(matches!(e, VideoError::NotMp4 { .. }), "{e}");

    let good = std::fs::read(test_video()).unwrap();

    // Truncated: the media data is cut short.
    let e = video::frames(&write("cut.mp4", &good[..good.len() / 2]), None).unwrap_err();
    assert!(e.to_string().contains("cut.mp4"), "{e}");

    // Garbage in the media data: every NAL length is 0xffffffff.
    let at = good
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("an mdat box");
    let mut bad = good.clone();
    for b in &mut bad[at + 4..] {
        *b = 0xff;
    }
    let e = video::frames(&write("garbage.mp4", &bad), None).unwrap_err();
    assert!(
        matches!(
            e,
            VideoError::Corrupt {
                sample: Some(1),
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("garbage.mp4: corrupt H.264 data in sample 1"),
        "{e}"
    );

    // Plausible NAL lengths but random slice data: an error or concealed
    // frames, never a panic.
    let mut noisy = good.clone();
    let mut x = 0x1234_5678u32;
    for (i, b) in noisy[at + 4..].iter_mut().enumerate() {
        if i % 97 > 10 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
    }
    match video::frames(&write("noisy.mp4", &noisy), None) {
        Ok(frames) => assert!(frames.iter().all(|f| f.starts_with(&[0xff, 0xd8])), "JPEGs"),
        Err(e) => assert!(e.to_string().contains("noisy.mp4"), "{e}"),
    }

    // An MP4 without an H.264 track: an AAC audio track only.
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = mp4::Mp4Writer::write_start(
        &mut buf,
        &mp4::Mp4Config {
            major_brand: str::parse("isom").unwrap(),
            minor_version: 512,
            compatible_brands: vec![str::parse("isom").unwrap(), str::parse("mp41").unwrap()],
            timescale: 1000,
        },
    )
    .unwrap();
    w.add_track(&mp4::TrackConfig {
        track_type: mp4::TrackType::Audio,
        timescale: 48_000,
        language: "und".into(),
        media_conf: mp4::MediaConfig::AacConfig(mp4::AacConfig::default()),
    })
    .unwrap();
    w.write_sample(
        1,
        &mp4::Mp4Sample {
            start_time: 0,
            duration: 1024,
            rendering_offset: 0,
            is_sync: true,
            bytes: mp4::Bytes::from_static(&[0x21, 0x10, 0x04]),
        },
    )
    .unwrap();
    w.write_end().unwrap();
    let e = video::frames(&write("audio.mp4", buf.get_ref()), None).unwrap_err();
    assert!(matches!(e, VideoError::NoH264 { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("no H.264 video track (tracks: 1: AAC audio)"),
        "{e}"
    );
}
