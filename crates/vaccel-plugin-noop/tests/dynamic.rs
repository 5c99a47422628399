//! The noop plugin loaded from its shared library behaves exactly like the
//! built-in one.

use std::sync::Arc;

use vaccel_core::{
    Code, PluginSource, PluginType, Resource, ResourceType, Runtime, Session, TensorRef,
};
use vaccel_plugin_noop::NoopPlugin;

/// One runtime for every test of this binary. A plugin library is loaded
/// once per process and keeps its state across runtimes, while session ids
/// are per runtime: two runtimes' "session 1" would share the plugin's
/// per-session resource table (a known limitation, see the issue notes).
fn dynamic() -> (Arc<Runtime>, std::path::PathBuf) {
    static RT: std::sync::OnceLock<(Arc<Runtime>, std::path::PathBuf)> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        let so = vaccel_test_utils::plugin_library("vaccel-plugin-noop");
        let rt = Runtime::builder()
            .plugins(so.to_str().unwrap())
            .build()
            .unwrap();
        (Arc::new(rt), so)
    })
    .clone()
}

/// Every typed op, with its observable results.
fn exercise(s: &Session) -> Vec<String> {
    let mut r = Vec::new();
    s.noop().unwrap();
    let a = [1.0f32; 6];
    let mut c = [4.0f32; 4];
    s.sgemm(2, 2, 3, 1.0, &a, 3, &a, 2, 0.25, &mut c, 2)
        .unwrap();
    r.push(format!("{c:?}"));
    let mut out = [0.0f64; 3];
    r.push(format!(
        "{:?} {out:?}",
        s.minmax(&[3.0, -2.0, 8.0], 0.0, 4.0, &mut out).unwrap()
    ));
    r.push(format!("{:?}", s.image_classify(b"img").unwrap()));
    r.push(s.image_classify_text(b"img").unwrap());
    r.push(format!("{:?}", s.image_detect(b"img").unwrap()));
    r.push(s.image_pose(b"img").unwrap());
    r.push(format!(
        "{:?}",
        s.image_blur_faces(b"jpegbytes", 0.2, 80).unwrap()
    ));
    r.push(format!(
        "{:?}",
        s.aes_cbc_encrypt(&[1; 16], &[2; 16], b"secret").unwrap()
    ));
    let model = Resource::from_bytes(vec![0u8; 8], "m.onnx", ResourceType::Model).unwrap();
    s.register(&model).unwrap();
    s.model_load(Some(&model)).unwrap();
    let v = [1.5f32, 2.5];
    let t = TensorRef::from_f32("x", vec![1, 2], &v).unwrap();
    r.push(format!("{:?}", s.model_run(Some(&model), &[t]).unwrap()));
    s.model_unload(Some(&model)).unwrap();
    s.unregister(&model).unwrap();
    // Errors cross the ABI with code and message intact.
    let e = s.image_classify(b"").unwrap_err();
    r.push(format!("{} {}", e.code(), e.message()));
    let lib = Resource::from_bytes(vec![0u8; 8], "lib.so", ResourceType::Lib).unwrap();
    let e = s.exec_with_resource(&lib, "f", &[], &mut []).unwrap_err();
    r.push(format!("{}", e.code()));
    r
}

#[test]
fn dynamic_noop_matches_builtin() {
    let (rt, so) = dynamic();
    let p = &rt.plugins()[0];
    assert_eq!(p.info().name, "noop");
    assert_eq!(p.source(), &PluginSource::Dynamic(so));
    assert_eq!(p.info().types, PluginType::DEBUG);
    let builtin = Runtime::builder()
        .with_plugin(Arc::new(NoopPlugin))
        .build()
        .unwrap();
    let a = exercise(&rt.session(PluginType::DEBUG).unwrap());
    let b = exercise(&builtin.session(PluginType::DEBUG).unwrap());
    assert_eq!(a, b);
    assert_eq!(a[0], "[1.0, 1.0, 1.0, 1.0]");
}

#[test]
fn resources_registered_through_the_abi_are_visible_to_the_plugin() {
    let (rt, _) = dynamic();
    let s = rt.session(PluginType::empty()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, b"onnx").unwrap();
    let on_disk = Resource::from_path(&path, ResourceType::Model).unwrap();
    s.register(&on_disk).unwrap();
    s.model_load(Some(&on_disk)).unwrap();
    let data = Resource::from_bytes(vec![1u8], "d.bin", ResourceType::Data).unwrap();
    s.register(&data).unwrap();
    let e = s.model_load(Some(&data)).unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("not a MODEL"), "{e}");
    s.unregister(&on_disk).unwrap();
    let e = s.model_load(Some(&on_disk)).unwrap_err();
    assert_eq!(e.code(), Code::Perm);
}

#[test]
fn many_threads_through_the_dynamic_plugin() {
    let (rt, _) = dynamic();
    std::thread::scope(|sc| {
        for _ in 0..4 {
            let rt = rt.clone();
            sc.spawn(move || {
                for _ in 0..25 {
                    let s = rt.session(PluginType::empty()).unwrap();
                    for _ in 0..100 {
                        s.noop().unwrap();
                    }
                    assert_eq!(s.image_classify(b"x").unwrap()[0].label, "noop");
                    s.release().unwrap();
                }
            });
        }
    });
}
