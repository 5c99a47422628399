//! Encoding into scatter/gather frames and bounds-checked decoding.

use std::io::IoSlice;

use crate::{BORROW_THRESHOLD, HEADER_LEN, Header, ProtoError, Result};

/// An encoded frame: owned bytes interleaved with borrowed blobs.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Header plus every small field, in order.
    buf: Vec<u8>,
    /// Borrowed blobs: (position in `buf` where the blob goes, blob).
    segs: Vec<(usize, &'a [u8])>,
    /// Total encoded length (header included).
    total: usize,
}

impl<'a> Frame<'a> {
    pub(crate) fn new(kind: u16, id: u64) -> Frame<'a> {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(
            &Header {
                kind,
                flags: 0,
                len: 0,
                id,
            }
            .encode(),
        );
        Frame {
            buf,
            segs: Vec::new(),
            total: HEADER_LEN,
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
        self.total += 1;
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.total += 2;
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.total += 4;
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.u32(v as u32);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self.total += 8;
    }

    /// A `u32`-length-prefixed string (copied).
    pub(crate) fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.total += s.len();
    }

    /// A `u64`-length-prefixed blob, starting at an 8-aligned offset;
    /// borrowed when large.
    pub(crate) fn blob(&mut self, b: &'a [u8]) {
        self.u64(b.len() as u64);
        let pad = (8 - self.total % 8) % 8;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self.total += pad;
        if b.len() >= BORROW_THRESHOLD {
            self.segs.push((self.buf.len(), b));
        } else {
            self.buf.extend_from_slice(b);
        }
        self.total += b.len();
    }

    /// Fill in the payload length. Errors if the payload does not fit in u32.
    pub(crate) fn finish(mut self) -> Result<Frame<'a>> {
        let len = u32::try_from(self.total - HEADER_LEN).map_err(|_| ProtoError::TooLarge {
            len: u32::MAX,
            max: u32::MAX,
        })?;
        self.buf[12..16].copy_from_slice(&len.to_le_bytes());
        Ok(self)
    }

    /// Total length in bytes, header included.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the frame is empty (never: a frame has a header).
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Payload length.
    pub fn payload_len(&self) -> usize {
        self.total - HEADER_LEN
    }

    /// The scatter/gather list for `writev`.
    pub fn io_slices(&self) -> Vec<IoSlice<'_>> {
        let mut v = Vec::with_capacity(1 + 2 * self.segs.len());
        let mut at = 0;
        for (pos, seg) in &self.segs {
            if *pos > at {
                v.push(IoSlice::new(&self.buf[at..*pos]));
            }
            v.push(IoSlice::new(seg));
            at = *pos;
        }
        if at < self.buf.len() {
            v.push(IoSlice::new(&self.buf[at..]));
        }
        v
    }

    /// The whole frame as one buffer (tests, small frames).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.total);
        for s in self.io_slices() {
            out.extend_from_slice(&s);
        }
        out
    }
}

/// Bounds-checked reader over a payload.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Dec<'a> {
        Dec { buf, pos: 0, what }
    }

    pub(crate) fn err(&self, why: impl Into<String>) -> ProtoError {
        ProtoError::Malformed {
            what: self.what,
            why: why.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(self.err(format!(
                "truncated at byte {} ({n} bytes needed, {left} left)",
                self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.arr()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        Ok(self.u32()? as i32)
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }

    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| self.err("string is not UTF-8"))
    }

    pub(crate) fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.u64()?;
        // Payload offsets and frame offsets agree mod 8 (the header is 24 bytes).
        let pad = (8 - self.pos % 8) % 8;
        self.take(pad)?;
        let n = usize::try_from(n).map_err(|_| self.err("blob length overflows"))?;
        self.take(n)
    }

    /// A count of items of at least `min` bytes each that must fit in what is left.
    pub(crate) fn count(&mut self, min: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        let left = self.buf.len() - self.pos;
        if n.saturating_mul(min.max(1)) > left {
            return Err(self.err(format!("count {n} cannot fit in the {left} bytes left")));
        }
        Ok(n)
    }

    pub(crate) fn finish(self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(self.err(format!("{} trailing bytes", self.buf.len() - self.pos)));
        }
        Ok(())
    }
}
