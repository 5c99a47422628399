//! A multiplexed, blocking connection to the agent.
//!
//! Many threads share one connection. Each writes its request (under a
//! write lock, with `writev`, borrowing large arguments) and then waits for
//! the reply with its request id. Whichever waiting thread finds no reader
//! becomes the reader (leader/follower): it reads frames and hands other
//! threads their replies. A lone caller reads its own reply directly, so a
//! round trip costs no thread hand-off. Frames are read through a buffer,
//! so a small reply costs one `read`; a large one goes straight into its
//! own buffer after the bytes already buffered.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vaccel_core::{Code, Error};
use vaccel_proto::{HEADER_LEN, Header, Request, Response};
use vaccel_transport::{Address, Stream};

/// How long one blocking read waits before the reader re-checks deadlines.
const READ_TICK: Duration = Duration::from_millis(20);

/// A received frame: header and 8-aligned payload.
pub struct Reply {
    pub header: Header,
    words: Vec<u64>,
}

impl Reply {
    pub fn payload(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.header.len as usize]
    }

    /// Decode; an ERROR response becomes an `Err` with the agent's code and message.
    pub fn response(&self) -> Result<Response<'_>, Error> {
        match Response::decode(self.header.kind, self.payload()).map_err(Error::from)? {
            Response::Error { code, message } => Err(Error::new(
                Code::from_i32(code).unwrap_or(Code::Backend),
                message,
            )),
            r => Ok(r),
        }
    }
}

/// Size of the read buffer: replies up to this size (header included)
/// are read through it, usually with one `read` each.
const READ_BUF: usize = 16 << 10;

/// The reader's progress, kept across read ticks.
struct ReadState {
    /// Unconsumed bytes are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A frame larger than the buffer being read into its own payload
    /// buffer: header, payload, bytes received so far.
    body: Option<(Header, Vec<u64>, usize)>,
}

impl Default for ReadState {
    fn default() -> Self {
        ReadState {
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
            body: None,
        }
    }
}

struct Shared {
    done: HashMap<u64, Reply>,
    waiting: HashSet<u64>,
    reader_busy: bool,
    waiters: usize,
    dead: Option<Error>,
}

/// One connection to the agent.
pub struct Connection {
    pub generation: u64,
    pub max_frame: u32,
    /// Whether shared-memory arguments were negotiated (Unix sockets).
    pub shm: bool,
    /// Shared regions already mapped by the agent on this connection.
    pub mapped: Mutex<HashSet<u64>>,
    writer: Mutex<Stream>,
    reader: Mutex<(Stream, ReadState)>,
    state: Mutex<Shared>,
    cv: Condvar,
    next_id: AtomicU64,
    addr: String,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn lost(addr: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        Code::Sess,
        format!("connection to the vAccel agent at {addr} lost: {why}; the next call reconnects"),
    )
}

impl Connection {
    /// Connect and say HELLO.
    pub fn open(
        addr: &Address,
        token: &[u8],
        timeout: Duration,
        generation: u64,
    ) -> Result<Arc<Connection>, Error> {
        let s = vaccel_transport::connect(addr, timeout.min(Duration::from_secs(10))).map_err(|e| {
            Error::new(
                Code::Sess,
                format!("cannot connect to the vAccel agent at {addr}: {e} (is `vaccel agent` running? check VACCEL_RPC_ADDRESS)"),
            )
        })?;
        s.set_read_timeout(Some(READ_TICK))
            .map_err(|e| Error::from_io(&e, "setting a read timeout"))?;
        let r = s
            .try_clone()
            .map_err(|e| Error::from_io(&e, "cloning the agent connection"))?;
        let offer = if s.is_unix() {
            vaccel_proto::FEATURE_SHM
        } else {
            0
        };
        let mut c = Arc::new(Connection {
            generation,
            max_frame: vaccel_proto::DEFAULT_MAX_FRAME,
            shm: false,
            mapped: Mutex::new(HashSet::new()),
            writer: Mutex::new(s),
            reader: Mutex::new((r, ReadState::default())),
            state: Mutex::new(Shared {
                done: HashMap::new(),
                waiting: HashSet::new(),
                reader_busy: false,
                waiters: 0,
                dead: None,
            }),
            cv: Condvar::new(),
            next_id: AtomicU64::new(1),
            addr: addr.to_string(),
        });
        let hello = Request::Hello {
            version: vaccel_proto::VERSION,
            features: offer,
            token,
        };
        let reply = c.call(&hello, timeout)?;
        let shm = match reply.response()? {
            Response::HelloOk {
                server, features, ..
            } => {
                tracing::debug!(%addr, server, features, "connected to agent");
                features & vaccel_proto::FEATURE_SHM != 0
            }
            other => {
                return Err(Error::backend(format!(
                    "agent answered HELLO with {other:?}"
                )));
            }
        };
        drop(reply);
        // Nobody else holds the connection yet.
        if let Some(c) = Arc::get_mut(&mut c) {
            c.shm = shm;
        }
        Ok(c)
    }

    /// Whether the connection has failed.
    pub fn is_dead(&self) -> bool {
        lock(&self.state).dead.is_some()
    }

    fn kill(&self, g: &mut Shared, e: Error) {
        if g.dead.is_none() {
            g.dead = Some(e);
            let _ = lock(&self.writer).shutdown();
        }
        self.cv.notify_all();
    }

    /// Send a request and wait for its reply.
    pub fn call(&self, req: &Request<'_>, timeout: Duration) -> Result<Reply, Error> {
        self.call_with_fd(req, None, timeout)
    }

    /// Send a request, passing `fd` with it, and wait for its reply.
    pub fn call_with_fd(
        &self,
        req: &Request<'_>,
        fd: Option<std::os::fd::BorrowedFd<'_>>,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = req.encode(id).map_err(Error::from)?;
        {
            let mut g = lock(&self.state);
            if let Some(e) = &g.dead {
                return Err(e.clone());
            }
            g.waiting.insert(id);
        }
        let wrote = {
            let mut w = lock(&self.writer);
            let mut slices = frame.io_slices();
            match fd {
                Some(fd) => w.write_all_vectored_with_fd(&mut slices, fd),
                None => w.write_all_vectored(&mut slices),
            }
        };
        drop(frame);
        if let Err(e) = wrote {
            let mut g = lock(&self.state);
            g.waiting.remove(&id);
            let err = lost(&self.addr, format_args!("sending failed: {e}"));
            self.kill(&mut g, err.clone());
            return Err(err);
        }
        let deadline = Instant::now() + timeout;
        let mut g = lock(&self.state);
        loop {
            if let Some(r) = g.done.remove(&id) {
                g.waiting.remove(&id);
                return Ok(r);
            }
            if let Some(e) = &g.dead {
                let e = e.clone();
                g.waiting.remove(&id);
                return Err(e);
            }
            let now = Instant::now();
            if now >= deadline {
                g.waiting.remove(&id);
                return Err(Error::new(
                    Code::TimedOut,
                    format!(
                        "no reply from the agent at {} within {timeout:?} (VACCEL_RPC_TIMEOUT)",
                        self.addr
                    ),
                ));
            }
            if !g.reader_busy {
                g.reader_busy = true;
                drop(g);
                let res = {
                    let mut rd = lock(&self.reader);
                    let (s, st) = &mut *rd;
                    read_frame(s, st, self.max_frame)
                };
                g = lock(&self.state);
                g.reader_busy = false;
                match res {
                    Ok(Some(reply)) => {
                        if reply.header.id == id {
                            g.waiting.remove(&id);
                            if g.waiters > 0 {
                                self.cv.notify_all();
                            }
                            return Ok(reply);
                        }
                        if g.waiting.contains(&reply.header.id) {
                            g.done.insert(reply.header.id, reply);
                        } else {
                            tracing::debug!(
                                id = reply.header.id,
                                "dropping a reply nobody waits for (timed out)"
                            );
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let err = lost(&self.addr, e);
                        self.kill(&mut g, err);
                        continue;
                    }
                }
                if g.waiters > 0 {
                    self.cv.notify_all();
                }
            } else {
                g.waiters += 1;
                let wait = deadline.saturating_duration_since(now).min(READ_TICK * 5);
                g = self
                    .cv
                    .wait_timeout(g, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                g.waiters -= 1;
            }
        }
    }
}

/// Read (part of) one frame. `Ok(None)`: the read tick expired; progress is kept.
fn read_frame(s: &mut Stream, st: &mut ReadState, max_frame: u32) -> Result<Option<Reply>, String> {
    /// One read; `Ok(0)`: the tick expired.
    fn read_some(s: &mut Stream, buf: &mut [u8]) -> Result<usize, String> {
        loop {
            match s.read(buf) {
                Ok(0) => return Err("the agent closed the connection".into()),
                Ok(n) => return Ok(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    if let Some((h, words, got)) = st.body.as_mut() {
        let len = h.len as usize;
        let buf = &mut bytemuck::cast_slice_mut::<u64, u8>(words)[..len];
        while *got < len {
            match read_some(s, &mut buf[*got..])? {
                0 => return Ok(None),
                n => *got += n,
            }
        }
        let (header, words, _) = st.body.take().expect("set above");
        return Ok(Some(Reply { header, words }));
    }
    loop {
        let have = st.end - st.start;
        if have >= HEADER_LEN {
            let hb: &[u8; HEADER_LEN] = st.buf[st.start..st.start + HEADER_LEN]
                .try_into()
                .expect("24 bytes");
            let header = Header::decode(hb, max_frame).map_err(|e| e.to_string())?;
            let len = header.len as usize;
            let mut words = vec![0u64; len.div_ceil(8)];
            let payload = st.start + HEADER_LEN;
            if HEADER_LEN + len <= have {
                bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len]
                    .copy_from_slice(&st.buf[payload..payload + len]);
                st.start += HEADER_LEN + len;
                return Ok(Some(Reply { header, words }));
            }
            if HEADER_LEN + len > READ_BUF {
                // Too large for the buffer: what is buffered, then the rest
                // straight into the payload buffer.
                let part = have - HEADER_LEN;
                bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..part]
                    .copy_from_slice(&st.buf[payload..payload + part]);
                st.start = 0;
                st.end = 0;
                st.body = Some((header, words, part));
                return read_frame(s, st, max_frame);
            }
        }
        // Need more bytes: make room at the end, then read once.
        if st.start == st.end {
            st.start = 0;
            st.end = 0;
        } else if st.start > 0 && st.end == READ_BUF
            || st.start + HEADER_LEN > READ_BUF
            || st.end - st.start >= HEADER_LEN
                && st.start + frame_len(&st.buf[st.start..]) > READ_BUF
        {
            st.buf.copy_within(st.start..st.end, 0);
            st.end -= st.start;
            st.start = 0;
        }
        match read_some(s, &mut st.buf[st.end..])? {
            0 => return Ok(None),
            n => st.end += n,
        }
    }
}

/// Header plus payload length of the frame whose header starts `b`.
fn frame_len(b: &[u8]) -> usize {
    HEADER_LEN + u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) as usize
}
