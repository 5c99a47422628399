//! The interface an in-process function implements (consumer-side: the
//! watchdog and the gateway define what they call; `vaccel-functions`
//! implements it).

use bytes::Bytes;
use http::{Request, Response};

/// A function served in-process: no fork, the watchdog calls it directly.
pub trait Function: Send + Sync + 'static {
    /// The name it is served under (`/function/<name>` behind the gateway).
    fn name(&self) -> &str;

    /// The largest request body it accepts, in bytes. The server stops
    /// reading past it and answers 400 with a message naming the limit.
    fn max_body(&self) -> usize {
        32 << 20
    }

    /// True when `call` is cheap and never blocks (e.g. `echo`): it then
    /// runs on the I/O thread instead of a blocking worker.
    fn inline(&self) -> bool {
        false
    }

    /// Handle one request. May block (it runs on a worker thread unless
    /// [`inline`](Self::inline) says otherwise). Errors are responses too:
    /// bad input is a 400 with a message, never a panic.
    fn call(&self, req: Request<Bytes>) -> Response<Bytes>;
}
