//! Loading dynamic plugins through the C ABI: a working C plugin, and every
//! kind of library that must be refused with a clear error.

use std::path::{Path, PathBuf};

use vaccel_core::{Code, PluginSource, PluginType, Resource, ResourceType, Runtime};

/// Compile a fixture into a shared library.
fn fixture(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let include = root.join("../../include");
    vaccel_test_utils::compile_c_shared(&root.join(format!("tests/fixtures/{name}.c")), &[&include])
}

fn load_err(name: &str) -> vaccel_core::Error {
    Runtime::builder()
        .plugins(fixture(name).to_str().unwrap())
        .build()
        .unwrap_err()
}

#[test]
fn c_plugin_loads_and_runs() {
    let path = fixture("cplugin");
    let rt = Runtime::builder()
        .plugins(path.to_str().unwrap())
        .build()
        .unwrap();
    let p = &rt.plugins()[0];
    assert_eq!(p.info().name, "cplugin");
    assert_eq!(p.info().version, "1.2.3");
    assert_eq!(p.info().types, PluginType::CPU);
    assert_eq!(
        p.info().details,
        vec![("language".to_string(), "C".to_string())]
    );
    assert_eq!(p.source(), &PluginSource::Dynamic(path));
    let s = rt.session(PluginType::CPU).unwrap();
    s.noop().unwrap();
    let res = Resource::from_bytes(vec![1u8, 2, 3], "m.onnx", ResourceType::Model).unwrap();
    s.register(&res).unwrap();
    let text = s.image_classify_text(b"12345").unwrap();
    assert_eq!(
        text,
        "classification tags: 100.000% c-plugin saw 5 bytes, 1 resource(s)"
    );
    s.unregister(&res).unwrap();
    // An op the C plugin does not list is refused before the call.
    let e = s.image_detect(b"x").unwrap_err();
    assert_eq!(e.code(), Code::NotSup);
    assert!(
        e.message()
            .contains("plugin 'cplugin' does not implement IMAGE_DETECT"),
        "{e}"
    );
    // An error message written by the plugin reaches the caller.
    let e = s
        .genop(vaccel_core::OpType::ImageClassify, &[], &mut [])
        .unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert_eq!(
        e.message(),
        "cplugin: classify needs an image and a text output"
    );
}

#[test]
fn abi_mismatch_is_refused() {
    let e = load_err("abi99");
    assert_eq!(e.code(), Code::LibBad);
    assert!(e.message().contains("built for plugin ABI 99"), "{e}");
    assert!(e.message().contains("speaks ABI 1"), "{e}");
}

#[test]
fn truncated_descriptor_is_refused() {
    let e = load_err("badsize");
    assert_eq!(e.code(), Code::LibBad);
    assert!(e.message().contains("descriptor is 8 bytes"), "{e}");
}

#[test]
fn failing_entry_point_is_refused() {
    let e = load_err("nullentry");
    assert_eq!(e.code(), Code::LibBad);
    assert!(e.message().contains("entry point returned NULL"), "{e}");
}

#[test]
fn library_that_is_not_a_plugin_is_refused() {
    let e = load_err("notplugin");
    assert_eq!(e.code(), Code::LibBad);
    assert!(e.message().contains("is not a vAccel plugin"), "{e}");
    assert!(e.message().contains("vaccel_plugin_entry_v1"), "{e}");
}

#[test]
fn upstream_c_plugin_gets_a_hint() {
    let e = load_err("upstream");
    assert_eq!(e.code(), Code::LibBad);
    assert!(e.message().contains("upstream vAccel C plugin"), "{e}");
}

#[test]
fn unknown_plugin_path_is_enoent() {
    let e = Runtime::builder()
        .plugins("/no/such/libvaccel_plugin_zzz.so")
        .build()
        .unwrap_err();
    assert_eq!(e.code(), Code::NoEnt);
    assert!(
        e.message()
            .contains("/no/such/libvaccel_plugin_zzz.so does not exist"),
        "{e}"
    );
    let e = Runtime::builder()
        .plugins("libnosuchplugin_zzz.so")
        .build()
        .unwrap_err();
    assert_eq!(e.code(), Code::LibBad);
    assert!(e.message().contains("cannot load plugin library"), "{e}");
}
