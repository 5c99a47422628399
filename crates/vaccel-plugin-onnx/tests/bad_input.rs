//! Bad images: each gives a specific EINVAL, and the plugin keeps working.

mod common;

use std::sync::Arc;

use common::*;
use vaccel_core::{Code, Session};
use vaccel_plugin_onnx::{EngineKind, OnnxPlugin};

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A PNG whose header says `w`x`h` RGB, followed by a token IDAT: tiny to
/// make, huge if decoded.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

fn assert_einval(s: &Session, img: &[u8], want: &str) {
    let e = s.image_classify(img).unwrap_err();
    assert_eq!(e.code(), Code::Inval, "{e}");
    assert!(e.message().contains(want), "'{e}' lacks '{want}'");
    // The plugin keeps working.
    let top = s.image_classify(&image("cat.jpg")).unwrap();
    assert!(matches!(top[0].index, 281 | 282 | 285), "{top:?}");
}

#[test]
fn the_crc_helper_is_right() {
    assert_eq!(crc32(b"IEND"), 0xae42_6082);
}

#[test]
fn bad_images_are_specific_einval() {
    let (_rt, s) = session(tract());
    let dog = image("dog.jpg");
    assert_einval(&s, &dog[..dog.len() / 2], "cannot decode image");
    assert_einval(&s, &dog[..100], "cannot decode image");
    let mut random = vec![0u8; 4096];
    let mut v = 42u32;
    for b in &mut random {
        v = v.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (v >> 16) as u8;
    }
    assert_einval(
        &s,
        &random,
        "unrecognised format (the supported formats are JPEG, PNG and WebP)",
    );
    assert_einval(&s, &[], "image is empty");
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[
        1, 0, 1, 0, 0, 0, 0, b',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 1, 0, b';',
    ]);
    assert_einval(
        &s,
        &gif,
        "unsupported image format GIF: the supported formats are JPEG, PNG and WebP",
    );
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0u8; 60]);
    assert_einval(&s, &bmp, "unsupported image format BMP");
    let mut png = png(&synthetic(64, 64));
    let n = png.len();
    png.truncate(n - 30);
    assert_einval(&s, &png, "cannot decode image");
}

#[test]
fn huge_images_are_refused_before_decoding() {
    let (_rt, s) = session(tract());
    let big = png_header_only(20000, 20000);
    assert!(big.len() < 100);
    assert_einval(
        &s,
        &big,
        "image is 20000x20000 (400000000 pixels), above the limit of 40000000 pixels (VACCEL_MAX_IMAGE_PIXELS)",
    );
    // A configured limit.
    let p = Arc::new(
        OnnxPlugin::builder()
            .engine(EngineKind::Tract)
            .models_dir(models_dir())
            .max_pixels(100_000)
            .build(),
    );
    let (_rt2, s2) = session(p);
    let e = s2.image_classify(&image("dog.jpg")).unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(
        e.message()
            .contains("768x576 (442368 pixels), above the limit of 100000"),
        "{e}"
    );
    assert!(
        s2.image_classify(&image("cat.jpg")).is_err(),
        "451x300 is above 100000 too"
    );
    assert!(s2.image_classify(&png(&synthetic(300, 300))).is_ok());
}

#[test]
fn tiny_and_odd_images_work() {
    let (_rt, s) = session(tract());
    let one = png(&image::RgbImage::from_pixel(
        1,
        1,
        image::Rgb([200, 30, 30]),
    ));
    assert_eq!(s.image_classify(&one).unwrap().len(), 5);
    let thin = png(&synthetic(1, 700));
    assert_eq!(s.image_classify_top(&thin, 1).unwrap().len(), 1);
    // Grey + alpha PNG.
    let la = image::GrayAlphaImage::from_pixel(50, 40, image::LumaA([90, 10]));
    let mut buf = std::io::Cursor::new(Vec::new());
    la.write_to(&mut buf, image::ImageFormat::Png).unwrap();
    assert!(s.image_classify(&buf.into_inner()).is_ok());
    // top_k larger than the number of classes gives them all.
    assert_eq!(s.image_classify_top(&one, 5000).unwrap().len(), 1000);
    let e = s.image_classify_top(&one, 0).unwrap_err();
    assert_eq!(e.code(), Code::Inval);
}
