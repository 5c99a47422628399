//! The op functions: typed calls (`vaccel_noop`, `vaccel_sgemm`,
//! `vaccel_image_classification`, …), the generic `vaccel_genop`, EXEC, and
//! this project's additions (AES-CBC, face blurring, models). Each one
//! translates into the runtime's single op representation (an [`OpType`]
//! plus [`Arg`] / [`ArgOut`] lists), with the layouts of `vaccel_core::ops`.

use std::borrow::Cow;
use std::ffi::{CString, c_char, c_int, c_uchar, c_void};
use std::sync::OnceLock;

use vaccel::arg::CArg;
use vaccel::ops::{self, AesCbc};
use vaccel::tensor::DType;
use vaccel::{Arg, ArgOut, ArgType, Code, Error, OpType, Result, Tensor, TensorRef};

use crate::arg::{to_args, to_outs, vaccel_arg};
use crate::ffi::{self, call, call_value, free, malloc};
use crate::resource::{self, vaccel_resource};
use crate::session::{self, vaccel_session};

/// `vaccel_tensor_dtype_t`: element types, with ONNX's numbering
/// (`VACCEL_TENSOR_FLOAT32` 1, `_UINT8` 2, …; the values of [`DType`]).
pub type vaccel_tensor_dtype_t = u32;

/// `struct vaccel_tensor`: a named, typed, shaped tensor for
/// `vaccel_model_run`. Inputs point at caller memory; outputs point into one
/// block the library allocates (free it with `vaccel_tensors_free`).
#[repr(C)]
#[derive(Debug)]
pub struct vaccel_tensor {
    /// Name (NULL or "" for positional inputs); NUL-terminated.
    pub name: *const c_char,
    /// `VACCEL_TENSOR_*`.
    pub dtype: vaccel_tensor_dtype_t,
    /// Number of dimensions.
    pub nr_dims: u32,
    /// `nr_dims` dimensions.
    pub dims: *const i64,
    /// Row-major element data.
    pub data: *const c_void,
    /// Size of `data` in bytes (elements × element size).
    pub size: usize,
}

fn range_error(msg: String) -> Error {
    Error::new(Code::Range, msg)
}

/// Make sure a text output is NUL-terminated within its buffer after the
/// plugin wrote `written` bytes (plugins built on `vaccel_core::ops`
/// already truncate and terminate; this guards the others).
fn terminate(buf: &mut [u8], written: usize) {
    let Some(last) = buf.len().checked_sub(1) else {
        return;
    };
    let n = written.min(buf.len());
    if !buf[..n].contains(&0) {
        buf[n.min(last)] = 0;
    }
}

fn check_disjoint(a: &[u8], b: &[u8], what: &str) -> Result<()> {
    if ffi::overlaps((a.as_ptr(), a.len()), (b.as_ptr(), b.len())) {
        return Err(Error::inval(format!("{what} overlap")));
    }
    Ok(())
}

/// `int vaccel_noop(struct vaccel_session *sess)`.
///
/// # Safety
/// `sess` is NULL or points to an initialised (possibly released) session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_noop(sess: *mut vaccel_session) -> c_int {
    call("vaccel_noop", || {
        // SAFETY: caller's contract.
        unsafe { session::get(sess) }?.noop()
    })
}

fn dim(v: i64, what: &str) -> Result<usize> {
    usize::try_from(v)
        .map_err(|_| Error::inval(format!("sgemm: {what} must not be negative (got {v})")))
}

fn span(rows: usize, cols: usize, ld: usize, what: &str) -> Result<usize> {
    ops::matrix_span(rows, cols, ld)
        .ok_or_else(|| Error::inval(format!("sgemm: {what} dimensions overflow")))
}

/// `int vaccel_sgemm(struct vaccel_session *sess, int64_t m, int64_t n,
/// int64_t k, float alpha, float *a, int64_t lda, float *b, int64_t ldb,
/// float beta, float *c, int64_t ldc)`: C = αAB + βC, row-major. A spans
/// `(m-1)*lda + k` floats, B `(k-1)*ldb + n`, C `(m-1)*ldc + n`.
///
/// # Safety
/// `sess` as for every op; `a`, `b`, `c` are NULL or valid for the spans
/// above; `c` does not overlap `a` or `b`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn vaccel_sgemm(
    sess: *mut vaccel_session,
    m: i64,
    n: i64,
    k: i64,
    alpha: f32,
    a: *mut f32,
    lda: i64,
    b: *mut f32,
    ldb: i64,
    beta: f32,
    c: *mut f32,
    ldc: i64,
) -> c_int {
    call("vaccel_sgemm", || {
        // SAFETY: caller's contract.
        let s = unsafe { session::get(sess) }?;
        let (m, n, k) = (dim(m, "m")?, dim(n, "n")?, dim(k, "k")?);
        let (lda, ldb, ldc) = (dim(lda, "lda")?, dim(ldb, "ldb")?, dim(ldc, "ldc")?);
        let (la, lb, lc) = (
            span(m, k, lda, "A")?,
            span(k, n, ldb, "B")?,
            span(m, n, ldc, "C")?,
        );
        // SAFETY: valid for the documented spans (caller's contract).
        let a = unsafe { ffi::elems(a.cast_const(), la, "A") }?;
        // SAFETY: as above.
        let b = unsafe { ffi::elems(b.cast_const(), lb, "B") }?;
        let cb = (c.cast_const().cast::<u8>(), lc.saturating_mul(4));
        for (x, what) in [(a, "A and C"), (b, "B and C")] {
            if ffi::overlaps(cb, (x.as_ptr().cast(), std::mem::size_of_val(x))) {
                return Err(Error::inval(format!("sgemm: {what} overlap")));
            }
        }
        // SAFETY: valid for `lc` floats and disjoint from A and B (checked).
        let c = unsafe { ffi::elems_mut(c, lc, "C") }?;
        s.sgemm(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    })
}

/// `int vaccel_image_classification(struct vaccel_session *sess, const void
/// *img, unsigned char *out_text, unsigned char *out_imgname, size_t
/// len_img, size_t len_out_text, size_t len_out_imgname)`.
///
/// Text that does not fit `out_text` / `out_imgname` is truncated and always
/// NUL-terminated. `out_imgname` may be NULL (with `len_out_imgname` 0).
///
/// # Safety
/// `sess` as for every op; `img` is NULL or valid for `len_img` bytes; the
/// output buffers are NULL or valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_image_classification(
    sess: *mut vaccel_session,
    img: *const c_void,
    out_text: *mut c_uchar,
    out_imgname: *mut c_uchar,
    len_img: usize,
    len_out_text: usize,
    len_out_imgname: usize,
) -> c_int {
    call("vaccel_image_classification", || {
        // SAFETY: caller's contract.
        let s = unsafe { session::get(sess) }?;
        // SAFETY: caller's contract.
        let image = unsafe { ffi::input(img, len_img, "image") }?;
        // SAFETY: caller's contract.
        let text = unsafe { ffi::output(out_text.cast(), len_out_text, "out_text") }?;
        check_disjoint(image, text, "image and out_text")?;
        let mut name: Option<&mut [u8]> = if out_imgname.is_null() && len_out_imgname == 0 {
            None
        } else {
            // SAFETY: caller's contract.
            let nb = unsafe { ffi::output(out_imgname.cast(), len_out_imgname, "out_imgname") }?;
            check_disjoint(image, nb, "image and out_imgname")?;
            check_disjoint(text, nb, "out_text and out_imgname")?;
            Some(nb)
        };
        let read = [Arg::buffer(image)];
        let lens = {
            let mut write = vec![ArgOut::fixed(ArgType::String, &mut *text)];
            if let Some(nb) = name.as_deref_mut() {
                write.push(ArgOut::fixed(ArgType::String, nb));
            }
            s.genop(OpType::ImageClassify, &read, &mut write)?;
            write.iter().map(ArgOut::len).collect::<Vec<_>>()
        };
        terminate(text, lens[0]);
        if let Some(nb) = name {
            terminate(nb, lens[1]);
        }
        Ok(())
    })
}

/// # Safety
/// As the exported single-image functions.
unsafe fn image_op(
    op: OpType,
    sess: *mut vaccel_session,
    img: *const c_void,
    out_imgname: *mut c_uchar,
    len_img: usize,
    len_out_imgname: usize,
) -> Result<()> {
    // SAFETY: caller's contract.
    let s = unsafe { session::get(sess) }?;
    // SAFETY: caller's contract.
    let image = unsafe { ffi::input(img, len_img, "image") }?;
    // SAFETY: caller's contract.
    let out = unsafe { ffi::output(out_imgname.cast(), len_out_imgname, "out_imgname") }?;
    check_disjoint(image, out, "image and out_imgname")?;
    let len = {
        let mut write = [ArgOut::fixed(ArgType::String, &mut *out)];
        s.genop(op, &[Arg::buffer(image)], &mut write)?;
        write[0].len()
    };
    terminate(out, len);
    Ok(())
}

macro_rules! image_fns {
    ($($name:ident => $op:ident,)*) => {$(
        #[doc = concat!("`int ", stringify!($name), "(struct vaccel_session *sess, const void *img, unsigned char *out_imgname, size_t len_img, size_t len_out_imgname)`: the plugin's result name or summary, truncated to fit and NUL-terminated.")]
        ///
        /// # Safety
        /// `sess` as for every op; `img` is NULL or valid for `len_img`
        /// bytes; `out_imgname` is NULL or valid for `len_out_imgname` bytes.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name(
            sess: *mut vaccel_session,
            img: *const c_void,
            out_imgname: *mut c_uchar,
            len_img: usize,
            len_out_imgname: usize,
        ) -> c_int {
            call(stringify!($name), || {
                // SAFETY: caller's contract.
                unsafe { image_op(OpType::$op, sess, img, out_imgname, len_img, len_out_imgname) }
            })
        }
    )*};
}

image_fns! {
    vaccel_image_detection => ImageDetect,
    vaccel_image_segmentation => ImageSegment,
    vaccel_image_pose => ImagePose,
    vaccel_image_depth => ImageDepth,
}

/// # Safety
/// `read` / `write` are NULL or valid for their counts, and every
/// argument's buffer is valid for its size during the call.
unsafe fn arg_lists<'a>(
    read: *mut vaccel_arg,
    nr_read: usize,
    write: *mut vaccel_arg,
    nr_write: usize,
) -> Result<(&'a [CArg], &'a mut [CArg])> {
    // SAFETY: caller's contract.
    let r = unsafe { ffi::elems(read.cast_const(), nr_read, "read arguments") }?;
    // SAFETY: caller's contract.
    let w = unsafe { ffi::elems_mut(write, nr_write, "write arguments") }?;
    let rb = (r.as_ptr().cast::<u8>(), std::mem::size_of_val(r));
    if ffi::overlaps(rb, (w.as_ptr().cast(), std::mem::size_of_val(w))) {
        return Err(Error::inval("the read and write argument lists overlap"));
    }
    Ok((r, w))
}

fn op_from_arg(a: &CArg) -> Result<OpType> {
    if a.buf.is_null() {
        return Err(Error::inval(
            "genop: read[0] (the op type) has a NULL buffer",
        ));
    }
    // SAFETY: non-NULL and valid for `size` bytes (caller's contract).
    let b = unsafe { ffi::bytes(a.buf.cast_const(), a.size, "read[0]") }?;
    let v: u64 = match b.len() {
        1 => u64::from(b[0]),
        2 => u64::from(u16::from_ne_bytes([b[0], b[1]])),
        4 => u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        8 => u64::from_ne_bytes(b.try_into().unwrap_or([0xff; 8])),
        n => {
            return Err(Error::inval(format!(
                "genop: read[0] (the op type) must be a 1, 2, 4 or 8-byte integer, got {n} bytes"
            )));
        }
    };
    u32::try_from(v)
        .ok()
        .and_then(OpType::from_u32)
        .ok_or_else(|| Error::inval(format!("genop: unknown op type {v}")))
}

/// `int vaccel_genop(struct vaccel_session *sess, struct vaccel_arg *read,
/// size_t nr_read, struct vaccel_arg *write, size_t nr_write)`: any op in
/// the generic shape; `read[0]` holds the `vaccel_op_type_t` (a 1, 2, 4 or
/// 8-byte integer), the rest are the op's read arguments. Write arguments
/// are fixed buffers of `size` bytes (their contents are also inputs);
/// the structs are not modified.
///
/// # Safety
/// `sess` as for every op; `read` / `write` are NULL or valid for their
/// counts, each argument's buffer valid for its size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_genop(
    sess: *mut vaccel_session,
    read: *mut vaccel_arg,
    nr_read: usize,
    write: *mut vaccel_arg,
    nr_write: usize,
) -> c_int {
    call("vaccel_genop", || {
        // SAFETY: caller's contract.
        let s = unsafe { session::get(sess) }?;
        // SAFETY: caller's contract.
        let (r, w) = unsafe { arg_lists(read, nr_read, write, nr_write) }?;
        let (first, rest) = r
            .split_first()
            .ok_or_else(|| Error::inval("genop: read[0] must hold the op type"))?;
        let op = op_from_arg(first)?;
        let args = to_args(rest)?;
        let mut outs = to_outs(r, w)?;
        s.genop(op, &args, &mut outs)
    })
}

/// `int vaccel_exec(struct vaccel_session *sess, const char *library, const
/// char *fn_symbol, struct vaccel_arg *read, size_t nr_read, struct
/// vaccel_arg *write, size_t nr_write)`: call `int fn_symbol(struct
/// vaccel_arg *in, size_t nr_in, struct vaccel_arg *out, size_t nr_out)` in
/// `library` (the exec plugin only opens allow-listed libraries).
///
/// # Safety
/// `sess` as for every op; strings are NULL or C strings; argument lists as
/// for `vaccel_genop`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_exec(
    sess: *mut vaccel_session,
    library: *const c_char,
    fn_symbol: *const c_char,
    read: *mut vaccel_arg,
    nr_read: usize,
    write: *mut vaccel_arg,
    nr_write: usize,
) -> c_int {
    call("vaccel_exec", || {
        // SAFETY: caller's contract.
        let s = unsafe { session::get(sess) }?;
        // SAFETY: caller's contract.
        let lib = unsafe { ffi::c_str(library, "library") }?;
        // SAFETY: caller's contract.
        let sym = unsafe { ffi::c_str(fn_symbol, "fn_symbol") }?;
        // SAFETY: caller's contract.
        let (r, w) = unsafe { arg_lists(read, nr_read, write, nr_write) }?;
        let args = to_args(r)?;
        let mut outs = to_outs(r, w)?;
        s.exec(lib, sym, &args, &mut outs)
    })
}

/// `int vaccel_exec_with_resource(struct vaccel_session *sess, struct
/// vaccel_resource *resource, const char *fn_symbol, struct vaccel_arg
/// *read, size_t nr_read, struct vaccel_arg *write, size_t nr_write)`: like
/// `vaccel_exec` with a LIB resource registered to the session
/// (`VACCEL_EPERM` if it is not).
///
/// # Safety
/// As `vaccel_exec`; `resource` is NULL or an initialised resource.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_exec_with_resource(
    sess: *mut vaccel_session,
    resource: *mut vaccel_resource,
    fn_symbol: *const c_char,
    read: *mut vaccel_arg,
    nr_read: usize,
    write: *mut vaccel_arg,
    nr_write: usize,
) -> c_int {
    call("vaccel_exec_with_resource", || {
        // SAFETY: caller's contract.
        let s = unsafe { session::get(sess) }?;
        // SAFETY: caller's contract.
        let res = unsafe { resource::get(resource) }?;
        // SAFETY: caller's contract.
        let sym = unsafe { ffi::c_str(fn_symbol, "fn_symbol") }?;
        // SAFETY: caller's contract.
        let (r, w) = unsafe { arg_lists(read, nr_read, write, nr_write) }?;
        let args = to_args(r)?;
        let mut outs = to_outs(r, w)?;
        s.exec_with_resource(res, sym, &args, &mut outs)
    })
}

/// `int vaccel_minmax(struct vaccel_session *sess, const double *indata, int
/// ndata, int low_threshold, int high_threshold, double *outdata, double
/// *min, double *max)`: `outdata` = `indata` clamped into [low, high];
/// `*min` / `*max` = the extremes of `indata`. `outdata` may equal `indata`.
///
/// # Safety
/// `sess` as for every op; `indata` / `outdata` are NULL or valid for
/// `ndata` doubles; `min` / `max` are NULL or valid for writes.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn vaccel_minmax(
    sess: *mut vaccel_session,
    indata: *const f64,
    ndata: c_int,
    low_threshold: c_int,
    high_threshold: c_int,
    outdata: *mut f64,
    min: *mut f64,
    max: *mut f64,
) -> c_int {
    call("vaccel_minmax", || {
        // SAFETY: caller's contract.
        let s = unsafe { session::get(sess) }?;
        let n = usize::try_from(ndata).map_err(|_| {
            Error::inval(format!("minmax: ndata must not be negative (got {ndata})"))
        })?;
        if min.is_null() || max.is_null() {
            return Err(ffi::null("min / max"));
        }
        if n == 0 {
            return Err(Error::inval("minmax: ndata is 0"));
        }
        // Copy the input when it overlaps the output (in-place use).
        let bytes = std::mem::size_of::<f64>().saturating_mul(n);
        let input: Cow<'_, [f64]> =
            if ffi::overlaps((indata.cast(), bytes), (outdata.cast_const().cast(), bytes)) {
                // SAFETY: caller's contract.
                Cow::Owned(unsafe { ffi::elems(indata, n, "indata") }?.to_vec())
            } else {
                // SAFETY: caller's contract.
                Cow::Borrowed(unsafe { ffi::elems(indata, n, "indata") }?)
            };
        if outdata.is_null() {
            return Err(ffi::null("outdata"));
        }
        // SAFETY: valid for `n` doubles (caller's contract); any overlap
        // with the input was copied away above.
        let out = unsafe { ffi::elems_mut(outdata, n, "outdata") }?;
        let (lo, hi) = s.minmax(
            &input,
            f64::from(low_threshold),
            f64::from(high_threshold),
            out,
        )?;
        // SAFETY: non-NULL (checked) and valid for writes (caller's contract).
        unsafe {
            ffi::put(min, lo);
            ffi::put(max, hi);
        }
        Ok(())
    })
}

/// # Safety
/// As the exported AES functions.
#[allow(clippy::too_many_arguments)]
unsafe fn aes(
    op: OpType,
    sess: *mut vaccel_session,
    key: *const u8,
    key_len: usize,
    iv: *const u8,
    iv_len: usize,
    input: *const u8,
    in_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> Result<()> {
    // SAFETY: caller's contract.
    let s = unsafe { session::get(sess) }?;
    if out_len.is_null() {
        return Err(ffi::null("out_len"));
    }
    // SAFETY: caller's contract.
    let key = unsafe { ffi::input(key.cast(), key_len, "key") }?;
    // SAFETY: caller's contract.
    let iv = unsafe { ffi::input(iv.cast(), iv_len, "iv") }?;
    // SAFETY: caller's contract.
    let data = unsafe { ffi::bytes(input.cast(), in_len, "input") }?;
    let need = if op == OpType::AesCbcEncrypt {
        AesCbc::padded_len(in_len)
    } else {
        in_len
    };
    if out_cap < need {
        // SAFETY: non-NULL, valid for a write (caller's contract).
        unsafe { ffi::put(out_len, need) };
        return Err(range_error(format!(
            "{op}: the output needs {need} bytes, out_cap is {out_cap} (*out_len holds the size needed)"
        )));
    }
    // SAFETY: caller's contract.
    let outb = unsafe { ffi::output(out.cast(), out_cap, "out") }?;
    // In-place use: copy the input away from the output first.
    let data: Cow<'_, [u8]> =
        if ffi::overlaps((data.as_ptr(), data.len()), (outb.as_ptr(), outb.len())) {
            Cow::Owned(data.to_vec())
        } else {
            Cow::Borrowed(data)
        };
    for (x, what) in [(key, "key and out"), (iv, "iv and out")] {
        check_disjoint(x, outb, what)?;
    }
    let read = [Arg::buffer(key), Arg::buffer(iv), Arg::buffer(&data)];
    let mut write = [ArgOut::fixed(ops::BYTES, outb)];
    s.genop(op, &read, &mut write)?;
    // SAFETY: non-NULL, valid for a write (caller's contract).
    unsafe { ffi::put(out_len, write[0].len()) };
    Ok(())
}

macro_rules! aes_fns {
    ($($name:ident => $op:ident, $doc:literal;)*) => {$(
        #[doc = concat!("`int ", stringify!($name), "(struct vaccel_session *sess, const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap, size_t *out_len)`: ", $doc)]
        ///
        /// Key: 16, 24 or 32 bytes; IV: 16 bytes. When `out_cap` is too
        /// small the call returns `VACCEL_ERANGE` and `*out_len` holds the
        /// size needed. `out` may equal `in`.
        ///
        /// # Safety
        /// `sess` as for every op; buffers are NULL or valid for their
        /// lengths; `out_len` is NULL or valid for a write.
        #[unsafe(no_mangle)]
        #[allow(clippy::too_many_arguments)]
        pub unsafe extern "C" fn $name(
            sess: *mut vaccel_session,
            key: *const u8,
            key_len: usize,
            iv: *const u8,
            iv_len: usize,
            in_: *const u8,
            in_len: usize,
            out: *mut u8,
            out_cap: usize,
            out_len: *mut usize,
        ) -> c_int {
            call(stringify!($name), || {
                // SAFETY: caller's contract.
                unsafe { aes(OpType::$op, sess, key, key_len, iv, iv_len, in_, in_len, out, out_cap, out_len) }
            })
        }
    )*};
}

aes_fns! {
    vaccel_aes_cbc_encrypt => AesCbcEncrypt, "AES-CBC encryption with PKCS#7 padding; the ciphertext is `(in_len / 16 + 1) * 16` bytes.";
    vaccel_aes_cbc_decrypt => AesCbcDecrypt, "AES-CBC decryption removing PKCS#7 padding; `in_len` is a non-zero multiple of 16 and `out_cap` must be at least `in_len`.";
}

/// `int vaccel_image_blur_faces(struct vaccel_session *sess, const void
/// *img, size_t len_img, unsigned char *out, size_t out_cap, size_t
/// *out_len, uint32_t *faces)`: the image with every detected face blurred,
/// as JPEG, and the number of faces (`faces` may be NULL). When `out_cap` is
/// too small the call returns `VACCEL_ERANGE` with the size needed in
/// `*out_len` (and the face count set).
///
/// # Safety
/// `sess` as for every op; buffers are NULL or valid for their lengths;
/// `out_len` / `faces` are NULL or valid for writes.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn vaccel_image_blur_faces(
    sess: *mut vaccel_session,
    img: *const c_void,
    len_img: usize,
    out: *mut c_uchar,
    out_cap: usize,
    out_len: *mut usize,
    faces: *mut u32,
) -> c_int {
    call("vaccel_image_blur_faces", || {
        // SAFETY: caller's contract.
        let s = unsafe { session::get(sess) }?;
        if out_len.is_null() {
            return Err(ffi::null("out_len"));
        }
        // SAFETY: caller's contract.
        let image = unsafe { ffi::input(img, len_img, "image") }?;
        // SAFETY: caller's contract.
        let outb = unsafe { ffi::output(out.cast(), out_cap, "out") }?;
        check_disjoint(image, outb, "image and out")?;
        let (jpeg, n) =
            s.image_blur_faces(image, ops::DEFAULT_BLUR_PADDING, ops::DEFAULT_JPEG_QUALITY)?;
        // SAFETY: NULL or valid for writes (caller's contract).
        unsafe {
            ffi::put(faces, n);
            ffi::put(out_len, jpeg.len());
        }
        if jpeg.len() > outb.len() {
            return Err(range_error(format!(
                "image_blur_faces: the JPEG needs {} bytes, out_cap is {out_cap} (*out_len holds the size needed)",
                jpeg.len()
            )));
        }
        outb[..jpeg.len()].copy_from_slice(&jpeg);
        Ok(())
    })
}

// ---------------------------------------------------------------- models

/// # Safety
/// `model` is NULL or an initialised resource.
unsafe fn model_ref<'a>(model: *const vaccel_resource) -> Result<Option<&'a vaccel::Resource>> {
    if model.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { resource::get(model) }.map(Some)
}

/// `int vaccel_model_load(struct vaccel_session *sess, struct
/// vaccel_resource *model)`: prepare a MODEL resource registered to the
/// session (NULL: the plugin's default model).
///
/// # Safety
/// `sess` as for every op; `model` is NULL or an initialised resource.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_model_load(
    sess: *mut vaccel_session,
    model: *mut vaccel_resource,
) -> c_int {
    call("vaccel_model_load", || {
        // SAFETY: caller's contract.
        let (s, m) = unsafe { (session::get(sess)?, model_ref(model)?) };
        s.model_load(m)
    })
}

/// `int vaccel_model_unload(struct vaccel_session *sess, struct
/// vaccel_resource *model)`.
///
/// # Safety
/// As `vaccel_model_load`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_model_unload(
    sess: *mut vaccel_session,
    model: *mut vaccel_resource,
) -> c_int {
    call("vaccel_model_unload", || {
        // SAFETY: caller's contract.
        let (s, m) = unsafe { (session::get(sess)?, model_ref(model)?) };
        s.model_unload(m)
    })
}

/// # Safety
/// Every tensor's pointers are NULL or valid for their sizes.
unsafe fn input_tensor<'a>(i: usize, t: &vaccel_tensor) -> Result<TensorRef<'a>> {
    let what = format!("input tensor {i}");
    let name = if t.name.is_null() {
        ""
    } else {
        // SAFETY: a C string (caller's contract).
        unsafe { ffi::c_str(t.name, &what) }?
    };
    let dtype = DType::from_u32(t.dtype)
        .ok_or_else(|| Error::inval(format!("{what}: unknown dtype {}", t.dtype)))?;
    // SAFETY: valid for `nr_dims` dims (caller's contract).
    let dims = unsafe { ffi::elems(t.dims, t.nr_dims as usize, &format!("{what} dims")) }?;
    let shape = dims
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| Error::inval(format!("{what}: negative dimension {d}")))
        })
        .collect::<Result<Vec<_>>>()?;
    // SAFETY: valid for `size` bytes (caller's contract).
    let data = unsafe { ffi::bytes(t.data, t.size, &format!("{what} data")) }?;
    TensorRef::new(name, dtype, shape, data)
}

fn align_up(v: usize, a: usize) -> Option<usize> {
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

/// Pack tensors into one `malloc`ed block: the structs, then per tensor its
/// dims (8-aligned), name (NUL-terminated) and data (16-aligned).
fn pack(ts: &[Tensor]) -> Result<*mut vaccel_tensor> {
    if ts.is_empty() {
        return Ok(std::ptr::null_mut());
    }
    let overflow = || Error::nomem("model outputs are too large");
    let mut off = ffi::check_size(ts.len(), std::mem::size_of::<vaccel_tensor>(), "outputs")?;
    let mut places = Vec::with_capacity(ts.len());
    for t in ts {
        let dims = align_up(off, 8).ok_or_else(overflow)?;
        let name = dims
            .checked_add(t.shape.len().checked_mul(8).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        let data = align_up(name.checked_add(t.name.len() + 1).ok_or_else(overflow)?, 16)
            .ok_or_else(overflow)?;
        off = data.checked_add(t.data.len()).ok_or_else(overflow)?;
        places.push((dims, name, data));
    }
    let total = ffi::check_size(off, 1, "outputs")?;
    // SAFETY: plain allocation (malloc aligns to at least 16 bytes on the
    // supported targets).
    let base = unsafe { malloc(total.max(1)) }.cast::<u8>();
    if base.is_null() {
        return Err(Error::nomem(format!(
            "cannot allocate {total} bytes for model outputs"
        )));
    }
    for (i, (t, &(d, n, x))) in ts.iter().zip(&places).enumerate() {
        let shape: Vec<i64> = t.shape.iter().map(|&v| v as i64).collect();
        // SAFETY: every offset was computed above within `total` bytes, with
        // the alignment of what is written there; the regions are disjoint.
        unsafe {
            std::ptr::copy_nonoverlapping(
                shape.as_ptr().cast::<u8>(),
                base.add(d),
                shape.len() * 8,
            );
            std::ptr::copy_nonoverlapping(t.name.as_ptr(), base.add(n), t.name.len());
            base.add(n + t.name.len()).write(0);
            std::ptr::copy_nonoverlapping(t.data.as_ptr(), base.add(x), t.data.len());
            base.cast::<vaccel_tensor>().add(i).write(vaccel_tensor {
                name: base.add(n).cast(),
                dtype: t.dtype as u32,
                nr_dims: u32::try_from(t.shape.len()).unwrap_or(u32::MAX),
                dims: base.add(d).cast(),
                data: base.add(x).cast(),
                size: t.data.len(),
            });
        }
    }
    Ok(base.cast())
}

/// `int vaccel_model_run(struct vaccel_session *sess, struct vaccel_resource
/// *model, const struct vaccel_tensor *inputs, size_t nr_inputs, struct
/// vaccel_tensor **outputs, size_t *nr_outputs)`: run a model (NULL: the
/// plugin's default). The outputs are one allocation: free them with
/// `vaccel_tensors_free(*outputs)`.
///
/// # Safety
/// `sess` as for every op; `model` is NULL or an initialised resource;
/// `inputs` is NULL or valid for `nr_inputs` tensors whose pointers are
/// valid for their sizes; `outputs` / `nr_outputs` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_model_run(
    sess: *mut vaccel_session,
    model: *mut vaccel_resource,
    inputs: *const vaccel_tensor,
    nr_inputs: usize,
    outputs: *mut *mut vaccel_tensor,
    nr_outputs: *mut usize,
) -> c_int {
    call("vaccel_model_run", || {
        // SAFETY: caller's contract.
        let (s, m) = unsafe { (session::get(sess)?, model_ref(model)?) };
        if outputs.is_null() || nr_outputs.is_null() {
            return Err(ffi::null("outputs / nr_outputs"));
        }
        // SAFETY: caller's contract.
        let ins = unsafe { ffi::elems(inputs, nr_inputs, "inputs") }?;
        let ts = ins
            .iter()
            .enumerate()
            // SAFETY: caller's contract.
            .map(|(i, t)| unsafe { input_tensor(i, t) })
            .collect::<Result<Vec<_>>>()?;
        let outs = s.model_run(m, &ts)?;
        let block = pack(&outs)?;
        // SAFETY: non-NULL and valid for writes (caller's contract).
        unsafe {
            ffi::put(outputs, block);
            ffi::put(nr_outputs, outs.len());
        }
        Ok(())
    })
}

/// `void vaccel_tensors_free(struct vaccel_tensor *tensors)`: free the
/// outputs of `vaccel_model_run` (NULL is ignored).
///
/// # Safety
/// `tensors` is NULL or an `outputs` block from `vaccel_model_run` not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vaccel_tensors_free(tensors: *mut vaccel_tensor) {
    call_value("vaccel_tensors_free", (), || {
        if !tensors.is_null() {
            // SAFETY: one `malloc` block from `pack` (caller's contract).
            unsafe { free(tensors.cast()) };
        }
    })
}

// ---------------------------------------------------------------- misc

/// `const char *vaccel_op_type_to_str(vaccel_op_type_t op)`: the op's name
/// (`"IMAGE_CLASSIFY"`), or `"UNKNOWN"`.
#[unsafe(no_mangle)]
pub extern "C" fn vaccel_op_type_to_str(op: u32) -> *const c_char {
    call_value("vaccel_op_type_to_str", c"UNKNOWN".as_ptr(), || {
        static NAMES: OnceLock<Vec<(u32, CString)>> = OnceLock::new();
        let names = NAMES.get_or_init(|| {
            OpType::ALL
                .iter()
                .map(|o| (o.id(), CString::new(o.name()).unwrap_or_default()))
                .collect()
        });
        names
            .iter()
            .find(|(id, _)| *id == op)
            .map_or(c"UNKNOWN".as_ptr(), |(_, n)| n.as_ptr())
    })
}

/// `int vaccel_bootstrap(void)`: create the process-wide runtime now (it is
/// otherwise created by the first `vaccel_session_init`), loading the
/// plugins named by `VACCEL_PLUGINS`.
#[unsafe(no_mangle)]
pub extern "C" fn vaccel_bootstrap() -> c_int {
    call("vaccel_bootstrap", || vaccel::runtime().map(|_| ()))
}

/// `int vaccel_cleanup(void)`: accepted for compatibility; the runtime
/// lives until the process exits (plugins are never unloaded).
#[unsafe(no_mangle)]
pub extern "C" fn vaccel_cleanup() -> c_int {
    crate::VACCEL_OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_always_terminated() {
        let mut b = *b"abcd";
        terminate(&mut b, 4);
        assert_eq!(&b, b"abc\0");
        let mut b = *b"ab\0d";
        terminate(&mut b, 3);
        assert_eq!(&b, b"ab\0d");
        let mut b = *b"abcd";
        terminate(&mut b, 1);
        assert_eq!(&b, b"a\0cd");
        terminate(&mut [], 0);
    }

    fn arg(b: &[u8]) -> CArg {
        CArg {
            buf: b.as_ptr().cast_mut().cast(),
            size: b.len(),
            arg_type: 0,
            custom_type_id: 0,
            owned: false,
        }
    }

    #[test]
    fn genop_op_ids_of_every_width() {
        assert_eq!(op_from_arg(&arg(&[22])).unwrap(), OpType::Minmax);
        assert_eq!(
            op_from_arg(&arg(&17u16.to_ne_bytes())).unwrap(),
            OpType::BlasSgemm
        );
        assert_eq!(
            op_from_arg(&arg(&3u32.to_ne_bytes())).unwrap(),
            OpType::ImageClassify
        );
        assert_eq!(
            op_from_arg(&arg(&69u64.to_ne_bytes())).unwrap(),
            OpType::ImageBlurFaces
        );
        for bad in [&[99u8][..], &[0, 0, 0], &(1u64 << 40).to_ne_bytes()] {
            assert_eq!(op_from_arg(&arg(bad)).unwrap_err().code(), Code::Inval);
        }
    }

    #[test]
    fn packed_outputs_are_aligned_and_complete() {
        let a = [1.0f32, 2.0, 3.0];
        let ts = [
            TensorRef::from_f32("first", vec![3], &a)
                .unwrap()
                .into_owned(),
            TensorRef::new("", DType::U8, vec![1, 2], vec![7u8, 8]).unwrap(),
        ];
        let p = pack(&ts).unwrap();
        assert!(!p.is_null());
        // SAFETY: `pack` returned two initialised structs whose pointers
        // point into the same live block.
        unsafe {
            let out = std::slice::from_raw_parts(p, 2);
            assert_eq!(
                std::ffi::CStr::from_ptr(out[0].name).to_str().unwrap(),
                "first"
            );
            assert_eq!(std::slice::from_raw_parts(out[0].dims, 1), &[3]);
            assert_eq!(out[0].data as usize % 16, 0);
            assert_eq!(std::slice::from_raw_parts(out[0].data.cast::<f32>(), 3), &a);
            assert_eq!(std::ffi::CStr::from_ptr(out[1].name).to_str().unwrap(), "");
            assert_eq!((out[1].dtype, out[1].nr_dims, out[1].size), (2, 2, 2));
            assert_eq!(
                std::slice::from_raw_parts(out[1].data.cast::<u8>(), 2),
                &[7, 8]
            );
            vaccel_tensors_free(p);
        }
        assert!(pack(&[]).unwrap().is_null());
    }
}
