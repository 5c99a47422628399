//! A trivial in-process function served through the watchdog, for
//! comparing against the bare `hello` example.
//!
//! ```sh
//! port=8091 cargo run --release -p vaccel-watchdog --example inproc
//! wrk -t2 -c64 -d10s http://127.0.0.1:8091/
//! ```
//!
//! Configuration comes from the environment like the real watchdog
//! (`mode` and `fprocess` default to `inproc` and `hello`; set
//! `metrics_port=0` to move the metrics port out of the way).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use vaccel_watchdog::{Config, Function, Registry, Watchdog};

/// Answers `Hello, World!`, on the I/O thread.
struct Hello;

impl Function for Hello {
    fn name(&self) -> &str {
        "hello"
    }
    fn inline(&self) -> bool {
        true
    }
    fn call(&self, _req: Request<Bytes>) -> Response<Bytes> {
        Response::new(Bytes::from_static(b"Hello, World!"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    env.entry("mode".into()).or_insert_with(|| "inproc".into());
    env.entry("fprocess".into())
        .or_insert_with(|| "hello".into());
    env.entry("port".into()).or_insert_with(|| "8091".into());
    env.entry("suppress_lock".into())
        .or_insert_with(|| "true".into());
    let config = Config::from_env_map(&env)?;
    let functions = Registry::new().with(Arc::new(Hello));
    let server = Watchdog::bind(config, &functions).await?;
    println!(
        "inproc: listening on {}, metrics on {:?}",
        server.local_addr(),
        server.metrics_addr()
    );
    server.run_until_signal().await?;
    Ok(())
}
