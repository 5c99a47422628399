//! The op suite on the real plugins (cpu, onnx), locally and through agent +
//! remote plugin over a Unix socket and over TCP: identical results — same
//! labels, same detections, same blurred JPEG, same SGEMM output, same
//! ciphertext, same errors.

use std::sync::Arc;

use vaccel::{Config, PluginType, Runtime, Session};
use vaccel_agent::AgentConfig;
use vaccel_agent::testing::BackgroundAgent;
use vaccel_plugin_remote::{RemotePlugin, Settings};
use vaccel_transport::Address;

fn host_config() -> Config {
    let mut cfg = Config::default();
    cfg.options.insert(
        "onnx.models_dir".into(),
        vaccel_test_utils::models_dir().display().to_string(),
    );
    cfg.options.insert("onnx.engine".into(), "tract".into());
    cfg
}

fn suite(s: &Session) -> Vec<String> {
    let root = vaccel_test_utils::workspace_root();
    let img = |n: &str| std::fs::read(root.join("test-data/images").join(n)).unwrap();
    let mut r = Vec::new();
    for name in ["dog.jpg", "cat.jpg"] {
        r.push(format!("{:?}", s.image_classify(&img(name)).unwrap()));
        r.push(s.image_classify_text(&img(name)).unwrap());
    }
    r.push(format!(
        "{:?}",
        s.image_detect(&img("portrait.jpg")).unwrap()
    ));
    let (jpeg, faces) = s.image_blur_faces(&img("portrait.jpg"), 0.2, 90).unwrap();
    r.push(format!(
        "{faces} face(s), {} bytes, sum {}",
        jpeg.len(),
        jpeg.iter().map(|b| u64::from(*b)).sum::<u64>()
    ));
    let n = 96;
    let a: Vec<f32> = (0..n * n).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i * 5) % 11) as f32 * 0.5).collect();
    let mut c = vec![1.0f32; n * n];
    s.sgemm(n, n, n, 1.5, &a, n, &b, n, 0.5, &mut c, n).unwrap();
    r.push(format!(
        "{:?}",
        c.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    ));
    let key = [7u8; 32];
    let iv = [9u8; 16];
    let ct = s.aes_cbc_encrypt(&key, &iv, &vec![42u8; 10_000]).unwrap();
    r.push(format!("{ct:?}"));
    assert_eq!(
        s.aes_cbc_decrypt(&key, &iv, &ct).unwrap(),
        vec![42u8; 10_000]
    );
    for e in [
        s.aes_cbc_decrypt(&key, &iv, &ct[..17]).unwrap_err(),
        s.image_classify(b"definitely not an image").unwrap_err(),
        s.sgemm(2, 2, 2, 1.0, &a[..3], 2, &b, 2, 0.0, &mut c, 2)
            .unwrap_err(),
    ] {
        r.push(format!("{} {}", e.code(), e.message()));
    }
    r
}

#[test]
fn real_plugins_give_identical_results_locally_and_remotely() {
    let local_rt = vaccel::runtime_with(host_config()).unwrap();
    let local = suite(&local_rt.session(PluginType::empty()).unwrap());
    assert!(
        local[0].contains("German shepherd") || local[0].contains("malamute"),
        "{}",
        local[0]
    );

    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(vaccel::runtime_with(host_config()).unwrap());
    let listen = vec![
        Address::Unix(dir.path().join("agent.sock")),
        "tcp://127.0.0.1:0".parse().unwrap(),
    ];
    let agent = BackgroundAgent::start(
        host,
        AgentConfig {
            listen,
            token: Some("t0k3n".into()),
            ..AgentConfig::default()
        },
    );
    let addrs = agent.addresses.clone();
    for addr in &addrs {
        let plugin = RemotePlugin::new(Settings {
            token: Some("t0k3n".into()),
            ..Settings::new(addr.clone())
        });
        let rt = Runtime::builder()
            .with_plugin(Arc::new(plugin))
            .build()
            .unwrap();
        let s = rt.session(PluginType::empty()).unwrap();
        assert_eq!(s.plugin().name, "remote");
        let remote = suite(&s);
        assert_eq!(remote.len(), local.len());
        for (i, (l, r)) in local.iter().zip(&remote).enumerate() {
            assert_eq!(l, r, "result {i} differs over {addr}");
        }
    }
    drop(agent);
}
