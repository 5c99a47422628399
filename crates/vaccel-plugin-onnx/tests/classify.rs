//! IMAGE_CLASSIFY with both engines, against each other and the Python reference.

mod common;

use std::sync::Arc;

use common::*;
use vaccel_core::{Code, Plugin, Resource, ResourceType};
use vaccel_plugin_onnx::{EngineKind, OnnxPlugin};

fn is_dog(i: u32) -> bool {
    (151..=268).contains(&i)
}

fn is_cat(i: u32) -> bool {
    matches!(i, 281 | 282 | 285)
}

fn check_photos(p: Arc<OnnxPlugin>) {
    let (_rt, s) = session(p);
    let dog = s.image_classify(&image("dog.jpg")).unwrap();
    assert_eq!(dog.len(), 5);
    assert!(is_dog(dog[0].index), "dog.jpg top-1 is not a dog: {dog:?}");
    assert!(dog[0].label.contains("German shepherd"), "{dog:?}");
    assert!(dog.windows(2).all(|w| w[0].score >= w[1].score));
    let cat = s.image_classify_top(&image("cat.jpg"), 3).unwrap();
    assert_eq!(cat.len(), 3);
    assert!(
        is_cat(cat[0].index),
        "cat.jpg top-1 is not a tabby/tiger/Egyptian cat: {cat:?}"
    );
    let text = s.image_classify_text(&image("coffee.jpg")).unwrap();
    assert!(
        text.starts_with("classification tags: ") && text.ends_with("% espresso"),
        "{text}"
    );
}

#[test]
fn tract_classifies_the_photos() {
    check_photos(tract());
}

#[test]
fn ort_classifies_the_photos() {
    let Some(p) = ort("ort_classifies_the_photos") else {
        return;
    };
    check_photos(p);
}

#[test]
fn plugin_info_names_the_engine() {
    let p = tract();
    let info = p.info();
    assert_eq!(info.name, "onnx");
    assert!(
        info.details
            .iter()
            .any(|(k, v)| k == "engine" && v == "tract"),
        "{:?}",
        info.details
    );
    assert!(info.ops.contains(vaccel_core::OpType::ModelRun));
    if let Some(o) = ort("plugin_info_names_the_engine") {
        let info = o.info();
        let engine = &info.details.iter().find(|(k, _)| k == "engine").unwrap().1;
        assert!(engine.starts_with("ort 1."), "{engine}");
    }
}

fn synthetic_png() -> Vec<u8> {
    png(&synthetic(400, 300))
}

fn logits(p: &OnnxPlugin, img: &[u8]) -> Vec<f32> {
    p.logits(&p.default_model().unwrap(), img).unwrap()
}

#[test]
fn logits_match_the_python_reference() {
    let mut engines = vec![tract()];
    engines.extend(ort("logits_match_the_python_reference (ort part)"));
    for p in engines {
        for (name, want) in reference_logits() {
            let img = if name == "synthetic-400x300" {
                synthetic_png()
            } else {
                image(&name)
            };
            let got = logits(&p, &img);
            let d = max_abs_diff(&got, &want);
            // Same pixels in, so only float rounding differs; JPEG decoders
            // differ (zune-jpeg here, libjpeg-turbo in Pillow): measured 0.122
            // (dog), 0.058 (cat), 0.078 (coffee).
            let tol = if name.ends_with(".jpg") { 0.2 } else { 2e-4 };
            eprintln!("{} {name}: max |logit - python| = {d:.6}", p.engine_name());
            assert!(
                d <= tol,
                "{} {name}: max abs logit difference {d} > {tol}",
                p.engine_name()
            );
            let (a, b) = (argmax(&got), argmax(&want));
            assert_eq!(a, b, "{name}: top-1 differs from the reference");
        }
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0
}

#[test]
fn tract_and_ort_agree() {
    let Some(o) = ort("tract_and_ort_agree") else {
        return;
    };
    let t = tract();
    for img in [
        image("dog.jpg"),
        image("cat.jpg"),
        image("coffee.jpg"),
        synthetic_png(),
    ] {
        let d = max_abs_diff(&logits(&t, &img), &logits(&o, &img));
        eprintln!("tract vs {}: max |dlogit| = {d:.2e}", o.engine_name());
        assert!(d < 1e-4, "tract and onnxruntime logits differ by {d}");
    }
}

#[test]
fn png_and_webp_decode_to_the_same_pixels() {
    let img = synthetic(400, 300);
    let mut webp = std::io::Cursor::new(Vec::new());
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .encode(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    let p = tract();
    assert_eq!(logits(&p, &png(&img)), logits(&p, &webp.into_inner()));
}

#[test]
fn concurrent_classification_is_consistent() {
    let p = tract();
    let img = image("dog.jpg");
    let want = logits(&p, &img);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| logits(&p, &img))).collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), want);
        }
    });
}

#[test]
fn a_registered_model_resource_is_used_with_its_labels() {
    let models = models_dir();
    let dir = tempfile::tempdir().unwrap();
    let labels_path = dir.path().join("my-labels.txt");
    let text: String = (0..1000).map(|i| format!("custom class {i}\n")).collect();
    std::fs::write(&labels_path, text).unwrap();
    let res = Resource::from_paths(
        &[models.join("efficientnet-lite0.onnx"), labels_path],
        ResourceType::Model,
    )
    .unwrap();
    let p = Arc::new(plugin(EngineKind::Tract));
    let (_rt, s) = session(p.clone());
    s.register(&res).unwrap();
    let top = s.image_classify(&image("dog.jpg")).unwrap();
    assert_eq!(top[0].label, format!("custom class {}", top[0].index));
    assert!(is_dog(top[0].index));
    assert_eq!(p.loaded_models(), 1, "only the resource's model is loaded");
    s.unregister(&res).unwrap();
    assert_eq!(
        p.loaded_models(),
        0,
        "unregistering the last holder drops the model"
    );
    // Back to the default model and labels.
    let top = s.image_classify(&image("dog.jpg")).unwrap();
    assert!(top[0].label.contains("German shepherd"));
}

#[test]
fn missing_default_model_is_enoent_with_a_hint() {
    let empty = tempfile::tempdir().unwrap();
    let p = Arc::new(
        OnnxPlugin::builder()
            .engine(EngineKind::Tract)
            .models_dir(empty.path())
            .build(),
    );
    let (_rt, s) = session(p);
    let e = s.image_classify(&image("dog.jpg")).unwrap_err();
    assert_eq!(e.code(), Code::NoEnt, "{e}");
    assert!(
        e.message()
            .contains("default classification model not found at"),
        "{e}"
    );
    assert!(e.message().contains("scripts/setup_models.py"), "{e}");
    assert!(e.message().contains("VACCEL_MODELS_DIR"), "{e}");
}
