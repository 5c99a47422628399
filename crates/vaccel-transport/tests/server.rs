//! Listeners: socket modes, stale sockets, hybrid-vsock paths, TCP.
#![cfg(feature = "server")]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vaccel_transport::{Address, Listener, ListenerOptions, connect};

async fn echo_once(l: &Listener) {
    let (mut s, peer) = l.accept().await.unwrap();
    assert!(!peer.is_empty());
    let mut b = [0u8; 4];
    s.read_exact(&mut b).await.unwrap();
    s.write_all(&b).await.unwrap();
}

fn client_round_trip(addr: Address) {
    let mut c = connect(&addr, Duration::from_secs(2)).unwrap();
    c.write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_is_owner_only_and_stale_files_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("agent.sock");
    std::fs::write(&p, b"stale").unwrap();
    let addr = Address::Unix(p.clone());
    let l = Listener::bind(&addr, &ListenerOptions::default())
        .await
        .unwrap();
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A second agent on the same live socket is refused.
    let e = Listener::bind(&addr, &ListenerOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    // That check connected once to see the socket is live: drain it.
    drop(l.accept().await.unwrap());
    let t = tokio::task::spawn_blocking(move || client_round_trip(addr));
    echo_once(&l).await;
    t.await.unwrap();
    drop(l);
    assert!(!p.exists(), "socket file removed on drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurable_mode_and_hybrid_vsock_path() {
    let dir = tempfile::tempdir().unwrap();
    let uds = dir.path().join("fc.vsock");
    let addr: Address = format!("hybrid-vsock://{}:2048", uds.display())
        .parse()
        .unwrap();
    let l = Listener::bind(&addr, &ListenerOptions { unix_mode: 0o660 })
        .await
        .unwrap();
    let path = dir.path().join("fc.vsock_2048");
    assert!(path.exists());
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o660
    );
    // What the VMM does for a guest connecting to vsock port 2048: connect to <uds>_2048.
    let t = tokio::task::spawn_blocking(move || client_round_trip(Address::Unix(path)));
    echo_once(&l).await;
    t.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_port_zero_reports_the_real_port() {
    let l = Listener::bind(
        &"tcp://127.0.0.1:0".parse().unwrap(),
        &ListenerOptions::default(),
    )
    .await
    .unwrap();
    let addr = l.local_address().unwrap();
    assert!(l.is_tcp());
    assert!(!addr.to_string().ends_with(":0"));
    let t = tokio::task::spawn_blocking(move || client_round_trip(addr));
    echo_once(&l).await;
    t.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsock_loopback_when_the_kernel_has_it() {
    // AF_VSOCK needs the vsock (loopback) driver, which containers and CI
    // machines often lack: say so loudly instead of passing silently.
    let addr = Address::Vsock {
        cid: 1,
        port: 40123,
    };
    match Listener::bind(&addr, &ListenerOptions::default()).await {
        Ok(l) => {
            let t = tokio::task::spawn_blocking(move || client_round_trip(addr));
            echo_once(&l).await;
            t.await.unwrap();
        }
        Err(e) => {
            // Straight to stderr (not eprintln!, which the harness captures): a skip must be visible.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED vsock loopback test: this kernel has no AF_VSOCK loopback ({e})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_recv_never_waits_on_either_side() {
    let dir = tempfile::tempdir().unwrap();
    let addr = Address::Unix(dir.path().join("agent.sock"));
    let l = Listener::bind(&addr, &ListenerOptions::default())
        .await
        .unwrap();
    let a = addr.clone();
    let client = tokio::task::spawn_blocking(move || connect(&a, Duration::from_secs(2)).unwrap());
    let (s, _) = l.accept().await.unwrap();
    let mut c = client.await.unwrap();
    let s = s.into_blocking().unwrap();
    let mut fds = Vec::new();
    let mut b = [0u8; 16];
    // Nothing queued: both sides return at once.
    assert_eq!(s.try_recv(&mut b, &mut fds).unwrap(), None);
    assert_eq!(c.try_recv(&mut b).unwrap(), None);
    c.write_all(b"ping").unwrap();
    let n = loop {
        if let Some(n) = s.try_recv(&mut b, &mut fds).unwrap() {
            break n;
        }
        std::thread::yield_now();
    };
    assert_eq!(&b[..n], b"ping");
    s.send(&[std::io::IoSlice::new(b"pong")], false).unwrap();
    let n = loop {
        if let Some(n) = c.try_recv(&mut b).unwrap() {
            break n;
        }
        std::thread::yield_now();
    };
    assert_eq!(&b[..n], b"pong");
    // The peer closed: Some(0), not None.
    drop(c);
    let n = loop {
        if let Some(n) = s.try_recv(&mut b, &mut fds).unwrap() {
            break n;
        }
        std::thread::yield_now();
    };
    assert_eq!(n, 0);
}
