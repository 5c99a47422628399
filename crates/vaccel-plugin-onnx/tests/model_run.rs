//! MODEL_LOAD / MODEL_UNLOAD / MODEL_RUN on MODEL resources, with both engines.

mod common;

use std::sync::Arc;

use common::*;
use vaccel_core::{Arg, Code, DType, OpType, Resource, ResourceType, Tensor, TensorRef};
use vaccel_plugin_onnx::{EngineKind, Layout, OnnxPlugin, preprocess};

fn engines(test: &str) -> Vec<Arc<OnnxPlugin>> {
    let mut v = vec![Arc::new(plugin(EngineKind::Tract))];
    v.extend(ort(test).map(|_| Arc::new(plugin(EngineKind::Ort))));
    v
}

fn dog_input() -> Vec<f32> {
    let img = preprocess::decode_rgb(&image("dog.jpg"), u64::MAX).unwrap();
    let mut x = vec![0f32; 3 * 224 * 224];
    preprocess::preprocess(
        &img,
        224,
        224,
        Layout::Nchw,
        &mut Default::default(),
        &mut x,
    )
    .unwrap();
    x
}

fn efficientnet() -> Resource {
    Resource::from_path(
        models_dir().join("efficientnet-lite0.onnx"),
        ResourceType::Model,
    )
    .unwrap()
}

#[test]
fn model_run_returns_the_named_logits() {
    let x = dog_input();
    for p in engines("model_run_returns_the_named_logits") {
        let (_rt, s) = session(p.clone());
        let res = efficientnet();
        s.register(&res).unwrap();
        s.model_load(Some(&res)).unwrap();
        let named = TensorRef::from_f32("input", vec![1, 3, 224, 224], &x).unwrap();
        let out = s.model_run(Some(&res), &[named]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "logits");
        assert_eq!(out[0].dtype, DType::F32);
        assert_eq!(out[0].shape, vec![1, 1000]);
        let logits = out[0].as_f32().unwrap().into_owned();
        // Same numbers as IMAGE_CLASSIFY computes.
        let want = p
            .logits(&p.default_model().unwrap(), &image("dog.jpg"))
            .unwrap();
        assert!(max_abs_diff(&logits, &want) < 1e-5, "{}", p.engine_name());
        // Positional input (empty name) and the default model (resource 0).
        let positional = TensorRef::from_f32("", vec![1, 3, 224, 224], &x).unwrap();
        let out0 = s.model_run(None, &[positional]).unwrap();
        assert_eq!(out0[0].as_f32().unwrap().into_owned(), logits);
        s.model_unload(Some(&res)).unwrap();
        // Unloaded models load again on the next run.
        let again = s
            .model_run(
                Some(&res),
                &[TensorRef::from_f32("", vec![1, 3, 224, 224], &x).unwrap()],
            )
            .unwrap();
        assert_eq!(again[0].as_f32().unwrap().into_owned(), logits);
    }
}

#[test]
fn bad_inputs_are_einval_naming_the_problem() {
    let x = dog_input();
    for p in engines("bad_inputs_are_einval_naming_the_problem") {
        let (_rt, s) = session(p.clone());
        let res = efficientnet();
        s.register(&res).unwrap();
        let check = |inputs: &[TensorRef<'_>], want: &str| {
            let e = s.model_run(Some(&res), inputs).unwrap_err();
            assert_eq!(e.code(), Code::Inval, "{e}");
            assert!(
                e.message().contains(want),
                "{}: '{e}' lacks '{want}'",
                p.engine_name()
            );
        };
        let small = vec![0f32; 3 * 100 * 100];
        check(
            &[TensorRef::from_f32("input", vec![1, 3, 100, 100], &small).unwrap()],
            "input 'input' expects shape [1, 3, 224, 224]",
        );
        let ints = vec![0u8; 8 * 3 * 224 * 224];
        check(
            &[TensorRef::new("input", DType::I64, vec![1, 3, 224, 224], &ints[..]).unwrap()],
            "input 'input' expects f32 elements, got i64",
        );
        check(
            &[TensorRef::from_f32("image", vec![1, 3, 224, 224], &x).unwrap()],
            "no input named 'image': its inputs are input",
        );
        check(&[], "the model has 1 input(s) (input), got 0");
        // Still works.
        s.model_run(
            Some(&res),
            &[TensorRef::from_f32("input", vec![1, 3, 224, 224], &x).unwrap()],
        )
        .unwrap();
    }
}

#[test]
fn unregistered_and_non_model_resources_are_refused() {
    let p = tract();
    let (_rt, s) = session(p);
    let res = efficientnet();
    // The typed API checks registration itself; the plugin checks it too.
    let id = res.id();
    let e = s
        .genop(OpType::ModelLoad, &[Arg::scalar(&id)], &mut [])
        .unwrap_err();
    assert_eq!(e.code(), Code::Perm, "{e}");
    assert!(e.message().contains("not registered"), "{e}");
    let data = Resource::from_bytes(vec![1u8, 2, 3], "blob.bin", ResourceType::Data).unwrap();
    s.register(&data).unwrap();
    let id = data.id();
    let e = s
        .genop(OpType::ModelLoad, &[Arg::scalar(&id)], &mut [])
        .unwrap_err();
    assert_eq!(e.code(), Code::Inval, "{e}");
    assert!(e.message().contains("DATA resource"), "{e}");
}

#[test]
fn corrupt_onnx_is_einval_and_the_plugin_keeps_working() {
    for p in engines("corrupt_onnx_is_einval_and_the_plugin_keeps_working") {
        let (_rt, s) = session(p.clone());
        let mut garbage = vec![0u8; 4096];
        let mut v = 0x1234_5678u32;
        for b in &mut garbage {
            v = v.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *b = (v >> 24) as u8;
        }
        let real = std::fs::read(models_dir().join("efficientnet-lite0.onnx")).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("random.onnx", garbage),
            ("truncated.onnx", real[..real.len() / 3].to_vec()),
            ("empty-ish.onnx", vec![0x08, 0x07]),
            ("text.onnx", b"this is not a model".to_vec()),
        ];
        for (name, bytes) in cases {
            let res = Resource::from_bytes(bytes, name, ResourceType::Model).unwrap();
            s.register(&res).unwrap();
            let e = s.model_load(Some(&res)).unwrap_err();
            assert_eq!(e.code(), Code::Inval, "{} {name}: {e}", p.engine_name());
            assert!(
                e.message().contains("cannot parse ONNX model"),
                "{} {name}: {e}",
                p.engine_name()
            );
            assert!(e.message().contains(name), "{e}");
            s.unregister(&res).unwrap();
        }
        // The plugin still classifies.
        let top = s.image_classify(&image("dog.jpg")).unwrap();
        assert!(top[0].label.contains("German shepherd"));
    }
}

#[test]
fn models_are_cached_per_resource_and_dropped_with_the_last_holder() {
    let p = Arc::new(plugin(EngineKind::Tract));
    let (_rt, s1) = session(p.clone());
    let s2 = _rt.session(vaccel_core::PluginType::empty()).unwrap();
    let res = efficientnet();
    s1.register(&res).unwrap();
    s2.register(&res).unwrap();
    assert_eq!(p.loaded_models(), 0);
    s1.model_load(Some(&res)).unwrap();
    s2.model_load(Some(&res)).unwrap();
    assert_eq!(p.loaded_models(), 1, "one copy for both sessions");
    s1.unregister(&res).unwrap();
    assert_eq!(p.loaded_models(), 1, "session 2 still holds it");
    s2.release().unwrap();
    assert_eq!(
        p.loaded_models(),
        0,
        "released with the last session holding it"
    );
    // MODEL_UNLOAD drops it too.
    s1.register(&res).unwrap();
    s1.model_load(Some(&res)).unwrap();
    assert_eq!(p.loaded_models(), 1);
    s1.model_unload(Some(&res)).unwrap();
    assert_eq!(p.loaded_models(), 0);
}

#[test]
fn mutated_models_never_panic() {
    let good = add_model();
    for p in engines("mutated_models_never_panic") {
        let (_rt, s) = session(p.clone());
        for i in 0..good.len() {
            for v in [0x00u8, 0xff, good[i] ^ 0x40] {
                let mut m = good.clone();
                m[i] = v;
                let res = Resource::from_bytes(m, "mutated.onnx", ResourceType::Model).unwrap();
                s.register(&res).unwrap();
                if let Err(e) = s.model_load(Some(&res)) {
                    assert!(
                        matches!(e.code(), Code::Inval | Code::NotSup),
                        "{} byte {i}={v:#x}: {e}",
                        p.engine_name()
                    );
                }
                s.unregister(&res).unwrap();
            }
        }
        s.model_load(None).unwrap();
    }
}

fn add_model() -> Vec<u8> {
    // c = a + b over int64 vectors of symbolic length N.
    one_node_model(
        "Add",
        &[
            value_info("a", ONNX_INT64, &[None]),
            value_info("b", ONNX_INT64, &[None]),
        ],
        &["a", "b"],
        &[value_info("c", ONNX_INT64, &[None])],
        &["c"],
    )
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn values_i64(t: &Tensor) -> Vec<i64> {
    t.data
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn generic_models_with_several_typed_inputs() {
    for p in engines("generic_models_with_several_typed_inputs") {
        let (_rt, s) = session(p.clone());
        let res = Resource::from_bytes(add_model(), "add.onnx", ResourceType::Model).unwrap();
        s.register(&res).unwrap();
        let (a, b) = (i64s(&[1, 2, 3]), i64s(&[10, 20, 30]));
        // Named, in any order.
        let out = s
            .model_run(
                Some(&res),
                &[
                    TensorRef::new("b", DType::I64, vec![3], &b[..]).unwrap(),
                    TensorRef::new("a", DType::I64, vec![3], &a[..]).unwrap(),
                ],
            )
            .unwrap();
        assert_eq!(out[0].name, "c");
        assert_eq!(out[0].dtype, DType::I64);
        assert_eq!(out[0].shape, vec![3]);
        assert_eq!(values_i64(&out[0]), vec![11, 22, 33], "{}", p.engine_name());
        // Positional; a dynamic dimension takes another size.
        let (a, b) = (i64s(&[5]), i64s(&[-5]));
        let out = s
            .model_run(
                Some(&res),
                &[
                    TensorRef::new("", DType::I64, vec![1], &a[..]).unwrap(),
                    TensorRef::new("", DType::I64, vec![1], &b[..]).unwrap(),
                ],
            )
            .unwrap();
        assert_eq!(values_i64(&out[0]), vec![0]);
        let e = s
            .model_run(
                Some(&res),
                &[
                    TensorRef::new("a", DType::I64, vec![1, 1], &a[..]).unwrap(),
                    TensorRef::new("b", DType::I64, vec![1], &b[..]).unwrap(),
                ],
            )
            .unwrap_err();
        assert!(e.message().contains("input 'a' expects shape [?]"), "{e}");

        // A bool model: y = not x.
        let not = one_node_model(
            "Not",
            &[value_info("x", ONNX_BOOL, &[Some(3)])],
            &["x"],
            &[value_info("y", ONNX_BOOL, &[Some(3)])],
            &["y"],
        );
        let res = Resource::from_bytes(not, "not.onnx", ResourceType::Model).unwrap();
        s.register(&res).unwrap();
        let out = s
            .model_run(
                Some(&res),
                &[TensorRef::new("x", DType::Bool, vec![3], &[1u8, 0, 1][..]).unwrap()],
            )
            .unwrap();
        assert_eq!(&out[0].data[..], &[0u8, 1, 0], "{}", p.engine_name());
        let e = s
            .model_run(
                Some(&res),
                &[TensorRef::new("x", DType::Bool, vec![3], &[1u8, 0, 7][..]).unwrap()],
            )
            .unwrap_err();
        assert_eq!(e.code(), Code::Inval);
        assert!(e.message().contains("byte 7"), "{e}");
    }
}

#[test]
fn a_non_image_model_is_refused_by_classify() {
    let p = tract();
    let (_rt, s) = session(p);
    let res = Resource::from_bytes(add_model(), "add.onnx", ResourceType::Model).unwrap();
    s.register(&res).unwrap();
    let e = s.image_classify(&image("dog.jpg")).unwrap_err();
    assert_eq!(e.code(), Code::Inval, "{e}");
    assert!(
        e.message()
            .contains("model 'add.onnx' is not an image classifier"),
        "{e}"
    );
}
