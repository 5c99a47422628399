//! Typed argument lists: the "genop" shape every op is expressed in.
//!
//! An op is an [`OpType`](crate::OpType) plus a list of read arguments
//! ([`Arg`]) and a list of write arguments ([`ArgOut`]). Both are
//! `#[repr(C)]` and identical on both sides of the dynamic-plugin ABI, so a
//! call into a plugin shared library passes pointers to the caller's buffers
//! and copies nothing.

use std::borrow::Cow;
use std::ffi::c_void;
use std::marker::PhantomData;

use crate::{Error, Result};

macro_rules! arg_types {
    ($($name:ident = $id:literal, $str:literal;)*) => {
        /// Argument types, with upstream vAccel's `VACCEL_ARG_*` values.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        #[allow(missing_docs)]
        pub enum ArgType { $($name = $id,)* }

        impl ArgType {
            /// The type for a numeric value.
            pub fn from_u32(v: u32) -> Option<ArgType> {
                match v { $($id => Some(ArgType::$name),)* _ => None }
            }
            /// Upstream-style name, e.g. `FLOAT32_ARRAY`.
            pub fn name(self) -> &'static str {
                match self { $(ArgType::$name => $str,)* }
            }
        }
    };
}

arg_types! {
    Raw = 0, "RAW";
    Int8 = 1, "INT8";
    Int8Array = 2, "INT8_ARRAY";
    Int16 = 3, "INT16";
    Int16Array = 4, "INT16_ARRAY";
    Int32 = 5, "INT32";
    Int32Array = 6, "INT32_ARRAY";
    Int64 = 7, "INT64";
    Int64Array = 8, "INT64_ARRAY";
    Uint8 = 9, "UINT8";
    Uint8Array = 10, "UINT8_ARRAY";
    Uint16 = 11, "UINT16";
    Uint16Array = 12, "UINT16_ARRAY";
    Uint32 = 13, "UINT32";
    Uint32Array = 14, "UINT32_ARRAY";
    Uint64 = 15, "UINT64";
    Uint64Array = 16, "UINT64_ARRAY";
    Float32 = 17, "FLOAT32";
    Float32Array = 18, "FLOAT32_ARRAY";
    Float64 = 19, "FLOAT64";
    Float64Array = 20, "FLOAT64_ARRAY";
    Bool = 21, "BOOL";
    BoolArray = 22, "BOOL_ARRAY";
    Char = 23, "CHAR";
    CharArray = 24, "CHAR_ARRAY";
    Uchar = 25, "UCHAR";
    UcharArray = 26, "UCHAR_ARRAY";
    String = 27, "STRING";
    Buffer = 28, "BUFFER";
    Custom = 29, "CUSTOM";
}

/// A read (input) argument: a type tag and a borrowed byte buffer.
///
/// Layout (C): `{ uint32_t type; uint32_t flags; const uint8_t *buf; size_t size; }`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Arg<'a> {
    ty: u32,
    flags: u32,
    ptr: *const u8,
    len: usize,
    _borrow: PhantomData<&'a [u8]>,
}

// SAFETY: an `Arg` is a shared borrow of bytes (like `&[u8]`), which is Send and Sync.
unsafe impl Send for Arg<'_> {}
// SAFETY: as above: shared, read-only access to borrowed bytes.
unsafe impl Sync for Arg<'_> {}

impl std::fmt::Debug for Arg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arg")
            .field(
                "type",
                &ArgType::from_u32(self.ty).map(ArgType::name).unwrap_or("?"),
            )
            .field("size", &self.len)
            .finish()
    }
}

impl<'a> Arg<'a> {
    /// An argument over `data`.
    pub fn new(ty: ArgType, data: &'a [u8]) -> Arg<'a> {
        Arg {
            ty: ty as u32,
            flags: 0,
            ptr: data.as_ptr(),
            len: data.len(),
            _borrow: PhantomData,
        }
    }

    /// A `RAW` argument over `data`.
    pub fn raw(data: &'a [u8]) -> Arg<'a> {
        Arg::new(ArgType::Raw, data)
    }

    /// A `STRING` argument (the bytes of `s`, not NUL-terminated).
    pub fn string(s: &'a str) -> Arg<'a> {
        Arg::new(ArgType::String, s.as_bytes())
    }

    /// A `BUFFER` argument.
    pub fn buffer(data: &'a [u8]) -> Arg<'a> {
        Arg::new(ArgType::Buffer, data)
    }

    /// A `FLOAT32_ARRAY` argument borrowing `v`.
    pub fn f32s(v: &'a [f32]) -> Arg<'a> {
        Arg::new(ArgType::Float32Array, bytemuck::cast_slice(v))
    }

    /// A `FLOAT64_ARRAY` argument borrowing `v`.
    pub fn f64s(v: &'a [f64]) -> Arg<'a> {
        Arg::new(ArgType::Float64Array, bytemuck::cast_slice(v))
    }

    /// A scalar argument borrowing `v` (native endianness, as upstream).
    pub fn scalar<T: Scalar>(v: &'a T) -> Arg<'a> {
        Arg::new(T::TYPE, bytemuck::bytes_of(v))
    }

    /// Build from raw parts (used by decoders that own the bytes).
    ///
    /// # Safety
    /// `ptr` must be valid for reads of `len` bytes for `'a` (or `len` is 0).
    pub unsafe fn from_raw_parts(ty: u32, ptr: *const u8, len: usize) -> Arg<'a> {
        Arg {
            ty,
            flags: 0,
            ptr,
            len,
            _borrow: PhantomData,
        }
    }

    /// The raw type tag.
    pub fn type_id(&self) -> u32 {
        self.ty
    }

    /// The type, if the tag is a known one.
    pub fn arg_type(&self) -> Option<ArgType> {
        ArgType::from_u32(self.ty)
    }

    /// The bytes.
    pub fn bytes(&self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: constructors guarantee `ptr` is valid for `len` bytes for 'a:
        // `new` takes a `&'a [u8]`, `from_raw_parts` makes it the caller's
        // contract, and the C ABI documents it for plugins.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the argument has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Scalar types that can be passed as arguments.
pub trait Scalar: bytemuck::Pod {
    /// Their argument type.
    const TYPE: ArgType;
}

macro_rules! scalar {
    ($($t:ty => $v:ident),*) => { $(impl Scalar for $t { const TYPE: ArgType = ArgType::$v; })* };
}
scalar!(i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64, u8 => Uint8, u16 => Uint16,
    u32 => Uint32, u64 => Uint64, f32 => Float32, f64 => Float64);

/// Host-provided function that grows a write argument to `size` bytes,
/// updating its `buf` and `capacity`. Returns 0 or an errno value.
pub type ReserveFn = unsafe extern "C" fn(out: *mut ArgOut<'static>, size: usize) -> i32;

/// A write (output) argument.
///
/// Either a fixed caller buffer (the plugin may write up to its capacity) or
/// a growable one (the plugin may ask for any size through
/// [`ArgOut::reserve`]; growth runs in the code that created the argument, so
/// memory never crosses allocators). `len` is how many bytes the plugin wrote.
///
/// Layout (C): `{ uint32_t type; uint32_t flags; uint8_t *buf; size_t capacity;
/// size_t len; void *owner; int (*reserve)(struct vaccel_plugin_arg_out *, size_t); }`.
#[repr(C)]
pub struct ArgOut<'a> {
    ty: u32,
    flags: u32,
    ptr: *mut u8,
    cap: usize,
    len: usize,
    owner: *mut c_void,
    reserve: Option<ReserveFn>,
    _borrow: PhantomData<&'a mut [u8]>,
}

// SAFETY: an `ArgOut` is an exclusive borrow of a buffer (like `&mut [u8]` or
// `&mut Vec<u8>`), both of which are Send.
unsafe impl Send for ArgOut<'_> {}
// SAFETY: shared access only exposes reads of the buffer, like `&[u8]`.
unsafe impl Sync for ArgOut<'_> {}

/// `flags` bit: the buffer's initial contents are an input too (e.g. C in SGEMM).
pub const ARG_FLAG_INOUT: u32 = 0x1;

impl std::fmt::Debug for ArgOut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgOut")
            .field(
                "type",
                &ArgType::from_u32(self.ty).map(ArgType::name).unwrap_or("?"),
            )
            .field("capacity", &self.cap)
            .field("len", &self.len)
            .field("growable", &self.reserve.is_some())
            .finish()
    }
}

unsafe extern "C" fn reserve_vec(out: *mut ArgOut<'static>, size: usize) -> i32 {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: only installed by `ArgOut::growable`, whose `owner` is the
        // `&mut Vec<u8>` it borrows for the argument's lifetime; `out` is the
        // live argument the plugin was handed.
        let out = unsafe { &mut *out };
        // SAFETY: see above: `owner` points to the borrowed Vec.
        let v = unsafe { &mut *(out.owner as *mut Vec<u8>) };
        if v.try_reserve(size.saturating_sub(v.len())).is_err() {
            return Error::nomem("").errno();
        }
        v.resize(size, 0);
        out.ptr = v.as_mut_ptr();
        out.cap = v.len();
        0
    }));
    res.unwrap_or(crate::Code::NoMem.as_i32())
}

impl<'a> ArgOut<'a> {
    /// A fixed-size output over `buf`.
    pub fn fixed(ty: ArgType, buf: &'a mut [u8]) -> ArgOut<'a> {
        ArgOut {
            ty: ty as u32,
            flags: 0,
            ptr: buf.as_mut_ptr(),
            cap: buf.len(),
            len: 0,
            owner: std::ptr::null_mut(),
            reserve: None,
            _borrow: PhantomData,
        }
    }

    /// A fixed-size output whose initial contents are also an input.
    pub fn inout(ty: ArgType, buf: &'a mut [u8]) -> ArgOut<'a> {
        let len = buf.len();
        let mut a = ArgOut::fixed(ty, buf);
        a.flags |= ARG_FLAG_INOUT;
        a.len = len;
        a
    }

    /// A growable output that fills `v` (cleared first).
    pub fn growable(ty: ArgType, v: &'a mut Vec<u8>) -> ArgOut<'a> {
        v.clear();
        ArgOut {
            ty: ty as u32,
            flags: 0,
            ptr: v.as_mut_ptr(),
            cap: 0,
            len: 0,
            owner: v as *mut Vec<u8> as *mut c_void,
            reserve: Some(reserve_vec),
            _borrow: PhantomData,
        }
    }

    /// The raw type tag.
    pub fn type_id(&self) -> u32 {
        self.ty
    }

    /// The type, if the tag is a known one.
    pub fn arg_type(&self) -> Option<ArgType> {
        ArgType::from_u32(self.ty)
    }

    /// Whether the buffer's initial contents are an input.
    pub fn is_inout(&self) -> bool {
        self.flags & ARG_FLAG_INOUT != 0
    }

    /// Whether the output can grow to any size.
    pub fn is_growable(&self) -> bool {
        self.reserve.is_some()
    }

    /// Current capacity (for a growable output, what has been reserved so far).
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole buffer (capacity bytes), e.g. to read in/out contents.
    pub fn buffer(&self) -> &[u8] {
        if self.cap == 0 {
            return &[];
        }
        // SAFETY: `ptr` is valid for `cap` bytes: it comes from a `&mut [u8]`
        // of that length, or from the owner's reserve function.
        unsafe { std::slice::from_raw_parts(self.ptr, self.cap) }
    }

    /// The written bytes.
    pub fn written(&self) -> &[u8] {
        &self.buffer()[..self.len.min(self.cap)]
    }

    /// Make room for exactly `size` bytes and return them; sets `len` to `size`.
    /// A fixed buffer that is too small gives `EINVAL` naming both sizes.
    pub fn reserve(&mut self, size: usize) -> Result<&mut [u8]> {
        if size > self.cap {
            let Some(f) = self.reserve else {
                return Err(Error::inval(format!(
                    "output buffer too small: {} bytes needed, {} given",
                    size, self.cap
                )));
            };
            let me = (self as *mut ArgOut<'a>).cast::<ArgOut<'static>>();
            // SAFETY: `f` is the owner's reserve function and `me` points to
            // this live argument; lifetimes are not observed by C code.
            let rc = unsafe { f(me, size) };
            if rc != 0 || self.cap < size {
                return Err(Error::nomem(format!("cannot grow output to {size} bytes")));
            }
        }
        self.len = size;
        // SAFETY: `ptr` is valid for `cap >= size` bytes and we hold `&mut self`,
        // the only handle to the buffer.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr, size) })
    }

    /// Replace the contents with `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.reserve(data.len())?.copy_from_slice(data);
        Ok(())
    }

    /// Write as much of `data` as fits, and report how much that was.
    pub fn write_truncated(&mut self, data: &[u8]) -> usize {
        let n = if self.is_growable() {
            data.len()
        } else {
            data.len().min(self.cap)
        };
        match self.reserve(n) {
            Ok(buf) => {
                buf.copy_from_slice(&data[..n]);
                n
            }
            Err(_) => 0,
        }
    }

    /// Write a scalar.
    pub fn write_scalar<T: Scalar>(&mut self, v: T) -> Result<()> {
        self.write(bytemuck::bytes_of(&v))
    }

    /// The written bytes as `f32`s, for an in/out or written float buffer.
    /// Returns `None` if the buffer is not 4-byte aligned.
    pub fn as_f32_mut(&mut self) -> Option<&mut [f32]> {
        let len = self.cap;
        if len == 0 {
            return Some(&mut []);
        }
        // SAFETY: `ptr` is valid for `cap` bytes and we hold `&mut self`.
        let bytes = unsafe { std::slice::from_raw_parts_mut(self.ptr, len) };
        let r = bytemuck::try_cast_slice_mut(bytes).ok();
        if r.is_some() {
            self.len = len;
        }
        r
    }

    /// Set how many bytes are valid (after writing through [`ArgOut::as_f32_mut`]).
    pub fn set_len(&mut self, len: usize) -> Result<()> {
        if len > self.cap {
            return Err(Error::inval(format!(
                "length {len} beyond output capacity {}",
                self.cap
            )));
        }
        self.len = len;
        Ok(())
    }
}

/// Typed access to the bytes of a read argument, with clear errors.
pub trait ArgExt<'a> {
    /// Interpret as a scalar of type `T` (size must match exactly).
    fn scalar<T: Scalar>(&self, what: &str) -> Result<T>;
    /// Interpret as UTF-8 text (a trailing NUL, as C callers send, is ignored).
    fn str(&self, what: &str) -> Result<&'a str>;
    /// Interpret as `f32`s, borrowing when aligned.
    fn f32s(&self, what: &str) -> Result<Cow<'a, [f32]>>;
    /// Interpret as `f64`s, borrowing when aligned.
    fn f64s(&self, what: &str) -> Result<Cow<'a, [f64]>>;
}

fn pod_slice<'a, T: bytemuck::Pod>(b: &'a [u8], what: &str) -> Result<Cow<'a, [T]>> {
    let size = std::mem::size_of::<T>();
    if b.len() % size != 0 {
        return Err(Error::inval(format!(
            "{what}: {} bytes is not a whole number of {size}-byte elements",
            b.len()
        )));
    }
    Ok(match bytemuck::try_cast_slice(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(bytemuck::pod_collect_to_vec(b)),
    })
}

impl<'a> ArgExt<'a> for Arg<'a> {
    fn scalar<T: Scalar>(&self, what: &str) -> Result<T> {
        let b = self.bytes();
        if b.len() != std::mem::size_of::<T>() {
            return Err(Error::inval(format!(
                "{what}: expected a {}-byte {}, got {} bytes",
                std::mem::size_of::<T>(),
                T::TYPE.name(),
                b.len()
            )));
        }
        Ok(bytemuck::pod_read_unaligned(b))
    }

    fn str(&self, what: &str) -> Result<&'a str> {
        let mut b = self.bytes();
        if let Some(pos) = b.iter().position(|&c| c == 0) {
            b = &b[..pos];
        }
        std::str::from_utf8(b).map_err(|_| Error::inval(format!("{what}: not valid UTF-8 text")))
    }

    fn f32s(&self, what: &str) -> Result<Cow<'a, [f32]>> {
        pod_slice(self.bytes(), what)
    }

    fn f64s(&self, what: &str) -> Result<Cow<'a, [f64]>> {
        pod_slice(self.bytes(), what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_types_match_upstream() {
        assert_eq!(ArgType::Raw as u32, 0);
        assert_eq!(ArgType::Int32 as u32, 5);
        assert_eq!(ArgType::Float32Array as u32, 18);
        assert_eq!(ArgType::String as u32, 27);
        assert_eq!(ArgType::Buffer as u32, 28);
        assert_eq!(ArgType::Custom as u32, 29);
        for v in 0..30 {
            assert_eq!(ArgType::from_u32(v).unwrap() as u32, v);
        }
        assert!(ArgType::from_u32(30).is_none());
    }

    #[test]
    fn read_args() {
        let x = 7i64;
        let a = Arg::scalar(&x);
        assert_eq!(a.arg_type(), Some(ArgType::Int64));
        assert_eq!(a.scalar::<i64>("x").unwrap(), 7);
        let err = a.scalar::<i32>("m").unwrap_err();
        assert_eq!(err.code(), crate::Code::Inval);
        assert!(
            err.message()
                .contains("m: expected a 4-byte INT32, got 8 bytes")
        );
        assert_eq!(Arg::string("lib.so").str("library").unwrap(), "lib.so");
        assert_eq!(Arg::raw(b"abc\0").str("s").unwrap(), "abc");
        assert!(Arg::raw(&[0xff, 0xfe]).str("s").is_err());
        let v = [1.0f32, 2.0];
        assert_eq!(&*Arg::f32s(&v).f32s("a").unwrap(), &v);
        assert!(Arg::raw(&[1, 2, 3]).f32s("a").is_err());
    }

    #[test]
    fn unaligned_floats_are_copied() {
        let bytes = [0u8; 9];
        let a = Arg::raw(&bytes[1..9]);
        assert_eq!(&*a.f32s("a").unwrap(), &[0.0, 0.0]);
    }

    #[test]
    fn fixed_output() {
        let mut buf = [0u8; 4];
        let mut o = ArgOut::fixed(ArgType::Raw, &mut buf);
        o.write(b"ab").unwrap();
        assert_eq!(o.written(), b"ab");
        let e = o.write(b"abcde").unwrap_err();
        assert!(e.message().contains("5 bytes needed, 4 given"));
        assert_eq!(o.write_truncated(b"abcdef"), 4);
        assert_eq!(o.written(), b"abcd");
    }

    #[test]
    fn growable_output() {
        let mut v = vec![9u8; 3];
        {
            let mut o = ArgOut::growable(ArgType::Buffer, &mut v);
            assert!(o.is_growable());
            o.write(&[1u8; 1000]).unwrap();
            o.write(b"xy").unwrap();
            assert_eq!(o.written(), b"xy");
        }
        // The caller truncates to `len`; the vec holds at least that much.
        assert!(v.len() >= 2);
        assert_eq!(&v[..2], b"xy");
    }

    #[test]
    fn inout_floats() {
        let mut c = [1.0f32, 2.0];
        let mut o = ArgOut::inout(ArgType::Float32Array, bytemuck::cast_slice_mut(&mut c));
        assert!(o.is_inout());
        let f = o.as_f32_mut().unwrap();
        f[1] = 5.0;
        assert_eq!(c, [1.0, 5.0]);
    }
}

/// Upstream vAccel's `struct vaccel_arg` (0.7+): the argument layout that
/// EXEC callees (`int fn(struct vaccel_arg *in, size_t nr_in, struct
/// vaccel_arg *out, size_t nr_out)`) and C API callers use.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CArg {
    /// Data.
    pub buf: *mut c_void,
    /// Size of the data in bytes.
    pub size: usize,
    /// `vaccel_arg_type_t`.
    pub arg_type: u32,
    /// Custom type id for `VACCEL_ARG_CUSTOM`.
    pub custom_type_id: u32,
    /// Whether the API allocated `buf`.
    pub owned: bool,
}

impl CArg {
    /// A C view of a read argument. The callee must not write through it.
    pub fn from_arg(a: &Arg<'_>) -> CArg {
        CArg {
            buf: a.ptr as *mut c_void,
            size: a.len,
            arg_type: a.ty,
            custom_type_id: 0,
            owned: false,
        }
    }

    /// A C view of a write argument: its whole buffer.
    pub fn from_out(o: &mut ArgOut<'_>) -> CArg {
        CArg {
            buf: o.ptr as *mut c_void,
            size: o.cap,
            arg_type: o.ty,
            custom_type_id: 0,
            owned: false,
        }
    }
}
