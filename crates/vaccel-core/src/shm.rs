//! Shared-memory buffers for zero-copy remote calls.
//!
//! A [`SharedVec`] lives in an anonymous shared memory file (`memfd`)
//! mapped into this process. When an op argument lies inside such a buffer
//! and the remote plugin talks to the agent over a Unix socket, the plugin
//! passes the file descriptor to the agent once (`SCM_RIGHTS`) and then
//! sends only (region, offset, length) references: the agent maps the same
//! pages and reads the inputs and writes the outputs in place. Large SGEMM
//! matrices then cross the VM/container boundary without a single copy.
//!
//! Locally, and over copying transports, a `SharedVec` is an ordinary slice.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::{Error, Result};

static NEXT_REGION: AtomicU64 = AtomicU64::new(1);

struct Region {
    id: u64,
    fd: OwnedFd,
    map: memmap2::MmapRaw,
}

/// Live regions, for pointer lookups.
static REGIONS: RwLock<Vec<Arc<Region>>> = RwLock::new(Vec::new());

/// A reference to bytes inside a shared region.
#[derive(Debug, Clone, Copy)]
pub struct ShmRef<'a> {
    /// Region id (unique in the process).
    pub region: u64,
    /// Size of the whole region.
    pub region_len: u64,
    /// Offset of the bytes within the region.
    pub offset: u64,
    /// Number of bytes.
    pub len: u64,
    /// The region's memfd, to pass to the agent once.
    pub fd: BorrowedFd<'a>,
}

/// A vector of plain-old-data values in shared memory.
pub struct SharedVec<T: bytemuck::Pod> {
    region: Arc<Region>,
    len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T: bytemuck::Pod> std::fmt::Debug for SharedVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedVec")
            .field("region", &self.region.id)
            .field("len", &self.len)
            .finish()
    }
}

impl<T: bytemuck::Pod> SharedVec<T> {
    /// `len` zeroed values.
    pub fn zeroed(len: usize) -> Result<SharedVec<T>> {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| Error::inval("shared buffer size overflows"))?;
        let flags =
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING;
        let fd = nix::sys::memfd::memfd_create(c"vaccel-shm", flags)
            .map_err(|e| Error::io(format!("memfd_create: {e}")))?;
        let file = std::fs::File::from(fd);
        file.set_len(bytes.max(1) as u64)
            .map_err(|e| Error::from_io(&e, "sizing a shared buffer"))?;
        // Fix the size for good: a peer that maps it can then never fault
        // on pages that disappeared.
        let seals = nix::fcntl::SealFlag::F_SEAL_SHRINK
            | nix::fcntl::SealFlag::F_SEAL_GROW
            | nix::fcntl::SealFlag::F_SEAL_SEAL;
        nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_ADD_SEALS(seals))
            .map_err(|e| Error::io(format!("sealing a shared buffer: {e}")))?;
        let map = memmap2::MmapOptions::new()
            .len(bytes.max(1))
            .map_raw(&file)
            .map_err(|e| Error::from_io(&e, "mapping a shared buffer"))?;
        let region = Arc::new(Region {
            id: NEXT_REGION.fetch_add(1, Ordering::Relaxed),
            fd: file.into(),
            map,
        });
        REGIONS
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(region.clone());
        Ok(SharedVec {
            region,
            len,
            _t: std::marker::PhantomData,
        })
    }

    /// A copy of `data` in shared memory.
    pub fn from_slice(data: &[T]) -> Result<SharedVec<T>> {
        let mut v = SharedVec::zeroed(data.len())?;
        v.copy_from_slice(data);
        Ok(v)
    }

    /// The region id.
    pub fn region_id(&self) -> u64 {
        self.region.id
    }
}

impl<T: bytemuck::Pod> std::ops::Deref for SharedVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the mapping is at least `len * size_of::<T>()` bytes, page
        // aligned (so aligned for any T), zero-initialised by the kernel, and
        // lives as long as `self.region`. T is Pod, so any bytes are valid.
        // Only this handle hands out references into it (the agent's view is
        // another process, like a DMA device, documented on `SharedVec`).
        unsafe { std::slice::from_raw_parts(self.region.map.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T: bytemuck::Pod> std::ops::DerefMut for SharedVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe {
            std::slice::from_raw_parts_mut(self.region.map.as_mut_ptr().cast::<T>(), self.len)
        }
    }
}

impl<T: bytemuck::Pod> Drop for SharedVec<T> {
    fn drop(&mut self) {
        let id = self.region.id;
        REGIONS
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|r| r.id != id);
    }
}

/// Whether `bytes` lies entirely inside a live shared region, and where.
/// The returned fd borrows from a region kept alive by the registry while
/// the caller holds the bytes (which borrow from its `SharedVec`).
pub fn lookup(bytes: &[u8]) -> Option<ShmRef<'_>> {
    if bytes.is_empty() {
        return None;
    }
    let start = bytes.as_ptr() as usize;
    let end = start + bytes.len();
    let regions = REGIONS.read().unwrap_or_else(|p| p.into_inner());
    let r = regions.iter().find(|r| {
        let base = r.map.as_ptr() as usize;
        start >= base && end <= base + r.map.len()
    })?;
    let base = r.map.as_ptr() as usize;
    // SAFETY: the fd belongs to a region that stays registered (and open)
    // until the SharedVec the caller's `bytes` borrow from is dropped, which
    // cannot happen while `bytes` (lifetime 'a) is alive.
    let fd = unsafe { BorrowedFd::borrow_raw(std::os::fd::AsRawFd::as_raw_fd(&r.fd.as_fd())) };
    Some(ShmRef {
        region: r.id,
        region_len: r.map.len() as u64,
        offset: (start - base) as u64,
        len: bytes.len() as u64,
        fd,
    })
}

/// Ids of the regions alive now (so transports can unmap the others).
pub fn live_regions() -> Vec<u64> {
    REGIONS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|r| r.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_vec_is_a_slice_and_is_found_by_pointer() {
        let mut v = SharedVec::<f32>::from_slice(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        v[1] = 5.0;
        assert_eq!(&v[..], &[1.0, 5.0, 3.0, 4.0]);
        let bytes: &[u8] = bytemuck::cast_slice(&v[1..3]);
        let r = lookup(bytes).unwrap();
        assert_eq!(r.region, v.region_id());
        assert_eq!((r.offset, r.len), (4, 8));
        assert!(r.region_len >= 16);
        let plain = vec![0u8; 16];
        assert!(lookup(&plain).is_none());
        let id = v.region_id();
        assert!(live_regions().contains(&id));
        drop(v);
        assert!(!live_regions().contains(&id));
    }

    #[test]
    fn zero_length_is_fine() {
        let v = SharedVec::<u8>::zeroed(0).unwrap();
        assert!(v.is_empty());
        assert!(lookup(&v).is_none());
    }
}
