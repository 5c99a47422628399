//! # vaccel-proto
//!
//! The wire protocol between the remote plugin (in a guest, sandbox or
//! container) and the agent (on the host). Specified in `docs/protocol.md`.
//!
//! - Every message is a **frame**: a 24-byte header (magic, version, kind,
//!   flags, payload length, request id) and a little-endian payload.
//! - Requests carry a client-chosen **request id**; the reply carries the
//!   same id, so one connection multiplexes many requests in flight.
//! - Large byte blobs are 8-byte aligned within the payload and are
//!   **borrowed, not copied**, when encoding: [`Frame::io_slices`] gives a
//!   scatter/gather list for `writev`. Decoding borrows from the received
//!   buffer, so a received SGEMM matrix is used in place.
//! - **Decoding never panics**: every length and count is checked against
//!   what is left, and a hostile count cannot make the decoder allocate.
//!
//! This crate does no I/O.

#![forbid(unsafe_code)]

use std::io::IoSlice;

/// Frame magic.
pub const MAGIC: [u8; 4] = *b"VACR";
/// Protocol version spoken by this crate.
pub const VERSION: u16 = 1;
/// Header size in bytes.
pub const HEADER_LEN: usize = 24;
/// Default maximum payload size (256 MiB).
pub const DEFAULT_MAX_FRAME: u32 = 256 << 20;
/// Blobs at least this large are borrowed into the scatter/gather list
/// instead of being copied into the frame buffer.
pub const BORROW_THRESHOLD: usize = 1024;
/// Feature bit: the peer can use shared-memory arguments (Unix sockets).
pub const FEATURE_SHM: u32 = 0x1;
/// Argument flag: `data` is a 24-byte shared-memory reference
/// (`u64 region, u64 offset, u64 len`), not the bytes themselves.
pub const ARG_FLAG_SHM: u32 = 0x2;

/// Encode a shared-memory reference for an argument's `data`.
pub fn encode_shm_ref(region: u64, offset: u64, len: u64) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[0..8].copy_from_slice(&region.to_le_bytes());
    b[8..16].copy_from_slice(&offset.to_le_bytes());
    b[16..24].copy_from_slice(&len.to_le_bytes());
    b
}

/// Decode a shared-memory reference: (region, offset, len).
pub fn decode_shm_ref(b: &[u8]) -> Result<(u64, u64, u64)> {
    let b: &[u8; 24] = b.try_into().map_err(|_| ProtoError::Malformed {
        what: "shared-memory reference",
        why: format!("{} bytes, expected 24", b.len()),
    })?;
    let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    Ok((u(0), u(8), u(16)))
}

/// Message kinds. Responses have the high bit set.
pub mod kind {
    /// Handshake (first request on a connection).
    pub const HELLO: u16 = 0x0001;
    /// Echo, for measuring the transport.
    pub const PING: u16 = 0x0002;
    /// Create a session.
    pub const SESSION_CREATE: u16 = 0x0010;
    /// Release a session.
    pub const SESSION_RELEASE: u16 = 0x0011;
    /// Create a resource from bytes or an allow-listed host path.
    pub const RESOURCE_CREATE: u16 = 0x0020;
    /// Register a resource to a session.
    pub const RESOURCE_REGISTER: u16 = 0x0021;
    /// Unregister a resource from a session.
    pub const RESOURCE_UNREGISTER: u16 = 0x0022;
    /// Release a resource.
    pub const RESOURCE_RELEASE: u16 = 0x0023;
    /// Fetch a resource's files back.
    pub const RESOURCE_SYNC: u16 = 0x0024;
    /// Run an op.
    pub const OP: u16 = 0x0030;
    /// Fetch a session's profiling regions.
    pub const PROFILE_GET: u16 = 0x0040;
    /// Map a shared-memory region; the frame carries its fd (`SCM_RIGHTS`).
    pub const SHM_MAP: u16 = 0x0050;
    /// Unmap a shared-memory region.
    pub const SHM_UNMAP: u16 = 0x0051;

    /// Response bit.
    pub const RESPONSE: u16 = 0x8000;
    /// Handshake accepted.
    pub const HELLO_OK: u16 = RESPONSE | HELLO;
    /// Echo reply.
    pub const PONG: u16 = RESPONSE | PING;
    /// Session created.
    pub const SESSION: u16 = RESPONSE | SESSION_CREATE;
    /// Resource created.
    pub const RESOURCE: u16 = RESPONSE | RESOURCE_CREATE;
    /// Resource files.
    pub const RESOURCE_DATA: u16 = RESPONSE | RESOURCE_SYNC;
    /// Op outputs.
    pub const OP_RESULT: u16 = RESPONSE | OP;
    /// Profiling regions.
    pub const PROFILE: u16 = RESPONSE | PROFILE_GET;
    /// Success without data.
    pub const DONE: u16 = RESPONSE | 0x0100;
    /// Failure: code and message.
    pub const ERROR: u16 = RESPONSE | 0x0101;
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The frame does not start with `VACR`.
    #[error("bad frame magic {0:02x?}: the peer does not speak the vAccel protocol")]
    BadMagic([u8; 4]),
    /// Unsupported protocol version.
    #[error("unsupported protocol version {0} (this side speaks {VERSION})")]
    BadVersion(u16),
    /// Payload larger than the configured limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Announced length.
        len: u32,
        /// Limit.
        max: u32,
    },
    /// Unknown message kind.
    #[error("unknown message kind 0x{0:04x}")]
    UnknownKind(u16),
    /// The payload is malformed.
    #[error("malformed {what}: {why}")]
    Malformed {
        /// The message being decoded.
        what: &'static str,
        /// What was wrong.
        why: String,
    },
}

impl From<ProtoError> for vaccel_core::Error {
    fn from(e: ProtoError) -> Self {
        let code = match e {
            ProtoError::TooLarge { .. } => vaccel_core::Code::NoMem,
            _ => vaccel_core::Code::Inval,
        };
        vaccel_core::Error::new(code, format!("protocol: {e}"))
    }
}

type Result<T> = std::result::Result<T, ProtoError>;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message kind (see [`kind`]).
    pub kind: u16,
    /// Flags (reserved, zero).
    pub flags: u32,
    /// Payload length.
    pub len: u32,
    /// Request id (echoed in the reply).
    pub id: u64,
}

impl Header {
    /// Encode.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[6..8].copy_from_slice(&self.kind.to_le_bytes());
        b[8..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.len.to_le_bytes());
        b[16..24].copy_from_slice(&self.id.to_le_bytes());
        b
    }

    /// Decode and check magic, version and length against `max_frame`.
    pub fn decode(b: &[u8; HEADER_LEN], max_frame: u32) -> Result<Header> {
        let magic = [b[0], b[1], b[2], b[3]];
        if magic != MAGIC {
            return Err(ProtoError::BadMagic(magic));
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(ProtoError::BadVersion(version));
        }
        let h = Header {
            kind: u16::from_le_bytes([b[6], b[7]]),
            flags: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            len: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
            id: u64::from_le_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]),
        };
        if h.len > max_frame {
            return Err(ProtoError::TooLarge {
                len: h.len,
                max: max_frame,
            });
        }
        Ok(h)
    }
}

mod codec;
mod msg;

pub use codec::Frame;
pub use msg::{ArgWire, FileWire, OutWire, RegionWire, Request, Response};

/// The scatter/gather list of a frame, for `writev`.
pub fn io_slices<'f>(frame: &'f Frame<'_>) -> Vec<IoSlice<'f>> {
    frame.io_slices()
}

/// Decode `data` as a frame (header, then the payload as every request and
/// response kind). Used by the fuzz target and tests; must never panic.
#[doc(hidden)]
pub fn fuzz_frame(data: &[u8]) {
    if data.len() >= HEADER_LEN {
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&data[..HEADER_LEN]);
        let _ = Header::decode(&h, DEFAULT_MAX_FRAME);
    }
    let (k, payload) = match data.split_first_chunk::<2>() {
        Some((k, rest)) => (u16::from_le_bytes(*k), rest),
        None => (0, data),
    };
    let _ = Request::decode(k, payload);
    let _ = Response::decode(k, payload);
    let _ = Request::decode(k & !kind::RESPONSE, payload);
    let _ = Response::decode(k | kind::RESPONSE, payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_checks() {
        let h = Header {
            kind: kind::OP,
            flags: 0,
            len: 1234,
            id: 0xdead_beef_0042,
        };
        let b = h.encode();
        assert_eq!(&b[0..4], b"VACR");
        assert_eq!(Header::decode(&b, DEFAULT_MAX_FRAME).unwrap(), h);
        assert_eq!(
            Header::decode(&b, 1000).unwrap_err(),
            ProtoError::TooLarge {
                len: 1234,
                max: 1000
            }
        );
        let mut bad = b;
        bad[0] = b'X';
        assert!(matches!(
            Header::decode(&bad, DEFAULT_MAX_FRAME),
            Err(ProtoError::BadMagic(_))
        ));
        let mut v2 = b;
        v2[4] = 2;
        assert_eq!(
            Header::decode(&v2, DEFAULT_MAX_FRAME).unwrap_err(),
            ProtoError::BadVersion(2)
        );
    }

    #[test]
    fn errors_map_to_vaccel_codes() {
        let e: vaccel_core::Error = ProtoError::UnknownKind(7).into();
        assert_eq!(e.code(), vaccel_core::Code::Inval);
        assert!(e.message().contains("unknown message kind 0x0007"));
        let e: vaccel_core::Error = ProtoError::TooLarge { len: 2, max: 1 }.into();
        assert_eq!(e.code(), vaccel_core::Code::NoMem);
    }
}
