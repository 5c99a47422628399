//! Requests and responses: encoding and decoding.

use crate::codec::{Dec, Frame};
use crate::{ProtoError, Result, kind};

/// One file of a resource being created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileWire<'a> {
    /// The file's bytes travel in the message.
    Data {
        /// File name.
        name: &'a str,
        /// Contents.
        data: &'a [u8],
    },
    /// A path on the host (only accepted if the agent allow-lists it).
    HostPath {
        /// File name.
        name: &'a str,
        /// Host path.
        path: &'a str,
    },
}

/// A read argument on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgWire<'a> {
    /// `vaccel_arg_type_t`.
    pub ty: u32,
    /// Flags.
    pub flags: u32,
    /// Bytes.
    pub data: &'a [u8],
}

/// A write argument on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutWire<'a> {
    /// `vaccel_arg_type_t`.
    pub ty: u32,
    /// Flags (`ARG_FLAG_INOUT`: `data` holds the initial contents).
    pub flags: u32,
    /// Capacity of the caller's buffer (fixed outputs), or 0 for growable ones.
    pub capacity: u64,
    /// Whether the output may grow to any size.
    pub growable: bool,
    /// Initial contents (in/out arguments only; else empty).
    pub data: &'a [u8],
}

/// One profiling region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionWire {
    /// Op id.
    pub op: u32,
    /// Samples.
    pub count: u64,
    /// Total nanoseconds.
    pub total_ns: u64,
    /// Minimum nanoseconds.
    pub min_ns: u64,
    /// Maximum nanoseconds.
    pub max_ns: u64,
}

/// Client → agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// Handshake: highest version spoken, feature bits, auth token (may be empty).
    Hello {
        /// Client's protocol version.
        version: u16,
        /// Feature bits (`FEATURE_*`).
        features: u32,
        /// Shared token for TCP listeners.
        token: &'a [u8],
    },
    /// Echo.
    Ping {
        /// Echoed back.
        payload: &'a [u8],
    },
    /// Create a session.
    SessionCreate {
        /// Plugin-type hint.
        hint: u32,
    },
    /// Release a session.
    SessionRelease {
        /// Agent-side session id.
        session: u64,
    },
    /// Create a resource.
    ResourceCreate {
        /// `VACCEL_RESOURCE_*`.
        kind: u32,
        /// Files.
        files: Vec<FileWire<'a>>,
    },
    /// Register a resource to a session.
    ResourceRegister {
        /// Resource id.
        resource: u64,
        /// Session id.
        session: u64,
    },
    /// Unregister a resource from a session.
    ResourceUnregister {
        /// Resource id.
        resource: u64,
        /// Session id.
        session: u64,
    },
    /// Release a resource.
    ResourceRelease {
        /// Resource id.
        resource: u64,
    },
    /// Fetch a resource's files.
    ResourceSync {
        /// Resource id.
        resource: u64,
    },
    /// Run an op.
    Op {
        /// Session id.
        session: u64,
        /// Op id.
        op: u32,
        /// Read arguments.
        read: Vec<ArgWire<'a>>,
        /// Write arguments.
        write: Vec<OutWire<'a>>,
    },
    /// Fetch profiling regions of a session.
    ProfileGet {
        /// Session id.
        session: u64,
    },
    /// Map a shared-memory region (its fd travels with the frame).
    ShmMap {
        /// Client-chosen region id.
        region: u64,
        /// Region size in bytes.
        size: u64,
    },
    /// Unmap a shared-memory region.
    ShmUnmap {
        /// Region id.
        region: u64,
    },
}

/// Agent → client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// Handshake accepted.
    HelloOk {
        /// Version the agent will speak.
        version: u16,
        /// Features both sides support.
        features: u32,
        /// The agent's maximum frame payload.
        max_frame: u32,
        /// Agent name and version.
        server: &'a str,
    },
    /// Echo reply.
    Pong {
        /// The request's payload.
        payload: &'a [u8],
    },
    /// Session created.
    Session {
        /// Agent-side id.
        session: u64,
        /// The host plugin chosen.
        plugin: &'a str,
    },
    /// Resource created.
    Resource {
        /// Agent-side id.
        resource: u64,
    },
    /// Success without data.
    Done,
    /// Op outputs: the bytes written to each write argument.
    OpResult {
        /// One entry per write argument.
        outputs: Vec<&'a [u8]>,
    },
    /// Profiling regions.
    Profile {
        /// Regions.
        regions: Vec<RegionWire>,
    },
    /// A resource's files.
    ResourceData {
        /// (name, bytes) per file.
        files: Vec<(&'a str, &'a [u8])>,
    },
    /// Failure.
    Error {
        /// Error code (`vaccel_core::Code` value).
        code: i32,
        /// Message.
        message: &'a str,
    },
}

impl<'a> Request<'a> {
    /// The message kind.
    pub fn kind(&self) -> u16 {
        match self {
            Request::Hello { .. } => kind::HELLO,
            Request::Ping { .. } => kind::PING,
            Request::SessionCreate { .. } => kind::SESSION_CREATE,
            Request::SessionRelease { .. } => kind::SESSION_RELEASE,
            Request::ResourceCreate { .. } => kind::RESOURCE_CREATE,
            Request::ResourceRegister { .. } => kind::RESOURCE_REGISTER,
            Request::ResourceUnregister { .. } => kind::RESOURCE_UNREGISTER,
            Request::ResourceRelease { .. } => kind::RESOURCE_RELEASE,
            Request::ResourceSync { .. } => kind::RESOURCE_SYNC,
            Request::Op { .. } => kind::OP,
            Request::ProfileGet { .. } => kind::PROFILE_GET,
            Request::ShmMap { .. } => kind::SHM_MAP,
            Request::ShmUnmap { .. } => kind::SHM_UNMAP,
        }
    }

    /// Encode with request id `id`.
    pub fn encode(&self, id: u64) -> Result<Frame<'a>> {
        let mut f = Frame::new(self.kind(), id);
        match self {
            Request::Hello {
                version,
                features,
                token,
            } => {
                f.u16(*version);
                f.u32(*features);
                f.blob(token);
            }
            Request::Ping { payload } => f.blob(payload),
            Request::SessionCreate { hint } => f.u32(*hint),
            Request::SessionRelease { session } | Request::ProfileGet { session } => {
                f.u64(*session)
            }
            Request::ResourceRelease { resource } | Request::ResourceSync { resource } => {
                f.u64(*resource)
            }
            Request::ShmUnmap { region } => f.u64(*region),
            Request::ShmMap { region, size } => {
                f.u64(*region);
                f.u64(*size);
            }
            Request::ResourceRegister { resource, session }
            | Request::ResourceUnregister { resource, session } => {
                f.u64(*resource);
                f.u64(*session);
            }
            Request::ResourceCreate { kind, files } => {
                f.u32(*kind);
                f.u32(files.len() as u32);
                for file in files {
                    match file {
                        FileWire::Data { name, data } => {
                            f.u8(0);
                            f.str(name);
                            f.blob(data);
                        }
                        FileWire::HostPath { name, path } => {
                            f.u8(1);
                            f.str(name);
                            f.str(path);
                        }
                    }
                }
            }
            Request::Op {
                session,
                op,
                read,
                write,
            } => {
                f.u64(*session);
                f.u32(*op);
                f.u32(read.len() as u32);
                f.u32(write.len() as u32);
                for a in read {
                    f.u32(a.ty);
                    f.u32(a.flags);
                    f.blob(a.data);
                }
                for o in write {
                    f.u32(o.ty);
                    f.u32(o.flags);
                    f.u64(o.capacity);
                    f.u8(o.growable as u8);
                    f.blob(o.data);
                }
            }
        }
        f.finish()
    }

    /// Decode a payload of kind `k`.
    pub fn decode(k: u16, payload: &'a [u8]) -> Result<Request<'a>> {
        let mut d = Dec::new(payload, "request");
        let r = match k {
            kind::HELLO => Request::Hello {
                version: d.u16()?,
                features: d.u32()?,
                token: d.blob()?,
            },
            kind::PING => Request::Ping { payload: d.blob()? },
            kind::SESSION_CREATE => Request::SessionCreate { hint: d.u32()? },
            kind::SESSION_RELEASE => Request::SessionRelease { session: d.u64()? },
            kind::PROFILE_GET => Request::ProfileGet { session: d.u64()? },
            kind::RESOURCE_RELEASE => Request::ResourceRelease { resource: d.u64()? },
            kind::RESOURCE_SYNC => Request::ResourceSync { resource: d.u64()? },
            kind::SHM_MAP => Request::ShmMap {
                region: d.u64()?,
                size: d.u64()?,
            },
            kind::SHM_UNMAP => Request::ShmUnmap { region: d.u64()? },
            kind::RESOURCE_REGISTER => Request::ResourceRegister {
                resource: d.u64()?,
                session: d.u64()?,
            },
            kind::RESOURCE_UNREGISTER => Request::ResourceUnregister {
                resource: d.u64()?,
                session: d.u64()?,
            },
            kind::RESOURCE_CREATE => {
                let kind = d.u32()?;
                let n = d.count(1 + 4 + 4)?;
                let mut files = Vec::with_capacity(n);
                for _ in 0..n {
                    files.push(match d.u8()? {
                        0 => FileWire::Data {
                            name: d.str()?,
                            data: d.blob()?,
                        },
                        1 => FileWire::HostPath {
                            name: d.str()?,
                            path: d.str()?,
                        },
                        t => return Err(d.err(format!("unknown file source {t}"))),
                    });
                }
                Request::ResourceCreate { kind, files }
            }
            kind::OP => {
                let session = d.u64()?;
                let op = d.u32()?;
                let nr = d.count(16)?;
                let nw = d.u32()? as usize;
                let mut read = Vec::with_capacity(nr);
                for _ in 0..nr {
                    read.push(ArgWire {
                        ty: d.u32()?,
                        flags: d.u32()?,
                        data: d.blob()?,
                    });
                }
                let mut write = Vec::with_capacity(nw.min(payload.len() / 25 + 1));
                for _ in 0..nw {
                    let ty = d.u32()?;
                    let flags = d.u32()?;
                    let capacity = d.u64()?;
                    let growable = match d.u8()? {
                        0 => false,
                        1 => true,
                        x => return Err(d.err(format!("growable flag {x} is not 0 or 1"))),
                    };
                    write.push(OutWire {
                        ty,
                        flags,
                        capacity,
                        growable,
                        data: d.blob()?,
                    });
                }
                Request::Op {
                    session,
                    op,
                    read,
                    write,
                }
            }
            other => return Err(ProtoError::UnknownKind(other)),
        };
        d.finish()?;
        Ok(r)
    }
}

impl<'a> Response<'a> {
    /// The message kind.
    pub fn kind(&self) -> u16 {
        match self {
            Response::HelloOk { .. } => kind::HELLO_OK,
            Response::Pong { .. } => kind::PONG,
            Response::Session { .. } => kind::SESSION,
            Response::Resource { .. } => kind::RESOURCE,
            Response::Done => kind::DONE,
            Response::OpResult { .. } => kind::OP_RESULT,
            Response::Profile { .. } => kind::PROFILE,
            Response::ResourceData { .. } => kind::RESOURCE_DATA,
            Response::Error { .. } => kind::ERROR,
        }
    }

    /// Encode as the reply to request `id`.
    pub fn encode(&self, id: u64) -> Result<Frame<'a>> {
        let mut f = Frame::new(self.kind(), id);
        match self {
            Response::HelloOk {
                version,
                features,
                max_frame,
                server,
            } => {
                f.u16(*version);
                f.u32(*features);
                f.u32(*max_frame);
                f.str(server);
            }
            Response::Pong { payload } => f.blob(payload),
            Response::Session { session, plugin } => {
                f.u64(*session);
                f.str(plugin);
            }
            Response::Resource { resource } => f.u64(*resource),
            Response::Done => {}
            Response::OpResult { outputs } => {
                f.u32(outputs.len() as u32);
                for o in outputs {
                    f.blob(o);
                }
            }
            Response::Profile { regions } => {
                f.u32(regions.len() as u32);
                for r in regions {
                    f.u32(r.op);
                    f.u64(r.count);
                    f.u64(r.total_ns);
                    f.u64(r.min_ns);
                    f.u64(r.max_ns);
                }
            }
            Response::ResourceData { files } => {
                f.u32(files.len() as u32);
                for (name, data) in files {
                    f.str(name);
                    f.blob(data);
                }
            }
            Response::Error { code, message } => {
                f.i32(*code);
                f.str(message);
            }
        }
        f.finish()
    }

    /// Decode a payload of kind `k`.
    pub fn decode(k: u16, payload: &'a [u8]) -> Result<Response<'a>> {
        let mut d = Dec::new(payload, "response");
        let r = match k {
            kind::HELLO_OK => Response::HelloOk {
                version: d.u16()?,
                features: d.u32()?,
                max_frame: d.u32()?,
                server: d.str()?,
            },
            kind::PONG => Response::Pong { payload: d.blob()? },
            kind::SESSION => Response::Session {
                session: d.u64()?,
                plugin: d.str()?,
            },
            kind::RESOURCE => Response::Resource { resource: d.u64()? },
            kind::DONE => Response::Done,
            kind::OP_RESULT => {
                let n = d.count(8)?;
                let mut outputs = Vec::with_capacity(n);
                for _ in 0..n {
                    outputs.push(d.blob()?);
                }
                Response::OpResult { outputs }
            }
            kind::PROFILE => {
                let n = d.count(36)?;
                let mut regions = Vec::with_capacity(n);
                for _ in 0..n {
                    regions.push(RegionWire {
                        op: d.u32()?,
                        count: d.u64()?,
                        total_ns: d.u64()?,
                        min_ns: d.u64()?,
                        max_ns: d.u64()?,
                    });
                }
                Response::Profile { regions }
            }
            kind::RESOURCE_DATA => {
                let n = d.count(12)?;
                let mut files = Vec::with_capacity(n);
                for _ in 0..n {
                    files.push((d.str()?, d.blob()?));
                }
                Response::ResourceData { files }
            }
            kind::ERROR => Response::Error {
                code: d.i32()?,
                message: d.str()?,
            },
            other => return Err(ProtoError::UnknownKind(other)),
        };
        d.finish()?;
        Ok(r)
    }
}
