//! Named, typed tensors for MODEL_RUN.

use std::borrow::Cow;
use std::fmt;

use crate::codec::{Reader, Writer};
use crate::{Error, Result};

/// Element types, numbered as ONNX's `TensorProto.DataType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DType {
    /// 32-bit float.
    F32 = 1,
    /// 8-bit unsigned.
    U8 = 2,
    /// 8-bit signed.
    I8 = 3,
    /// 16-bit unsigned.
    U16 = 4,
    /// 16-bit signed.
    I16 = 5,
    /// 32-bit signed.
    I32 = 6,
    /// 64-bit signed.
    I64 = 7,
    /// Boolean (one byte).
    Bool = 9,
    /// 64-bit float.
    F64 = 11,
    /// 32-bit unsigned.
    U32 = 12,
    /// 64-bit unsigned.
    U64 = 13,
}

impl DType {
    /// From the ONNX number.
    pub fn from_u32(v: u32) -> Option<DType> {
        Some(match v {
            1 => DType::F32,
            2 => DType::U8,
            3 => DType::I8,
            4 => DType::U16,
            5 => DType::I16,
            6 => DType::I32,
            7 => DType::I64,
            9 => DType::Bool,
            11 => DType::F64,
            12 => DType::U32,
            13 => DType::U64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 | DType::Bool => 1,
            DType::U16 | DType::I16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::I64 | DType::F64 | DType::U64 => 8,
        }
    }

    /// Lower-case name, e.g. `f32`.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::U8 => "u8",
            DType::I8 => "i8",
            DType::U16 => "u16",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
            DType::F64 => "f64",
            DType::U32 => "u32",
            DType::U64 => "u64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A tensor that borrows its data.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef<'a> {
    /// Input or output name (may be empty: positional).
    pub name: Cow<'a, str>,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Raw little-endian element bytes, row-major.
    pub data: Cow<'a, [u8]>,
}

/// An owned tensor.
pub type Tensor = TensorRef<'static>;

fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl<'a> TensorRef<'a> {
    /// A tensor over raw bytes; checks that the size matches the shape.
    pub fn new(
        name: impl Into<Cow<'a, str>>,
        dtype: DType,
        shape: Vec<usize>,
        data: impl Into<Cow<'a, [u8]>>,
    ) -> Result<Self> {
        let t = TensorRef {
            name: name.into(),
            dtype,
            shape,
            data: data.into(),
        };
        t.validate()?;
        Ok(t)
    }

    /// An `f32` tensor borrowing `v`.
    pub fn from_f32(
        name: impl Into<Cow<'a, str>>,
        shape: Vec<usize>,
        v: &'a [f32],
    ) -> Result<Self> {
        TensorRef::new(name, DType::F32, shape, bytemuck::cast_slice::<f32, u8>(v))
    }

    /// Check that the data length equals elements × element size.
    pub fn validate(&self) -> Result<()> {
        let n = element_count(&self.shape)
            .and_then(|n| n.checked_mul(self.dtype.size()))
            .ok_or_else(|| {
                Error::inval(format!(
                    "tensor '{}': shape {:?} overflows",
                    self.name, self.shape
                ))
            })?;
        if n != self.data.len() {
            return Err(Error::inval(format!(
                "tensor '{}': shape {:?} of {} needs {} bytes, got {}",
                self.name,
                self.shape,
                self.dtype,
                n,
                self.data.len()
            )));
        }
        Ok(())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        element_count(&self.shape).unwrap_or(0)
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The data as `f32`s (an error for other dtypes).
    pub fn as_f32(&self) -> Result<Cow<'_, [f32]>> {
        if self.dtype != DType::F32 {
            return Err(Error::inval(format!(
                "tensor '{}' is {}, not f32",
                self.name, self.dtype
            )));
        }
        Ok(match bytemuck::try_cast_slice(&self.data) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(bytemuck::pod_collect_to_vec(&self.data)),
        })
    }

    /// An owned copy.
    pub fn into_owned(self) -> Tensor {
        TensorRef {
            name: Cow::Owned(self.name.into_owned()),
            dtype: self.dtype,
            shape: self.shape,
            data: Cow::Owned(self.data.into_owned()),
        }
    }

    /// Encode the header (name, dtype, shape) — the data travels separately.
    pub fn encode_header(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.str(&self.name)
            .u32(self.dtype as u32)
            .u32(self.shape.len() as u32);
        for &d in &self.shape {
            w.u64(d as u64);
        }
        w.finish()
    }

    /// Decode a header and pair it with `data`; validates sizes.
    pub fn decode_with_data(header: &'a [u8], data: &'a [u8]) -> Result<TensorRef<'a>> {
        let mut r = Reader::new(header, "tensor header");
        let t = decode_header(&mut r, Cow::Borrowed(data))?;
        r.finish()?;
        Ok(t)
    }
}

fn decode_header<'a>(r: &mut Reader<'a>, data: Cow<'a, [u8]>) -> Result<TensorRef<'a>> {
    let name = r.str()?;
    let dt = r.u32()?;
    let dtype = DType::from_u32(dt)
        .ok_or_else(|| Error::inval(format!("tensor '{name}': unknown dtype {dt}")))?;
    let ndims = r.count(8)?;
    if ndims > 16 {
        return Err(Error::inval(format!(
            "tensor '{name}': {ndims} dimensions (at most 16)"
        )));
    }
    let mut shape = Vec::with_capacity(ndims);
    for _ in 0..ndims {
        shape.push(
            usize::try_from(r.u64()?).map_err(|_| Error::inval("tensor dimension overflows"))?,
        );
    }
    TensorRef::new(Cow::Borrowed(name), dtype, shape, data)
}

/// Encode a list of tensors into one buffer.
pub fn encode_tensors(ts: &[TensorRef<'_>]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(ts.len() as u32);
    for t in ts {
        w.str(&t.name).u32(t.dtype as u32).u32(t.shape.len() as u32);
        for &d in &t.shape {
            w.u64(d as u64);
        }
        w.long_bytes(&t.data);
    }
    w.finish()
}

/// Decode a list of tensors (borrowing from `buf`).
pub fn decode_tensors(buf: &[u8]) -> Result<Vec<TensorRef<'_>>> {
    let mut r = Reader::new(buf, "tensor list");
    let n = r.count(4 + 4 + 4 + 8)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.str()?;
        let dt = r.u32()?;
        let ndims = r.count(8)?;
        let mut shape = Vec::with_capacity(ndims.min(16));
        for _ in 0..ndims {
            shape.push(
                usize::try_from(r.u64()?)
                    .map_err(|_| Error::inval("tensor dimension overflows"))?,
            );
        }
        let data = r.long_bytes()?;
        let dtype = DType::from_u32(dt)
            .ok_or_else(|| Error::inval(format!("tensor '{name}': unknown dtype {dt}")))?;
        out.push(TensorRef::new(
            Cow::Borrowed(name),
            dtype,
            shape,
            Cow::Borrowed(data),
        )?);
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let v = [1.0f32; 6];
        let t = TensorRef::from_f32("x", vec![2, 3], &v).unwrap();
        assert_eq!(t.len(), 6);
        let e = TensorRef::from_f32("x", vec![2, 2], &v).unwrap_err();
        assert!(e.message().contains("needs 16 bytes, got 24"));
        assert!(TensorRef::new("x", DType::F32, vec![usize::MAX, 2], vec![]).is_err());
    }

    #[test]
    fn list_round_trip() {
        let a = [1.0f32, 2.0];
        let ts = vec![
            TensorRef::from_f32("a", vec![2], &a).unwrap(),
            TensorRef::new("b", DType::U8, vec![1, 3], vec![1u8, 2, 3]).unwrap(),
        ];
        let enc = encode_tensors(&ts);
        let back = decode_tensors(&enc).unwrap();
        assert_eq!(back, ts);
        assert_eq!(&*back[0].as_f32().unwrap(), &a);
        assert!(back[1].as_f32().is_err());
        for cut in 0..enc.len() {
            assert!(decode_tensors(&enc[..cut]).is_err());
        }
    }

    #[test]
    fn header_round_trip() {
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let t = TensorRef::from_f32("input", vec![1, 4], &a).unwrap();
        let h = t.encode_header();
        let d = TensorRef::decode_with_data(&h, &t.data).unwrap();
        assert_eq!(d, t);
        assert!(TensorRef::decode_with_data(&h, &t.data[..4]).is_err());
    }
}
