//! EXEC and EXEC_WITH_RESOURCE against a real C library compiled for the test.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vaccel_core::{
    Arg, ArgOut, ArgType, Code, PluginType, Resource, ResourceType, Runtime, Session,
};
use vaccel_plugin_exec::{ExecPlugin, Policy};

fn test_lib() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exectest.c");
    vaccel_test_utils::compile_c_shared(&src, &[])
}

fn session(policy: Policy) -> Session {
    let rt = Runtime::builder()
        .with_plugin(Arc::new(ExecPlugin::with_policy(policy)))
        .build()
        .unwrap();
    rt.session(PluginType::GENERIC).unwrap()
}

fn allow_lib() -> Policy {
    Policy {
        allow: vec![test_lib()],
        allow_any: false,
    }
}

fn double(s: &Session, lib: &str, x: i32) -> vaccel_core::Result<i32> {
    let mut out = [0u8; 4];
    let mut w = [ArgOut::fixed(ArgType::Int32, &mut out)];
    s.exec(lib, "double_int", &[Arg::scalar(&x)], &mut w)?;
    assert_eq!(w[0].len(), 4);
    Ok(i32::from_ne_bytes(out))
}

#[test]
fn exec_calls_an_allowed_library() {
    let s = session(allow_lib());
    let lib = test_lib();
    let lib = lib.to_str().unwrap();
    assert_eq!(double(&s, lib, 21).unwrap(), 42);
    // Cached handle, second call.
    assert_eq!(double(&s, lib, -4).unwrap(), -8);
    let mut out = [0u8; 16];
    let mut w = [ArgOut::fixed(ArgType::Raw, &mut out)];
    s.exec(lib, "reverse", &[Arg::raw(b"abc")], &mut w).unwrap();
    assert_eq!(w[0].written(), b"cba");
}

#[test]
fn a_directory_on_the_list_allows_its_libraries() {
    let dir = test_lib().parent().unwrap().to_path_buf();
    let s = session(Policy {
        allow: vec![dir],
        allow_any: false,
    });
    assert_eq!(double(&s, test_lib().to_str().unwrap(), 1).unwrap(), 2);
}

#[test]
fn library_not_on_the_allow_list_is_eperm() {
    let s = session(Policy::default());
    let e = double(&s, test_lib().to_str().unwrap(), 1).unwrap_err();
    assert_eq!(e.code(), Code::Perm);
    assert!(e.message().contains("not on the exec allow-list"), "{e}");
    assert!(e.message().contains("VACCEL_EXEC_ALLOWLIST"));
    // A symlink to an allowed file outside the list is resolved first.
    let other = tempfile::tempdir().unwrap();
    let link = other.path().join("link.so");
    std::os::unix::fs::symlink(test_lib(), &link).unwrap();
    let s = session(Policy {
        allow: vec![other.path().to_path_buf()],
        allow_any: false,
    });
    assert_eq!(
        double(&s, link.to_str().unwrap(), 1).unwrap_err().code(),
        Code::Perm
    );
}

#[test]
fn missing_library_and_symbol_are_enoent() {
    let s = session(Policy {
        allow: vec![],
        allow_any: true,
    });
    let e = double(&s, "/nonexistent/libnothing.so", 1).unwrap_err();
    assert_eq!(e.code(), Code::NoEnt);
    assert!(e.message().contains("/nonexistent/libnothing.so"), "{e}");
    let e = s
        .exec(test_lib().to_str().unwrap(), "no_such_fn", &[], &mut [])
        .unwrap_err();
    assert_eq!(e.code(), Code::NoEnt);
    assert!(e.message().contains("symbol 'no_such_fn' not found"), "{e}");
}

#[test]
fn nonzero_return_is_ebackend() {
    let s = session(allow_lib());
    let e = s
        .exec(test_lib().to_str().unwrap(), "always_fails", &[], &mut [])
        .unwrap_err();
    assert_eq!(e.code(), Code::Backend);
    assert!(e.message().contains("'always_fails' returned 7"), "{e}");
}

#[test]
fn exec_with_resource_from_file_and_from_bytes() {
    let s = session(allow_lib());
    let res = Resource::from_path(test_lib(), ResourceType::Lib).unwrap();
    s.register(&res).unwrap();
    let mut out = [0u8; 4];
    let x = 5i32;
    let mut w = [ArgOut::fixed(ArgType::Int32, &mut out)];
    s.exec_with_resource(&res, "double_int", &[Arg::scalar(&x)], &mut w)
        .unwrap();
    assert_eq!(i32::from_ne_bytes(out), 10);

    // Bytes (e.g. sent by a guest) need allow-any.
    let bytes = std::fs::read(test_lib()).unwrap();
    let mem = Resource::from_bytes(bytes.clone(), "libguest.so", ResourceType::Lib).unwrap();
    s.register(&mem).unwrap();
    let mut w = [ArgOut::fixed(ArgType::Int32, &mut out)];
    let e = s
        .exec_with_resource(&mem, "double_int", &[Arg::scalar(&x)], &mut w)
        .unwrap_err();
    assert_eq!(e.code(), Code::Perm);
    assert!(e.message().contains("VACCEL_EXEC_ALLOW_ANY"));

    let any = session(Policy {
        allow: vec![],
        allow_any: true,
    });
    any.register(&mem).unwrap();
    let mut w = [ArgOut::fixed(ArgType::Int32, &mut out)];
    any.exec_with_resource(&mem, "double_int", &[Arg::scalar(&x)], &mut w)
        .unwrap();
    assert_eq!(i32::from_ne_bytes(out), 10);
}

#[test]
fn exec_with_resource_needs_a_registered_lib_resource() {
    let s = session(allow_lib());
    let res = Resource::from_path(test_lib(), ResourceType::Lib).unwrap();
    let e = s
        .exec_with_resource(&res, "double_int", &[], &mut [])
        .unwrap_err();
    assert_eq!(e.code(), Code::Perm);
    let data = Resource::from_path(test_lib(), ResourceType::Data).unwrap();
    s.register(&data).unwrap();
    let e = s
        .exec_with_resource(&data, "double_int", &[], &mut [])
        .unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("not a LIB"), "{e}");
}
