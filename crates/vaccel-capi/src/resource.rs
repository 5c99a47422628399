//! Resources: `struct vaccel_resource` holds the Rust [`Resource`] behind an
//! opaque pointer.

use std::ffi::{c_char, c_int, c_void};

use vaccel::{Error, Resource, ResourceType, Result};

use crate::ffi::{self, call};
use crate::session::{self, vaccel_session};
use crate::vaccel_id_t;

/// `vaccel_resource_type_t` (`VACCEL_RESOURCE_LIB` 0, `_DATA` 1, `_MODEL` 2).
pub type vaccel_resource_type_t = u32;

/// `struct vaccel_resource`.
#[repr(C)]
#[derive(Debug)]
pub struct vaccel_resource {
    /// Resource id (unique in the process, from 1).
    pub id: vaccel_id_t,
    /// Id on a remote agent; 0 (not exposed by this runtime).
    pub remote_id: vaccel_id_t,
    /// `VACCEL_RESOURCE_*`.
    pub type_: vaccel_resource_type_t,
    /// Number of files.
    pub nr_files: usize,
    /// Private: a `Box<Resource>`; NULL when not initialised or released.
    pub priv_: *mut c_void,
}

impl vaccel_resource {
    fn empty() -> vaccel_resource {
        vaccel_resource {
            id: 0,
            remote_id: 0,
            type_: 0,
            nr_files: 0,
            priv_: std::ptr::null_mut(),
        }
    }

    fn from_resource(r: Resource) -> Result<vaccel_resource> {
        Ok(vaccel_resource {
            id: i64::try_from(r.id()).map_err(|_| Error::inval("resource id overflows"))?,
            remote_id: 0,
            type_: r.kind() as u32,
            nr_files: r.files().len(),
            priv_: Box::into_raw(Box::new(r)).cast(),
        })
    }
}

/// The Rust resource of an initialised C resource.
///
/// # Safety
/// `res` is NULL or points to a `vaccel_resource` that is zeroed or was
/// initialised by one of the `vaccel_resource_init*` functions.
pub(crate) unsafe fn get<'a>(res: *const vaccel_resource) -> Result<&'a Resource> {
    // SAFETY: forwarded contract.
    let r = unsafe { ffi::as_ref(res, "resource") }?;
    let p = r.priv_.cast::<Resource>();
    if p.is_null() {
        return Err(Error::inval(
            "resource is not initialised or was released: call vaccel_resource_init first",
        ));
    }
    // SAFETY: a non-NULL `priv_` is the `Box<Resource>` leaked at init; it
    // stays alive until release clears `priv_`.
    Ok(unsafe { &*p })
}

fn kind(t: vaccel_resource_type_t) -> Result<ResourceType> {
    ResourceType::from_u32(t).ok_or_else(|| {
        Error::inval(format!(
            "unknown resource type {t}: use VACCEL_RESOURCE_LIB, _DATA or _MODEL"
        ))
    })
}

/// Initialise `*res` with the result of `make`; on failure `*res` is left
/// zeroed (released state).
///
/// # Safety
/// `res` is NULL or valid for a write of a `vaccel_resource`.
unsafe fn init_with(
    res: *mut vaccel_resource,
    make: impl FnOnce() -> Result<Resource>,
) -> Result<()> {
    if res.is_null() {
        return Err(ffi::null("resource"));
    }
    let (v, r) = match make().and_then(vaccel_resource::from_resource) {
        Ok(v) => (v, Ok(())),
        Err(e) => (vaccel_resource::empty(), Err(e)),
    };
    // SAFETY: non-NULL and valid for a write (caller's contract); the old
    // contents may be uninitialised and are not read or dropped.
    unsafe { res.write(v) };
    r
}

/// # Safety
/// `paths` is valid for `n` pointers, each NULL or a NUL-terminated string.
unsafe fn path_list<'a>(paths: *const *const c_char, n: usize) -> Result<Vec<&'a str>> {
    if n == 0 {
        return Err(Error::inval("a resource needs at least one path"));
    }
    // SAFETY: forwarded contract.
    let ps = unsafe { ffi::elems(paths, n, "paths") }?;
    ps.iter()
        .enumerate()
        // SAFETY: each entry is NULL or a NUL-terminated string (contract).
        .map(|(i, &p)| unsafe { ffi::c_str(p, &format!("paths[{i}]")) })
        .collect()
}

fn from_path(path: &str, t: vaccel_resource_type_t) -> Result<Resource> {
    let k = kind(t)?;
    if path.contains("://") {
        return Err(Error::notsup(format!(
            "resource path '{path}': URLs are not supported, download the file first"
        )));
    }
    Resource::from_path(path, k)
}

fn from_paths(paths: &[&str], t: vaccel_resource_type_t) -> Result<Resource> {
    let k = kind(t)?;
    if let Some(p) = paths.iter().find(|p| p.contains("://")) {
        return Err(Error::notsup(format!(
            "resource path '{p}': URLs are not supported, download the file first"
        )));
    }
    Resource::from_paths(paths, k)
}

/// # Safety
/// `buf` is valid for `nbytes` bytes; `filename` is NULL or a C string.
unsafe fn from_buf(
    buf: *const c_void,
    nbytes: usize,
    t: vaccel_resource_type_t,
    filename: *const c_char,
) -> Result<Resource> {
    let k = kind(t)?;
    // SAFETY: forwarded contract.
    let data = unsafe { ffi::input(buf, nbytes, "resource buffer") }?;
    let name = if filename.is_null() {
        "resource.bin"
    } else {
        // SAFETY: forwarded contract.
        unsafe { ffi::c_str(filename, "filename") }?
    };
    Resource::from_bytes(data.to_vec(), name, k)
}

/// `int vaccel_resource_init(struct vaccel_resource *res, const char *path,
/// vaccel_resource_type_t type)`: a resource from a file or a directory
/// (every regular file in it). The path must exist (`VACCEL_ENOENT`).
///
/// # Safety
/// `res` is NULL or valid for a write; `path` is NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_init(
    res: *mut vaccel_resource,
    path: *const c_char,
    type_: vaccel_resource_type_t,
) -> c_int {
    call("vaccel_resource_init", || {
        // SAFETY: caller's contract.
        unsafe { init_with(res, || from_path(ffi::c_str(path, "path")?, type_)) }
    })
}

/// `int vaccel_resource_init_multi(struct vaccel_resource *res, const char
/// **paths, size_t nr_paths, vaccel_resource_type_t type)`.
///
/// # Safety
/// `res` is NULL or valid for a write; `paths` is NULL or valid for
/// `nr_paths` C strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_init_multi(
    res: *mut vaccel_resource,
    paths: *const *const c_char,
    nr_paths: usize,
    type_: vaccel_resource_type_t,
) -> c_int {
    call("vaccel_resource_init_multi", || {
        // SAFETY: caller's contract.
        unsafe { init_with(res, || from_paths(&path_list(paths, nr_paths)?, type_)) }
    })
}

/// `int vaccel_resource_init_from_buf(struct vaccel_resource *res, const
/// void *buf, size_t nr_bytes, vaccel_resource_type_t type, const char
/// *filename, bool mem_only)`: a resource from bytes (copied). `filename`
/// names the single file (NULL: `resource.bin`); `mem_only` is accepted for
/// compatibility: the bytes always stay in memory.
///
/// # Safety
/// `res` is NULL or valid for a write; `buf` is NULL or valid for
/// `nr_bytes` bytes; `filename` is NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_init_from_buf(
    res: *mut vaccel_resource,
    buf: *const c_void,
    nr_bytes: usize,
    type_: vaccel_resource_type_t,
    filename: *const c_char,
    mem_only: bool,
) -> c_int {
    let _ = mem_only;
    call("vaccel_resource_init_from_buf", || {
        // SAFETY: caller's contract.
        unsafe { init_with(res, || from_buf(buf, nr_bytes, type_, filename)) }
    })
}

/// # Safety
/// `res` is NULL or valid for a write of a pointer.
unsafe fn new_with(
    res: *mut *mut vaccel_resource,
    make: impl FnOnce() -> Result<Resource>,
) -> Result<()> {
    if res.is_null() {
        return Err(ffi::null("resource pointer"));
    }
    let v = vaccel_resource::from_resource(make()?)?;
    // SAFETY: non-NULL and valid for a write (caller's contract).
    unsafe { res.write(Box::into_raw(Box::new(v))) };
    Ok(())
}

/// `int vaccel_resource_new(struct vaccel_resource **res, const char *path,
/// vaccel_resource_type_t type)`: allocate and initialise; free with
/// `vaccel_resource_delete`.
///
/// # Safety
/// `res` is NULL or valid for a write of a pointer; `path` is NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_new(
    res: *mut *mut vaccel_resource,
    path: *const c_char,
    type_: vaccel_resource_type_t,
) -> c_int {
    call("vaccel_resource_new", || {
        // SAFETY: caller's contract.
        unsafe { new_with(res, || from_path(ffi::c_str(path, "path")?, type_)) }
    })
}

/// `int vaccel_resource_new_multi(struct vaccel_resource **res, const char
/// **paths, size_t nr_paths, vaccel_resource_type_t type)`.
///
/// # Safety
/// As `vaccel_resource_new`, with `paths` valid for `nr_paths` C strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_new_multi(
    res: *mut *mut vaccel_resource,
    paths: *const *const c_char,
    nr_paths: usize,
    type_: vaccel_resource_type_t,
) -> c_int {
    call("vaccel_resource_new_multi", || {
        // SAFETY: caller's contract.
        unsafe { new_with(res, || from_paths(&path_list(paths, nr_paths)?, type_)) }
    })
}

/// `vaccel_resource_multi_new`: the same as `vaccel_resource_new_multi`
/// (upstream spells it both ways across releases).
///
/// # Safety
/// As `vaccel_resource_new_multi`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_multi_new(
    res: *mut *mut vaccel_resource,
    paths: *const *const c_char,
    nr_paths: usize,
    type_: vaccel_resource_type_t,
) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { vaccel_resource_new_multi(res, paths, nr_paths, type_) }
}

/// `int vaccel_resource_from_buf(struct vaccel_resource **res, const void
/// *buf, size_t nr_bytes, vaccel_resource_type_t type, const char *filename,
/// bool mem_only)`.
///
/// # Safety
/// As `vaccel_resource_init_from_buf`, with `res` valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_from_buf(
    res: *mut *mut vaccel_resource,
    buf: *const c_void,
    nr_bytes: usize,
    type_: vaccel_resource_type_t,
    filename: *const c_char,
    mem_only: bool,
) -> c_int {
    let _ = mem_only;
    call("vaccel_resource_from_buf", || {
        // SAFETY: caller's contract.
        unsafe { new_with(res, || from_buf(buf, nr_bytes, type_, filename)) }
    })
}

fn release(res: &mut vaccel_resource) -> Result<()> {
    let p = res.priv_.cast::<Resource>();
    if p.is_null() {
        return Err(Error::inval(
            "resource is not initialised or was already released",
        ));
    }
    // SAFETY: `p` is the live `Box<Resource>` leaked at init.
    let r = unsafe { &*p };
    // EBUSY while registered: keep it usable then.
    r.clone().release()?;
    res.priv_ = std::ptr::null_mut();
    // SAFETY: as above; `priv_` was cleared, so this is the only owner.
    drop(unsafe { Box::from_raw(p) });
    Ok(())
}

/// `int vaccel_resource_release(struct vaccel_resource *res)`: release a
/// resource. `VACCEL_EBUSY` while it is still registered to a session.
///
/// # Safety
/// `res` is NULL or points to an initialised (possibly released) resource.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_release(res: *mut vaccel_resource) -> c_int {
    call("vaccel_resource_release", || {
        // SAFETY: caller's contract.
        release(unsafe { ffi::as_mut(res, "resource") }?)
    })
}

/// `int vaccel_resource_delete(struct vaccel_resource *res)`: release a
/// resource from `vaccel_resource_new*` / `vaccel_resource_from_buf` and
/// free it (not freed on `VACCEL_EBUSY`).
///
/// # Safety
/// `res` is NULL or a pointer from `vaccel_resource_new*` /
/// `vaccel_resource_from_buf` not deleted yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_delete(res: *mut vaccel_resource) -> c_int {
    call("vaccel_resource_delete", || {
        // SAFETY: caller's contract.
        let r = unsafe { ffi::as_mut(res, "resource") }?;
        if !r.priv_.is_null() {
            release(r)?;
        }
        // SAFETY: allocated as a Box by `new_with` (caller's contract).
        drop(unsafe { Box::from_raw(res) });
        Ok(())
    })
}

/// `int vaccel_resource_register(struct vaccel_resource *res, struct
/// vaccel_session *sess)`: register a resource to a session
/// (`VACCEL_EEXIST` if it already is).
///
/// # Safety
/// Both pointers are NULL or point to initialised (possibly released) structs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_register(
    res: *mut vaccel_resource,
    sess: *mut vaccel_session,
) -> c_int {
    call("vaccel_resource_register", || {
        // SAFETY: caller's contract.
        let (r, s) = unsafe { (get(res)?, session::get(sess)?) };
        s.register(r)
    })
}

/// `int vaccel_resource_unregister(struct vaccel_resource *res, struct
/// vaccel_session *sess)` (`VACCEL_ENOENT` if it is not registered).
///
/// # Safety
/// Both pointers are NULL or point to initialised (possibly released) structs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_resource_unregister(
    res: *mut vaccel_resource,
    sess: *mut vaccel_session,
) -> c_int {
    call("vaccel_resource_unregister", || {
        // SAFETY: caller's contract.
        let (r, s) = unsafe { (get(res)?, session::get(sess)?) };
        s.unregister(r)
    })
}
