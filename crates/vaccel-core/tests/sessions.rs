//! Sessions, resources, selection and profiling through the public API,
//! with small test plugins.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use vaccel_core::{
    Arg, ArgOut, Code, Config, OpCtx, OpSet, OpType, Plugin, PluginInfo, PluginType, Resource,
    ResourceType, Result, Runtime, SessionId,
};

/// A plugin of a given name and type implementing the given ops; counts hooks.
struct Fake {
    name: &'static str,
    types: PluginType,
    ops: Vec<OpType>,
    sessions: AtomicUsize,
    resources: AtomicUsize,
}

impl Fake {
    fn new(name: &'static str, types: PluginType, ops: &[OpType]) -> Arc<Fake> {
        Arc::new(Fake {
            name,
            types,
            ops: ops.to_vec(),
            sessions: AtomicUsize::new(0),
            resources: AtomicUsize::new(0),
        })
    }
}

impl Plugin for Fake {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: self.name.into(),
            version: "0".into(),
            types: self.types,
            ops: self.ops.iter().copied().collect::<OpSet>(),
            details: vec![],
        }
    }
    fn session_init(&self, _: SessionId, _: PluginType) -> Result<()> {
        self.sessions.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn session_release(&self, _: SessionId) -> Result<()> {
        self.sessions.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
    fn resource_register(&self, _: SessionId, _: &Resource) -> Result<()> {
        self.resources.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn resource_unregister(&self, _: SessionId, _: &Resource) -> Result<()> {
        self.resources.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
    fn run(
        &self,
        ctx: &OpCtx<'_>,
        op: OpType,
        _: &[Arg<'_>],
        write: &mut [ArgOut<'_>],
    ) -> Result<()> {
        if op == OpType::ImageSegment {
            panic!("segment exploded");
        }
        if let Some(o) = write.first_mut() {
            // Text op: name the plugin and session so tests see who ran it.
            vaccel_core::ops::write_text(o, &format!("{}:{}", self.name, ctx.session))?;
        }
        Ok(())
    }
}

#[test]
fn session_ids_start_at_one_and_increase() {
    let rt = Runtime::builder()
        .with_plugin(Fake::new("a", PluginType::CPU, &[OpType::Noop]))
        .build()
        .unwrap();
    let s1 = rt.session(PluginType::CPU).unwrap();
    let s2 = rt.session(PluginType::CPU).unwrap();
    assert_eq!(s1.id(), 1);
    assert_eq!(s2.id(), 2);
}

#[test]
fn selection_follows_hint_and_load_order() {
    let cpu = Fake::new("cpu", PluginType::CPU, &[OpType::Noop]);
    let gpu = Fake::new("gpu", PluginType::GPU, &[OpType::Noop]);
    let remote = Fake::new("remote", PluginType::REMOTE, &[OpType::Noop]);
    let rt = Runtime::builder()
        .with_plugin(remote)
        .with_plugin(cpu)
        .with_plugin(gpu)
        .build()
        .unwrap();
    let pick = |h| rt.session(h).unwrap().plugin().name.clone();
    // REMOTE is loaded first but is only chosen when asked for.
    assert_eq!(pick(PluginType::empty()), "cpu");
    assert_eq!(pick(PluginType::ALL), "cpu");
    assert_eq!(pick(PluginType::GPU), "gpu");
    assert_eq!(pick(PluginType::GPU | PluginType::CPU), "cpu");
    assert_eq!(pick(PluginType::REMOTE), "remote");
    let e = rt.session(PluginType::FPGA).unwrap_err();
    assert_eq!(e.code(), Code::NotSup);
    assert!(
        e.message().contains("no loaded plugin matches hint FPGA"),
        "{e}"
    );
    assert!(e.message().contains("cpu [CPU]"), "{e}");
}

#[test]
fn remote_is_chosen_when_it_is_the_only_plugin() {
    let rt = Runtime::builder()
        .with_plugin(Fake::new("remote", PluginType::REMOTE, &[OpType::Noop]))
        .build()
        .unwrap();
    assert_eq!(rt.session(PluginType::GPU).unwrap().plugin().name, "remote");
}

#[test]
fn no_plugins_is_a_clear_error() {
    let rt = Runtime::builder().plugins("").build().unwrap();
    let e = rt.session(PluginType::empty()).unwrap_err();
    assert_eq!(e.code(), Code::NoEnt);
    assert!(e.message().contains("set VACCEL_PLUGINS"), "{e}");
}

#[test]
fn unsupported_op_names_plugin_and_op_and_fallback_is_opt_in() {
    let a = Fake::new("a", PluginType::CPU, &[OpType::Noop]);
    let b = Fake::new("b", PluginType::CPU, &[OpType::Noop, OpType::ImageDepth]);
    let rt = Runtime::builder()
        .plugins("")
        .with_plugin(a.clone())
        .with_plugin(b.clone())
        .build()
        .unwrap();
    let s = rt.session(PluginType::CPU).unwrap();
    let e = s.image_depth(b"img").unwrap_err();
    assert_eq!(e.code(), Code::NotSup);
    assert!(
        e.message()
            .contains("plugin 'a' does not implement IMAGE_DEPTH"),
        "{e}"
    );

    let cfg = Config {
        op_fallback: Some(true),
        ..Config::default()
    };
    let rt = Runtime::builder()
        .config(cfg)
        .with_plugin(a)
        .with_plugin(b.clone())
        .build()
        .unwrap();
    let s = rt.session(PluginType::CPU).unwrap();
    assert_eq!(s.plugin().name, "a");
    assert_eq!(s.image_depth(b"img").unwrap(), format!("b:{}", s.id()));
    // The fallback plugin sees the session's resources and its release.
    let r = Resource::from_bytes(vec![1u8], "m", ResourceType::Model).unwrap();
    s.register(&r).unwrap();
    assert_eq!(b.resources.load(Ordering::SeqCst), 1);
    s.unregister(&r).unwrap();
    assert_eq!(b.resources.load(Ordering::SeqCst), 0);
    s.register(&r).unwrap();
    s.release().unwrap();
    assert_eq!(b.resources.load(Ordering::SeqCst), 0);
    assert_eq!(b.sessions.load(Ordering::SeqCst), 0);
}

#[test]
fn release_twice_and_ops_after_release_are_errors() {
    let p = Fake::new("a", PluginType::CPU, &[OpType::Noop]);
    let rt = Runtime::builder().with_plugin(p.clone()).build().unwrap();
    let s = rt.session(PluginType::CPU).unwrap();
    assert_eq!(p.sessions.load(Ordering::SeqCst), 1);
    s.release().unwrap();
    assert_eq!(p.sessions.load(Ordering::SeqCst), 0);
    let e = s.release().unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("already released"), "{e}");
    let e = s.noop().unwrap_err();
    assert_eq!(e.code(), Code::Inval);
    assert!(e.message().contains("was released"), "{e}");
    let r = Resource::from_bytes(vec![1u8], "x", ResourceType::Data).unwrap();
    assert_eq!(s.register(&r).unwrap_err().code(), Code::Inval);
}

#[test]
fn dropping_the_last_handle_releases() {
    let p = Fake::new("a", PluginType::CPU, &[OpType::Noop]);
    let rt = Runtime::builder().with_plugin(p.clone()).build().unwrap();
    let r = Resource::from_bytes(vec![1u8], "x", ResourceType::Data).unwrap();
    {
        let s = rt.session(PluginType::CPU).unwrap();
        let s2 = s.clone();
        s.register(&r).unwrap();
        drop(s);
        assert_eq!(
            p.sessions.load(Ordering::SeqCst),
            1,
            "a clone keeps the session"
        );
        drop(s2);
    }
    assert_eq!(p.sessions.load(Ordering::SeqCst), 0);
    assert_eq!(p.resources.load(Ordering::SeqCst), 0);
    assert_eq!(r.refcount(), 0);
    r.release().unwrap();
}

#[test]
fn resources_are_shared_with_reference_counts() {
    let p = Fake::new("a", PluginType::CPU, &[OpType::Noop]);
    let rt = Runtime::builder().with_plugin(p.clone()).build().unwrap();
    let s1 = rt.session(PluginType::CPU).unwrap();
    let s2 = rt.session(PluginType::CPU).unwrap();
    let r = Resource::from_bytes(vec![7u8; 10], "model.onnx", ResourceType::Model).unwrap();
    s1.register(&r).unwrap();
    s2.register(&r).unwrap();
    assert_eq!(r.refcount(), 2);
    assert_eq!(p.resources.load(Ordering::SeqCst), 2);
    let e = s1.register(&r).unwrap_err();
    assert_eq!(e.code(), Code::Exist);
    let e = r.clone().release().unwrap_err();
    assert_eq!(e.code(), Code::Busy);
    s1.unregister(&r).unwrap();
    assert_eq!(s1.unregister(&r).unwrap_err().code(), Code::NoEnt);
    s2.release().unwrap();
    assert_eq!(r.refcount(), 0);
    assert_eq!(p.resources.load(Ordering::SeqCst), 0);
    r.release().unwrap();
}

#[test]
fn resource_with_a_missing_file_is_enoent() {
    let e = Resource::from_path("/no/such/model.onnx", ResourceType::Model).unwrap_err();
    assert_eq!(e.code(), Code::NoEnt);
    assert!(e.message().contains("/no/such/model.onnx"), "{e}");
}

#[test]
fn plugin_panic_becomes_ebackend_and_the_session_keeps_working() {
    let rt = Runtime::builder()
        .with_plugin(Fake::new(
            "boom",
            PluginType::CPU,
            &[OpType::Noop, OpType::ImageSegment],
        ))
        .build()
        .unwrap();
    let s = rt.session(PluginType::CPU).unwrap();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let e = s.image_segment(b"x").unwrap_err();
    std::panic::set_hook(prev);
    assert_eq!(e.code(), Code::Backend);
    assert!(
        e.message()
            .contains("plugin 'boom' panicked during IMAGE_SEGMENT: segment exploded"),
        "{e}"
    );
    s.noop().unwrap();
}

#[test]
fn profiling_records_per_op_regions() {
    let cfg = Config {
        profiling: true,
        ..Config::default()
    };
    let rt = Runtime::builder()
        .config(cfg)
        .with_plugin(Fake::new(
            "a",
            PluginType::CPU,
            &[OpType::Noop, OpType::ImagePose],
        ))
        .build()
        .unwrap();
    let s = rt.session(PluginType::CPU).unwrap();
    for _ in 0..10 {
        s.noop().unwrap();
    }
    s.image_pose(b"x").unwrap();
    let prof = s.profile();
    assert_eq!(prof.len(), 2);
    assert_eq!(prof[0].0, OpType::Noop);
    assert_eq!(prof[0].1.count, 10);
    assert!(prof[0].1.min <= prof[0].1.max);
    assert_eq!(prof[1].1.count, 1);
    // Off by default.
    let rt = Runtime::builder()
        .with_plugin(Fake::new("a", PluginType::CPU, &[OpType::Noop]))
        .build()
        .unwrap();
    let s = rt.session(PluginType::CPU).unwrap();
    s.noop().unwrap();
    assert!(s.profile().is_empty());
}

#[test]
fn many_threads_many_sessions() {
    let p = Fake::new("a", PluginType::CPU, &[OpType::Noop, OpType::ImagePose]);
    let rt = Arc::new(Runtime::builder().with_plugin(p.clone()).build().unwrap());
    let shared = Resource::from_bytes(vec![0u8; 16], "shared.bin", ResourceType::Data).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let rt = rt.clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for _ in 0..50 {
                    let s = rt.session(PluginType::CPU).unwrap();
                    s.register(&shared).unwrap();
                    for _ in 0..20 {
                        s.noop().unwrap();
                    }
                    // The plugin sees the right session id.
                    assert_eq!(s.image_pose(b"x").unwrap(), format!("a:{}", s.id()));
                    ids.push(s.id());
                    s.release().unwrap();
                }
                ids
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 400, "session ids are unique");
    assert_eq!(p.sessions.load(Ordering::SeqCst), 0);
    assert_eq!(p.resources.load(Ordering::SeqCst), 0);
    assert_eq!(shared.refcount(), 0);
}

#[test]
fn one_session_shared_by_many_threads() {
    let rt = Runtime::builder()
        .with_plugin(Fake::new("a", PluginType::CPU, &[OpType::Noop]))
        .build()
        .unwrap();
    let s = rt.session(PluginType::CPU).unwrap();
    std::thread::scope(|sc| {
        for _ in 0..4 {
            let s = s.clone();
            sc.spawn(move || {
                for _ in 0..1000 {
                    s.noop().unwrap();
                }
            });
        }
    });
}
