//! The op suite through agent + remote plugin over Unix and TCP gives the
//! same results as the same plugin locally; reconnection after an agent
//! restart; concurrent use of one connection; per-call timeouts against
//! agents that do not answer.

use std::sync::Arc;
use std::time::Duration;

use vaccel_agent::AgentConfig;
use vaccel_agent::testing::BackgroundAgent;
use vaccel_core::{Code, PluginType, Resource, ResourceType, Runtime, Session, TensorRef};
use vaccel_plugin_noop::NoopPlugin;
use vaccel_plugin_remote::{RemotePlugin, Settings};
use vaccel_transport::Address;

/// An agent serving the noop plugin on a background tokio runtime until dropped.
struct TestAgent;

impl TestAgent {
    fn start(config: AgentConfig) -> BackgroundAgent {
        let rt = Arc::new(
            Runtime::builder()
                .with_plugin(Arc::new(NoopPlugin))
                .build()
                .unwrap(),
        );
        BackgroundAgent::start(rt, config)
    }
}

fn remote_session(addr: &Address, token: Option<&str>) -> (Runtime, Session) {
    remote_session_polling(addr, token, vaccel_plugin_remote::DEFAULT_BUSY_POLL)
}

fn remote_session_polling(
    addr: &Address,
    token: Option<&str>,
    busy_poll: Duration,
) -> (Runtime, Session) {
    let plugin = RemotePlugin::new(Settings {
        address: addr.clone(),
        token: token.map(str::to_string),
        timeout: Duration::from_secs(20),
        busy_poll,
    });
    let rt = Runtime::builder()
        .with_plugin(Arc::new(plugin))
        .build()
        .unwrap();
    let s = rt.session(PluginType::empty()).unwrap();
    (rt, s)
}

/// Every op with its observable results (and errors), as strings.
fn suite(s: &Session) -> Vec<String> {
    let mut r = Vec::new();
    s.noop().unwrap();
    let a: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let mut c = vec![4.0f32; 4];
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
    r.push(s.image_depth(b"img").unwrap());
    let big = vec![7u8; 300_000];
    r.push(format!(
        "{:?}",
        s.image_blur_faces(&big, 0.2, 80)
            .map(|(j, f)| (j.len(), f))
            .unwrap()
    ));
    r.push(format!(
        "{:?}",
        s.aes_cbc_encrypt(&[1; 16], &[2; 16], b"secret").unwrap()
    ));
    let model = Resource::from_bytes(vec![0u8; 64], "m.onnx", ResourceType::Model).unwrap();
    s.register(&model).unwrap();
    s.model_load(Some(&model)).unwrap();
    let v = [1.5f32, 2.5];
    let t = TensorRef::from_f32("x", vec![1, 2], &v).unwrap();
    r.push(format!("{:?}", s.model_run(Some(&model), &[t]).unwrap()));
    s.unregister(&model).unwrap();
    for e in [
        s.image_classify(b"").unwrap_err(),
        s.sgemm(2, 2, 2, 1.0, &a[..3], 2, &a, 2, 0.0, &mut c, 2)
            .unwrap_err(),
        s.aes_cbc_decrypt(&[0; 16], &[0; 16], b"short").unwrap_err(),
        s.model_load(Some(&model)).unwrap_err(),
    ] {
        // Resource ids are per process: compare messages with each run of
        // digits masked.
        let mut masked = String::new();
        for c in e.message().chars() {
            if !c.is_ascii_digit() {
                masked.push(c);
            } else if !masked.ends_with('#') {
                masked.push('#');
            }
        }
        r.push(format!("{} {masked}", e.code()));
    }
    r
}

fn local_results() -> Vec<String> {
    let rt = Runtime::builder()
        .with_plugin(Arc::new(NoopPlugin))
        .build()
        .unwrap();
    suite(&rt.session(PluginType::empty()).unwrap())
}

#[test]
fn unix_socket_results_match_local() {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(AgentConfig {
        listen: vec![Address::Unix(dir.path().join("agent.sock"))],
        ..AgentConfig::default()
    });
    let (_rt, s) = remote_session(&agent.addresses[0], None);
    assert_eq!(s.plugin().name, "remote");
    assert_eq!(suite(&s), local_results());
    s.release().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (_, sessions, resources) = agent.stats.live();
    assert_eq!(
        (sessions, resources),
        (0, 0),
        "everything released on the agent"
    );
}

#[test]
fn busy_polling_off_or_long_gives_the_same_results() {
    // Polling never changes results: agent and client with polling off,
    // and with a window so long that every reply arrives while polling
    // (the suite runs twice, so the second run uses learned waits).
    let local = local_results();
    for window in [Duration::ZERO, Duration::from_millis(20)] {
        let dir = tempfile::tempdir().unwrap();
        let agent = TestAgent::start(AgentConfig {
            listen: vec![Address::Unix(dir.path().join("agent.sock"))],
            busy_poll: window,
            busy_pollers: 1,
            ..AgentConfig::default()
        });
        let (_rt, s) = remote_session_polling(&agent.addresses[0], None, window);
        assert_eq!(suite(&s), local, "window {window:?}");
        assert_eq!(suite(&s), local, "window {window:?}, second run");
        s.release().unwrap();
    }
}

#[test]
fn busy_poll_setting_parses() {
    use vaccel_plugin_remote::parse_busy_poll;
    assert_eq!(parse_busy_poll("0").unwrap(), Duration::ZERO);
    assert_eq!(parse_busy_poll(" 75 ").unwrap(), Duration::from_micros(75));
    for bad in ["-5", "1000001", "fast", "", "1.5"] {
        let e = parse_busy_poll(bad).unwrap_err();
        assert_eq!(e.code(), Code::Inval);
        assert!(e.message().contains("VACCEL_RPC_BUSY_POLL_US"), "{e}");
    }
}

#[test]
fn tcp_with_token_results_match_local() {
    let agent = TestAgent::start(AgentConfig {
        listen: vec!["tcp://127.0.0.1:0".parse().unwrap()],
        token: Some("s3cret".into()),
        ..AgentConfig::default()
    });
    let (_rt, s) = remote_session(&agent.addresses[0], Some("s3cret"));
    assert_eq!(suite(&s), local_results());

    // Without the token: refused, clearly.
    let plugin = RemotePlugin::new(Settings {
        token: Some("wrong".into()),
        timeout: Duration::from_secs(5),
        ..Settings::new(agent.addresses[0].clone())
    });
    let rt = Runtime::builder()
        .with_plugin(Arc::new(plugin))
        .build()
        .unwrap();
    let e = rt.session(PluginType::empty()).unwrap_err();
    assert_eq!(e.code(), Code::Perm, "{e}");
    assert!(e.message().contains("wrong or missing token"), "{e}");
}

#[test]
fn agent_down_is_a_clear_error_and_restart_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let addr = Address::Unix(dir.path().join("agent.sock"));
    let config = AgentConfig {
        listen: vec![addr.clone()],
        ..AgentConfig::default()
    };
    let mut agent = TestAgent::start(config.clone());
    let (_rt, s) = remote_session(&addr, None);
    let model = Resource::from_bytes(vec![0u8; 16], "m.onnx", ResourceType::Model).unwrap();
    s.register(&model).unwrap();
    s.noop().unwrap();
    agent.stop();
    let e = s.noop().unwrap_err();
    assert_eq!(e.code(), Code::Sess, "{e}");
    assert!(
        e.message().contains("lost") || e.message().contains("cannot connect"),
        "{e}"
    );
    let _agent2 = TestAgent::start(config);
    // Same session: re-created on the new agent, with its resource.
    s.noop().unwrap();
    s.model_load(Some(&model)).unwrap();
    assert_eq!(
        s.image_classify_text(b"x").unwrap(),
        "classification tags: 100.000% noop"
    );
}

#[test]
fn no_agent_is_a_clear_error() {
    let (e, _) = (
        Runtime::builder()
            .with_plugin(Arc::new(RemotePlugin::new(Settings {
                timeout: Duration::from_secs(1),
                ..Settings::new(Address::Unix("/nonexistent/agent.sock".into()))
            })))
            .build()
            .unwrap()
            .session(PluginType::empty())
            .unwrap_err(),
        (),
    );
    assert_eq!(e.code(), Code::Sess);
    assert!(
        e.message()
            .contains("cannot connect to the vAccel agent at unix:///nonexistent/agent.sock"),
        "{e}"
    );
}

#[test]
fn many_threads_share_one_connection() {
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(AgentConfig {
        listen: vec![Address::Unix(dir.path().join("agent.sock"))],
        ..AgentConfig::default()
    });
    let plugin = RemotePlugin::new(Settings {
        timeout: Duration::from_secs(30),
        ..Settings::new(agent.addresses[0].clone())
    });
    let rt = Arc::new(
        Runtime::builder()
            .with_plugin(Arc::new(plugin))
            .build()
            .unwrap(),
    );
    std::thread::scope(|sc| {
        for t in 0..16u32 {
            let rt = rt.clone();
            sc.spawn(move || {
                let s = rt.session(PluginType::empty()).unwrap();
                for i in 0..200u32 {
                    // Each reply must be this call's: the clamp depends on the inputs.
                    let v = f64::from(t * 1000 + i);
                    let mut out = [0.0f64; 1];
                    let (mn, mx) = s.minmax(&[v], 0.0, 1e9, &mut out).unwrap();
                    assert_eq!((mn, mx, out[0]), (v, v, v));
                    s.noop().unwrap();
                }
                s.release().unwrap();
            });
        }
    });
    assert_eq!(agent.stats.live().0, 1, "one shared connection");
}

/// 64 concurrent clients (each its own connection) × mixed ops: every reply
/// is the right one, nothing is lost, and the agent ends with nothing live.
#[test]
fn sixty_four_clients_mixed_ops_no_lost_or_mismatched_replies() {
    let ops_per_client: u32 = std::env::var("VACCEL_TEST_OPS_PER_CLIENT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(AgentConfig {
        listen: vec![Address::Unix(dir.path().join("agent.sock"))],
        ..AgentConfig::default()
    });
    let addr = agent.addresses[0].clone();
    let done = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|sc| {
        for t in 0..64u32 {
            let addr = addr.clone();
            let done = &done;
            sc.spawn(move || {
                let (_rt, s) = remote_session(&addr, None);
                let key = [t as u8; 16];
                for i in 0..ops_per_client {
                    match i % 4 {
                        0 => s.noop().unwrap(),
                        1 => {
                            let v = f64::from(t) * 1e6 + f64::from(i);
                            let mut out = [0.0f64; 2];
                            let (mn, mx) = s.minmax(&[v, -v], -1e12, 1e12, &mut out).unwrap();
                            assert_eq!((mn, mx), (-v, v), "client {t} op {i}");
                        }
                        2 => {
                            let msg = format!("client {t} op {i}");
                            assert_eq!(
                                s.aes_cbc_encrypt(&key, &key, msg.as_bytes()).unwrap(),
                                msg.as_bytes()
                            );
                        }
                        _ => {
                            let a = [t as f32; 4];
                            let mut c = [i as f32; 4];
                            s.sgemm(2, 2, 2, 1.0, &a, 2, &a, 2, 2.0, &mut c, 2).unwrap();
                            assert_eq!(c, [2.0 * i as f32; 4], "client {t} op {i}");
                        }
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                s.release().unwrap();
            });
        }
    });
    assert_eq!(done.into_inner(), 64 * u64::from(ops_per_client));
    let t0 = std::time::Instant::now();
    while agent.stats.live() != (0, 0, 0) && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        agent.stats.live(),
        (0, 0, 0),
        "no live connections, sessions or resources"
    );
}

/// SGEMM on matrices in shared memory over a Unix socket: same result as
/// local, and the matrices never cross the socket (bytes received by the
/// agent stay far below their size). Over TCP the same buffers are copied.
#[test]
fn shared_memory_arguments_cross_without_copies() {
    use std::sync::atomic::Ordering;
    use vaccel_core::shm::SharedVec;
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(AgentConfig {
        listen: vec![
            Address::Unix(dir.path().join("agent.sock")),
            "tcp://127.0.0.1:0".parse().unwrap(),
        ],
        insecure: true,
        ..AgentConfig::default()
    });
    let n = 128usize;
    let a = SharedVec::<f32>::from_slice(&(0..n * n).map(|i| (i % 7) as f32).collect::<Vec<_>>())
        .unwrap();
    let b = SharedVec::<f32>::from_slice(&(0..n * n).map(|i| (i % 5) as f32).collect::<Vec<_>>())
        .unwrap();
    let mut c = SharedVec::<f32>::from_slice(&vec![1.0; n * n]).unwrap();
    let mut want = vec![1.0f32; n * n];
    let rt = Runtime::builder()
        .with_plugin(Arc::new(NoopPlugin))
        .build()
        .unwrap();
    rt.session(PluginType::empty())
        .unwrap()
        .sgemm(n, n, n, 1.0, &a, n, &b, n, 0.5, &mut want, n)
        .unwrap();

    let (_rt, s) = remote_session(&agent.addresses[0], None);
    s.noop().unwrap();
    let before = agent.stats.bytes_in.load(Ordering::SeqCst);
    s.sgemm(n, n, n, 1.0, &a, n, &b, n, 0.5, &mut c, n).unwrap();
    assert_eq!(&c[..], &want[..]);
    // Mapping the three regions plus the op itself: a few hundred bytes, not 3 × 64 KiB.
    let moved = agent.stats.bytes_in.load(Ordering::SeqCst) - before;
    assert!(moved < 4096, "{moved} bytes crossed the socket");
    // Second call: regions already mapped.
    let before = agent.stats.bytes_in.load(Ordering::SeqCst);
    s.sgemm(n, n, n, 1.0, &a, n, &b, n, 0.0, &mut c, n).unwrap();
    assert!(agent.stats.bytes_in.load(Ordering::SeqCst) - before < 1024);
    assert!(
        c.iter().all(|v| *v == 0.0),
        "noop sgemm with beta 0 zeroes C in place"
    );

    // Over TCP the same shared buffers are simply copied.
    let (_rt2, t) = remote_session(&agent.addresses[1], None);
    let mut c2 = SharedVec::<f32>::from_slice(&vec![1.0; n * n]).unwrap();
    let before = agent.stats.bytes_in.load(Ordering::SeqCst);
    t.sgemm(n, n, n, 1.0, &a, n, &b, n, 0.5, &mut c2, n)
        .unwrap();
    assert_eq!(&c2[..], &want[..]);
    assert!(agent.stats.bytes_in.load(Ordering::SeqCst) - before > (3 * n * n * 4) as u64);

    // Freed regions are unmapped on the agent when new ones are mapped.
    drop(a);
    let d = SharedVec::<f32>::from_slice(&vec![2.0; n * n]).unwrap();
    s.sgemm(n, n, n, 1.0, &d, n, &b, n, 0.0, &mut c, n).unwrap();
}

/// A fake agent on a Unix socket: answers HELLO, SESSION_CREATE, NOOP and
/// (unless `mute`) PING, and never answers any other op.
fn silent_agent(path: std::path::PathBuf, mute: bool) -> Arc<std::sync::atomic::AtomicUsize> {
    use std::io::{Read, Write};
    use vaccel_proto::{HEADER_LEN, Header, Request, Response};
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    let l = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::thread::spawn(move || {
                loop {
                    let mut h = [0u8; HEADER_LEN];
                    if s.read_exact(&mut h).is_err() {
                        return;
                    }
                    let h = Header::decode(&h, u32::MAX).unwrap();
                    let mut p = vec![0u8; h.len as usize];
                    s.read_exact(&mut p).unwrap();
                    let r = match Request::decode(h.kind, &p).unwrap() {
                        Request::Hello { .. } => Response::HelloOk {
                            version: 1,
                            features: 0,
                            max_frame: 1 << 20,
                            server: "silent",
                        },
                        Request::SessionCreate { .. } => Response::Session {
                            session: 1,
                            plugin: "silent",
                        },
                        Request::Ping { payload } if !mute => Response::Pong { payload },
                        Request::Op { op: 0, .. } => Response::OpResult { outputs: vec![] },
                        _ => continue,
                    };
                    let f = r.encode(h.id).unwrap().to_vec();
                    if s.write_all(&f).is_err() {
                        return;
                    }
                }
            });
        }
    });
    accepted
}

/// A call the agent never answers fails with ETIMEDOUT at its deadline; the
/// connection stays (the agent still answers others).
#[test]
fn unanswered_call_times_out_and_the_connection_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let accepted = silent_agent(path.clone(), false);
    let plugin = RemotePlugin::new(Settings {
        timeout: Duration::from_millis(300),
        ..Settings::new(Address::Unix(path))
    });
    let rt = Runtime::builder()
        .with_plugin(Arc::new(plugin))
        .build()
        .unwrap();
    let s = rt.session(PluginType::empty()).unwrap();
    s.noop().unwrap();
    let t0 = std::time::Instant::now();
    let mut out = [0.0f64; 1];
    let e = s.minmax(&[1.0], 0.0, 2.0, &mut out).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e.code(), Code::TimedOut, "{e}");
    assert!(e.message().contains("VACCEL_RPC_TIMEOUT"), "{e}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    s.noop().unwrap();
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// An agent that answers nothing at all, not even a PING: the call fails
/// with ETIMEDOUT soon after its deadline and the next call reconnects.
#[test]
fn silent_agent_times_out_the_call_and_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mute.sock");
    let accepted = silent_agent(path.clone(), true);
    let plugin = RemotePlugin::new(Settings {
        timeout: Duration::from_millis(300),
        ..Settings::new(Address::Unix(path))
    });
    let rt = Runtime::builder()
        .with_plugin(Arc::new(plugin))
        .build()
        .unwrap();
    let s = rt.session(PluginType::empty()).unwrap();
    let t0 = std::time::Instant::now();
    let mut out = [0.0f64; 1];
    let e = s.minmax(&[1.0], 0.0, 2.0, &mut out).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e.code(), Code::TimedOut, "{e}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // The deadline, then a grace of 1 s for an answer to a PING.
    assert!(took < Duration::from_millis(2300), "{took:?}");
    s.noop().unwrap();
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "reconnected"
    );
}
