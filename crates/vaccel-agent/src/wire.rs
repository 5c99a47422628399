//! Reading request frames from a blocking socket: usually one `recvmsg`
//! per frame, into a buffer reused across frames.
//!
//! Payloads are handed to plugins in place (they cast argument bytes to
//! `f32` and the like), so a payload always starts 8-aligned: the buffer is
//! a `Vec<u64>`, and a frame that would start misaligned is moved to the
//! front first. Frames larger than the buffer go straight into a buffer of
//! their exact size, so their bytes are copied once (by the kernel).

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vaccel_proto::{HEADER_LEN, Header, ProtoError};
use vaccel_transport::BlockingStream;

/// Size of a connection's read buffer. Frames up to this size (header
/// included) are read through it, possibly several with one call.
pub(crate) const BUF_BYTES: usize = 64 << 10;
const BUF_WORDS: usize = BUF_BYTES / 8;

/// A fresh read buffer.
pub(crate) fn new_buf() -> Vec<u64> {
    vec![0u64; BUF_WORDS]
}

/// Busy polling: a reader with nothing to read keeps asking the socket for
/// up to `window` before it blocks. On a VM, waking a blocked thread costs
/// 5–15 µs (more than a whole NOOP round trip); a client that sends its next
/// request soon after a reply finds the reader still running. At most `max`
/// readers spin at once, so idle connections cost nothing and busy ones at
/// most `max` cores for `window` after each frame.
#[derive(Debug)]
pub(crate) struct BusyPoll {
    window: Duration,
    max: usize,
    spinning: AtomicUsize,
    /// Where hits, misses and full-cap skips are counted.
    stats: Option<std::sync::Arc<crate::Stats>>,
}

impl BusyPoll {
    pub fn new(window: Duration, max: usize) -> BusyPoll {
        BusyPoll {
            window,
            max,
            spinning: AtomicUsize::new(0),
            stats: None,
        }
    }

    /// Count outcomes in `stats` (for the metrics).
    pub fn counting(mut self, stats: std::sync::Arc<crate::Stats>) -> BusyPoll {
        self.stats = Some(stats);
        self
    }

    fn count(&self, which: impl Fn(&crate::Stats) -> &std::sync::atomic::AtomicU64) {
        if let Some(s) = &self.stats {
            which(s).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Call `attempt` until it yields something or the window closes
    /// (`None`: block instead). Nothing when the window is zero or `max`
    /// readers already spin.
    fn spin<R>(&self, mut attempt: impl FnMut() -> Option<R>) -> Option<R> {
        if self.window.is_zero() {
            return None;
        }
        if self.spinning.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.spinning.fetch_sub(1, Ordering::AcqRel);
            self.count(|s| &s.busy_poll_full);
            return None;
        }
        let until = Instant::now() + self.window;
        let got = loop {
            if let Some(r) = attempt() {
                break Some(r);
            }
            if Instant::now() >= until {
                break None;
            }
            // Let other threads on this core run (on a small VM the client
            // or the op's own threads may be waiting for it).
            std::thread::yield_now();
        };
        self.spinning.fetch_sub(1, Ordering::AcqRel);
        match got {
            Some(_) => self.count(|s| &s.busy_poll_hits),
            None => self.count(|s| &s.busy_poll_misses),
        }
        got
    }
}

/// Why no frame came.
pub(crate) enum ReadError {
    /// The peer closed (or the read side was shut down), or the read failed.
    Closed(Option<io::Error>),
    /// A header that cannot be served: the connection must close. The
    /// request id is answered first if the frame is merely too large.
    Bad(ProtoError, u64),
}

/// Where a frame's payload lives.
pub(crate) enum Body {
    /// In the reader's buffer at this byte offset, until the next read.
    Buffered(usize),
    /// In its own buffer (frames larger than the read buffer).
    Own(Vec<u64>),
}

/// A complete request frame.
pub(crate) struct InFrame {
    pub header: Header,
    pub body: Body,
    /// Descriptors that arrived with the frame's bytes (`SCM_RIGHTS`).
    pub fds: Vec<OwnedFd>,
}

impl InFrame {
    /// Total bytes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.header.len as usize
    }
}

/// One connection's read state. It belongs to whichever thread currently
/// reads the connection (the leader) and moves with that role.
pub(crate) struct Reader {
    /// Empty while lent out (see [`Reader::take_buf`]).
    buf: Vec<u64>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Received descriptors, with the stream offset where the read that
    /// brought them began: they belong to the frame holding that byte.
    fds: Vec<(u64, OwnedFd)>,
    /// HELLO was accepted on this connection.
    pub hello: bool,
}

fn bytes(w: &[u64]) -> &[u8] {
    bytemuck::cast_slice(w)
}

fn bytes_mut(w: &mut [u64]) -> &mut [u8] {
    bytemuck::cast_slice_mut(w)
}

impl Reader {
    pub fn new() -> Reader {
        Reader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            base: 0,
            fds: Vec::new(),
            hello: false,
        }
    }

    /// Whether bytes of a further frame are already buffered.
    pub fn has_buffered(&self) -> bool {
        self.end > self.start
    }

    /// The buffer's bytes.
    pub fn buffer(&self) -> &[u8] {
        bytes(&self.buf)
    }

    /// The payload of a frame read by the last [`next`](Self::next).
    pub fn payload<'a>(&'a self, f: &'a InFrame) -> &'a [u8] {
        let len = f.header.len as usize;
        match &f.body {
            Body::Buffered(off) => &bytes(&self.buf)[*off..*off + len],
            Body::Own(v) => &bytes(v)[..len],
        }
    }

    /// Lend out the whole buffer (with the last frame's payload in it) when
    /// nothing else is buffered, so an op can run on it in place while
    /// another thread reads on. The reader takes a spare buffer on its next
    /// read (usually this one, given back by then).
    pub fn take_buf(&mut self) -> Vec<u64> {
        debug_assert!(!self.has_buffered());
        self.base += self.end as u64;
        self.start = 0;
        self.end = 0;
        std::mem::take(&mut self.buf)
    }

    /// Read the next frame (blocking). `spare` supplies a buffer if this
    /// reader lent its own out.
    pub fn next(
        &mut self,
        sock: &BlockingStream,
        max_frame: u32,
        poll: &BusyPoll,
        spare: impl FnOnce() -> Vec<u64>,
    ) -> Result<InFrame, ReadError> {
        if self.buf.is_empty() {
            self.buf = spare();
        }
        // Keep the next frame's start 8-aligned (payload = start + 24).
        if self.start == self.end {
            self.base += self.end as u64;
            self.start = 0;
            self.end = 0;
        } else if self.start % 8 != 0 {
            self.compact();
        }
        while self.end - self.start < HEADER_LEN {
            if self.start + HEADER_LEN > BUF_BYTES {
                self.compact();
            }
            self.fill(sock, poll)?;
        }
        let hb: &[u8; HEADER_LEN] = bytes(&self.buf)[self.start..self.start + HEADER_LEN]
            .try_into()
            .expect("24 bytes");
        let header = match Header::decode(hb, max_frame) {
            Ok(h) => h,
            Err(e) => {
                let id = u64::from_le_bytes(hb[16..24].try_into().expect("8 bytes"));
                return Err(ReadError::Bad(e, id));
            }
        };
        let total = HEADER_LEN + header.len as usize;
        let frame_at = self.base + self.start as u64;
        if total > BUF_BYTES {
            return self.read_large(sock, poll, header, frame_at);
        }
        if self.start + total > BUF_BYTES {
            self.compact();
        }
        while self.end - self.start < total {
            self.fill(sock, poll)?;
        }
        let off = self.start + HEADER_LEN;
        self.start += total;
        Ok(InFrame {
            header,
            body: Body::Buffered(off),
            fds: self.fds_until(frame_at + total as u64),
        })
    }

    /// A frame larger than the buffer: what is buffered (all of it belongs
    /// to this frame), then the rest straight into an exact-size buffer.
    fn read_large(
        &mut self,
        sock: &BlockingStream,
        poll: &BusyPoll,
        header: Header,
        frame_at: u64,
    ) -> Result<InFrame, ReadError> {
        let len = header.len as usize;
        let mut own = vec![0u64; len.div_ceil(8)];
        let have = self.end - self.start - HEADER_LEN;
        let from = self.start + HEADER_LEN;
        bytes_mut(&mut own)[..have].copy_from_slice(&bytes(&self.buf)[from..from + have]);
        self.base += self.end as u64;
        self.start = 0;
        self.end = 0;
        let mut got = have;
        let mut fds = Vec::new();
        while got < len {
            // The rest is on its way: poll for it, then wait for all of it.
            let rest = &mut bytes_mut(&mut own)[got..len];
            let r = match poll.spin(|| sock.try_recv(rest, &mut fds).transpose()) {
                Some(r) => r,
                None => sock.recv(rest, &mut fds, true),
            };
            match r {
                Ok(0) => return Err(ReadError::Closed(None)),
                Ok(n) => got += n,
                Err(e) => return Err(ReadError::Closed(Some(e))),
            }
        }
        self.base += (len - have) as u64;
        let mut mine = self.fds_until(frame_at + (HEADER_LEN + len) as u64);
        mine.extend(fds);
        Ok(InFrame {
            header,
            body: Body::Own(own),
            fds: mine,
        })
    }

    /// Move the unconsumed bytes to the front of the buffer.
    fn compact(&mut self) {
        let (s, e) = (self.start, self.end);
        bytes_mut(&mut self.buf).copy_within(s..e, 0);
        self.base += s as u64;
        self.start = 0;
        self.end = e - s;
    }

    /// One read into the free end of the buffer.
    /// Busy-polls first (see [`BusyPoll`]).
    fn fill(&mut self, sock: &BlockingStream, poll: &BusyPoll) -> Result<(), ReadError> {
        let at = self.base + self.end as u64;
        let mut fds = Vec::new();
        let free = &mut bytes_mut(&mut self.buf)[self.end..];
        let n = match poll.spin(|| sock.try_recv(free, &mut fds).transpose()) {
            Some(r) => r,
            None => sock.recv(free, &mut fds, false),
        }
        .map_err(|e| ReadError::Closed(Some(e)))?;
        if n == 0 {
            return Err(ReadError::Closed(None));
        }
        self.end += n;
        self.fds.extend(fds.into_iter().map(|fd| (at, fd)));
        Ok(())
    }

    /// The descriptors that arrived before stream offset `end`.
    fn fds_until(&mut self, end: u64) -> Vec<OwnedFd> {
        if self.fds.is_empty() {
            return Vec::new();
        }
        let (mine, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.fds)
            .into_iter()
            .partition(|(at, _)| *at < end);
        self.fds = later;
        mine.into_iter().map(|(_, fd)| fd).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_poll_returns_what_arrives_within_the_window() {
        let poll = BusyPoll::new(Duration::from_secs(5), 1);
        let mut tries = 0;
        let got = poll.spin(|| {
            tries += 1;
            (tries == 3).then_some(42)
        });
        assert_eq!(got, Some(42));
        assert_eq!(tries, 3);
        assert_eq!(poll.spinning.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn busy_poll_gives_up_after_the_window() {
        let poll = BusyPoll::new(Duration::from_millis(5), 1);
        let start = Instant::now();
        let mut tries = 0;
        assert_eq!(
            poll.spin(|| {
                tries += 1;
                None::<()>
            }),
            None
        );
        assert!(start.elapsed() >= Duration::from_millis(5));
        assert!(tries >= 2);
        assert_eq!(poll.spinning.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn busy_poll_counts_hits_misses_and_full() {
        let stats = std::sync::Arc::new(crate::Stats::default());
        let poll = BusyPoll::new(Duration::from_millis(2), 1).counting(stats.clone());
        assert_eq!(poll.spin(|| Some(1)), Some(1));
        assert_eq!(poll.spin(|| None::<()>), None);
        poll.spinning.store(1, Ordering::SeqCst);
        assert_eq!(poll.spin(|| Some(1)), None);
        let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::SeqCst);
        assert_eq!(
            (
                n(&stats.busy_poll_hits),
                n(&stats.busy_poll_misses),
                n(&stats.busy_poll_full)
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn busy_poll_off_or_full_does_not_poll() {
        let off = BusyPoll::new(Duration::ZERO, 4);
        assert_eq!(off.spin(|| -> Option<()> { panic!("polled") }), None);
        let full = BusyPoll::new(Duration::from_secs(5), 1);
        full.spinning.store(1, Ordering::SeqCst);
        assert_eq!(full.spin(|| -> Option<()> { panic!("polled") }), None);
        assert_eq!(full.spinning.load(Ordering::SeqCst), 1);
    }
}
