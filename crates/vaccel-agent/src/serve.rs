//! Serving one connection: its leader reads frames, answers NOOP and
//! control requests inline, and runs other ops on its own thread after
//! letting go of the reader role (see `engine` for the threading model).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use vaccel_core::{Code, Error, OpType};
use vaccel_proto::{Frame, ProtoError, RegionWire, Request, Response};
use vaccel_transport::{AsyncStream, BlockingStream};

use crate::Shared;
use crate::conn::{Conn, OutStore, run_op};
use crate::engine::{Engine, Task, lock};
use crate::wire::{Body, InFrame, ReadError, Reader};

/// A connection's unanswered OP requests beyond which its leader stops
/// reading until some are answered (backpressure, not an error).
const MAX_INFLIGHT: usize = 1024;
/// Spare read buffers kept per connection.
const MAX_SPARE: usize = 2;

/// How the reader role and the replies of one connection stand.
#[derive(Default)]
struct ConnState {
    /// Nobody holds the reader role; whoever claims it reads next.
    role_free: bool,
    /// The socket is armed in the engine's epoll set (one wake reason).
    armed: bool,
    /// Generation of the latest arming (events of older ones are stale).
    arm_gen: u32,
    /// Reading has ended (peer closed, bad frame, drain).
    reader_done: bool,
    /// OP requests read and not yet answered.
    inflight: usize,
    /// Threads running or answering one of this connection's ops.
    engaged: usize,
    /// Released; the accept side has been told.
    finished: bool,
}

/// The reply writer's state.
#[derive(Default)]
struct Out {
    /// A thread is writing; it also writes what is queued before it stops.
    busy: bool,
    /// Encoded replies waiting for the writer (each counted in `inflight`).
    queue: VecDeque<Vec<u8>>,
}

/// A timed-out op to answer: request id, op name, when it was read.
type Overdue = (u64, &'static str, Instant);

/// One served connection.
pub(crate) struct ConnCtx {
    /// Engine key (the connection id).
    pub key: u64,
    pub sock: BlockingStream,
    conn: Arc<Conn>,
    engine: Arc<Engine>,
    peer: String,
    tcp: bool,
    reader: Mutex<Reader>,
    st: Mutex<ConnState>,
    /// The leader waits here while `MAX_INFLIGHT` requests are unanswered.
    room: Condvar,
    /// Replies: one thread writes at a time; others queue their frame and
    /// leave, so a client that does not read blocks one thread, not many.
    out: Mutex<Out>,
    /// Read buffers lent to ops and given back.
    spare: Mutex<Vec<Vec<u64>>>,
    /// Timed-out ops waiting for their `ETIMEDOUT` answer, and whether a
    /// thread is answering them.
    timeouts: Mutex<(VecDeque<Overdue>, bool)>,
    done: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// An OP request to run once it holds a slot of the op pool.
pub(crate) struct Job {
    ctx: Arc<ConnCtx>,
    id: u64,
    op: &'static str,
    started: Instant,
    /// The payload is `words` bytes `off..off + len`, 8-aligned.
    words: Vec<u64>,
    off: usize,
    len: usize,
    /// `words` is a read buffer (given back to the connection afterwards).
    lent: bool,
}

impl Job {
    fn payload(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[self.off..self.off + self.len]
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Run by the connection's former leader, which takes the reader role
    /// back afterwards if it is still free.
    Leader,
    /// Run by the leader without letting go of the reader role.
    Holding,
    /// Taken from the op pool's queue.
    Queued,
}

/// Epoll data of a connection's socket: key and arming generation.
pub(crate) fn event_data(key: u64, arm_gen: u32) -> u64 {
    (key << 24) | u64::from(arm_gen & 0xff_ffff)
}

/// The inverse of [`event_data`].
pub(crate) fn split_event_data(data: u64) -> (u64, u32) {
    (data >> 24, (data & 0xff_ffff) as u32)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Marks the reader done if the leader unwinds while it holds the reader
/// role, so the connection still drains and releases.
struct LeadGuard<'a> {
    ctx: &'a ConnCtx,
    holding: bool,
}

impl Drop for LeadGuard<'_> {
    fn drop(&mut self) {
        if self.holding && std::thread::panicking() {
            self.ctx.reader_finished();
        }
    }
}

impl ConnCtx {
    fn shared(&self) -> &Shared {
        &self.conn.shared
    }

    /// Take the reader role if it is free. `event`: the arming generation
    /// of the epoll event that woke the caller. Returns whether the socket
    /// must still be disarmed (the caller does it, when convenient).
    pub fn claim(&self, event: Option<u32>) -> Option<bool> {
        let mut unwant = false;
        let mut st = lock(&self.st);
        if let Some(g) = event
            && st.armed
            && st.arm_gen & 0xff_ffff == g
        {
            // That arming fired (and is spent).
            st.armed = false;
            unwant = true;
        }
        let claimed = st.role_free && !st.reader_done;
        let mut disarm = false;
        if claimed {
            st.role_free = false;
            if st.armed {
                st.armed = false;
                unwant = true;
                disarm = true;
            }
        }
        drop(st);
        if unwant {
            self.engine.unwanted();
        }
        claimed.then_some(disarm)
    }

    /// Let go of the reader role: arm the socket, or, when bytes of the
    /// next frame are already buffered, hand the role to a standby thread.
    fn release_role(self: &Arc<Self>, buffered: bool) {
        let arm_gen = {
            let mut st = lock(&self.st);
            st.role_free = true;
            if buffered {
                None
            } else {
                st.armed = true;
                st.arm_gen = st.arm_gen.wrapping_add(1) & 0xff_ffff;
                Some(st.arm_gen)
            }
        };
        match arm_gen {
            None => self.engine.dispatch(Task::Lead(self.clone())),
            Some(g) => {
                self.engine.wanted();
                self.engine.arm(self, g);
            }
        }
    }

    fn spare_buf(&self) -> Vec<u64> {
        lock(&self.spare).pop().unwrap_or_else(crate::wire::new_buf)
    }

    /// Serve as this connection's leader until the role passes to another
    /// thread or reading ends.
    pub fn lead(self: &Arc<Self>) {
        let mut guard = LeadGuard {
            ctx: self,
            holding: true,
        };
        let max_frame = self.shared().config.max_frame;
        let mut rd = lock(&self.reader);
        loop {
            if self.engine.draining() {
                drop(rd);
                self.reader_finished();
                return;
            }
            let f = match rd.next(&self.sock, max_frame, &self.engine.busy, || {
                self.spare_buf()
            }) {
                Ok(f) => f,
                Err(ReadError::Closed(e)) => {
                    if let Some(e) = e {
                        tracing::debug!(conn = self.key, error = %e, "read failed");
                    }
                    drop(rd);
                    self.reader_finished();
                    return;
                }
                Err(ReadError::Bad(e, id)) => {
                    tracing::warn!(conn = self.key, peer = %self.peer, error = %e, "bad frame; closing the connection");
                    if matches!(e, ProtoError::TooLarge { .. }) {
                        let _ = self.reply(id, Err(e.into()), false, &mut || {});
                    }
                    drop(rd);
                    self.reader_finished();
                    return;
                }
            };
            self.shared()
                .stats
                .bytes_in
                .fetch_add(f.wire_len() as u64, Ordering::Relaxed);
            if f.header.kind != vaccel_proto::kind::OP || !rd.hello {
                if !self.control(&mut rd, f) {
                    drop(rd);
                    self.reader_finished();
                    return;
                }
                continue;
            }
            let id = f.header.id;
            let len = f.header.len as usize;
            let started = Instant::now();
            let op_id = rd
                .payload(&f)
                .get(8..12)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
            let op = op_id
                .and_then(OpType::from_u32)
                .map_or("UNKNOWN", OpType::name);
            if op_id == Some(0) {
                // NOOP is answered inline: nothing to wait for.
                let r = self.run(rd.payload(&f));
                self.op_reply(id, op, started, r, false, &mut || {});
                continue;
            }
            let hand_off = {
                let mut st = lock(&self.st);
                while st.inflight >= MAX_INFLIGHT {
                    st = self.room.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                st.inflight += 1;
                // A client that does not read its replies ties up threads
                // writing them; past this many, stop handing off.
                st.engaged < self.shared().config.max_parallel_ops.max(1) + 1
            };
            let buffered = rd.has_buffered();
            let slot = self.engine.pool.try_take();
            let (words, off, lent) = match f.body {
                Body::Own(v) => (v, 0, false),
                // The op runs in place in the read buffer; the reader takes
                // a spare one (this one, given back, in the common case).
                Body::Buffered(off) if slot && !buffered => (rd.take_buf(), off, true),
                // Queued, or further frames are buffered behind this one:
                // the payload is copied out, the buffer stays.
                Body::Buffered(off) => (
                    bytemuck::pod_collect_to_vec::<u8, u64>(&rd.buffer()[off..off + len]),
                    0,
                    false,
                ),
            };
            let job = Job {
                ctx: self.clone(),
                id,
                op,
                started,
                words,
                off,
                len,
                lent,
            };
            let job = if slot {
                job
            } else {
                match self.engine.pool.admit(job) {
                    Some(job) => job,
                    // Queued: whoever frees a slot runs it.
                    None => continue,
                }
            };
            if !hand_off {
                let (_, next) = run_job(&self.engine, job, Mode::Holding);
                debug_assert!(next.is_none());
                continue;
            }
            drop(rd);
            guard.holding = false;
            self.release_role(buffered);
            let (back, next) = run_job(&self.engine, job, Mode::Leader);
            guard.holding = back;
            if let Some(next) = next {
                run_queued(&self.engine, next);
            }
            if !back {
                return;
            }
            rd = lock(&self.reader);
        }
    }

    /// Run an op, turning a panic into `EBACKEND`.
    fn run(&self, payload: &[u8]) -> Result<(Vec<OutStore>, Vec<usize>), Error> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_op(&self.conn, payload)))
            .unwrap_or_else(|p| Err(Error::backend(format!("op failed: {}", panic_message(&*p)))))
    }

    /// Answer a non-OP request (or an OP before HELLO). `false`: close.
    fn control(&self, rd: &mut Reader, mut f: InFrame) -> bool {
        let shared = self.shared();
        let id = f.header.id;
        if f.header.kind == vaccel_proto::kind::OP {
            let _ = self.reply(id, Err(Error::perm("send HELLO first")), false, &mut || {});
            return false;
        }
        let p = rd.payload(&f);
        let req = match Request::decode(f.header.kind, p) {
            Ok(r) => r,
            Err(e) => return self.reply(id, Err(e.into()), false, &mut || {}).is_ok(),
        };
        if !rd.hello {
            let Request::Hello {
                version,
                features,
                token,
            } = req
            else {
                let _ = self.reply(id, Err(Error::perm("send HELLO first")), false, &mut || {});
                return false;
            };
            if self.tcp && !shared.config.insecure {
                let want = shared.config.token.as_deref().unwrap_or("").as_bytes();
                if !constant_time_eq(want, token) {
                    tracing::warn!(peer = %self.peer, "refusing client: wrong token");
                    let _ = self.reply(
                        id,
                        Err(Error::perm("wrong or missing token (VACCEL_RPC_TOKEN)")),
                        false,
                        &mut || {},
                    );
                    return false;
                }
            }
            let supported = if self.sock.passes_fds() {
                vaccel_proto::FEATURE_SHM
            } else {
                0
            };
            let ok = Response::HelloOk {
                version: version.min(vaccel_proto::VERSION),
                features: features & supported,
                max_frame: shared.config.max_frame,
                server: concat!("vaccel-agent ", env!("CARGO_PKG_VERSION")),
            };
            let sent = self.reply(id, Ok(ok), false, &mut || {}).is_ok();
            rd.hello = true;
            return sent;
        }
        let conn = &self.conn;
        let sync_files;
        let profile;
        let r: Result<Response<'_>, Error> = match &req {
            Request::Hello { .. } => Err(Error::inval("HELLO was already sent on this connection")),
            Request::Ping { payload } => Ok(Response::Pong { payload }),
            Request::SessionCreate { hint } => conn.create_session(*hint),
            Request::SessionRelease { session } => {
                conn.release_session(*session).map(|()| Response::Done)
            }
            Request::ResourceCreate { kind, files } => conn
                .create_resource(*kind, files)
                .map(|resource| Response::Resource { resource }),
            Request::ResourceRegister { resource, session } => conn
                .resource(*resource)
                .and_then(|r| conn.session(*session).and_then(|s| s.register(&r)))
                .map(|()| Response::Done),
            Request::ResourceUnregister { resource, session } => conn
                .resource(*resource)
                .and_then(|r| conn.session(*session).and_then(|s| s.unregister(&r)))
                .map(|()| Response::Done),
            Request::ResourceRelease { resource } => {
                conn.release_resource(*resource).map(|()| Response::Done)
            }
            Request::ResourceSync { resource } => match conn.resource(*resource) {
                Ok(r) => {
                    sync_files = r
                        .files()
                        .iter()
                        .map(|f| f.bytes().map(|b| (f.name().to_string(), b)))
                        .collect::<Result<Vec<_>, _>>();
                    match &sync_files {
                        Ok(fs) => Ok(Response::ResourceData {
                            files: fs.iter().map(|(n, b)| (n.as_str(), &b[..])).collect(),
                        }),
                        Err(e) => Err(e.clone()),
                    }
                }
                Err(e) => Err(e),
            },
            Request::ProfileGet { session } => match conn.session(*session) {
                Ok(s) => {
                    profile = s.profile();
                    Ok(Response::Profile {
                        regions: profile
                            .iter()
                            .map(|(op, st)| RegionWire {
                                op: op.id(),
                                count: st.count,
                                total_ns: st.total.as_nanos() as u64,
                                min_ns: st.min.as_nanos() as u64,
                                max_ns: st.max.as_nanos() as u64,
                            })
                            .collect(),
                    })
                }
                Err(e) => Err(e),
            },
            Request::Op { .. } => Err(Error::inval("op requests are handled above")),
            Request::ShmMap { region, size } if self.sock.passes_fds() => conn
                .map_region(*region, *size, f.fds.pop())
                .map(|()| Response::Done),
            Request::ShmMap { .. } => Err(Error::notsup(
                "shared memory needs a Unix socket connection",
            )),
            Request::ShmUnmap { region } => conn.unmap_region(*region).map(|()| Response::Done),
        };
        self.reply(id, r, false, &mut || {}).is_ok()
    }

    /// Record and send an op's reply. `answers`: it answers a request
    /// counted in `inflight`. Returns whether the caller counts it answered
    /// (`false`: it was queued, and its writer will).
    fn op_reply(
        &self,
        id: u64,
        op: &'static str,
        started: Instant,
        result: Result<(Vec<OutStore>, Vec<usize>), Error>,
        answers: bool,
        on_block: &mut dyn FnMut(),
    ) -> bool {
        let shared = self.shared();
        let status = match &result {
            Ok(_) => "ok",
            Err(e) => e.code().name(),
        };
        shared.metrics.op_static(op, status, started.elapsed());
        let sent = match result {
            Ok((stores, lens)) => {
                let outputs: Vec<&[u8]> =
                    stores.iter().zip(&lens).map(|(s, l)| s.bytes(*l)).collect();
                self.reply(id, Ok(Response::OpResult { outputs }), answers, on_block)
            }
            Err(e) => {
                shared.stats.op_errors.fetch_add(1, Ordering::Relaxed);
                self.reply(id, Err(e), answers, on_block)
            }
        };
        match sent {
            Ok(now) => now,
            Err(e) => {
                tracing::debug!(error = %e, "writing a reply failed");
                true
            }
        }
    }

    /// Answer request `id` (see [`send`](Self::send) for `answers` and the
    /// result). `on_block` runs whenever a write finds the socket full.
    fn reply(
        &self,
        id: u64,
        r: Result<Response<'_>, Error>,
        answers: bool,
        on_block: &mut dyn FnMut(),
    ) -> std::io::Result<bool> {
        let shared = self.shared();
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let encoded = match &r {
            Ok(resp) => resp.encode(id),
            Err(e) => Response::Error {
                code: e.errno(),
                message: e.message(),
            }
            .encode(id),
        };
        let f = match encoded {
            Ok(f) => f,
            Err(e) => {
                let msg = format!("reply too large to encode: {e}");
                let f = Response::Error {
                    code: Code::NoMem.as_i32(),
                    message: &msg,
                }
                .encode(id)
                .expect("small frame");
                return self.send(&f, answers, on_block);
            }
        };
        self.send(&f, answers, on_block)
    }

    /// Write a reply, or queue it if another thread is writing. `answers`:
    /// it answers an OP request counted in `inflight`. `Ok(true)`: written
    /// (the caller counts the answer); `Ok(false)`: queued, and the writer
    /// counts it once written (a queued non-OP reply is counted in
    /// `inflight` meanwhile, so the connection is not closed under it).
    fn send(
        &self,
        frame: &Frame<'_>,
        answers: bool,
        on_block: &mut dyn FnMut(),
    ) -> std::io::Result<bool> {
        {
            let mut out = lock(&self.out);
            if out.busy {
                out.queue.push_back(frame.to_vec());
                drop(out);
                if !answers {
                    lock(&self.st).inflight += 1;
                }
                return Ok(false);
            }
            out.busy = true;
        }
        let mut r = write_frame(&self.sock, frame, on_block);
        if r.is_ok() {
            self.count_out(frame.len());
        }
        loop {
            let next = {
                let mut out = lock(&self.out);
                let next = out.queue.pop_front();
                out.busy = next.is_some();
                next
            };
            let Some(bytes) = next else { break };
            if r.is_ok() {
                let mut slices = [std::io::IoSlice::new(&bytes)];
                r = write_slices(&self.sock, &mut slices, on_block);
                if r.is_ok() {
                    self.count_out(bytes.len());
                }
            }
            self.answered(true, false);
        }
        r.map(|()| true)
    }

    fn count_out(&self, n: usize) {
        self.shared()
            .stats
            .bytes_out
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    /// One unanswered OP request was answered (and `disengage`: a thread
    /// is done with one of this connection's ops).
    fn answered(&self, answered: bool, disengage: bool) {
        let fin = {
            let mut st = lock(&self.st);
            if disengage {
                st.engaged -= 1;
            }
            if answered {
                st.inflight -= 1;
                if st.inflight + 1 == MAX_INFLIGHT {
                    self.room.notify_all();
                }
            }
            let fin = st.reader_done && st.inflight == 0 && !st.finished;
            st.finished |= fin;
            fin
        };
        if fin {
            self.finish();
        }
    }

    /// An op passed its deadline: queue its `ETIMEDOUT` answer. `true`: no
    /// thread answers this connection's timeouts yet; the caller must run
    /// [`answer_timeouts`](Self::answer_timeouts) on one.
    pub fn timed_out(&self, id: u64, op: &'static str, started: Instant) -> bool {
        let mut t = lock(&self.timeouts);
        t.0.push_back((id, op, started));
        !std::mem::replace(&mut t.1, true)
    }

    /// Answer queued timeouts until none is left.
    pub fn answer_timeouts(&self, timeout: Duration) {
        loop {
            let Some((id, op, started)) = ({
                let mut t = lock(&self.timeouts);
                let next = t.0.pop_front();
                t.1 = next.is_some();
                next
            }) else {
                return;
            };
            let e = Error::new(
                Code::TimedOut,
                format!("op did not finish within {timeout:?} (the agent's per-op timeout)"),
            );
            if self.op_reply(id, op, started, Err(e), true, &mut || {}) {
                self.answered(true, false);
            }
        }
    }

    /// Reading has ended: release once nothing is in flight.
    fn reader_finished(&self) {
        let (fin, unwant) = {
            let mut st = lock(&self.st);
            st.reader_done = true;
            st.role_free = false;
            let unwant = std::mem::take(&mut st.armed);
            let fin = st.inflight == 0 && !st.finished;
            st.finished |= fin;
            (fin, unwant)
        };
        if unwant {
            self.engine.unwanted();
        }
        if fin {
            self.finish();
        }
    }

    /// Close, release everything the connection held, tell the accept side.
    fn finish(&self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
        self.engine.forget(self);
        self.conn.release_all();
        self.shared()
            .stats
            .connections
            .fetch_sub(1, Ordering::SeqCst);
        tracing::debug!(conn = self.key, peer = %self.peer, "disconnected");
        if let Some(tx) = lock(&self.done).take() {
            let _ = tx.send(());
        }
    }

    /// Give a lent read buffer back.
    fn recycle(&self, words: Vec<u64>) {
        let mut sp = lock(&self.spare);
        if sp.len() < MAX_SPARE {
            sp.push(words);
        }
    }
}

/// Write a whole frame; `on_block` runs when the socket has no room.
fn write_frame(
    sock: &BlockingStream,
    frame: &Frame<'_>,
    on_block: &mut dyn FnMut(),
) -> std::io::Result<()> {
    write_slices(sock, &mut frame.io_slices(), on_block)
}

/// Write every byte of `bufs`; `on_block` runs when the socket has no room.
fn write_slices(
    sock: &BlockingStream,
    bufs: &mut [std::io::IoSlice<'_>],
    on_block: &mut dyn FnMut(),
) -> std::io::Result<()> {
    let mut bufs = bufs;
    let mut dont_wait = true;
    while !bufs.is_empty() {
        match sock.send(bufs, dont_wait) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => std::io::IoSlice::advance_slices(&mut bufs, n),
            Err(e) if dont_wait && e.kind() == std::io::ErrorKind::WouldBlock => {
                dont_wait = false;
                on_block();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Run one op holding a pool slot and answer it. Returns whether the
/// caller took its connection's reader role back (`Mode::Leader`), and the
/// next queued op if the slot passed to it.
fn run_job(engine: &Arc<Engine>, job: Job, mode: Mode) -> (bool, Option<Job>) {
    let ctx = job.ctx.clone();
    lock(&ctx.st).engaged += 1;
    let key = engine.timer.register(&ctx, job.id, job.op, job.started);
    let result = ctx.run(job.payload());
    let mut next = engine.pool.release();
    if mode == Mode::Holding
        && let Some(j) = next.take()
    {
        engine.dispatch(Task::Run(j));
    }
    // Take the reader role back, and disarm, before replying: the reply
    // may let the client run at once (even on this CPU) and send its next
    // request, which must not find the socket armed (a needless wake-up of
    // a standby thread) nor the role free.
    let back = mode == Mode::Leader && next.is_none() && {
        match ctx.claim(None) {
            Some(true) => {
                engine.disarm(&ctx);
                true
            }
            Some(false) => true,
            None => false,
        }
    };
    let mine = engine.timer.finish(key);
    let answered = mine && {
        let mut hand_next = || {
            if let Some(j) = next.take() {
                engine.dispatch(Task::Run(j));
            }
        };
        ctx.op_reply(job.id, job.op, job.started, result, true, &mut hand_next)
    };
    ctx.answered(answered, true);
    if job.lent {
        ctx.recycle(job.words);
    }
    (back, next)
}

/// Run a queued op and any that follow it through the same slot.
pub(crate) fn run_queued(engine: &Arc<Engine>, mut job: Job) {
    loop {
        match run_job(engine, job, Mode::Queued) {
            (_, Some(next)) => job = next,
            (_, None) => return,
        }
    }
}

/// Serve an accepted connection until it closes or `stop` fires (then
/// stop reading, finish in-flight requests, release, return).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    engine: Arc<Engine>,
    stream: AsyncStream,
    peer: String,
    tcp: bool,
    mut stop: watch::Receiver<bool>,
) {
    let sock = match stream.into_blocking() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot serve connection");
            return;
        }
    };
    if shared.stats.connections.fetch_add(1, Ordering::SeqCst) >= shared.config.max_connections {
        shared.stats.connections.fetch_sub(1, Ordering::SeqCst);
        let msg = format!(
            "the agent is at its limit of {} connections: try again later",
            shared.config.max_connections
        );
        tracing::warn!(%peer, "refusing connection: {msg}");
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        let f = Response::Error {
            code: Code::Again.as_i32(),
            message: &msg,
        }
        .encode(0)
        .expect("small frame");
        let _ = write_frame(&sock, &f, &mut || {});
        let _ = sock.shutdown(std::net::Shutdown::Both);
        return;
    }
    let id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let ctx = Arc::new(ConnCtx {
        key: id,
        sock,
        conn: Arc::new(Conn::new(id, shared.clone())),
        engine: engine.clone(),
        peer,
        tcp,
        reader: Mutex::new(Reader::new()),
        st: Mutex::new(ConnState {
            role_free: true,
            armed: true,
            ..ConnState::default()
        }),
        room: Condvar::new(),
        out: Mutex::new(Out::default()),
        spare: Mutex::new(Vec::new()),
        timeouts: Mutex::new((VecDeque::new(), false)),
        done: Mutex::new(Some(tx)),
    });
    tracing::debug!(conn = id, peer = %ctx.peer, "connected");
    if let Err(e) = engine.adopt(ctx.clone()) {
        tracing::warn!(conn = id, error = %e, "cannot serve connection");
        ctx.reader_finished();
        return;
    }
    tokio::select! {
        _ = &mut rx => return,
        _ = stop.changed() => {}
    }
    // Wake the blocked reader; in-flight requests still get their replies.
    let _ = ctx.sock.shutdown(std::net::Shutdown::Read);
    let _ = rx.await;
}
