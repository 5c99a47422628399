//! Arguments: `struct vaccel_arg` (exactly [`vaccel::arg::CArg`], the
//! layout EXEC callees receive) and `struct vaccel_arg_array`, the helper
//! that builds and reads argument lists sequentially.
//!
//! Memory rules (see `include/vaccel/arg.h`):
//!
//! - scalars added with `vaccel_arg_array_add_<type>` are copied into memory
//!   the array owns (`owned = true`);
//! - strings, buffers, raw data and typed arrays are referenced, not copied:
//!   they must outlive the array's use;
//! - serialized arguments own what the serializer returned (`malloc`ed);
//! - `get_*` and `set_*` walk the arguments in order from `position`, check
//!   the type (and size) of the next argument (`VACCEL_EINVAL` on a
//!   mismatch, `VACCEL_ERANGE` past the end) and only advance on success.

use std::ffi::{c_char, c_int, c_void};

use vaccel::arg::CArg;
use vaccel::{Arg, ArgOut, ArgType, Code, Error, Result};

use crate::ffi::{self, call, call_value, free, malloc, realloc};

/// `struct vaccel_arg`: `{ void *buf; size_t size; vaccel_arg_type_t type;
/// uint32_t custom_type_id; bool owned; }`.
pub type vaccel_arg = CArg;

/// `vaccel_arg_type_t` (`VACCEL_ARG_*`, the values of [`ArgType`]).
pub type vaccel_arg_type_t = u32;

/// `vaccel_arg_serializer_t`: turns an object into a `malloc`ed buffer and
/// stores its size; NULL on failure.
pub type vaccel_arg_serializer_t =
    Option<unsafe extern "C" fn(obj: *const c_void, size: *mut usize) -> *mut c_void>;

/// `vaccel_arg_deserializer_t`: builds an object from a buffer; NULL on failure.
pub type vaccel_arg_deserializer_t =
    Option<unsafe extern "C" fn(buf: *const c_void, size: usize) -> *mut c_void>;

/// `struct vaccel_arg_array`.
#[repr(C)]
#[derive(Debug)]
pub struct vaccel_arg_array {
    /// The arguments (`count` of them, room for `capacity`).
    pub args: *mut vaccel_arg,
    /// Number of arguments.
    pub count: usize,
    /// Allocated entries.
    pub capacity: usize,
    /// Next argument `get_*` / `set_*` use.
    pub position: usize,
    /// Whether the array owns `args` (false for `vaccel_arg_array_wrap`).
    pub owned: bool,
}

fn range(msg: String) -> Error {
    Error::new(Code::Range, msg)
}

fn type_name(t: u32) -> String {
    ArgType::from_u32(t)
        .map(|t| t.name().to_string())
        .unwrap_or_else(|| format!("type {t}"))
}

// ------------------------------------------------------------ conversions

/// The runtime's read arguments for a C argument list.
pub(crate) fn to_args<'a>(read: &'a [CArg]) -> Result<Vec<Arg<'a>>> {
    read.iter()
        .enumerate()
        .map(|(i, a)| {
            if a.size > 0 && a.buf.is_null() {
                return Err(Error::inval(format!(
                    "read argument {i} has size {} but a NULL buffer",
                    a.size
                )));
            }
            ffi::check_size(a.size, 1, "read argument")?;
            // SAFETY: the caller of the exported function guarantees each
            // argument's `buf` is valid for `size` bytes during the call.
            Ok(unsafe { Arg::from_raw_parts(a.arg_type, a.buf.cast_const().cast(), a.size) })
        })
        .collect()
}

/// The runtime's write arguments for a C argument list: fixed buffers of
/// `size` bytes whose initial contents are also inputs (so in/out
/// arguments such as SGEMM's C survive a trip to a remote agent). Write
/// buffers may not overlap each other or any read buffer.
pub(crate) fn to_outs<'a>(read: &[CArg], write: &'a mut [CArg]) -> Result<Vec<ArgOut<'a>>> {
    for (i, w) in write.iter().enumerate() {
        if w.size > 0 && w.buf.is_null() {
            return Err(Error::inval(format!(
                "write argument {i} has size {} but a NULL buffer",
                w.size
            )));
        }
        ffi::check_size(w.size, 1, "write argument")?;
        let wr = (w.buf.cast_const().cast::<u8>(), w.size);
        if let Some(j) = write[..i]
            .iter()
            .position(|o| ffi::overlaps(wr, (o.buf.cast_const().cast(), o.size)))
        {
            return Err(Error::inval(format!("write arguments {j} and {i} overlap")));
        }
        if let Some(j) = read
            .iter()
            .position(|r| ffi::overlaps(wr, (r.buf.cast_const().cast(), r.size)))
        {
            return Err(Error::inval(format!(
                "write argument {i} overlaps read argument {j}"
            )));
        }
    }
    write
        .iter_mut()
        .enumerate()
        .map(|(i, w)| {
            let ty = ArgType::from_u32(w.arg_type).ok_or_else(|| {
                Error::inval(format!(
                    "write argument {i} has unknown type {}",
                    w.arg_type
                ))
            })?;
            let buf: &'a mut [u8] = if w.size == 0 {
                &mut []
            } else {
                // SAFETY: non-NULL (checked above), valid for `size` bytes
                // for the call (caller's contract), and not overlapping any
                // other argument (checked above), so this is the only
                // reference to these bytes.
                unsafe { std::slice::from_raw_parts_mut(w.buf.cast::<u8>(), w.size) }
            };
            Ok(ArgOut::inout(ty, buf))
        })
        .collect()
}

// ------------------------------------------------------------ vaccel_arg

fn copy_to_c(data: &[u8]) -> Result<*mut c_void> {
    // SAFETY: plain allocation; at least one byte so a zero-size copy is
    // still a unique, freeable pointer.
    let p = unsafe { malloc(data.len().max(1)) };
    if p.is_null() {
        return Err(Error::nomem(format!(
            "cannot allocate {} bytes for an argument",
            data.len()
        )));
    }
    // SAFETY: `p` is a fresh allocation of at least `data.len()` bytes.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p.cast::<u8>(), data.len()) };
    Ok(p)
}

fn free_owned(a: &mut CArg) {
    if a.owned && !a.buf.is_null() {
        // SAFETY: owned buffers are allocated with `malloc` by this library
        // (or by a serializer, which must use `malloc`).
        unsafe { free(a.buf) };
    }
    *a = CArg {
        buf: std::ptr::null_mut(),
        size: 0,
        arg_type: 0,
        custom_type_id: 0,
        owned: false,
    };
}

/// `int vaccel_arg_init(struct vaccel_arg *arg, void *buf, size_t size,
/// vaccel_arg_type_t type, uint32_t custom_id)`: an argument referencing
/// `buf` (not copied).
///
/// # Safety
/// `arg` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_init(
    arg: *mut vaccel_arg,
    buf: *mut c_void,
    size: usize,
    type_: vaccel_arg_type_t,
    custom_id: u32,
) -> c_int {
    call("vaccel_arg_init", || {
        if arg.is_null() {
            return Err(ffi::null("arg"));
        }
        if buf.is_null() && size > 0 {
            return Err(Error::inval(format!("buffer is NULL but size is {size}")));
        }
        // SAFETY: non-NULL and valid for a write (caller's contract).
        unsafe {
            arg.write(CArg {
                buf,
                size,
                arg_type: type_,
                custom_type_id: custom_id,
                owned: false,
            })
        };
        Ok(())
    })
}

/// `int vaccel_arg_init_from_buf(struct vaccel_arg *arg, const void *buf,
/// size_t size, vaccel_arg_type_t type, uint32_t custom_id)`: an argument
/// holding a copy of `buf` (freed by `vaccel_arg_release`).
///
/// # Safety
/// `arg` is NULL or valid for a write; `buf` is NULL or valid for `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_init_from_buf(
    arg: *mut vaccel_arg,
    buf: *const c_void,
    size: usize,
    type_: vaccel_arg_type_t,
    custom_id: u32,
) -> c_int {
    call("vaccel_arg_init_from_buf", || {
        if arg.is_null() {
            return Err(ffi::null("arg"));
        }
        // SAFETY: caller's contract.
        let data = unsafe { ffi::bytes(buf, size, "buffer") }?;
        let p = copy_to_c(data)?;
        // SAFETY: non-NULL and valid for a write (caller's contract).
        unsafe {
            arg.write(CArg {
                buf: p,
                size,
                arg_type: type_,
                custom_type_id: custom_id,
                owned: true,
            })
        };
        Ok(())
    })
}

/// `int vaccel_arg_release(struct vaccel_arg *arg)`: free an owned buffer
/// and clear the argument.
///
/// # Safety
/// `arg` is NULL or points to an initialised argument.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_release(arg: *mut vaccel_arg) -> c_int {
    call("vaccel_arg_release", || {
        // SAFETY: caller's contract.
        free_owned(unsafe { ffi::as_mut(arg, "arg") }?);
        Ok(())
    })
}

/// `int vaccel_arg_new(struct vaccel_arg **arg, void *buf, size_t size,
/// vaccel_arg_type_t type, uint32_t custom_id)`: allocate an argument
/// referencing `buf`; free with `vaccel_arg_delete`.
///
/// # Safety
/// `arg` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_new(
    arg: *mut *mut vaccel_arg,
    buf: *mut c_void,
    size: usize,
    type_: vaccel_arg_type_t,
    custom_id: u32,
) -> c_int {
    call("vaccel_arg_new", || {
        if arg.is_null() {
            return Err(ffi::null("arg pointer"));
        }
        if buf.is_null() && size > 0 {
            return Err(Error::inval(format!("buffer is NULL but size is {size}")));
        }
        let b = Box::new(CArg {
            buf,
            size,
            arg_type: type_,
            custom_type_id: custom_id,
            owned: false,
        });
        // SAFETY: non-NULL and valid for a write (caller's contract).
        unsafe { arg.write(Box::into_raw(b)) };
        Ok(())
    })
}

/// `int vaccel_arg_from_buf(struct vaccel_arg **arg, const void *buf,
/// size_t size, vaccel_arg_type_t type, uint32_t custom_id)`: allocate an
/// argument holding a copy of `buf`.
///
/// # Safety
/// `arg` is NULL or valid for a pointer write; `buf` is NULL or valid for
/// `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_from_buf(
    arg: *mut *mut vaccel_arg,
    buf: *const c_void,
    size: usize,
    type_: vaccel_arg_type_t,
    custom_id: u32,
) -> c_int {
    call("vaccel_arg_from_buf", || {
        if arg.is_null() {
            return Err(ffi::null("arg pointer"));
        }
        // SAFETY: caller's contract.
        let data = unsafe { ffi::bytes(buf, size, "buffer") }?;
        let b = Box::new(CArg {
            buf: copy_to_c(data)?,
            size,
            arg_type: type_,
            custom_type_id: custom_id,
            owned: true,
        });
        // SAFETY: non-NULL and valid for a write (caller's contract).
        unsafe { arg.write(Box::into_raw(b)) };
        Ok(())
    })
}

/// `int vaccel_arg_delete(struct vaccel_arg *arg)`: release and free an
/// argument from `vaccel_arg_new` / `vaccel_arg_from_buf`.
///
/// # Safety
/// `arg` is NULL or a pointer from `vaccel_arg_new` / `vaccel_arg_from_buf`
/// not deleted yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_delete(arg: *mut vaccel_arg) -> c_int {
    call("vaccel_arg_delete", || {
        if arg.is_null() {
            return Err(ffi::null("arg"));
        }
        // SAFETY: allocated as a Box by this library (caller's contract).
        let mut b = unsafe { Box::from_raw(arg) };
        free_owned(&mut b);
        Ok(())
    })
}

// ------------------------------------------------------------ arrays

/// # Safety
/// `p` is NULL or points to a `vaccel_arg_array` that is zeroed or was
/// initialised by `vaccel_arg_array_init` / `_wrap` / `_new`.
unsafe fn array<'a>(p: *mut vaccel_arg_array) -> Result<&'a mut vaccel_arg_array> {
    // SAFETY: forwarded contract.
    let a = unsafe { ffi::as_mut(p, "argument array") }?;
    if a.count > a.capacity || (a.capacity > 0 && a.args.is_null()) || a.position > a.count {
        return Err(Error::inval(
            "argument array is corrupt (count, capacity and position disagree)",
        ));
    }
    Ok(a)
}

impl vaccel_arg_array {
    fn slots(&mut self) -> &mut [CArg] {
        if self.count == 0 {
            return &mut [];
        }
        // SAFETY: `args` holds `count` initialised arguments (checked by
        // `array`: non-NULL when capacity > 0, count <= capacity).
        unsafe { std::slice::from_raw_parts_mut(self.args, self.count) }
    }

    fn push(&mut self, arg: CArg) -> Result<()> {
        let r = self.push_inner(arg);
        if r.is_err() {
            let mut a = arg;
            free_owned(&mut a);
        }
        r
    }

    fn push_inner(&mut self, arg: CArg) -> Result<()> {
        if !self.owned {
            return Err(Error::inval(
                "cannot add to this argument array: it wraps caller memory or was not initialised with vaccel_arg_array_init",
            ));
        }
        if self.count == self.capacity {
            let cap = self.capacity.saturating_mul(2).max(4);
            let bytes = ffi::check_size(cap, std::mem::size_of::<CArg>(), "argument array")?;
            // SAFETY: `args` is NULL or a `malloc`/`realloc` allocation owned
            // by this array.
            let p = unsafe { realloc(self.args.cast(), bytes) };
            if p.is_null() {
                return Err(Error::nomem("cannot grow the argument array"));
            }
            self.args = p.cast();
            self.capacity = cap;
        }
        // SAFETY: `count < capacity` entries are allocated.
        unsafe { self.args.add(self.count).write(arg) };
        self.count += 1;
        Ok(())
    }

    /// The argument at `position`, checked to have type `ty`.
    fn next(&mut self, ty: ArgType, what: &str) -> Result<&mut CArg> {
        let pos = self.position;
        let n = self.count;
        let a = self
            .slots()
            .get_mut(pos)
            .ok_or_else(|| range(format!("{what}: no argument left (position {pos} of {n})")))?;
        if a.arg_type != ty as u32 {
            return Err(Error::inval(format!(
                "{what}: argument {pos} is {}, not {}",
                type_name(a.arg_type),
                ty.name()
            )));
        }
        if a.size > 0 && a.buf.is_null() {
            return Err(Error::inval(format!(
                "{what}: argument {pos} has size {} but a NULL buffer",
                a.size
            )));
        }
        Ok(a)
    }

    fn release_args(&mut self) {
        if self.owned {
            for a in self.slots() {
                free_owned(a);
            }
        }
        self.count = 0;
        self.position = 0;
    }
}

fn arg_bytes(a: &CArg) -> &[u8] {
    if a.size == 0 {
        return &[];
    }
    // SAFETY: `next` checked `buf` is non-NULL for a non-zero size; the
    // argument's creator guarantees it is valid for `size` bytes.
    unsafe { std::slice::from_raw_parts(a.buf.cast::<u8>(), a.size) }
}

fn arg_bytes_mut(a: &mut CArg) -> &mut [u8] {
    if a.size == 0 {
        return &mut [];
    }
    // SAFETY: as `arg_bytes`; the array's user lets it write output
    // arguments (that is what `set_*` is for).
    unsafe { std::slice::from_raw_parts_mut(a.buf.cast::<u8>(), a.size) }
}

/// `int vaccel_arg_array_init(struct vaccel_arg_array *array, size_t
/// capacity)`: an empty array with room for `capacity` arguments (it grows).
///
/// # Safety
/// `array` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_init(
    array: *mut vaccel_arg_array,
    capacity: usize,
) -> c_int {
    call("vaccel_arg_array_init", || {
        if array.is_null() {
            return Err(ffi::null("argument array"));
        }
        let args = if capacity == 0 {
            std::ptr::null_mut()
        } else {
            let bytes = ffi::check_size(capacity, std::mem::size_of::<CArg>(), "capacity")?;
            // SAFETY: plain allocation.
            let p = unsafe { malloc(bytes) };
            if p.is_null() {
                return Err(Error::nomem("cannot allocate the argument array"));
            }
            p.cast()
        };
        // SAFETY: non-NULL and valid for a write (caller's contract).
        unsafe {
            array.write(vaccel_arg_array {
                args,
                count: 0,
                capacity,
                position: 0,
                owned: true,
            })
        };
        Ok(())
    })
}

/// `int vaccel_arg_array_wrap(struct vaccel_arg_array *array, struct
/// vaccel_arg *args, size_t count)`: read (or fill) an existing argument
/// list, e.g. the one an EXEC callee receives. Nothing is copied or freed;
/// adding to a wrapped array is `VACCEL_EINVAL`.
///
/// # Safety
/// `array` is NULL or valid for a write; `args` is valid for `count`
/// arguments for as long as the array is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_wrap(
    array: *mut vaccel_arg_array,
    args: *mut vaccel_arg,
    count: usize,
) -> c_int {
    call("vaccel_arg_array_wrap", || {
        if array.is_null() {
            return Err(ffi::null("argument array"));
        }
        if args.is_null() && count > 0 {
            return Err(Error::inval(format!("args is NULL but count is {count}")));
        }
        // SAFETY: non-NULL and valid for a write (caller's contract).
        unsafe {
            array.write(vaccel_arg_array {
                args: if count == 0 {
                    std::ptr::null_mut()
                } else {
                    args
                },
                count,
                capacity: count,
                position: 0,
                owned: false,
            })
        };
        Ok(())
    })
}

/// `int vaccel_arg_array_release(struct vaccel_arg_array *array)`: free
/// what the array owns and clear it.
///
/// # Safety
/// `array` is NULL or points to an initialised array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_release(array: *mut vaccel_arg_array) -> c_int {
    call("vaccel_arg_array_release", || {
        // SAFETY: caller's contract.
        let a = unsafe { self::array(array) }?;
        a.release_args();
        if a.owned && !a.args.is_null() {
            // SAFETY: an owned `args` is a `malloc`/`realloc` allocation.
            unsafe { free(a.args.cast()) };
        }
        *a = vaccel_arg_array {
            args: std::ptr::null_mut(),
            count: 0,
            capacity: 0,
            position: 0,
            owned: false,
        };
        Ok(())
    })
}

/// `int vaccel_arg_array_new(struct vaccel_arg_array **array, size_t
/// capacity)`: allocate and initialise; free with `vaccel_arg_array_delete`.
///
/// # Safety
/// `array` is NULL or valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_new(
    array: *mut *mut vaccel_arg_array,
    capacity: usize,
) -> c_int {
    call("vaccel_arg_array_new", || {
        if array.is_null() {
            return Err(ffi::null("argument array pointer"));
        }
        let b = Box::into_raw(Box::new(vaccel_arg_array {
            args: std::ptr::null_mut(),
            count: 0,
            capacity: 0,
            position: 0,
            owned: true,
        }));
        // SAFETY: `b` is a valid, fresh allocation.
        let rc = unsafe { vaccel_arg_array_init(b, capacity) };
        if rc != crate::VACCEL_OK {
            // SAFETY: `b` came from `Box::into_raw` above.
            drop(unsafe { Box::from_raw(b) });
            return Err(Error::new(
                Code::from_i32(rc).unwrap_or(Code::NoMem),
                "cannot initialise the argument array",
            ));
        }
        // SAFETY: non-NULL and valid for a write (caller's contract).
        unsafe { array.write(b) };
        Ok(())
    })
}

/// `int vaccel_arg_array_delete(struct vaccel_arg_array *array)`: release
/// and free an array from `vaccel_arg_array_new`.
///
/// # Safety
/// `array` is NULL or a pointer from `vaccel_arg_array_new` not deleted yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_delete(array: *mut vaccel_arg_array) -> c_int {
    call("vaccel_arg_array_delete", || {
        if array.is_null() {
            return Err(ffi::null("argument array"));
        }
        // SAFETY: valid array (caller's contract).
        let rc = unsafe { vaccel_arg_array_release(array) };
        // SAFETY: allocated as a Box by `vaccel_arg_array_new`.
        drop(unsafe { Box::from_raw(array) });
        match Code::from_i32(rc) {
            None => Ok(()),
            Some(c) => Err(Error::new(c, "releasing the argument array failed")),
        }
    })
}

/// `int vaccel_arg_array_clear(struct vaccel_arg_array *array)`: drop every
/// argument (freeing owned buffers), keep the allocation.
///
/// # Safety
/// `array` is NULL or points to an initialised array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_clear(array: *mut vaccel_arg_array) -> c_int {
    call("vaccel_arg_array_clear", || {
        // SAFETY: caller's contract.
        let a = unsafe { self::array(array) }?;
        if !a.owned {
            return Err(Error::inval("cannot clear a wrapped argument array"));
        }
        a.release_args();
        Ok(())
    })
}

/// `size_t vaccel_arg_array_count(const struct vaccel_arg_array *array)` (0 for NULL).
///
/// # Safety
/// `array` is NULL or points to an initialised array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_count(array: *const vaccel_arg_array) -> usize {
    call_value("vaccel_arg_array_count", 0, || {
        // SAFETY: caller's contract.
        unsafe { array.as_ref() }.map_or(0, |a| a.count)
    })
}

/// `size_t vaccel_arg_array_position(const struct vaccel_arg_array *array)` (0 for NULL).
///
/// # Safety
/// `array` is NULL or points to an initialised array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_position(array: *const vaccel_arg_array) -> usize {
    call_value("vaccel_arg_array_position", 0, || {
        // SAFETY: caller's contract.
        unsafe { array.as_ref() }.map_or(0, |a| a.position)
    })
}

/// `void vaccel_arg_array_reset_position(struct vaccel_arg_array *array)`.
///
/// # Safety
/// `array` is NULL or points to an initialised array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_reset_position(array: *mut vaccel_arg_array) {
    call_value("vaccel_arg_array_reset_position", (), || {
        // SAFETY: caller's contract.
        if let Some(a) = unsafe { array.as_mut() } {
            a.position = 0;
        }
    })
}

/// `struct vaccel_arg *vaccel_arg_array_raw(struct vaccel_arg_array
/// *array)`: the arguments, to pass to `vaccel_genop` / `vaccel_exec` with
/// `vaccel_arg_array_count` (NULL for NULL or an empty array).
///
/// # Safety
/// `array` is NULL or points to an initialised array.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_raw(array: *mut vaccel_arg_array) -> *mut vaccel_arg {
    call_value("vaccel_arg_array_raw", std::ptr::null_mut(), || {
        // SAFETY: caller's contract.
        unsafe { array.as_ref() }.map_or(std::ptr::null_mut(), |a| a.args)
    })
}

/// Push an argument referencing caller memory.
///
/// # Safety
/// `array` as for every array function; `buf` is NULL or valid for `size` bytes.
unsafe fn add_ref(
    array: *mut vaccel_arg_array,
    buf: *mut c_void,
    size: usize,
    ty: ArgType,
) -> Result<()> {
    // SAFETY: caller's contract.
    let a = unsafe { self::array(array) }?;
    if buf.is_null() && size > 0 {
        return Err(Error::inval(format!("buffer is NULL but size is {size}")));
    }
    ffi::check_size(size, 1, "argument")?;
    a.push(CArg {
        buf,
        size,
        arg_type: ty as u32,
        custom_type_id: 0,
        owned: false,
    })
}

/// Push an argument holding a copy of `data`.
///
/// # Safety
/// `array` as for every array function.
unsafe fn add_copy(array: *mut vaccel_arg_array, data: &[u8], ty: ArgType) -> Result<()> {
    // SAFETY: caller's contract.
    let a = unsafe { self::array(array) }?;
    let p = copy_to_c(data)?;
    a.push(CArg {
        buf: p,
        size: data.len(),
        arg_type: ty as u32,
        custom_type_id: 0,
        owned: true,
    })
}

/// Read the next argument's bytes (type-checked) and advance.
///
/// # Safety
/// `array` as for every array function.
unsafe fn get_next<T>(
    array: *mut vaccel_arg_array,
    ty: ArgType,
    what: &str,
    f: impl FnOnce(&mut CArg) -> Result<T>,
) -> Result<T> {
    // SAFETY: caller's contract.
    let a = unsafe { self::array(array) }?;
    let v = f(a.next(ty, what)?)?;
    a.position += 1;
    Ok(v)
}

/// Overwrite the next argument's bytes with `data` (which must fit), set
/// its size, and advance.
///
/// # Safety
/// `array` as for every array function.
unsafe fn set_next(
    array: *mut vaccel_arg_array,
    ty: ArgType,
    data: &[u8],
    exact: bool,
    what: &str,
) -> Result<()> {
    // SAFETY: forwarded contract.
    unsafe {
        get_next(array, ty, what, |a| {
            if (exact && a.size != data.len()) || a.size < data.len() {
                return Err(Error::inval(format!(
                    "{what}: argument holds {} bytes, {} given",
                    a.size,
                    data.len()
                )));
            }
            arg_bytes_mut(a)[..data.len()].copy_from_slice(data);
            a.size = data.len();
            Ok(())
        })
    }
}

macro_rules! bytes_fns {
    ($ty:ident, $add:ident, $get:ident, $set:ident, $doc:literal) => {
        #[doc = concat!("`int ", stringify!($add), "(struct vaccel_arg_array *array, void *buf, size_t size)`: add a ", $doc, " argument referencing `buf` (not copied).")]
        ///
        /// # Safety
        /// `array` is NULL or initialised; `buf` is NULL or valid for `size`
        /// bytes while the array is used.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $add(array: *mut vaccel_arg_array, buf: *mut c_void, size: usize) -> c_int {
            // SAFETY: caller's contract.
            call(stringify!($add), || unsafe { add_ref(array, buf, size, ArgType::$ty) })
        }

        #[doc = concat!("`int ", stringify!($get), "(struct vaccel_arg_array *array, void **buf, size_t *size)`: the next argument, which must be ", $doc, ".")]
        ///
        /// # Safety
        /// `array` is NULL or initialised; `buf` and `size` are NULL or valid
        /// for writes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $get(array: *mut vaccel_arg_array, buf: *mut *mut c_void, size: *mut usize) -> c_int {
            call(stringify!($get), || {
                if buf.is_null() || size.is_null() {
                    return Err(ffi::null("output pointer"));
                }
                // SAFETY: caller's contract.
                let (b, s) = unsafe { get_next(array, ArgType::$ty, stringify!($get), |a| Ok((a.buf, a.size))) }?;
                // SAFETY: non-NULL pointers, valid for writes (caller's contract).
                unsafe {
                    ffi::put(buf, b);
                    ffi::put(size, s);
                }
                Ok(())
            })
        }

        #[doc = concat!("`int ", stringify!($set), "(struct vaccel_arg_array *array, const void *buf, size_t size)`: copy `size` bytes into the next argument (", $doc, ", at least `size` bytes) and set its size to `size`.")]
        ///
        /// # Safety
        /// `array` is NULL or initialised; `buf` is NULL or valid for `size` bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $set(array: *mut vaccel_arg_array, buf: *const c_void, size: usize) -> c_int {
            call(stringify!($set), || {
                // SAFETY: caller's contract.
                let data = unsafe { ffi::bytes(buf, size, "buffer") }?;
                // SAFETY: caller's contract.
                unsafe { set_next(array, ArgType::$ty, data, false, stringify!($set)) }
            })
        }
    };
}

bytes_fns!(
    Raw,
    vaccel_arg_array_add_raw,
    vaccel_arg_array_get_raw,
    vaccel_arg_array_set_raw,
    "RAW"
);
bytes_fns!(
    Buffer,
    vaccel_arg_array_add_buffer,
    vaccel_arg_array_get_buffer,
    vaccel_arg_array_set_buffer,
    "BUFFER"
);

/// `int vaccel_arg_array_add_string(struct vaccel_arg_array *array, const
/// char *str)`: add a STRING argument referencing `str` (size includes the NUL).
///
/// # Safety
/// `array` is NULL or initialised; `str` is NULL or a C string that outlives
/// the array's use.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_add_string(
    array: *mut vaccel_arg_array,
    str: *const c_char,
) -> c_int {
    call("vaccel_arg_array_add_string", || {
        if str.is_null() {
            return Err(ffi::null("string"));
        }
        // SAFETY: a NUL-terminated string (caller's contract).
        let len = unsafe { std::ffi::CStr::from_ptr(str) }
            .to_bytes_with_nul()
            .len();
        // SAFETY: caller's contract; the callee must not write read arguments.
        unsafe { add_ref(array, str.cast_mut().cast(), len, ArgType::String) }
    })
}

/// `int vaccel_arg_array_get_string(struct vaccel_arg_array *array, char
/// **str)`: the next argument, which must be a NUL-terminated STRING.
///
/// # Safety
/// `array` is NULL or initialised; `str` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_get_string(
    array: *mut vaccel_arg_array,
    str: *mut *mut c_char,
) -> c_int {
    call("vaccel_arg_array_get_string", || {
        if str.is_null() {
            return Err(ffi::null("output pointer"));
        }
        // SAFETY: caller's contract.
        let p = unsafe {
            get_next(array, ArgType::String, "vaccel_arg_array_get_string", |a| {
                if !arg_bytes(a).contains(&0) {
                    return Err(Error::inval(
                        "vaccel_arg_array_get_string: the STRING argument is not NUL-terminated",
                    ));
                }
                Ok(a.buf.cast::<c_char>())
            })
        }?;
        // SAFETY: non-NULL, valid for a write (caller's contract).
        unsafe { ffi::put(str, p) };
        Ok(())
    })
}

/// `int vaccel_arg_array_set_string(struct vaccel_arg_array *array, const
/// char *str)`: copy `str` (with its NUL) into the next STRING argument.
///
/// # Safety
/// `array` is NULL or initialised; `str` is NULL or a C string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_set_string(
    array: *mut vaccel_arg_array,
    str: *const c_char,
) -> c_int {
    call("vaccel_arg_array_set_string", || {
        if str.is_null() {
            return Err(ffi::null("string"));
        }
        // SAFETY: a NUL-terminated string (caller's contract).
        let s = unsafe { std::ffi::CStr::from_ptr(str) }.to_bytes_with_nul();
        // SAFETY: caller's contract.
        unsafe {
            set_next(
                array,
                ArgType::String,
                s,
                false,
                "vaccel_arg_array_set_string",
            )
        }
    })
}

/// `int vaccel_arg_array_add_serialized(struct vaccel_arg_array *array,
/// vaccel_arg_type_t type, uint32_t custom_id, const void *obj,
/// vaccel_arg_serializer_t serializer)`: add `serializer(obj, &size)` (a
/// `malloc`ed buffer the array then owns and frees).
///
/// # Safety
/// `array` is NULL or initialised; `serializer` returns NULL or a `malloc`ed
/// buffer of the size it stores.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_add_serialized(
    array: *mut vaccel_arg_array,
    type_: vaccel_arg_type_t,
    custom_id: u32,
    obj: *const c_void,
    serializer: vaccel_arg_serializer_t,
) -> c_int {
    call("vaccel_arg_array_add_serialized", || {
        // SAFETY: caller's contract.
        let a = unsafe { self::array(array) }?;
        let ser = serializer.ok_or_else(|| ffi::null("serializer"))?;
        let mut size = 0usize;
        // SAFETY: the caller's serializer, called with its object and a valid size pointer.
        let buf = unsafe { ser(obj, &mut size) };
        if buf.is_null() {
            return Err(Error::inval("the serializer returned NULL"));
        }
        a.push(CArg {
            buf,
            size,
            arg_type: type_,
            custom_type_id: custom_id,
            owned: true,
        })
    })
}

/// `int vaccel_arg_array_get_serialized(struct vaccel_arg_array *array,
/// vaccel_arg_type_t type, uint32_t custom_id, void **obj,
/// vaccel_arg_deserializer_t deserializer)`: the next argument (which must
/// have `type` and `custom_id`) turned back into an object by `deserializer`.
///
/// # Safety
/// `array` is NULL or initialised; `obj` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_arg_array_get_serialized(
    array: *mut vaccel_arg_array,
    type_: vaccel_arg_type_t,
    custom_id: u32,
    obj: *mut *mut c_void,
    deserializer: vaccel_arg_deserializer_t,
) -> c_int {
    call("vaccel_arg_array_get_serialized", || {
        if obj.is_null() {
            return Err(ffi::null("output pointer"));
        }
        let de = deserializer.ok_or_else(|| ffi::null("deserializer"))?;
        let ty = ArgType::from_u32(type_)
            .ok_or_else(|| Error::inval(format!("unknown argument type {type_}")))?;
        let read = |a: &mut CArg| {
            if a.custom_type_id != custom_id {
                return Err(Error::inval(format!(
                    "vaccel_arg_array_get_serialized: custom type id is {}, not {custom_id}",
                    a.custom_type_id
                )));
            }
            // SAFETY: the caller's deserializer, given the argument's
            // buffer and size.
            let o = unsafe { de(a.buf.cast_const(), a.size) };
            if o.is_null() {
                return Err(Error::inval("the deserializer returned NULL"));
            }
            Ok(o)
        };
        // SAFETY: caller's contract.
        let o = unsafe { get_next(array, ty, "vaccel_arg_array_get_serialized", read) }?;
        // SAFETY: non-NULL, valid for a write (caller's contract).
        unsafe { ffi::put(obj, o) };
        Ok(())
    })
}

macro_rules! scalar_fns {
    ($t:ty, $ty:ident, $arr:ident, $cname:literal,
     $add:ident, $get:ident, $set:ident, $add_a:ident, $get_a:ident, $set_a:ident) => {
        #[doc = concat!("`int ", stringify!($add), "(struct vaccel_arg_array *array, const ", $cname, " *value)`: add a copy of `*value`.")]
        ///
        /// # Safety
        /// `array` is NULL or initialised; `value` is NULL or valid for a read.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $add(array: *mut vaccel_arg_array, value: *const $t) -> c_int {
            call(stringify!($add), || {
                if value.is_null() {
                    return Err(ffi::null("value"));
                }
                // SAFETY: non-NULL and valid for a read (caller's contract).
                let v = unsafe { value.read_unaligned() };
                let b = v.to_ne_bytes();
                // SAFETY: caller's contract.
                unsafe { add_copy(array, &b, ArgType::$ty) }
            })
        }

        #[doc = concat!("`int ", stringify!($get), "(struct vaccel_arg_array *array, ", $cname, " *value)`: read the next argument, which must be a ", stringify!($ty), " of exactly `sizeof(", $cname, ")` bytes.")]
        ///
        /// # Safety
        /// `array` is NULL or initialised; `value` is NULL or valid for a write.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $get(array: *mut vaccel_arg_array, value: *mut $t) -> c_int {
            call(stringify!($get), || {
                if value.is_null() {
                    return Err(ffi::null("value"));
                }
                // SAFETY: caller's contract.
                let v = unsafe {
                    get_next(array, ArgType::$ty, stringify!($get), |a| {
                        let b: [u8; std::mem::size_of::<$t>()] =
                            arg_bytes(a).try_into().map_err(|_| {
                                Error::inval(format!(
                                    "{}: argument has {} bytes, expected {}",
                                    stringify!($get),
                                    a.size,
                                    std::mem::size_of::<$t>()
                                ))
                            })?;
                        Ok(<$t>::from_ne_bytes(b))
                    })
                }?;
                // SAFETY: non-NULL, valid for a write (caller's contract).
                unsafe { ffi::put(value, v) };
                Ok(())
            })
        }

        #[doc = concat!("`int ", stringify!($set), "(struct vaccel_arg_array *array, const ", $cname, " *value)`: write `*value` into the next argument (a ", stringify!($ty), " of `sizeof(", $cname, ")` bytes).")]
        ///
        /// # Safety
        /// `array` is NULL or initialised; `value` is NULL or valid for a read.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $set(array: *mut vaccel_arg_array, value: *const $t) -> c_int {
            call(stringify!($set), || {
                if value.is_null() {
                    return Err(ffi::null("value"));
                }
                // SAFETY: non-NULL and valid for a read (caller's contract).
                let b = unsafe { value.read_unaligned() }.to_ne_bytes();
                // SAFETY: caller's contract.
                unsafe { set_next(array, ArgType::$ty, &b, true, stringify!($set)) }
            })
        }

        #[doc = concat!("`int ", stringify!($add_a), "(struct vaccel_arg_array *array, ", $cname, " *values, size_t count)`: add an array argument referencing `values` (not copied).")]
        ///
        /// # Safety
        /// `array` is NULL or initialised; `values` is NULL or valid for
        /// `count` elements while the array is used.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $add_a(array: *mut vaccel_arg_array, values: *mut $t, count: usize) -> c_int {
            call(stringify!($add_a), || {
                let size = ffi::check_size(count, std::mem::size_of::<$t>(), "values")?;
                // SAFETY: caller's contract.
                unsafe { add_ref(array, values.cast(), size, ArgType::$arr) }
            })
        }

        #[doc = concat!("`int ", stringify!($get_a), "(struct vaccel_arg_array *array, ", $cname, " **values, size_t *count)`: the next argument, which must be a ", stringify!($arr), " (points into the argument, not copied).")]
        ///
        /// # Safety
        /// `array` is NULL or initialised; `values` and `count` are NULL or
        /// valid for writes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $get_a(array: *mut vaccel_arg_array, values: *mut *mut $t, count: *mut usize) -> c_int {
            call(stringify!($get_a), || {
                if values.is_null() || count.is_null() {
                    return Err(ffi::null("output pointer"));
                }
                let sz = std::mem::size_of::<$t>();
                // SAFETY: caller's contract.
                let (p, n) = unsafe {
                    get_next(array, ArgType::$arr, stringify!($get_a), |a| {
                        if a.size % sz != 0 {
                            return Err(Error::inval(format!(
                                "{}: {} bytes is not a whole number of {sz}-byte elements",
                                stringify!($get_a),
                                a.size
                            )));
                        }
                        Ok((a.buf.cast::<$t>(), a.size / sz))
                    })
                }?;
                // SAFETY: non-NULL, valid for writes (caller's contract).
                unsafe {
                    ffi::put(values, p);
                    ffi::put(count, n);
                }
                Ok(())
            })
        }

        #[doc = concat!("`int ", stringify!($set_a), "(struct vaccel_arg_array *array, const ", $cname, " *values, size_t count)`: copy `count` elements into the next ", stringify!($arr), " argument (which must hold them) and set its size.")]
        ///
        /// # Safety
        /// `array` is NULL or initialised; `values` is NULL or valid for `count` elements.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $set_a(array: *mut vaccel_arg_array, values: *const $t, count: usize) -> c_int {
            call(stringify!($set_a), || {
                let size = ffi::check_size(count, std::mem::size_of::<$t>(), "values")?;
                // SAFETY: caller's contract.
                let data = unsafe { ffi::bytes(values.cast(), size, "values") }?;
                // SAFETY: caller's contract.
                unsafe { set_next(array, ArgType::$arr, data, false, stringify!($set_a)) }
            })
        }
    };
}

scalar_fns!(
    i8,
    Int8,
    Int8Array,
    "int8_t",
    vaccel_arg_array_add_int8,
    vaccel_arg_array_get_int8,
    vaccel_arg_array_set_int8,
    vaccel_arg_array_add_int8_array,
    vaccel_arg_array_get_int8_array,
    vaccel_arg_array_set_int8_array
);
scalar_fns!(
    i16,
    Int16,
    Int16Array,
    "int16_t",
    vaccel_arg_array_add_int16,
    vaccel_arg_array_get_int16,
    vaccel_arg_array_set_int16,
    vaccel_arg_array_add_int16_array,
    vaccel_arg_array_get_int16_array,
    vaccel_arg_array_set_int16_array
);
scalar_fns!(
    i32,
    Int32,
    Int32Array,
    "int32_t",
    vaccel_arg_array_add_int32,
    vaccel_arg_array_get_int32,
    vaccel_arg_array_set_int32,
    vaccel_arg_array_add_int32_array,
    vaccel_arg_array_get_int32_array,
    vaccel_arg_array_set_int32_array
);
scalar_fns!(
    i64,
    Int64,
    Int64Array,
    "int64_t",
    vaccel_arg_array_add_int64,
    vaccel_arg_array_get_int64,
    vaccel_arg_array_set_int64,
    vaccel_arg_array_add_int64_array,
    vaccel_arg_array_get_int64_array,
    vaccel_arg_array_set_int64_array
);
scalar_fns!(
    u8,
    Uint8,
    Uint8Array,
    "uint8_t",
    vaccel_arg_array_add_uint8,
    vaccel_arg_array_get_uint8,
    vaccel_arg_array_set_uint8,
    vaccel_arg_array_add_uint8_array,
    vaccel_arg_array_get_uint8_array,
    vaccel_arg_array_set_uint8_array
);
scalar_fns!(
    u16,
    Uint16,
    Uint16Array,
    "uint16_t",
    vaccel_arg_array_add_uint16,
    vaccel_arg_array_get_uint16,
    vaccel_arg_array_set_uint16,
    vaccel_arg_array_add_uint16_array,
    vaccel_arg_array_get_uint16_array,
    vaccel_arg_array_set_uint16_array
);
scalar_fns!(
    u32,
    Uint32,
    Uint32Array,
    "uint32_t",
    vaccel_arg_array_add_uint32,
    vaccel_arg_array_get_uint32,
    vaccel_arg_array_set_uint32,
    vaccel_arg_array_add_uint32_array,
    vaccel_arg_array_get_uint32_array,
    vaccel_arg_array_set_uint32_array
);
scalar_fns!(
    u64,
    Uint64,
    Uint64Array,
    "uint64_t",
    vaccel_arg_array_add_uint64,
    vaccel_arg_array_get_uint64,
    vaccel_arg_array_set_uint64,
    vaccel_arg_array_add_uint64_array,
    vaccel_arg_array_get_uint64_array,
    vaccel_arg_array_set_uint64_array
);
scalar_fns!(
    f32,
    Float32,
    Float32Array,
    "float",
    vaccel_arg_array_add_float,
    vaccel_arg_array_get_float,
    vaccel_arg_array_set_float,
    vaccel_arg_array_add_float_array,
    vaccel_arg_array_get_float_array,
    vaccel_arg_array_set_float_array
);
scalar_fns!(
    f64,
    Float64,
    Float64Array,
    "double",
    vaccel_arg_array_add_double,
    vaccel_arg_array_get_double,
    vaccel_arg_array_set_double,
    vaccel_arg_array_add_double_array,
    vaccel_arg_array_get_double_array,
    vaccel_arg_array_set_double_array
);
