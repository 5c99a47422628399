//! The baseline for the watchdog's overhead: a bare hyper 1 HTTP/1
//! hello-world server, on the same runtime and socket settings as the
//! watchdog (multi-threaded tokio, keep-alive, TCP_NODELAY).
//!
//! ```sh
//! cargo run --release -p vaccel-watchdog --example hello -- 8090
//! wrk -t2 -c64 -d10s http://127.0.0.1:8090/
//! ```
//!
//! Compare with the `inproc` example, which serves the same answer through
//! the watchdog.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("port").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(8090);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    println!("hello: listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                    b"Hello, World!",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
