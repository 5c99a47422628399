//! IMAGE_DETECT and IMAGE_BLUR_FACES on real photos, with both engines.

mod common;

use std::sync::Arc;

use vaccel_core::{Code, Detection};
use vaccel_plugin_onnx::OnnxPlugin;

fn group_photo() -> Vec<u8> {
    // Fetched by the setup step (not redistributed): see test-data/images/FACES.md.
    std::fs::read(common::models_dir().join("test-images/group.jpg"))
        .expect("models/test-images/group.jpg")
}

fn engines() -> Vec<(&'static str, Arc<OnnxPlugin>)> {
    let mut v = vec![("tract", common::tract())];
    if let Some(o) = common::ort("faces") {
        v.push(("ort", o));
    }
    v
}

#[test]
fn one_face_in_the_portrait() {
    for (name, p) in engines() {
        let (_rt, s) = common::session(p);
        let faces = s.image_detect(&common::image("portrait.jpg")).unwrap();
        assert_eq!(faces.len(), 1, "{name}: {faces:?}");
        let f = faces[0];
        assert!(f.score > 0.8, "{name}: {f:?}");
        // The astronaut's face is in the upper middle of the 512×512 portrait.
        let (cx, cy) = (f.x + f.width / 2.0, f.y + f.height / 2.0);
        assert!(
            (150.0..350.0).contains(&cx) && (50.0..250.0).contains(&cy),
            "{name}: {f:?}"
        );
        assert!(f.width > 40.0 && f.width < 250.0, "{name}: {f:?}");
    }
}

#[test]
fn at_least_ninety_percent_of_the_group() {
    let counted_by_eye = 5;
    for (name, p) in engines() {
        let (_rt, s) = common::session(p);
        let faces = s.image_detect(&group_photo()).unwrap();
        assert!(
            faces.len() * 10 >= counted_by_eye * 9,
            "{name}: found {} of {counted_by_eye}: {faces:?}",
            faces.len()
        );
        assert!(
            faces.len() <= counted_by_eye,
            "{name}: false positives: {faces:?}"
        );
        // Best first.
        assert!(faces.windows(2).all(|w| w[0].score >= w[1].score));
    }
}

fn mean_abs_diff(
    a: &image::RgbImage,
    b: &image::RgbImage,
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
) -> f64 {
    let mut sum = 0u64;
    let mut n = 0u64;
    for y in y0..y1 {
        for x in x0..x1 {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            sum += (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
            n += 3;
        }
    }
    sum as f64 / n.max(1) as f64
}

#[test]
fn blur_changes_the_face_and_leaves_the_background() {
    let (_rt, s) = common::session(common::tract());
    let src = common::image("portrait.jpg");
    let face: Detection = s.image_detect(&src).unwrap()[0];
    let (jpeg, n) = s.image_blur_faces(&src, 0.2, 95).unwrap();
    assert_eq!(n, 1);
    assert_eq!(&jpeg[..2], &[0xff, 0xd8], "a JPEG");
    let before = image::load_from_memory(&src).unwrap().to_rgb8();
    let after = image::load_from_memory(&jpeg).unwrap().to_rgb8();
    assert_eq!(before.dimensions(), after.dimensions());
    let (x0, y0) = (face.x.max(0.0) as u32, face.y.max(0.0) as u32);
    let (x1, y1) = ((face.x + face.width) as u32, (face.y + face.height) as u32);
    let inside = mean_abs_diff(&before, &after, x0, y0, x1, y1);
    // A band of background well away from the padded box (bottom 15 % of the image).
    let (w, h) = before.dimensions();
    let outside = mean_abs_diff(&before, &after, 0, h * 85 / 100, w, h);
    assert!(inside > 8.0, "face region barely changed: {inside:.2}");
    assert!(
        outside < 2.5,
        "background changed beyond JPEG re-encoding: {outside:.2}"
    );
}

#[test]
fn blurring_the_group_blurs_every_face() {
    let (_rt, s) = common::session(common::tract());
    let (jpeg, n) = s.image_blur_faces(&group_photo(), 0.2, 90).unwrap();
    assert!(n >= 5, "{n}");
    assert!(image::load_from_memory(&jpeg).is_ok());
}

#[test]
fn bad_images_are_einval_and_the_plugin_keeps_working() {
    let (_rt, s) = common::session(common::tract());
    for bad in [
        &b""[..],
        b"not an image",
        &common::image("portrait.jpg")[..500],
    ] {
        let e = s.image_detect(bad).unwrap_err();
        assert_eq!(e.code(), Code::Inval, "{e}");
        let e = s.image_blur_faces(bad, 0.2, 90).unwrap_err();
        assert_eq!(e.code(), Code::Inval, "{e}");
    }
    assert_eq!(
        s.image_detect(&common::image("portrait.jpg"))
            .unwrap()
            .len(),
        1
    );
    let e = s
        .image_blur_faces(&common::image("portrait.jpg"), 0.2, 0)
        .unwrap_err();
    assert!(e.message().contains("JPEG quality 0"), "{e}");
}
