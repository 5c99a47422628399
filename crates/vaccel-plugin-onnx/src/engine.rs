//! The engine abstraction: something that loads an ONNX model and runs it.
//!
//! Two engines implement it: [`crate::tract_engine`] (pure Rust, always
//! available) and [`crate::ort_engine`] (ONNX Runtime, loaded at run time).
//! Input checking against the model's declared inputs is shared here so both
//! engines refuse the same bad inputs with the same messages.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use vaccel_core::{DType, Error, Result, Tensor, TensorRef};

/// Which engine to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// ONNX Runtime when its library loads, tract otherwise.
    Auto,
    /// tract, the pure-Rust engine.
    Tract,
    /// ONNX Runtime (falls back to tract, with a warning, when its library is missing).
    Ort,
}

impl EngineKind {
    /// Parse `auto`, `tract` or `ort` (any case; `onnxruntime` is accepted for `ort`).
    pub fn parse(s: &str) -> Result<EngineKind> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(EngineKind::Auto),
            "tract" => Ok(EngineKind::Tract),
            "ort" | "onnxruntime" => Ok(EngineKind::Ort),
            other => Err(Error::inval(format!(
                "unknown ONNX engine '{other}' (VACCEL_ONNX_ENGINE): use auto, tract or ort"
            ))),
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Auto => "auto",
            EngineKind::Tract => "tract",
            EngineKind::Ort => "ort",
        })
    }
}

/// A declared model input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoSpec {
    /// Name in the ONNX graph.
    pub name: String,
    /// Element type; `None` when the model uses a type vAccel tensors cannot carry.
    pub dtype: Option<DType>,
    /// Shape; `None` marks a dynamic (symbolic) dimension.
    pub shape: Vec<Option<usize>>,
    /// The engine's own name for the type, for messages.
    pub type_name: String,
}

/// Formats a declared shape as `[1, 3, ?, ?]`.
pub fn shape_text(shape: &[Option<usize>]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| d.map_or_else(|| "?".to_string(), |v| v.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Where a model comes from: its bytes, and the file on disk when there is one
/// (engines prefer the path so that external-data files next to it are found).
#[derive(Debug, Clone, Copy)]
pub struct ModelSource<'a> {
    /// Name for messages (a file name).
    pub name: &'a str,
    /// The model bytes.
    pub bytes: &'a [u8],
    /// The file the bytes came from, if any.
    pub path: Option<&'a Path>,
}

/// An engine: loads models.
pub trait Engine: Send + Sync + fmt::Debug {
    /// Short description shown by `vaccel plugins`: `tract` or `ort 1.22.1`.
    fn describe(&self) -> String;
    /// The engine kind.
    fn kind(&self) -> EngineKind;
    /// Parse and prepare a model. A file that is not ONNX gives `EINVAL`
    /// "cannot parse ONNX model …"; a model the engine cannot run gives `ENOTSUP`.
    fn load(&self, src: ModelSource<'_>) -> Result<Box<dyn Model>>;
}

/// A loaded, optimised model, ready to run from many threads.
pub trait Model: Send + Sync + fmt::Debug {
    /// Declared inputs, in graph order.
    fn inputs(&self) -> &[IoSpec];
    /// Declared outputs, in graph order.
    fn outputs(&self) -> &[IoSpec];
    /// Run with inputs already checked by [`order_inputs`] (one per declared
    /// input, in graph order). Returns every output, named.
    fn run(&self, inputs: &[&TensorRef<'_>]) -> Result<Vec<Tensor>>;
    /// Fast path for image models: run with a single `f32` input of `shape`,
    /// which `fill` writes in place (no copy), and return the first output as
    /// `f32`s.
    fn run_f32(
        &self,
        shape: &[usize],
        fill: &mut dyn FnMut(&mut [f32]) -> Result<()>,
    ) -> Result<Vec<f32>>;
}

/// Match `given` tensors to the model's declared inputs (by name; empty names
/// are positional) and check dtype and shape. Returns them in graph order.
pub fn order_inputs<'t, 'a>(
    specs: &[IoSpec],
    given: &'t [TensorRef<'a>],
) -> Result<Vec<&'t TensorRef<'a>>> {
    if given.len() != specs.len() {
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        return Err(Error::inval(format!(
            "model_run: the model has {} input(s) ({}), got {} tensor(s)",
            specs.len(),
            names.join(", "),
            given.len()
        )));
    }
    let mut slots: Vec<Option<&'t TensorRef<'a>>> = vec![None; specs.len()];
    // Named tensors first, then positional ones fill the remaining slots in order.
    for t in given.iter().filter(|t| !t.name.is_empty()) {
        let Some(i) = specs.iter().position(|s| s.name == t.name) else {
            let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::inval(format!(
                "model_run: the model has no input named '{}': its inputs are {}",
                t.name,
                names.join(", ")
            )));
        };
        if slots[i].is_some() {
            return Err(Error::inval(format!(
                "model_run: input '{}' given twice",
                t.name
            )));
        }
        slots[i] = Some(t);
    }
    let mut free = (0..specs.len())
        .filter(|&i| slots[i].is_none())
        .collect::<Vec<_>>()
        .into_iter();
    for t in given.iter().filter(|t| t.name.is_empty()) {
        // Counts match and named ones were unique, so a free slot exists.
        let i = free.next().ok_or_else(|| {
            Error::inval("model_run: more positional inputs than free model inputs")
        })?;
        slots[i] = Some(t);
    }
    let mut out = Vec::with_capacity(specs.len());
    for (spec, slot) in specs.iter().zip(slots) {
        let t = slot
            .ok_or_else(|| Error::inval(format!("model_run: input '{}' is missing", spec.name)))?;
        check_input(spec, t)?;
        out.push(t);
    }
    Ok(out)
}

fn check_input(spec: &IoSpec, t: &TensorRef<'_>) -> Result<()> {
    let Some(want) = spec.dtype else {
        return Err(Error::notsup(format!(
            "model_run: input '{}' has element type {}, which vAccel tensors cannot carry",
            spec.name, spec.type_name
        )));
    };
    if t.dtype != want {
        return Err(Error::inval(format!(
            "model_run: input '{}' expects {want} elements, got {}",
            spec.name, t.dtype
        )));
    }
    let fits = t.shape.len() == spec.shape.len()
        && spec
            .shape
            .iter()
            .zip(&t.shape)
            .all(|(d, &g)| d.is_none_or(|d| d == g));
    if !fits {
        return Err(Error::inval(format!(
            "model_run: input '{}' expects shape {} ('?' = any size), got {:?}",
            spec.name,
            shape_text(&spec.shape),
            t.shape
        )));
    }
    t.validate()
}

/// Copy tensor bytes into a `Vec<T>` (the bytes may be unaligned).
pub fn pod_vec<T: bytemuck::Pod>(b: &[u8]) -> Vec<T> {
    bytemuck::pod_collect_to_vec(b)
}

/// Bool tensor bytes as `bool`s; any byte other than 0 or 1 is `EINVAL`.
pub fn bool_vec(name: &str, b: &[u8]) -> Result<Vec<bool>> {
    b.iter()
        .map(|&v| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::inval(format!(
                "model_run: input '{name}' is bool but holds the byte {v} (use 0 or 1)"
            ))),
        })
        .collect()
}

/// An owned output tensor.
pub fn output(name: &str, dtype: DType, shape: Vec<usize>, bytes: Vec<u8>) -> Result<Tensor> {
    TensorRef::new(
        Cow::Owned(name.to_string()),
        dtype,
        shape,
        Cow::Owned(bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, dtype: DType, shape: &[Option<usize>]) -> IoSpec {
        IoSpec {
            name: name.into(),
            dtype: Some(dtype),
            shape: shape.to_vec(),
            type_name: dtype.name().into(),
        }
    }

    #[test]
    fn matching_by_name_and_position() {
        let specs = [
            spec("a", DType::F32, &[Some(2)]),
            spec("b", DType::I64, &[None]),
        ];
        let fa = [1.0f32, 2.0];
        let ib = 7i64.to_le_bytes();
        let a = TensorRef::from_f32("", vec![2], &fa).unwrap();
        let b = TensorRef::new("b", DType::I64, vec![1], &ib[..]).unwrap();
        let given = [b.clone(), a.clone()];
        let ordered = order_inputs(&specs, &given).unwrap();
        assert_eq!(ordered[0], &a);
        assert_eq!(ordered[1], &b);

        let e = order_inputs(&specs, std::slice::from_ref(&a)).unwrap_err();
        assert!(e.message().contains("has 2 input(s) (a, b), got 1"), "{e}");
        let c = TensorRef::new("c", DType::I64, vec![1], &ib[..]).unwrap();
        let e = order_inputs(&specs, &[a.clone(), c]).unwrap_err();
        assert!(e.message().contains("no input named 'c'"), "{e}");
        let wrong = TensorRef::new("b", DType::I32, vec![2], &ib[..]).unwrap();
        let e = order_inputs(&specs, &[a.clone(), wrong]).unwrap_err();
        assert!(
            e.message()
                .contains("input 'b' expects i64 elements, got i32"),
            "{e}"
        );
        let fa3 = [1.0f32; 3];
        let a3 = TensorRef::from_f32("a", vec![3], &fa3).unwrap();
        let e = order_inputs(&specs, &[a3, b]).unwrap_err();
        assert!(e.message().contains("input 'a' expects shape [2]"), "{e}");
        assert!(e.message().contains("got [3]"), "{e}");
    }

    #[test]
    fn engine_kind_parse() {
        assert_eq!(EngineKind::parse("ORT").unwrap(), EngineKind::Ort);
        assert_eq!(EngineKind::parse("tract").unwrap(), EngineKind::Tract);
        assert_eq!(EngineKind::parse("").unwrap(), EngineKind::Auto);
        assert!(
            EngineKind::parse("tensorflow")
                .unwrap_err()
                .message()
                .contains("use auto, tract or ort")
        );
    }

    #[test]
    fn bools() {
        assert_eq!(bool_vec("x", &[0, 1]).unwrap(), vec![false, true]);
        assert!(
            bool_vec("x", &[2])
                .unwrap_err()
                .message()
                .contains("byte 2")
        );
    }
}
