//! Bad input and faults on the wire, with a raw protocol client: each gets
//! its documented error, the agent keeps serving other clients, and
//! nothing leaks (live sessions and resources are counted).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vaccel_agent::testing::BackgroundAgent;
use vaccel_agent::{Agent, AgentConfig, Stats};
use vaccel_core::{
    Arg, ArgOut, Code, OpCtx, OpSet, OpType, Plugin, PluginInfo, PluginType, Result, Runtime,
};
use vaccel_proto::{ArgWire, FileWire, HEADER_LEN, Header, Request, Response, kind};
use vaccel_transport::Address;

/// A GPU-typed plugin whose IMAGE_SEGMENT panics and IMAGE_POSE sleeps.
struct Faulty;

impl Plugin for Faulty {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "faulty".into(),
            version: "0".into(),
            types: PluginType::GPU,
            ops: [OpType::Noop, OpType::ImageSegment, OpType::ImagePose]
                .into_iter()
                .collect::<OpSet>(),
            details: vec![],
        }
    }
    fn run(&self, _: &OpCtx<'_>, op: OpType, _: &[Arg<'_>], _: &mut [ArgOut<'_>]) -> Result<()> {
        match op {
            OpType::ImageSegment => panic!("the accelerator caught fire"),
            OpType::ImagePose => {
                std::thread::sleep(Duration::from_millis(600));
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

struct TestAgent {
    path: std::path::PathBuf,
    metrics: Option<std::net::SocketAddr>,
    stats: Arc<Stats>,
    agent: BackgroundAgent,
    _dir: tempfile::TempDir,
}

impl TestAgent {
    fn start(tweak: impl FnOnce(&mut AgentConfig)) -> TestAgent {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let mut config = AgentConfig {
            listen: vec![Address::Unix(path.clone())],
            ..AgentConfig::default()
        };
        config.op_timeout = Duration::from_millis(300);
        tweak(&mut config);
        let rt = Arc::new(
            Runtime::builder()
                .with_plugin(Arc::new(vaccel_plugin_noop::NoopPlugin))
                .with_plugin(Arc::new(Faulty))
                .build()
                .unwrap(),
        );
        let agent = BackgroundAgent::start(rt, config);
        TestAgent {
            path,
            metrics: agent.metrics,
            stats: agent.stats.clone(),
            agent,
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        let s = UnixStream::connect(&self.path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s, next: 1 }
    }

    /// Wait until the live counts settle at `want` (connections, sessions, resources).
    fn settle(&self, want: (usize, usize, usize)) {
        let t0 = Instant::now();
        while self.stats.live() != want && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            self.stats.live(),
            want,
            "live (connections, sessions, resources)"
        );
    }
}

struct Client {
    s: UnixStream,
    next: u64,
}

impl Client {
    fn send(&mut self, req: &Request<'_>) -> u64 {
        let id = self.next;
        self.next += 1;
        self.s.write_all(&req.encode(id).unwrap().to_vec()).unwrap();
        id
    }

    /// Read one frame; `None` when the agent closed the connection.
    fn recv(&mut self) -> Option<(Header, Vec<u8>)> {
        let mut h = [0u8; HEADER_LEN];
        if self.s.read_exact(&mut h).is_err() {
            return None;
        }
        let h = Header::decode(&h, u32::MAX).unwrap();
        let mut p = vec![0u8; h.len as usize];
        self.s.read_exact(&mut p).unwrap();
        Some((h, p))
    }

    fn call(&mut self, req: &Request<'_>) -> (Header, Vec<u8>) {
        let id = self.send(req);
        let (h, p) = self.recv().expect("a reply");
        assert_eq!(h.id, id);
        (h, p)
    }

    fn hello(mut self) -> Client {
        let (h, _) = self.call(&Request::Hello {
            version: 1,
            features: 0,
            token: b"",
        });
        assert_eq!(h.kind, kind::HELLO_OK);
        self
    }

    fn session(&mut self, hint: u32) -> u64 {
        let (h, p) = self.call(&Request::SessionCreate { hint });
        match Response::decode(h.kind, &p).unwrap() {
            Response::Session { session, .. } => session,
            other => panic!("{other:?}"),
        }
    }

    fn op(&mut self, session: u64, op: OpType) -> Response<'static> {
        let (h, p) = self.call(&Request::Op {
            session,
            op: op.id(),
            read: vec![ArgWire {
                ty: 28,
                flags: 0,
                data: b"img",
            }],
            write: vec![],
        });
        owned(Response::decode(h.kind, &p).unwrap())
    }

    fn ping_works(&mut self) {
        let (h, _) = self.call(&Request::Ping {
            payload: b"still there?",
        });
        assert_eq!(h.kind, kind::PONG);
    }
}

fn owned(r: Response<'_>) -> Response<'static> {
    match r {
        Response::Error { code, message } => Response::Error {
            code,
            message: Box::leak(message.to_string().into_boxed_str()),
        },
        Response::Done => Response::Done,
        Response::OpResult { outputs } if outputs.is_empty() => {
            Response::OpResult { outputs: vec![] }
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn error_of(h: &Header, p: &[u8]) -> (Code, String) {
    match Response::decode(h.kind, p).unwrap() {
        Response::Error { code, message } => (Code::from_i32(code).unwrap(), message.to_string()),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn frame(kind: u16, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = Header {
        kind,
        flags: 0,
        len: payload.len() as u32,
        id,
    }
    .encode()
    .to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn wrong_magic_or_version_closes_only_that_connection() {
    let agent = TestAgent::start(|_| {});
    let mut good = agent.client().hello();
    let mut bad = agent.client();
    let mut f = frame(kind::PING, 1, &[0u8; 8]);
    f[0] = b'X';
    bad.s.write_all(&f).unwrap();
    assert!(bad.recv().is_none(), "closed");
    let mut bad = agent.client();
    let mut f = frame(kind::PING, 1, &[0u8; 8]);
    f[4] = 9;
    bad.s.write_all(&f).unwrap();
    assert!(bad.recv().is_none(), "closed");
    good.ping_works();
    drop(good);
    agent.settle((0, 0, 0));
}

#[test]
fn length_beyond_the_limit_is_an_error_reply_then_close() {
    let agent = TestAgent::start(|c| c.max_frame = 1 << 20);
    let mut c = agent.client().hello();
    c.s.write_all(
        &Header {
            kind: kind::PING,
            flags: 0,
            len: 2 << 20,
            id: 77,
        }
        .encode(),
    )
    .unwrap();
    let (h, p) = c.recv().expect("an error reply");
    assert_eq!(h.id, 77);
    let (code, msg) = error_of(&h, &p);
    assert_eq!(code, Code::NoMem);
    assert!(msg.contains("exceeds the limit of 1048576 bytes"), "{msg}");
    assert!(c.recv().is_none(), "then closed");
    agent.client().hello().ping_works();
}

#[test]
fn unknown_kind_and_malformed_payload_are_einval_and_the_connection_goes_on() {
    let agent = TestAgent::start(|_| {});
    let mut c = agent.client().hello();
    c.s.write_all(&frame(0x0777, 5, b"")).unwrap();
    let (h, p) = c.recv().unwrap();
    assert_eq!(h.id, 5);
    let (code, msg) = error_of(&h, &p);
    assert_eq!(code, Code::Inval);
    assert!(msg.contains("unknown message kind 0x0777"), "{msg}");
    // A session-create payload one byte short.
    c.s.write_all(&frame(kind::SESSION_CREATE, 6, &[1, 0, 0]))
        .unwrap();
    let (h, p) = c.recv().unwrap();
    let (code, msg) = error_of(&h, &p);
    assert_eq!(code, Code::Inval);
    assert!(msg.contains("truncated"), "{msg}");
    // An op with garbage arguments.
    c.s.write_all(&frame(kind::OP, 7, &[9u8; 5])).unwrap();
    let (h, p) = c.recv().unwrap();
    assert_eq!(error_of(&h, &p).0, Code::Inval);
    c.ping_works();
}

#[test]
fn requests_before_hello_are_refused() {
    let agent = TestAgent::start(|_| {});
    let mut c = agent.client();
    let (h, p) = c.call(&Request::SessionCreate { hint: 0 });
    let (code, msg) = error_of(&h, &p);
    assert_eq!(code, Code::Perm);
    assert!(msg.contains("HELLO first"), "{msg}");
    assert!(c.recv().is_none());
}

#[test]
fn another_connections_ids_are_eperm_and_unknown_ids_enoent() {
    let agent = TestAgent::start(|_| {});
    let mut a = agent.client().hello();
    let mut b = agent.client().hello();
    let sa = a.session(0);
    let (h, p) = a.call(&Request::ResourceCreate {
        kind: 2,
        files: vec![FileWire::Data {
            name: "m.onnx",
            data: b"xx",
        }],
    });
    let Response::Resource { resource } = Response::decode(h.kind, &p).unwrap() else {
        panic!()
    };
    for req in [
        Request::Op {
            session: sa,
            op: 0,
            read: vec![],
            write: vec![],
        },
        Request::SessionRelease { session: sa },
        Request::ResourceRelease { resource },
        Request::ProfileGet { session: sa },
    ] {
        let (h, p) = b.call(&req);
        let (code, msg) = error_of(&h, &p);
        assert_eq!(code, Code::Perm, "{req:?}");
        assert!(msg.contains("belongs to another connection"), "{msg}");
    }
    let (h, p) = b.call(&Request::SessionRelease { session: 999_999 });
    assert_eq!(error_of(&h, &p).0, Code::NoEnt);
    // The owner still can.
    assert_eq!(
        a.op(sa, OpType::Noop),
        Response::OpResult { outputs: vec![] }
    );
    drop(a);
    drop(b);
    agent.settle((0, 0, 0));
}

#[test]
fn resource_above_the_size_limit_is_enomem() {
    let agent = TestAgent::start(|c| c.max_resource_bytes = 1000);
    let mut c = agent.client().hello();
    let big = vec![0u8; 1001];
    let (h, p) = c.call(&Request::ResourceCreate {
        kind: 1,
        files: vec![FileWire::Data {
            name: "d",
            data: &big,
        }],
    });
    let (code, msg) = error_of(&h, &p);
    assert_eq!(code, Code::NoMem);
    assert!(msg.contains("limit of 1000 bytes"), "{msg}");
    let (h, _) = c.call(&Request::ResourceCreate {
        kind: 1,
        files: vec![FileWire::Data {
            name: "d",
            data: &big[..600],
        }],
    });
    assert_eq!(h.kind, kind::RESOURCE);
    let (h, p) = c.call(&Request::ResourceCreate {
        kind: 1,
        files: vec![FileWire::Data {
            name: "e",
            data: &big[..600],
        }],
    });
    assert_eq!(
        error_of(&h, &p).0,
        Code::NoMem,
        "the limit counts what the connection holds"
    );
    // Host paths are refused unless allow-listed.
    let (h, p) = c.call(&Request::ResourceCreate {
        kind: 1,
        files: vec![FileWire::HostPath {
            name: "x",
            path: "/etc/hostname",
        }],
    });
    let (code, msg) = error_of(&h, &p);
    assert!(matches!(code, Code::Perm | Code::NoEnt), "{msg}");
}

#[test]
fn session_limit_per_connection() {
    let agent = TestAgent::start(|c| c.max_sessions = 2);
    let mut c = agent.client().hello();
    c.session(0);
    c.session(0);
    let (h, p) = c.call(&Request::SessionCreate { hint: 0 });
    let (code, msg) = error_of(&h, &p);
    assert_eq!(code, Code::Again);
    assert!(msg.contains("limit"), "{msg}");
}

#[test]
fn plugin_panic_is_ebackend_and_the_agent_keeps_serving() {
    let agent = TestAgent::start(|_| {});
    let mut c = agent.client().hello();
    let s = c.session(PluginType::GPU.bits());
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = c.op(s, OpType::ImageSegment);
    std::panic::set_hook(prev);
    let Response::Error { code, message } = r else {
        panic!("{r:?}")
    };
    assert_eq!(Code::from_i32(code), Some(Code::Backend));
    assert!(
        message
            .contains("plugin 'faulty' panicked during IMAGE_SEGMENT: the accelerator caught fire"),
        "{message}"
    );
    assert_eq!(
        c.op(s, OpType::Noop),
        Response::OpResult { outputs: vec![] }
    );
    agent.client().hello().ping_works();
}

#[test]
fn slow_op_times_out_without_stalling_others() {
    let agent = TestAgent::start(|_| {});
    let mut slow = agent.client().hello();
    let s = slow.session(PluginType::GPU.bits());
    let id = slow.send(&pose_op(s));
    // Meanwhile another client is served at once.
    let mut fast = agent.client().hello();
    let fs = fast.session(0);
    let t0 = Instant::now();
    assert_eq!(
        fast.op(fs, OpType::Noop),
        Response::OpResult { outputs: vec![] }
    );
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "not stalled behind the slow op"
    );
    let (h, p) = slow.recv().unwrap();
    assert_eq!(h.id, id);
    let (code, msg) = error_of(&h, &p);
    assert_eq!(code, Code::TimedOut);
    assert!(msg.contains("per-op timeout"), "{msg}");
}

#[test]
fn client_killed_mid_request_releases_everything() {
    let agent = TestAgent::start(|_| {});
    {
        let mut c = agent.client().hello();
        c.session(0);
        c.call(&Request::ResourceCreate {
            kind: 1,
            files: vec![FileWire::Data {
                name: "d",
                data: b"abc",
            }],
        });
        agent.settle((1, 1, 1));
        // Half a frame, then the client dies.
        let f = Request::Ping {
            payload: &[1u8; 64],
        }
        .encode(99)
        .unwrap()
        .to_vec();
        c.s.write_all(&f[..40]).unwrap();
    }
    agent.settle((0, 0, 0));
    agent.client().hello().ping_works();
}

#[test]
fn tcp_requires_a_token_unless_insecure() {
    let rt = Arc::new(
        Runtime::builder()
            .with_plugin(Arc::new(vaccel_plugin_noop::NoopPlugin))
            .build()
            .unwrap(),
    );
    let t = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = t
        .block_on(Agent::bind(
            rt.clone(),
            AgentConfig {
                listen: vec!["tcp://127.0.0.1:0".parse().unwrap()],
                ..AgentConfig::default()
            },
        ))
        .unwrap_err();
    assert!(e.to_string().contains("needs a shared token"), "{e}");
    assert!(e.to_string().contains("--insecure"), "{e}");
    let ok = t.block_on(Agent::bind(
        rt,
        AgentConfig {
            listen: vec!["tcp://127.0.0.1:0".parse().unwrap()],
            insecure: true,
            ..AgentConfig::default()
        },
    ));
    assert!(ok.is_ok());
}

#[test]
fn metrics_count_ops_by_status_and_live_objects() {
    let agent = TestAgent::start(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap()));
    let mut c = agent.client().hello();
    let s = c.session(0);
    c.op(s, OpType::Noop);
    let e = c.op(s, OpType::BlasSgemm);
    assert!(matches!(e, Response::Error { .. }));
    let body = scrape(&agent);
    assert!(
        body.contains(r#"vaccel_agent_ops_total{op="NOOP",status="ok"} 1"#),
        "{body}"
    );
    assert!(
        body.contains(r#"vaccel_agent_ops_total{op="BLAS_SGEMM",status="EINVAL"} 1"#),
        "{body}"
    );
    assert!(body.contains("vaccel_agent_sessions 1"), "{body}");
    assert!(body.contains("vaccel_agent_connections 1"), "{body}");
    assert!(
        body.contains("vaccel_agent_op_duration_seconds_bucket"),
        "{body}"
    );
    assert!(body.contains("vaccel_agent_received_bytes_total"), "{body}");
}

/// The agent's `/metrics` response (status line, headers and body).
fn scrape(agent: &TestAgent) -> String {
    let addr = agent.metrics.expect("metrics address");
    let mut http = std::net::TcpStream::connect(addr).unwrap();
    http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    http.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    body
}

/// The value of the metric line that starts with `series`.
fn metric(body: &str, series: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in {body}"))
}

#[test]
fn metrics_count_busy_poll_outcomes() {
    // A window far longer than the client's pauses: every read after the
    // connection opens is answered while polling.
    let agent = TestAgent::start(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.busy_poll = Duration::from_secs(10);
        c.busy_pollers = 1;
    });
    let mut c = agent.client().hello();
    let s = c.session(0);
    c.op(s, OpType::Noop);
    let body = scrape(&agent);
    assert!(
        metric(&body, r#"vaccel_agent_busy_polls_total{result="hit"}"#) >= 2,
        "{body}"
    );
    assert_eq!(
        metric(&body, r#"vaccel_agent_busy_polls_total{result="miss"}"#),
        0,
        "{body}"
    );
    drop(c);
    // A short window and a client that pauses longer: the window ends.
    let agent = TestAgent::start(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.busy_poll = Duration::from_millis(1);
    });
    let mut c = agent.client().hello();
    let s = c.session(0);
    std::thread::sleep(Duration::from_millis(50));
    c.op(s, OpType::Noop);
    let body = scrape(&agent);
    assert!(
        metric(&body, r#"vaccel_agent_busy_polls_total{result="miss"}"#) >= 1,
        "{body}"
    );
}

impl Client {
    fn send_with_fd(
        &mut self,
        req: &Request<'_>,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> (Header, Vec<u8>) {
        let id = self.next;
        self.next += 1;
        let frame = req.encode(id).unwrap();
        let mut s = vaccel_transport::Stream::Unix(self.s.try_clone().unwrap());
        s.write_all_vectored_with_fd(&mut frame.io_slices(), fd)
            .unwrap();
        let (h, p) = self.recv().expect("a reply");
        assert_eq!(h.id, id);
        (h, p)
    }
}

#[test]
fn shared_memory_mapping_is_checked() {
    use std::os::fd::AsFd;
    use vaccel_core::shm::{SharedVec, lookup};
    use vaccel_proto::{ARG_FLAG_SHM, OutWire, encode_shm_ref};
    let agent = TestAgent::start(|_| {});
    let mut c = agent.client();
    let (h, p) = c.call(&Request::Hello {
        version: 1,
        features: vaccel_proto::FEATURE_SHM,
        token: b"",
    });
    let Response::HelloOk { features, .. } = Response::decode(h.kind, &p).unwrap() else {
        panic!()
    };
    assert_eq!(
        features & vaccel_proto::FEATURE_SHM,
        vaccel_proto::FEATURE_SHM,
        "offered on Unix sockets"
    );

    // Without a descriptor.
    let (h, p) = c.call(&Request::ShmMap {
        region: 1,
        size: 4096,
    });
    assert!(
        error_of(&h, &p)
            .1
            .contains("must carry the region's file descriptor")
    );
    // An ordinary file cannot be sealed: refused.
    let f = tempfile::tempfile().unwrap();
    f.set_len(4096).unwrap();
    let (h, p) = c.send_with_fd(
        &Request::ShmMap {
            region: 1,
            size: 4096,
        },
        f.as_fd(),
    );
    let (code, msg) = error_of(&h, &p);
    assert_eq!(code, Code::Inval);
    assert!(msg.contains("not a sealable memfd"), "{msg}");

    let buf = SharedVec::<u8>::zeroed(8192).unwrap();
    let r = lookup(&buf).unwrap();
    // Claiming more than the file holds.
    let (h, p) = c.send_with_fd(
        &Request::ShmMap {
            region: r.region,
            size: 1 << 30,
        },
        r.fd,
    );
    assert!(error_of(&h, &p).1.contains("but the file holds"));
    let (h, _) = c.send_with_fd(
        &Request::ShmMap {
            region: r.region,
            size: r.region_len,
        },
        r.fd,
    );
    assert_eq!(h.kind, kind::DONE);

    let s = c.session(0);
    // A reference outside the region.
    let out_of_bounds = encode_shm_ref(r.region, 8000, 1000);
    let (h, p) = c.call(&Request::Op {
        session: s,
        op: OpType::ImageBlurFaces.id(),
        read: vec![ArgWire {
            ty: 28,
            flags: ARG_FLAG_SHM,
            data: &out_of_bounds,
        }],
        write: vec![OutWire {
            ty: 28,
            flags: 0,
            capacity: 0,
            growable: true,
            data: &[],
        }],
    });
    assert!(error_of(&h, &p).1.contains("outside region"));
    // An output overlapping an input.
    let input = encode_shm_ref(r.region, 0, 4096);
    let output = encode_shm_ref(r.region, 2048, 4096);
    let (h, p) = c.call(&Request::Op {
        session: s,
        op: OpType::ImageBlurFaces.id(),
        read: vec![ArgWire {
            ty: 28,
            flags: ARG_FLAG_SHM,
            data: &input,
        }],
        write: vec![OutWire {
            ty: 28,
            flags: ARG_FLAG_SHM,
            capacity: 4096,
            growable: false,
            data: &output,
        }],
    });
    let (code, msg) = error_of(&h, &p);
    assert_eq!(code, Code::Inval);
    assert!(msg.contains("overlaps another argument"), "{msg}");
    // A region that is not mapped.
    let ghost = encode_shm_ref(999, 0, 8);
    let (h, p) = c.call(&Request::Op {
        session: s,
        op: OpType::ImageBlurFaces.id(),
        read: vec![ArgWire {
            ty: 28,
            flags: ARG_FLAG_SHM,
            data: &ghost,
        }],
        write: vec![],
    });
    assert!(error_of(&h, &p).1.contains("not mapped"));
    let (h, _) = c.call(&Request::ShmUnmap { region: r.region });
    assert_eq!(h.kind, kind::DONE);
    let (h, p) = c.call(&Request::ShmUnmap { region: r.region });
    assert_eq!(error_of(&h, &p).0, Code::NoEnt);
    c.ping_works();
}

fn pose_op(session: u64) -> Request<'static> {
    Request::Op {
        session,
        op: OpType::ImagePose.id(),
        read: vec![ArgWire {
            ty: 28,
            flags: 0,
            data: b"i",
        }],
        write: vec![],
    }
}

/// Requests behind a slow op on the same connection are answered while it
/// runs, whether they run inline (PING, NOOP) or on the op pool (a panic).
#[test]
fn slow_op_does_not_stall_its_own_connection() {
    let agent = TestAgent::start(|_| {});
    let mut c = agent.client().hello();
    let s = c.session(PluginType::GPU.bits());
    let slow = c.send(&pose_op(s));
    let ping = c.send(&Request::Ping { payload: b"p" });
    let noop = c.send(&Request::Op {
        session: s,
        op: OpType::Noop.id(),
        read: vec![],
        write: vec![],
    });
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let boom = c.send(&Request::Op {
        session: s,
        op: OpType::ImageSegment.id(),
        read: vec![ArgWire {
            ty: 28,
            flags: 0,
            data: b"i",
        }],
        write: vec![],
    });
    let mut order = Vec::new();
    for _ in 0..4 {
        let (h, p) = c.recv().expect("a reply");
        if h.id == slow {
            assert_eq!(error_of(&h, &p).0, Code::TimedOut);
        }
        if h.id == boom {
            assert_eq!(error_of(&h, &p).0, Code::Backend);
        }
        order.push(h.id);
    }
    std::panic::set_hook(prev);
    assert_eq!(
        order.last(),
        Some(&slow),
        "the slow op answers last: {order:?}"
    );
    for id in [ping, noop, boom] {
        assert!(order.contains(&id), "{id} answered: {order:?}");
    }
}

/// With one op slot, a second slow op waits until the first has finished
/// (not merely timed out), while inline requests are still answered.
#[test]
fn parallel_ops_are_bounded_and_queued_ops_wait() {
    let agent = TestAgent::start(|c| c.max_parallel_ops = 1);
    let mut c = agent.client().hello();
    let s = c.session(PluginType::GPU.bits());
    let t0 = Instant::now();
    let first = c.send(&pose_op(s));
    let second = c.send(&pose_op(s));
    let ping = c.send(&Request::Ping { payload: b"p" });
    let (h, _) = c.recv().unwrap();
    assert_eq!(
        h.id, ping,
        "answered while both ops hold or wait for the slot"
    );
    let (h, p) = c.recv().unwrap();
    assert_eq!((h.id, error_of(&h, &p).0), (first, Code::TimedOut));
    let (h, p) = c.recv().unwrap();
    assert_eq!((h.id, error_of(&h, &p).0), (second, Code::TimedOut));
    // The second op could start only when the first (600 ms) had finished,
    // then ran into its own 300 ms timeout.
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    c.ping_works();
}

/// Stopping the agent (SIGTERM) lets an op in flight finish and answer,
/// then closes the connection and releases what it held.
#[test]
fn stop_finishes_in_flight_ops_then_releases() {
    let mut agent = TestAgent::start(|c| c.op_timeout = Duration::from_secs(10));
    let mut c = agent.client().hello();
    let s = c.session(PluginType::GPU.bits());
    let id = c.send(&pose_op(s));
    // Let the op start before stopping.
    std::thread::sleep(Duration::from_millis(100));
    let stats = agent.stats.clone();
    let stopper = std::thread::spawn(move || {
        agent.agent.stop();
        agent
    });
    let (h, p) = c.recv().expect("the op's reply");
    assert_eq!(h.id, id);
    assert_eq!(
        owned(Response::decode(h.kind, &p).unwrap()),
        Response::OpResult { outputs: vec![] }
    );
    assert!(c.recv().is_none(), "then the agent closes the connection");
    let _agent = stopper.join().unwrap();
    assert_eq!(stats.live(), (0, 0, 0));
}
