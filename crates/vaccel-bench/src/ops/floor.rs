//! Raw-socket floors: what the transport alone costs, measured between two
//! threads of this process with no protocol, no agent and no plugin.
//!
//! - [`PingPong`]: a request of exactly the NOOP op frame's size and a reply
//!   of exactly the empty OP_RESULT frame's size, over a Unix socket pair or
//!   TCP loopback with `TCP_NODELAY` on both ends.
//! - [`bandwidth`]: bytes per second of one bulk transfer (writer → reader,
//!   then a 1-byte acknowledgement).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vaccel_transport::Stream;

use super::Transport;
use crate::{Error, Result};

fn pair(t: Transport) -> Result<(Stream, Stream)> {
    match t {
        Transport::Unix => {
            let (a, b) = UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
            Ok((Stream::Unix(a), Stream::Unix(b)))
        }
        Transport::Tcp => {
            let l = TcpListener::bind("127.0.0.1:0")
                .map_err(|e| Error::io("binding TCP loopback", e))?;
            let addr = l.local_addr()?;
            let a =
                TcpStream::connect(addr).map_err(|e| Error::io("connecting TCP loopback", e))?;
            let (b, _) = l.accept()?;
            a.set_nodelay(true)?;
            b.set_nodelay(true)?;
            Ok((Stream::Tcp(a), Stream::Tcp(b)))
        }
    }
}

/// Fill `buf` as agent and client wait: poll (non-blocking reads, yielding
/// between them) for up to `poll`, then block.
fn read_exact_polling(s: &mut Stream, buf: &mut [u8], poll: Duration) -> std::io::Result<()> {
    let mut got = 0;
    if !poll.is_zero() {
        let until = Instant::now() + poll;
        while got < buf.len() {
            match s.try_recv(&mut buf[got..])? {
                Some(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Some(n) => got += n,
                None if Instant::now() >= until => break,
                None => std::thread::yield_now(),
            }
        }
    }
    s.read_exact(&mut buf[got..])
}

/// The byte counts of one NOOP round trip on the wire: (request frame, reply frame).
pub fn noop_frame_sizes() -> Result<(usize, usize)> {
    let req = vaccel_proto::Request::Op {
        session: 1,
        op: vaccel::OpType::Noop.id(),
        read: Vec::new(),
        write: Vec::new(),
    }
    .encode(1)
    .map_err(vaccel::Error::from)?
    .len();
    let resp = vaccel_proto::Response::OpResult {
        outputs: Vec::new(),
    }
    .encode(1)
    .map_err(vaccel::Error::from)?
    .len();
    Ok((req, resp))
}

/// The shape of one op on the wire: what the remote plugin sends and the
/// agent answers, as byte lengths (contents do not change frame sizes).
#[derive(Debug, Clone, Default)]
pub struct OpShape {
    /// Byte length of each read argument (a shared-memory argument is a 24-byte reference).
    pub read: Vec<usize>,
    /// Each write argument: bytes sent with the request (in/out contents
    /// or a 24-byte reference), whether it is growable.
    pub write: Vec<(usize, bool)>,
    /// Bytes of each output in the reply (a shared-memory output is an 8-byte length).
    pub outputs: Vec<usize>,
}

/// The frame sizes of an op of this shape: (OP request, OP_RESULT reply), headers included.
pub fn op_frame_sizes(shape: &OpShape) -> Result<(usize, usize)> {
    let longest = shape
        .read
        .iter()
        .chain(shape.write.iter().map(|(n, _)| n))
        .chain(&shape.outputs)
        .copied()
        .max()
        .unwrap_or(0);
    let zeros = vec![0u8; longest];
    let req = vaccel_proto::Request::Op {
        session: 1,
        op: 0,
        read: shape
            .read
            .iter()
            .map(|n| vaccel_proto::ArgWire {
                ty: 0,
                flags: 0,
                data: &zeros[..*n],
            })
            .collect(),
        write: shape
            .write
            .iter()
            .map(|(n, growable)| vaccel_proto::OutWire {
                ty: 0,
                flags: 0,
                capacity: if *growable { 0 } else { *n as u64 },
                growable: *growable,
                data: &zeros[..*n],
            })
            .collect(),
    }
    .encode(1)
    .map_err(vaccel::Error::from)?
    .len();
    let resp = vaccel_proto::Response::OpResult {
        outputs: shape.outputs.iter().map(|n| &zeros[..*n]).collect(),
    }
    .encode(1)
    .map_err(vaccel::Error::from)?
    .len();
    Ok((req, resp))
}

/// A request/reply ping-pong between this thread and an echo thread.
pub struct PingPong {
    client: Stream,
    req: Vec<u8>,
    resp: Vec<u8>,
    poll: Duration,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PingPong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PingPong")
            .field("request", &self.req.len())
            .field("reply", &self.resp.len())
            .finish()
    }
}

impl PingPong {
    /// Start the echo thread: it answers every `req_len` bytes with
    /// `resp_len` bytes. Both ends busy-poll for `poll` before a read
    /// blocks, as agent and client do.
    pub fn start(
        t: Transport,
        req_len: usize,
        resp_len: usize,
        poll: Duration,
    ) -> Result<PingPong> {
        let (client, mut server) = pair(t)?;
        let handle = std::thread::Builder::new()
            .name("floor-echo".into())
            .spawn(move || {
                let mut req = vec![0u8; req_len];
                let resp = vec![0x5au8; resp_len];
                while read_exact_polling(&mut server, &mut req, poll).is_ok() {
                    if server.write_all(&resp).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::io("starting the echo thread", e))?;
        Ok(PingPong {
            client,
            req: vec![0xa5u8; req_len],
            resp: vec![0u8; resp_len],
            poll,
            server: Some(handle),
        })
    }

    /// One round trip.
    pub fn round_trip(&mut self) -> Result<()> {
        self.client
            .write_all(&self.req)
            .map_err(|e| Error::io("floor ping", e))?;
        read_exact_polling(&mut self.client, &mut self.resp, self.poll)
            .map_err(|e| Error::io("floor pong", e))
    }
}

impl Drop for PingPong {
    fn drop(&mut self) {
        let _ = self.client.shutdown();
        if let Some(h) = self.server.take() {
            let _ = h.join();
        }
    }
}

/// Seconds for each of `repeats` transfers of `bytes` bytes from one thread
/// to another over `t` (after one warm-up transfer), in run order.
pub fn bandwidth(t: Transport, bytes: usize, repeats: usize) -> Result<Vec<f64>> {
    let (mut tx, mut rx) = pair(t)?;
    let rounds = repeats.max(1) + 1;
    let reader = std::thread::Builder::new()
        .name("floor-sink".into())
        .spawn(move || -> std::io::Result<()> {
            let mut buf = vec![0u8; bytes];
            for _ in 0..rounds {
                rx.read_exact(&mut buf)?;
                rx.write_all(&[1])?;
            }
            Ok(())
        })
        .map_err(|e| Error::io("starting the sink thread", e))?;
    let data = vec![0x3cu8; bytes];
    let mut ack = [0u8; 1];
    let res = super::timing::repeat_once(repeats, || {
        tx.write_all(&data)
            .and_then(|()| tx.read_exact(&mut ack))
            .map_err(|e| Error::io("bulk transfer", e))
    });
    let _ = tx.shutdown();
    let joined = reader
        .join()
        .map_err(|_| Error::Options("the sink thread panicked".into()))?;
    let times = res?;
    joined.map_err(|e| Error::io("bulk transfer (sink)", e))?;
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noop_frames_are_small_and_fixed() {
        let (req, resp) = noop_frame_sizes().unwrap();
        // Header 24 + session 8 + op 4 + two counts.
        assert_eq!(req, 24 + 8 + 4 + 4 + 4);
        // Header 24 + output count.
        assert_eq!(resp, 24 + 4);
    }

    #[test]
    fn op_frames_grow_with_their_arguments() {
        let (req, resp) = op_frame_sizes(&OpShape::default()).unwrap();
        assert_eq!((req, resp), noop_frame_sizes().unwrap());
        let (req, resp) = op_frame_sizes(&OpShape {
            read: vec![16, 1000],
            write: vec![(0, true)],
            outputs: vec![1008],
        })
        .unwrap();
        // Each read: type, flags, blob length, padding to 8, bytes.
        assert!(req >= 44 + 2 * 16 + 16 + 1000 + 8 + 8, "{req}");
        assert!((28 + 8 + 1008..28 + 8 + 1008 + 8).contains(&resp), "{resp}");
    }

    #[test]
    fn ping_pong_and_bandwidth_work_on_both_transports() {
        for t in [Transport::Unix, Transport::Tcp] {
            // Blocking, busy-polling, and polling for so long that every
            // reply arrives while polling.
            for poll in [0, 50, 200_000] {
                let mut p = PingPong::start(t, 44, 28, Duration::from_micros(poll)).unwrap();
                for _ in 0..10 {
                    p.round_trip().unwrap();
                }
                assert!(p.resp.iter().all(|b| *b == 0x5a));
            }
            let times = bandwidth(t, 1 << 20, 3).unwrap();
            assert_eq!(times.len(), 3);
            assert!(times.iter().all(|s| *s > 0.0));
        }
    }
}
