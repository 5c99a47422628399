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
//!
//! The reader blocks without a socket timeout (a timed sleep in the kernel
//! costs about half a microsecond per call on small VMs). A watchdog thread
//! per connection, which sleeps until the reading call's deadline, enforces
//! it instead: it sends a PING, whose answer wakes the reader, which then
//! returns `ETIMEDOUT`; if the agent does not answer even that, or send
//! any byte, within `PING_GRACE` (1 s), the connection is closed.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

use vaccel_core::{Code, Error};
use vaccel_proto::{HEADER_LEN, Header, Request, Response};
use vaccel_transport::{Address, Stream};

use crate::wait::{Plan, Waits, shape};

/// How long a follower waits before it re-checks its deadline and whether
/// the reader role is free.
const FOLLOWER_TICK: Duration = Duration::from_millis(100);
/// How long an overdue reader's connection may stay silent (no answer to a
/// PING, no byte at all) before it is closed as dead.
const PING_GRACE: Duration = Duration::from_secs(1);
/// While a PING cannot be sent (a writer holds the socket), retry this often.
const PING_RETRY: Duration = Duration::from_millis(50);

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

/// The reader's buffer: unconsumed bytes are `buf[start..end]`.
struct ReadState {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for ReadState {
    fn default() -> Self {
        ReadState {
            buf: vec![0; READ_BUF],
            start: 0,
            end: 0,
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

/// What the watchdog sees of the reader, without locks. Times are
/// nanoseconds since `epoch`.
struct Watch {
    epoch: Instant,
    /// Deadline of the call whose thread is blocked reading (0: none).
    reading_until: AtomicU64,
    /// Bumped by every read that returned bytes.
    progress: AtomicU64,
    /// When the watchdog wakes next.
    wake_at: AtomicU64,
    stop: Mutex<bool>,
    cv: Condvar,
}

impl Watch {
    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// One connection to the agent.
pub struct Connection {
    pub generation: u64,
    pub max_frame: u32,
    /// Whether shared-memory arguments were negotiated (Unix sockets).
    shm: AtomicBool,
    watch: Arc<Watch>,
    /// Shared regions already mapped by the agent on this connection.
    pub mapped: Mutex<HashSet<u64>>,
    writer: Mutex<Stream>,
    /// A third handle to the socket, for shutting it down without a lock.
    ctl: Stream,
    reader: Mutex<(Stream, ReadState)>,
    state: Mutex<Shared>,
    cv: Condvar,
    next_id: AtomicU64,
    addr: String,
    /// How callers wait for replies (busy polling, learned waits).
    waits: Waits,
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
        busy_poll: Duration,
        generation: u64,
    ) -> Result<Arc<Connection>, Error> {
        let s = vaccel_transport::connect(addr, timeout.min(Duration::from_secs(10))).map_err(|e| {
            Error::new(
                Code::Sess,
                format!("cannot connect to the vAccel agent at {addr}: {e} (is `vaccel agent` running? check VACCEL_RPC_ADDRESS)"),
            )
        })?;
        let ctl = s
            .try_clone()
            .map_err(|e| Error::from_io(&e, "cloning the agent connection"))?;
        let r = s
            .try_clone()
            .map_err(|e| Error::from_io(&e, "cloning the agent connection"))?;
        let offer = if s.is_unix() {
            vaccel_proto::FEATURE_SHM
        } else {
            0
        };
        let watch = Arc::new(Watch {
            epoch: Instant::now(),
            reading_until: AtomicU64::new(0),
            progress: AtomicU64::new(0),
            wake_at: AtomicU64::new(0),
            stop: Mutex::new(false),
            cv: Condvar::new(),
        });
        let c = Arc::new(Connection {
            generation,
            max_frame: vaccel_proto::DEFAULT_MAX_FRAME,
            shm: AtomicBool::new(false),
            watch: watch.clone(),
            mapped: Mutex::new(HashSet::new()),
            writer: Mutex::new(s),
            ctl,
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
            waits: Waits::new(busy_poll),
        });
        let weak = Arc::downgrade(&c);
        std::thread::Builder::new()
            .name("vaccel-remote-watch".into())
            .spawn(move || watchdog(weak, watch, timeout))
            .map_err(|e| Error::from_io(&e, "starting the connection watchdog"))?;
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
        c.shm.store(shm, Ordering::Relaxed);
        Ok(c)
    }

    /// Whether shared-memory arguments were negotiated (Unix sockets).
    pub fn shm(&self) -> bool {
        self.shm.load(Ordering::Relaxed)
    }

    /// Whether the connection has failed.
    pub fn is_dead(&self) -> bool {
        lock(&self.state).dead.is_some()
    }

    fn kill(&self, g: &mut Shared, e: Error) {
        if g.dead.is_none() {
            g.dead = Some(e);
            // Through the unlocked handle: a writer or reader may be blocked
            // holding theirs, and this is what unblocks them.
            let _ = self.ctl.shutdown();
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
        let shape = shape(req);
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
        let sent = Instant::now();
        let deadline = sent + timeout;
        let mut plan = self.waits.plan(shape, sent);
        let mut g = lock(&self.state);
        loop {
            if let Some(r) = g.done.remove(&id) {
                g.waiting.remove(&id);
                return Ok(r);
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
            if let Some(e) = &g.dead {
                let e = e.clone();
                g.waiting.remove(&id);
                return Err(e);
            }
            if !g.reader_busy {
                g.reader_busy = true;
                drop(g);
                let res = {
                    let mut rd = lock(&self.reader);
                    let (s, st) = &mut *rd;
                    let w = &self.watch;
                    let until = w.ns(deadline);
                    w.reading_until.store(until, Ordering::SeqCst);
                    if until < w.wake_at.load(Ordering::SeqCst) {
                        let _stop = lock(&w.stop);
                        w.cv.notify_one();
                    }
                    let r = read_frame(
                        s,
                        st,
                        self.max_frame,
                        &w.progress,
                        &mut plan,
                        self.waits.window(),
                    );
                    w.reading_until.store(0, Ordering::SeqCst);
                    r
                };
                g = lock(&self.state);
                g.reader_busy = false;
                match res {
                    Ok(reply) => {
                        if reply.header.id == id {
                            self.waits.observe(shape, sent.elapsed());
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
                let wait = deadline.saturating_duration_since(now).min(FOLLOWER_TICK);
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

/// Read one frame (blocking). The first read follows `plan`; once part of
/// the frame is in, the rest is polled for up to `window` per read (it is
/// on its way), then read blocking.
fn read_frame(
    s: &mut Stream,
    st: &mut ReadState,
    max_frame: u32,
    progress: &AtomicU64,
    plan: &mut Plan,
    window: Duration,
) -> Result<Reply, String> {
    let mid_frame = |plan: &mut Plan| {
        if plan.poll_until.is_none() && !window.is_zero() {
            plan.poll_until = Some(Instant::now() + window);
        }
    };
    /// One read that returns bytes; the first one of a call follows its
    /// waiting plan (see `crate::wait`).
    fn read_some(
        s: &mut Stream,
        buf: &mut [u8],
        progress: &AtomicU64,
        plan: &mut Plan,
    ) -> Result<usize, String> {
        if let Some(until) = std::mem::take(plan).poll_until {
            loop {
                match s.try_recv(buf) {
                    Ok(Some(0)) => return Err("the agent closed the connection".into()),
                    Ok(Some(n)) => {
                        progress.fetch_add(1, Ordering::Relaxed);
                        return Ok(n);
                    }
                    Ok(None) => {}
                    Err(e) => return Err(e.to_string()),
                }
                if Instant::now() >= until {
                    break;
                }
                std::thread::yield_now();
            }
        }
        loop {
            match s.read(buf) {
                Ok(0) => return Err("the agent closed the connection".into()),
                Ok(n) => {
                    progress.fetch_add(1, Ordering::Relaxed);
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    loop {
        let have = st.end - st.start;
        if have >= HEADER_LEN {
            let hb: &[u8; HEADER_LEN] = st.buf[st.start..st.start + HEADER_LEN]
                .try_into()
                .expect("24 bytes");
            let header = Header::decode(hb, max_frame).map_err(|e| e.to_string())?;
            let len = header.len as usize;
            let payload = st.start + HEADER_LEN;
            if HEADER_LEN + len <= have {
                let words = bytemuck::pod_collect_to_vec(&st.buf[payload..payload + len]);
                st.start += HEADER_LEN + len;
                return Ok(Reply { header, words });
            }
            if HEADER_LEN + len > READ_BUF {
                // Too large for the buffer: what is buffered, then the rest
                // straight into the payload buffer.
                let mut words = vec![0u64; len.div_ceil(8)];
                let buf = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..len];
                let mut got = have - HEADER_LEN;
                buf[..got].copy_from_slice(&st.buf[payload..payload + got]);
                st.start = 0;
                st.end = 0;
                while got < len {
                    mid_frame(plan);
                    got += read_some(s, &mut buf[got..], progress, plan)?;
                }
                return Ok(Reply { header, words });
            }
        }
        // Need more bytes: make room at the end, then read once.
        if st.start == st.end {
            st.start = 0;
            st.end = 0;
        } else if st.start + HEADER_LEN > READ_BUF
            || have >= HEADER_LEN && st.start + frame_len(&st.buf[st.start..]) > READ_BUF
        {
            st.buf.copy_within(st.start..st.end, 0);
            st.end -= st.start;
            st.start = 0;
        }
        if have > 0 {
            mid_frame(plan);
        }
        st.end += read_some(s, &mut st.buf[st.end..], progress, plan)?;
    }
}

/// Header plus payload length of the frame whose header starts `b`.
fn frame_len(b: &[u8]) -> usize {
    HEADER_LEN + u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) as usize
}

impl Drop for Connection {
    fn drop(&mut self) {
        *lock(&self.watch.stop) = true;
        self.watch.cv.notify_one();
    }
}

/// Enforce the deadline of whichever call is blocked reading (see the
/// module docs). Sleeps until that deadline; with one timeout for every
/// call, a new read never needs to wake it.
fn watchdog(conn: Weak<Connection>, w: Arc<Watch>, timeout: Duration) {
    // The overdue read being handled: (its deadline, progress seen, since
    // when nothing arrived, whether the PING went out).
    let mut overdue: Option<(u64, u64, Instant, bool)> = None;
    let mut stop = lock(&w.stop);
    loop {
        if *stop {
            return;
        }
        let now = Instant::now();
        let until = w.reading_until.load(Ordering::SeqCst);
        let mut next = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(3600));
        if until != 0 && until <= w.ns(now) {
            let progress = w.progress.load(Ordering::SeqCst);
            let (d, seen, since, pinged) = match overdue {
                Some((d, seen, since, pinged)) if d == until && seen == progress => {
                    (d, seen, since, pinged)
                }
                // A new overdue read, or bytes arrived meanwhile.
                _ => (until, progress, now, false),
            };
            // Act without the lock: dropping the last handle to the
            // connection takes it.
            drop(stop);
            let Some(c) = conn.upgrade() else { return };
            if c.is_dead() {
                return;
            }
            if now.duration_since(since) >= PING_GRACE {
                let mut g = lock(&c.state);
                let err = lost(
                    &c.addr,
                    format_args!(
                        "no reply within {timeout:?} (VACCEL_RPC_TIMEOUT) and no answer to a PING within {PING_GRACE:?}"
                    ),
                );
                c.kill(&mut g, err);
                return;
            }
            let pinged = pinged || c.ping();
            drop(c);
            stop = lock(&w.stop);
            overdue = Some((d, seen, since, pinged));
            next = if pinged {
                since + PING_GRACE
            } else {
                (now + PING_RETRY).min(since + PING_GRACE)
            };
        } else if until != 0 {
            overdue = None;
            next = next.min(w.epoch + Duration::from_nanos(until));
        }
        w.wake_at.store(w.ns(next), Ordering::SeqCst);
        if w.reading_until.load(Ordering::SeqCst) != until {
            // A read began meanwhile and may not have seen `wake_at`.
            continue;
        }
        let wait = next.saturating_duration_since(Instant::now());
        stop =
            w.cv.wait_timeout(stop, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
    }
}

impl Connection {
    /// Send a PING nobody waits for (its PONG wakes a blocked reader), if
    /// the socket is free. Whether it went out.
    fn ping(&self) -> bool {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let Ok(frame) = (Request::Ping { payload: &[] }).encode(id) else {
            return false;
        };
        let mut w = match self.writer.try_lock() {
            Ok(w) => w,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        // Never wait for room: a silent agent must not block the watchdog.
        let bytes = frame.to_vec();
        match w.try_send(&bytes) {
            Ok(n) if n == bytes.len() => true,
            // Part of it went out: finish the frame, or the stream breaks.
            Ok(n) if n > 0 => std::io::Write::write_all(&mut *w, &bytes[n..]).is_ok(),
            _ => false,
        }
    }
}
