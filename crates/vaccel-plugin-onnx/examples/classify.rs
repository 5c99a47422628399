//! Classify images with the onnx plugin and print the top-5 labels.
//!
//! ```text
//! cargo run --release -p vaccel-plugin-onnx --example classify -- [--engine auto|tract|ort] \
//!     [--dump-logits FILE] [--dump-input FILE] IMAGE...
//! ```
//!
//! `--dump-logits` writes the raw scores of the (last) image as a JSON array;
//! `--dump-input` writes its preprocessed input tensor as raw little-endian f32.

use vaccel_plugin_onnx::{EngineKind, OnnxPlugin, preprocess};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut engine = EngineKind::Auto;
    let (mut dump_logits, mut dump_input, mut dump_rgb) = (None, None, None);
    let mut images = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--engine" => engine = EngineKind::parse(&args.next().unwrap_or_default())?,
            "--dump-logits" => dump_logits = args.next(),
            "--dump-input" => dump_input = args.next(),
            "--dump-rgb" => dump_rgb = args.next(),
            _ => images.push(a),
        }
    }
    let plugin = OnnxPlugin::builder().engine(engine).build();
    eprintln!("engine: {}", plugin.engine_name());
    if let Some(why) = plugin.ort_unavailable() {
        eprintln!("onnxruntime unavailable: {why}");
    }
    let model = plugin.default_model()?;
    for path in &images {
        let bytes = std::fs::read(path)?;
        let logits = plugin.logits(&model, &bytes)?;
        let top = vaccel_plugin_onnx::labels::top_k(&logits, 5, &model.labels);
        println!("{path}");
        println!("{}", vaccel_core::ops::classification_text(&top));
        for (rank, l) in top.iter().enumerate() {
            println!(
                "  {}. {:7.3}%  [{:3}] {}  (logit {:.4})",
                rank + 1,
                l.score * 100.0,
                l.index,
                l.label,
                logits[l.index as usize]
            );
        }
        if let Some(f) = &dump_logits {
            let v: Vec<String> = logits.iter().map(|x| format!("{x}")).collect();
            std::fs::write(f, format!("[{}]\n", v.join(", ")))?;
        }
        if let Some(f) = &dump_rgb {
            std::fs::write(f, preprocess::decode_rgb(&bytes, u64::MAX)?.as_raw())?;
        }
        if let Some(f) = &dump_input {
            let img = preprocess::decode_rgb(&bytes, u64::MAX)?;
            let mut out = vec![0f32; 3 * 224 * 224];
            preprocess::preprocess(
                &img,
                224,
                224,
                preprocess::Layout::Nchw,
                &mut Default::default(),
                &mut out,
            )?;
            let b: Vec<u8> = out.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(f, b)?;
        }
    }
    Ok(())
}
