//! The glue every exported function shares: panic containment, error codes
//! and the per-thread last error message, pointer and size checks, and the
//! C allocator (memory the C side may hold is allocated with `malloc`).

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use vaccel::{Error, Result};

// The C allocator: buffers owned by argument arrays, serialized arguments
// (which the caller's serializer allocates) and model outputs live in C
// memory so both sides may free them.
unsafe extern "C" {
    pub(crate) fn malloc(size: usize) -> *mut c_void;
    pub(crate) fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    pub(crate) fn free(ptr: *mut c_void);
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

fn record(what: &str, e: &Error) {
    tracing::debug!(function = what, code = %e.code(), error = %e, "C API call failed");
    let msg = format!("{what}: {e}").replace('\0', " ");
    let msg = CString::new(msg).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = msg);
}

/// Run the body of an exported function: `Ok` is `VACCEL_OK`, an error is
/// its errno value (and becomes the thread's last error message), a panic is
/// `VACCEL_EBACKEND` and never unwinds into C.
pub(crate) fn call(what: &str, f: impl FnOnce() -> Result<()>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => crate::VACCEL_OK,
        Ok(Err(e)) => {
            record(what, &e);
            e.errno()
        }
        Err(p) => {
            let e = Error::backend(format!("internal panic: {}", panic_message(&*p)));
            record(what, &e);
            e.errno()
        }
    }
}

/// Like [`call`] for functions that return a value instead of a code: a
/// panic gives `fallback`.
pub(crate) fn call_value<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(p) => {
            let e = Error::backend(format!("internal panic: {}", panic_message(&*p)));
            record(what, &e);
            fallback
        }
    }
}

/// `const char *vaccel_last_error_message(void)`: the message of the last
/// call that failed on this thread ("" if none). Valid until the next failing
/// call on the same thread.
#[unsafe(no_mangle)]
pub extern "C" fn vaccel_last_error_message() -> *const c_char {
    call_value("vaccel_last_error_message", c"".as_ptr(), || {
        LAST_ERROR.with(|l| l.borrow().as_ptr())
    })
}

/// `EINVAL` naming a NULL pointer.
pub(crate) fn null(what: &str) -> Error {
    Error::inval(format!("{what} is NULL"))
}

/// A shared reference from a possibly-NULL pointer.
///
/// # Safety
/// `p` is NULL or points to a live, properly aligned `T` for `'a`.
pub(crate) unsafe fn as_ref<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: the caller guarantees `p` is NULL or valid for `'a`.
    unsafe { p.as_ref() }.ok_or_else(|| null(what))
}

/// An exclusive reference from a possibly-NULL pointer.
///
/// # Safety
/// `p` is NULL or points to a live, properly aligned `T` for `'a` that
/// nothing else accesses meanwhile.
pub(crate) unsafe fn as_mut<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: the caller guarantees `p` is NULL or valid and unaliased for `'a`.
    unsafe { p.as_mut() }.ok_or_else(|| null(what))
}

/// Bytes from a pointer and a length; an empty slice when `len` is 0
/// (whatever the pointer), `EINVAL` for NULL with a non-zero length.
///
/// # Safety
/// Unless NULL, `p` is valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes<'a>(p: *const c_void, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::inval(format!(
            "{what} is NULL but its size is {len}"
        )));
    }
    check_size(len, 1, what)?;
    // SAFETY: non-NULL and valid for `len` bytes (caller's contract); the
    // size fits `isize` (checked above).
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// Non-empty input bytes: NULL or a zero length is `EINVAL`.
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn input<'a>(p: *const c_void, len: usize, what: &str) -> Result<&'a [u8]> {
    if p.is_null() {
        return Err(null(what));
    }
    if len == 0 {
        return Err(Error::inval(format!("{what} has zero length")));
    }
    // SAFETY: forwarded contract.
    unsafe { bytes(p, len, what) }
}

/// A mutable byte buffer; NULL or a zero length is `EINVAL`.
///
/// # Safety
/// `p` is valid for reads and writes of `len` bytes for `'a` and not
/// accessed through any other reference meanwhile.
pub(crate) unsafe fn output<'a>(p: *mut c_void, len: usize, what: &str) -> Result<&'a mut [u8]> {
    if p.is_null() {
        return Err(null(what));
    }
    if len == 0 {
        return Err(Error::inval(format!("{what} has zero size")));
    }
    check_size(len, 1, what)?;
    // SAFETY: non-NULL, valid and unaliased for `len` bytes (caller's
    // contract); the size fits `isize`.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
}

/// Elements of type `T` from a pointer and a count; empty for 0.
///
/// # Safety
/// Unless NULL, `p` is valid for reads of `n` `T`s for `'a` and aligned.
pub(crate) unsafe fn elems<'a, T>(p: *const T, n: usize, what: &str) -> Result<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::inval(format!(
            "{what} is NULL but {n} elements are needed"
        )));
    }
    check_size(n, std::mem::size_of::<T>(), what)?;
    check_aligned(p, what)?;
    // SAFETY: non-NULL, aligned, valid for `n` elements (caller's contract).
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Mutable elements of type `T`; empty for 0.
///
/// # Safety
/// Unless NULL, `p` is valid for reads and writes of `n` `T`s for `'a`,
/// aligned, and not accessed through any other reference meanwhile.
pub(crate) unsafe fn elems_mut<'a, T>(p: *mut T, n: usize, what: &str) -> Result<&'a mut [T]> {
    if n == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::inval(format!(
            "{what} is NULL but {n} elements are needed"
        )));
    }
    check_size(n, std::mem::size_of::<T>(), what)?;
    check_aligned(p, what)?;
    // SAFETY: non-NULL, aligned, valid and unaliased for `n` elements.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, n) })
}

fn check_aligned<T>(p: *const T, what: &str) -> Result<()> {
    if (p as usize) % std::mem::align_of::<T>() != 0 {
        return Err(Error::inval(format!(
            "{what} is not aligned to {} bytes",
            std::mem::align_of::<T>()
        )));
    }
    Ok(())
}

/// `n` elements of `size` bytes must fit in `isize`.
pub(crate) fn check_size(n: usize, size: usize, what: &str) -> Result<usize> {
    n.checked_mul(size)
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| Error::inval(format!("{what}: size {n} x {size} bytes overflows")))
}

/// A NUL-terminated UTF-8 string.
///
/// # Safety
/// Unless NULL, `p` points to a NUL-terminated string live for `'a`.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: non-NULL and NUL-terminated (caller's contract).
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Error::inval(format!("{what} is not valid UTF-8")))
}

/// Store `v` through an optional out-pointer.
///
/// # Safety
/// Unless NULL, `p` is valid for a write of `T`.
pub(crate) unsafe fn put<T>(p: *mut T, v: T) {
    if !p.is_null() {
        // SAFETY: non-NULL and valid for a write (caller's contract);
        // `write_unaligned` makes no alignment assumption.
        unsafe { p.write_unaligned(v) };
    }
}

/// Whether two byte ranges overlap (both non-empty).
pub(crate) fn overlaps(a: (*const u8, usize), b: (*const u8, usize)) -> bool {
    if a.1 == 0 || b.1 == 0 {
        return false;
    }
    let (a0, b0) = (a.0 as usize, b.0 as usize);
    a0 < b0.saturating_add(b.1) && b0 < a0.saturating_add(a.1)
}
