//! The threads that serve connections.
//!
//! Accepting stays on tokio; serving does not. Each connection is read by
//! one thread at a time, its *leader*, blocked in `recvmsg` on the socket
//! (blocking mode, no reactor). The leader answers NOOP and control
//! requests itself. For any other op it takes a slot of the op pool, gives
//! up the reader role, runs the op on its own thread and writes the reply
//! itself; then it takes the reader role back if nobody took it meanwhile.
//! A lone caller's round trip therefore costs no thread hand-off at all.
//!
//! Giving up the role must not stall the connection's other requests while
//! the op runs, yet waking a spare thread for every op would put a thread
//! wake-up (expensive on small VMs) on every call. So the leader *arms* the
//! socket in a shared epoll set (`EPOLLONESHOT`) instead: the kernel wakes a
//! standby thread only if another request arrives while the op runs. When
//! bytes of a further frame are already buffered, the leader hands the role
//! over explicitly (a task queue and an eventfd in the same epoll set).
//! Returning leaders disarm the socket, which costs one `epoll_ctl`.
//!
//! Invariants:
//! - At most one thread holds a connection's reader role; the role moves
//!   only through the connection's `ConnState`, under its lock.
//! - There are at least as many standby threads as pending wake reasons
//!   (armed sockets plus queued tasks), so every free role and queued job
//!   finds a thread even while every other thread blocks in a read.
//! - At most `max_parallel_ops` ops run at once ([`OpPool`]). A request
//!   that finds the pool full is queued and its connection keeps reading;
//!   whoever frees a slot runs the next queued op (no hand-off).
//! - Whoever removes an op from the [`Timer`] answers it: the op's own
//!   thread, or the timer with `ETIMEDOUT` at the deadline (the late result
//!   is then dropped). Each request is answered exactly once.

use crate::wire::BusyPoll;
use std::collections::{HashMap, VecDeque};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::serve::{ConnCtx, Job, event_data, split_event_data};

/// epoll key of the task eventfd (connection keys start at 1).
const WAKE_KEY: u64 = 0;
/// How long a standby thread waits for work before it may exit.
const IDLE_EXIT: Duration = Duration::from_secs(10);
/// Standby threads kept beyond the pending wake reasons.
const KEEP_IDLE: usize = 1;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Work for a standby thread.
pub(crate) enum Task {
    /// Take this connection's reader role (if still free).
    Lead(Arc<ConnCtx>),
    /// Run this queued op; its pool slot is already held.
    Run(Job),
}

#[derive(Default)]
struct Threads {
    /// Threads in the standby loop (not leading, not running an op).
    idle: usize,
    /// Pending wake reasons: armed sockets plus queued tasks.
    want: usize,
    tasks: VecDeque<Task>,
}

/// The per-agent serving machinery.
pub(crate) struct Engine {
    epoll: Epoll,
    wake: EventFd,
    threads: Mutex<Threads>,
    conns: Mutex<HashMap<u64, Arc<ConnCtx>>>,
    /// Stop reading requests (SIGTERM): connections drain.
    draining: AtomicBool,
    /// Everything is drained: standby threads exit.
    exiting: AtomicBool,
    pub pool: OpPool,
    pub timer: Arc<Timer>,
    /// Readers poll before they block.
    pub busy: BusyPoll,
}

impl Engine {
    pub fn new(
        max_parallel_ops: usize,
        op_timeout: Duration,
        busy: BusyPoll,
    ) -> std::io::Result<Arc<Engine>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let wake = EventFd::from_value_and_flags(
            0,
            EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_SEMAPHORE,
        )?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE_KEY))?;
        let timer = Timer::start(op_timeout)?;
        Ok(Arc::new(Engine {
            epoll,
            wake,
            threads: Mutex::new(Threads::default()),
            conns: Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
            exiting: AtomicBool::new(false),
            pool: OpPool::new(max_parallel_ops),
            timer,
            busy,
        }))
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Stop reading new requests on every connection (they drain).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Let standby threads and the timer exit. Threads still running an op
    /// that timed out finish it first, then exit.
    pub fn exit(&self) {
        self.exiting.store(true, Ordering::SeqCst);
        // Never read while exiting: the level-triggered eventfd stays
        // readable and wakes every standby thread in turn.
        let _ = self.wake.write(1 << 20);
        self.timer.stop();
    }

    /// Watch a new connection: its first bytes wake a standby thread.
    pub fn adopt(self: &Arc<Self>, ctx: Arc<ConnCtx>) -> std::io::Result<()> {
        lock(&self.conns).insert(ctx.key, ctx.clone());
        self.wanted();
        if let Err(e) = self.epoll.add(ctx.sock.as_fd(), armed(ctx.key, 0)) {
            lock(&self.conns).remove(&ctx.key);
            self.unwanted();
            return Err(e.into());
        }
        Ok(())
    }

    /// Stop watching a finished connection.
    pub fn forget(&self, ctx: &ConnCtx) {
        let _ = self.epoll.delete(ctx.sock.as_fd());
        lock(&self.conns).remove(&ctx.key);
    }

    /// Arm a connection's socket: the next readable byte wakes a standby.
    /// The caller has counted the wake reason ([`wanted`](Self::wanted)).
    pub fn arm(&self, ctx: &ConnCtx, arm_gen: u32) {
        let mut ev = armed(ctx.key, arm_gen);
        if let Err(e) = self.epoll.modify(ctx.sock.as_fd(), &mut ev) {
            tracing::debug!(error = %e, "arming a connection failed");
        }
    }

    /// Disarm a connection's socket (its leader is back).
    pub fn disarm(&self, ctx: &ConnCtx) {
        let mut ev = EpollEvent::new(EpollFlags::EPOLLONESHOT, event_data(ctx.key, 0));
        let _ = self.epoll.modify(ctx.sock.as_fd(), &mut ev);
    }

    /// Count one more wake reason, starting a standby thread if there are
    /// fewer than wake reasons.
    pub fn wanted(self: &Arc<Self>) {
        let spawn = {
            let mut t = lock(&self.threads);
            t.want += 1;
            if t.idle < t.want {
                t.idle += 1;
                true
            } else {
                false
            }
        };
        if spawn {
            let e = self.clone();
            let r = std::thread::Builder::new()
                .name("vaccel-agent".into())
                .spawn(move || e.standby());
            if let Err(err) = r {
                tracing::error!(error = %err, "cannot start a thread");
                lock(&self.threads).idle -= 1;
            }
        }
    }

    /// One wake reason went away.
    pub fn unwanted(&self) {
        let mut t = lock(&self.threads);
        t.want = t.want.saturating_sub(1);
    }

    /// Queue work for a standby thread and wake one.
    pub fn dispatch(self: &Arc<Self>, task: Task) {
        lock(&self.threads).tasks.push_back(task);
        self.wanted();
        let _ = self.wake.write(1);
    }

    fn busy(&self, f: impl FnOnce()) {
        lock(&self.threads).idle -= 1;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
            tracing::error!("a connection thread panicked; it goes on serving");
        }
        lock(&self.threads).idle += 1;
    }

    /// The standby loop: wait for an armed socket or a task.
    fn standby(self: Arc<Self>) {
        let mut events = [EpollEvent::empty(); 1];
        let timeout = EpollTimeout::try_from(IDLE_EXIT).unwrap_or(EpollTimeout::NONE);
        loop {
            if self.exiting.load(Ordering::SeqCst) {
                break;
            }
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "epoll_wait failed");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if n == 0 {
                let mut t = lock(&self.threads);
                if t.idle > t.want + KEEP_IDLE {
                    t.idle -= 1;
                    return;
                }
                continue;
            }
            let key = events[0].data();
            if key == WAKE_KEY {
                if self.exiting.load(Ordering::SeqCst) || self.wake.read().is_err() {
                    continue;
                }
                let task = {
                    let mut t = lock(&self.threads);
                    let task = t.tasks.pop_front();
                    if task.is_some() {
                        t.want = t.want.saturating_sub(1);
                    }
                    task
                };
                match task {
                    Some(Task::Lead(ctx)) => {
                        if let Some(disarm) = ctx.claim(None) {
                            if disarm {
                                self.disarm(&ctx);
                            }
                            self.busy(|| ctx.lead());
                        }
                    }
                    Some(Task::Run(job)) => self.busy(|| crate::serve::run_queued(&self, job)),
                    None => {}
                }
            } else {
                let (key, arm_gen) = split_event_data(key);
                let ctx = lock(&self.conns).get(&key).cloned();
                if let Some(ctx) = ctx
                    && let Some(disarm) = ctx.claim(Some(arm_gen))
                {
                    if disarm {
                        self.disarm(&ctx);
                    }
                    self.busy(|| ctx.lead());
                }
            }
        }
        lock(&self.threads).idle -= 1;
    }
}

fn armed(key: u64, arm_gen: u32) -> EpollEvent {
    EpollEvent::new(
        EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLONESHOT,
        event_data(key, arm_gen),
    )
}

/// The bound on ops running at once, with a FIFO of ops waiting for a slot.
pub(crate) struct OpPool {
    st: Mutex<(usize, VecDeque<Job>)>,
    max: usize,
}

impl OpPool {
    fn new(max: usize) -> OpPool {
        OpPool {
            st: Mutex::new((0, VecDeque::new())),
            max: max.max(1),
        }
    }

    /// Take a slot if one is free.
    pub fn try_take(&self) -> bool {
        let mut st = lock(&self.st);
        if st.0 < self.max {
            st.0 += 1;
            true
        } else {
            false
        }
    }

    /// Take a slot for `job`, or queue it. `Some`: run it now.
    pub fn admit(&self, job: Job) -> Option<Job> {
        let mut st = lock(&self.st);
        if st.0 < self.max {
            st.0 += 1;
            Some(job)
        } else {
            st.1.push_back(job);
            None
        }
    }

    /// Give a slot back, or pass it on: `Some` is the next queued op, whose
    /// slot the caller now holds.
    pub fn release(&self) -> Option<Job> {
        let mut st = lock(&self.st);
        match st.1.pop_front() {
            Some(j) => Some(j),
            None => {
                st.0 -= 1;
                None
            }
        }
    }
}

/// An op being timed.
struct Timed {
    deadline: Instant,
    ctx: Arc<ConnCtx>,
    id: u64,
    op: &'static str,
    started: Instant,
}

#[derive(Default)]
struct TimerState {
    ops: HashMap<u64, Timed>,
    next_key: u64,
    /// When the timer thread wakes next.
    wake_at: Option<Instant>,
    stop: bool,
}

/// Per-op deadlines, checked by one thread that sleeps until the earliest
/// deadline. Deadlines are `now + timeout` with one timeout for all ops, so
/// a new op never needs the thread woken: it sleeps at most `timeout`, and
/// any op registered meanwhile expires after it wakes.
pub(crate) struct Timer {
    st: Mutex<TimerState>,
    cv: Condvar,
    timeout: Duration,
}

impl Timer {
    fn start(timeout: Duration) -> std::io::Result<Arc<Timer>> {
        let t = Arc::new(Timer {
            st: Mutex::new(TimerState::default()),
            cv: Condvar::new(),
            timeout,
        });
        let t2 = t.clone();
        std::thread::Builder::new()
            .name("vaccel-agent-timer".into())
            .spawn(move || t2.run())?;
        Ok(t)
    }

    fn stop(&self) {
        lock(&self.st).stop = true;
        self.cv.notify_all();
    }

    /// Start timing an op; `None` if the timeout is too large to matter.
    pub fn register(
        &self,
        ctx: &Arc<ConnCtx>,
        id: u64,
        op: &'static str,
        started: Instant,
    ) -> Option<u64> {
        let deadline = Instant::now().checked_add(self.timeout)?;
        let mut st = lock(&self.st);
        st.next_key += 1;
        let key = st.next_key;
        st.ops.insert(
            key,
            Timed {
                deadline,
                ctx: ctx.clone(),
                id,
                op,
                started,
            },
        );
        if st.wake_at.is_none_or(|w| deadline < w) {
            self.cv.notify_one();
        }
        Some(key)
    }

    /// The op finished: `true` if its reply is still the caller's to send
    /// (its deadline has not been answered).
    pub fn finish(&self, key: Option<u64>) -> bool {
        match key {
            Some(k) => lock(&self.st).ops.remove(&k).is_some(),
            None => true,
        }
    }

    fn run(self: Arc<Self>) {
        let mut st = lock(&self.st);
        loop {
            if st.stop {
                return;
            }
            let now = Instant::now();
            let expired: Vec<u64> = st
                .ops
                .iter()
                .filter(|(_, t)| t.deadline <= now)
                .map(|(k, _)| *k)
                .collect();
            let expired: Vec<Timed> = expired.iter().filter_map(|k| st.ops.remove(k)).collect();
            let horizon = now
                .checked_add(self.timeout)
                .unwrap_or(now + Duration::from_secs(3600));
            let next = st
                .ops
                .values()
                .map(|t| t.deadline)
                .min()
                .map_or(horizon, |d| d.min(horizon));
            st.wake_at = Some(next);
            if !expired.is_empty() {
                drop(st);
                for t in expired {
                    // Writing the reply may block on a client that does not
                    // read, which must not delay other deadlines: one
                    // thread per connection answers its timed-out ops.
                    if !t.ctx.timed_out(t.id, t.op, t.started) {
                        continue;
                    }
                    let (ctx, timeout) = (t.ctx.clone(), self.timeout);
                    let r = std::thread::Builder::new()
                        .name("vaccel-agent-timeout".into())
                        .spawn(move || ctx.answer_timeouts(timeout));
                    if r.is_err() {
                        t.ctx.answer_timeouts(self.timeout);
                    }
                }
                st = lock(&self.st);
                continue;
            }
            let wait = next.saturating_duration_since(now);
            st = self
                .cv
                .wait_timeout(st, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}
