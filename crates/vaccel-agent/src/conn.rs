//! What one client connection owns (sessions, resources, shared regions)
//! and how its requests act on them. The threads that read requests and
//! send replies are in `serve`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::os::fd::OwnedFd;

use vaccel_core::resource::File;
use vaccel_core::{
    Arg, ArgOut, ArgType, Code, Error, OpType, PluginType, Resource, ResourceType, Session,
};
use vaccel_proto::ARG_FLAG_SHM;
use vaccel_proto::{FileWire, OutWire, Request, Response};

use crate::Shared;
use crate::engine::lock;

/// Which connection owns which id (to tell `EPERM` from `ENOENT`).
#[derive(Debug, Default)]
pub(crate) struct Owners {
    sessions: Mutex<HashMap<u64, u64>>,
    resources: Mutex<HashMap<u64, u64>>,
}

pub(crate) struct Conn {
    pub id: u64,
    pub shared: Arc<Shared>,
    sessions: Mutex<HashMap<u64, Session>>,
    resources: Mutex<HashMap<u64, (Resource, u64)>>,
    resource_bytes: AtomicU64,
    /// Shared-memory regions the client mapped (Unix sockets only).
    shm: Mutex<HashMap<u64, Arc<memmap2::MmapRaw>>>,
}

impl Conn {
    pub fn new(id: u64, shared: Arc<Shared>) -> Conn {
        Conn {
            id,
            shared,
            sessions: Mutex::new(HashMap::new()),
            resources: Mutex::new(HashMap::new()),
            resource_bytes: AtomicU64::new(0),
            shm: Mutex::new(HashMap::new()),
        }
    }

    pub fn session(&self, id: u64) -> Result<Session, Error> {
        if let Some(s) = lock(&self.sessions).get(&id) {
            return Ok(s.clone());
        }
        Err(self.not_ours(
            "session",
            id,
            lock(&self.shared.owners.sessions).contains_key(&id),
        ))
    }

    pub fn resource(&self, id: u64) -> Result<Resource, Error> {
        if let Some((r, _)) = lock(&self.resources).get(&id) {
            return Ok(r.clone());
        }
        Err(self.not_ours(
            "resource",
            id,
            lock(&self.shared.owners.resources).contains_key(&id),
        ))
    }

    fn not_ours(&self, what: &str, id: u64, exists: bool) -> Error {
        if exists {
            Error::perm(format!("{what} {id} belongs to another connection"))
        } else {
            Error::noent(format!("no {what} {id} on this connection"))
        }
    }

    pub fn create_session(&self, hint: u32) -> Result<Response<'static>, Error> {
        let max = self.shared.config.max_sessions;
        if lock(&self.sessions).len() >= max {
            return Err(Error::new(
                Code::Again,
                format!(
                    "this connection already holds {max} sessions (the agent's limit): release some first"
                ),
            ));
        }
        let s = self
            .shared
            .runtime
            .session(PluginType::from_bits_retain(hint))?;
        let id = s.id();
        let plugin = s.plugin().name.clone();
        lock(&self.shared.owners.sessions).insert(id, self.id);
        lock(&self.sessions).insert(id, s);
        self.shared.stats.sessions.fetch_add(1, Ordering::SeqCst);
        Ok(Response::Session {
            session: id,
            plugin: leak_name(plugin),
        })
    }

    pub fn release_session(&self, id: u64) -> Result<(), Error> {
        let s = self.session(id)?;
        lock(&self.sessions).remove(&id);
        lock(&self.shared.owners.sessions).remove(&id);
        self.shared.stats.sessions.fetch_sub(1, Ordering::SeqCst);
        s.release()
    }

    pub fn create_resource(&self, kind: u32, files: &[FileWire<'_>]) -> Result<u64, Error> {
        let kind = ResourceType::from_u32(kind).ok_or_else(|| {
            Error::inval(format!(
                "unknown resource type {kind}: use 0 (lib), 1 (data) or 2 (model)"
            ))
        })?;
        let bytes: u64 = files
            .iter()
            .map(|f| match f {
                FileWire::Data { data, .. } => data.len() as u64,
                FileWire::HostPath { .. } => 0,
            })
            .sum();
        let limit = self.shared.config.max_resource_bytes;
        let held = self.resource_bytes.load(Ordering::SeqCst);
        if held.saturating_add(bytes) > limit {
            return Err(Error::nomem(format!(
                "resource of {bytes} bytes would exceed this connection's limit of {limit} bytes ({held} held)"
            )));
        }
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            out.push(match f {
                FileWire::Data { name, data } => {
                    if name.is_empty() || name.contains('/') {
                        return Err(Error::inval(format!(
                            "resource file name '{name}' must be non-empty without '/'"
                        )));
                    }
                    File::in_memory(*name, data.to_vec())
                }
                FileWire::HostPath { path, .. } => File::from_disk_unchecked(self.host_path(path)?),
            });
        }
        let r = Resource::from_files(out, kind)?;
        let id = r.id();
        self.resource_bytes.fetch_add(bytes, Ordering::SeqCst);
        lock(&self.shared.owners.resources).insert(id, self.id);
        lock(&self.resources).insert(id, (r, bytes));
        self.shared.stats.resources.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }

    fn host_path(&self, p: &str) -> Result<std::path::PathBuf, Error> {
        let canon = Path::new(p)
            .canonicalize()
            .map_err(|e| Error::from_io(&e, format_args!("host path {p}")))?;
        let allowed = self
            .shared
            .config
            .host_paths
            .iter()
            .any(|a| match a.canonicalize() {
                Ok(a) => canon.starts_with(a),
                Err(_) => false,
            });
        if !allowed || !canon.is_file() {
            return Err(Error::perm(format!(
                "host path {p} is not under a directory the agent allows (--host-path); send the file's bytes instead"
            )));
        }
        Ok(canon)
    }

    pub fn release_resource(&self, id: u64) -> Result<(), Error> {
        let r = self.resource(id)?;
        if r.refcount() > 0 {
            return Err(Error::busy(format!(
                "resource {id} is still registered to {} session(s): unregister it first",
                r.refcount()
            )));
        }
        if let Some((_, bytes)) = lock(&self.resources).remove(&id) {
            self.resource_bytes.fetch_sub(bytes, Ordering::SeqCst);
        }
        lock(&self.shared.owners.resources).remove(&id);
        self.shared.stats.resources.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    /// Map a client's shared-memory region. The memfd must be sealed against
    /// shrinking, so the client cannot make our mapping fault later.
    pub fn map_region(&self, region: u64, size: u64, fd: Option<OwnedFd>) -> Result<(), Error> {
        let fd = fd.ok_or_else(|| {
            Error::inval("SHM_MAP must carry the region's file descriptor (SCM_RIGHTS)")
        })?;
        let seals = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GET_SEALS).map_err(|e| {
            Error::inval(format!(
                "shared region {region}: not a sealable memfd ({e})"
            ))
        })?;
        let seals = nix::fcntl::SealFlag::from_bits_retain(seals);
        if !seals.contains(nix::fcntl::SealFlag::F_SEAL_SHRINK) {
            return Err(Error::perm(format!(
                "shared region {region} must be sealed against shrinking (F_SEAL_SHRINK)"
            )));
        }
        let file = std::fs::File::from(fd);
        let actual = file
            .metadata()
            .map_err(|e| Error::from_io(&e, "shared region"))?
            .len();
        if size == 0 || size > actual {
            return Err(Error::inval(format!(
                "shared region {region}: size {size} but the file holds {actual} bytes"
            )));
        }
        let limit = self.shared.config.max_resource_bytes;
        let held = self.resource_bytes.load(Ordering::SeqCst);
        if held.saturating_add(size) > limit {
            return Err(Error::nomem(format!(
                "mapping {size} bytes would exceed this connection's limit of {limit} bytes ({held} held)"
            )));
        }
        let len = usize::try_from(size).map_err(|_| Error::inval("region too large"))?;
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(|e| Error::from_io(&e, "mapping a shared region"))?;
        if let Some(old) = lock(&self.shm).insert(region, Arc::new(map)) {
            self.resource_bytes
                .fetch_sub(old.len() as u64, Ordering::SeqCst);
        }
        self.resource_bytes.fetch_add(size, Ordering::SeqCst);
        Ok(())
    }

    pub fn unmap_region(&self, region: u64) -> Result<(), Error> {
        let m = lock(&self.shm)
            .remove(&region)
            .ok_or_else(|| Error::noent(format!("no shared region {region} on this connection")))?;
        self.resource_bytes
            .fetch_sub(m.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    /// Release everything this connection holds.
    pub fn release_all(&self) {
        lock(&self.shm).clear();
        let sessions: Vec<(u64, Session)> = lock(&self.sessions).drain().collect();
        for (id, s) in sessions {
            lock(&self.shared.owners.sessions).remove(&id);
            self.shared.stats.sessions.fetch_sub(1, Ordering::SeqCst);
            if let Err(e) = s.release() {
                tracing::debug!(session = id, error = %e, "releasing session of closed connection");
            }
        }
        let resources: Vec<u64> = lock(&self.resources).drain().map(|(id, _)| id).collect();
        for id in resources {
            lock(&self.shared.owners.resources).remove(&id);
            self.shared.stats.resources.fetch_sub(1, Ordering::SeqCst);
        }
        self.resource_bytes.store(0, Ordering::SeqCst);
    }
}

/// Plugin names are few and live for the process; interning them keeps
/// responses borrow-only.
pub(crate) fn leak_name(s: String) -> &'static str {
    static NAMES: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut names = lock(&NAMES);
    if let Some(n) = names.iter().find(|n| **n == s) {
        return n;
    }
    let n: &'static str = Box::leak(s.into_boxed_str());
    names.push(n);
    n
}

/// Output storage for one write argument: 8-aligned for fixed (numeric)
/// buffers, a plain vector for growable ones.
pub(crate) enum OutStore {
    Fixed(Vec<u64>, usize),
    Grow(Vec<u8>),
    /// Written in place in shared memory: the reply carries only the length.
    Shm([u8; 8]),
}

impl OutStore {
    pub fn bytes(&self, len: usize) -> &[u8] {
        match self {
            OutStore::Fixed(v, cap) => &bytemuck::cast_slice(v)[..len.min(*cap)],
            OutStore::Grow(v) => &v[..len.min(v.len())],
            OutStore::Shm(b) => &b[..],
        }
    }
}

/// A bounds-checked view of `len` bytes at `offset` of a mapped region.
struct ShmSpan {
    map: Arc<memmap2::MmapRaw>,
    offset: usize,
    len: usize,
}

impl Conn {
    fn span(&self, data: &[u8]) -> Result<ShmSpan, Error> {
        let (region, offset, len) = vaccel_proto::decode_shm_ref(data)?;
        let map = lock(&self.shm).get(&region).cloned().ok_or_else(|| {
            Error::inval(format!(
                "shared region {region} is not mapped on this connection"
            ))
        })?;
        let (offset, len) = (usize::try_from(offset), usize::try_from(len));
        let (Ok(offset), Ok(len)) = (offset, len) else {
            return Err(Error::inval("shared-memory reference overflows"));
        };
        if offset.checked_add(len).is_none_or(|end| end > map.len()) {
            return Err(Error::inval(format!(
                "shared-memory reference {offset}+{len} is outside region {region} ({} bytes)",
                map.len()
            )));
        }
        Ok(ShmSpan { map, offset, len })
    }
}

fn arg_type(t: u32) -> Result<ArgType, Error> {
    ArgType::from_u32(t).ok_or_else(|| Error::inval(format!("unknown argument type {t}")))
}

/// Run one OP request. Returns the outputs and how much of each was written.
pub(crate) fn run_op(conn: &Conn, payload: &[u8]) -> Result<(Vec<OutStore>, Vec<usize>), Error> {
    let Request::Op {
        session,
        op,
        read,
        write,
    } = Request::decode(vaccel_proto::kind::OP, payload)?
    else {
        return Err(Error::inval("not an op request"));
    };
    let sess = conn.session(session)?;
    let op = OpType::from_u32(op).ok_or_else(|| Error::inval(format!("unknown op id {op}")))?;
    // Shared-memory spans, resolved and checked first: an output may not
    // overlap any other argument (that would alias a mutable buffer).
    let read_spans: Vec<Option<ShmSpan>> = read
        .iter()
        .map(|a| {
            if a.flags & ARG_FLAG_SHM != 0 {
                conn.span(a.data).map(Some)
            } else {
                Ok(None)
            }
        })
        .collect::<Result<_, _>>()?;
    let write_spans: Vec<Option<ShmSpan>> = write
        .iter()
        .map(|w| {
            if w.flags & ARG_FLAG_SHM != 0 {
                conn.span(w.data).map(Some)
            } else {
                Ok(None)
            }
        })
        .collect::<Result<_, _>>()?;
    let all: Vec<(&ShmSpan, bool)> = read_spans
        .iter()
        .flatten()
        .map(|s| (s, false))
        .chain(write_spans.iter().flatten().map(|s| (s, true)))
        .collect();
    for (i, (a, aw)) in all.iter().enumerate() {
        for (b, bw) in &all[i + 1..] {
            let same = Arc::ptr_eq(&a.map, &b.map);
            let overlap = same && a.offset < b.offset + b.len && b.offset < a.offset + a.len;
            if overlap && (*aw || *bw) && a.len > 0 && b.len > 0 {
                return Err(Error::inval(
                    "a shared-memory output overlaps another argument",
                ));
            }
        }
    }
    let args = read
        .iter()
        .zip(&read_spans)
        .map(|(a, span)| {
            let ty = arg_type(a.ty)?;
            Ok(match span {
                // SAFETY: the span was bounds-checked against the mapping,
                // which `read_spans` keeps alive for the whole call; the
                // bytes are only read. The client may write them meanwhile
                // (shared memory, like a DMA buffer): readers treat them as
                // untrusted input and re-validate everything they use.
                Some(s) => unsafe {
                    Arg::from_raw_parts(ty as u32, s.map.as_ptr().add(s.offset), s.len)
                },
                None => Arg::new(ty, a.data),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let max = conn.shared.config.max_frame as u64;
    let total: u64 = write
        .iter()
        .filter(|w| !w.growable && w.flags & ARG_FLAG_SHM == 0)
        .map(|w| w.capacity)
        .sum();
    if total > max {
        return Err(Error::nomem(format!(
            "write arguments ask for {total} bytes, more than the agent's frame limit of {max}"
        )));
    }
    let mut stores: Vec<OutStore> = write
        .iter()
        .map(|w| {
            if w.flags & ARG_FLAG_SHM != 0 {
                Ok(OutStore::Shm([0; 8]))
            } else {
                new_store(w)
            }
        })
        .collect::<Result<_, _>>()?;
    let mut outs = Vec::with_capacity(write.len());
    for ((s, w), span) in stores.iter_mut().zip(&write).zip(&write_spans) {
        let ty = arg_type(w.ty)?;
        let inout = w.flags & vaccel_core::arg::ARG_FLAG_INOUT != 0;
        outs.push(match (s, span) {
            (_, Some(sp)) => {
                // SAFETY: bounds-checked span of a mapping kept alive by
                // `write_spans` for the call, and checked above not to
                // overlap any other argument, so this is the only reference
                // into these bytes on this side.
                let b = unsafe {
                    std::slice::from_raw_parts_mut(sp.map.as_mut_ptr().add(sp.offset), sp.len)
                };
                if inout {
                    ArgOut::inout(ty, b)
                } else {
                    ArgOut::fixed(ty, b)
                }
            }
            (OutStore::Fixed(v, cap), None) => {
                let b = &mut bytemuck::cast_slice_mut::<u64, u8>(v)[..*cap];
                if inout {
                    ArgOut::inout(ty, b)
                } else {
                    ArgOut::fixed(ty, b)
                }
            }
            (OutStore::Grow(v), None) => ArgOut::growable(ty, v),
            (OutStore::Shm(_), None) => {
                return Err(Error::inval("shared-memory output without a span"));
            }
        });
    }
    sess.genop(op, &args, &mut outs)?;
    let lens: Vec<usize> = outs.iter().map(ArgOut::len).collect();
    drop(outs);
    drop(args);
    for (s, l) in stores.iter_mut().zip(&lens) {
        if let OutStore::Shm(b) = s {
            *b = (*l as u64).to_le_bytes();
        }
    }
    Ok((stores, lens))
}

fn new_store(w: &OutWire<'_>) -> Result<OutStore, Error> {
    if w.growable {
        return Ok(OutStore::Grow(Vec::new()));
    }
    let cap = usize::try_from(w.capacity).map_err(|_| Error::inval("output capacity overflows"))?;
    let mut v = vec![0u64; cap.div_ceil(8)];
    if w.flags & vaccel_core::arg::ARG_FLAG_INOUT != 0 {
        if w.data.len() > cap {
            return Err(Error::inval(format!(
                "in/out argument carries {} bytes but declares capacity {cap}",
                w.data.len()
            )));
        }
        bytemuck::cast_slice_mut::<u64, u8>(&mut v)[..w.data.len()].copy_from_slice(w.data);
    }
    Ok(OutStore::Fixed(v, cap))
}
