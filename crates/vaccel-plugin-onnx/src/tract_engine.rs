//! The tract engine: pure Rust, always available.

use std::sync::Arc;

use tract_linalg::multithread::Executor;
use tract_onnx::pb;
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::DimLike;
use vaccel_core::{DType, Error, Result};

use crate::engine::{Engine, EngineKind, IoSpec, Model, ModelSource, bool_vec, output, pod_vec};

type Plan = TypedSimplePlan<TypedModel>;

/// The tract engine. Matrix products run on `threads` threads.
pub struct TractEngine {
    threads: usize,
    executor: Option<Executor>,
}

impl std::fmt::Debug for TractEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractEngine")
            .field("threads", &self.threads)
            .finish()
    }
}

impl TractEngine {
    /// An engine using `threads` threads (1: no thread pool).
    pub fn new(threads: usize) -> TractEngine {
        let threads = threads.max(1);
        let executor =
            (threads > 1).then(|| Executor::multithread_with_name(threads, "vaccel-tract"));
        TractEngine { threads, executor }
    }
}

fn err_chain(e: &TractError) -> String {
    format!("{e:#}")
}

/// The vAccel dtype of a tract datum type, if it has one.
fn dtype_of(dt: DatumType) -> Option<DType> {
    Some(match dt {
        DatumType::F32 => DType::F32,
        DatumType::F64 => DType::F64,
        DatumType::U8 => DType::U8,
        DatumType::I8 => DType::I8,
        DatumType::U16 => DType::U16,
        DatumType::I16 => DType::I16,
        DatumType::I32 => DType::I32,
        DatumType::I64 => DType::I64,
        DatumType::U32 => DType::U32,
        DatumType::U64 => DType::U64,
        DatumType::Bool => DType::Bool,
        _ => return None,
    })
}

fn spec(name: String, fact: &TypedFact) -> IoSpec {
    IoSpec {
        name,
        dtype: dtype_of(fact.datum_type),
        shape: fact.shape.iter().map(|d| d.to_usize().ok()).collect(),
        type_name: format!("{:?}", fact.datum_type),
    }
}

impl Engine for TractEngine {
    fn describe(&self) -> String {
        "tract".to_string()
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Tract
    }

    fn load(&self, src: ModelSource<'_>) -> Result<Box<dyn Model>> {
        // tract may panic on malformed graphs: a bad file must stay an EINVAL.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.load_inner(src)))
            .unwrap_or_else(|p| {
                let why = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                Err(Error::inval(format!(
                    "cannot parse ONNX model '{}': tract failed on it: {why}",
                    src.name
                )))
            })
    }
}

impl TractEngine {
    fn load_inner(&self, src: ModelSource<'_>) -> Result<Box<dyn Model>> {
        let onnx = tract_onnx::onnx();
        let proto: pb::ModelProto =
            onnx.proto_model_for_read(&mut &src.bytes[..])
                .map_err(|e| {
                    Error::inval(format!(
                        "cannot parse ONNX model '{}': {}",
                        src.name,
                        err_chain(&e)
                    ))
                })?;
        if proto.graph.as_ref().is_none_or(|g| g.output.is_empty()) {
            return Err(Error::inval(format!(
                "cannot parse ONNX model '{}': it has no graph or the graph has no outputs (is it an ONNX file?)",
                src.name
            )));
        }
        let dir = src.path.and_then(|p| p.parent()).and_then(|d| d.to_str());
        let parsed = onnx.parse(&proto, dir).map_err(|e| {
            Error::inval(format!(
                "cannot parse ONNX model '{}': {}",
                src.name,
                err_chain(&e)
            ))
        })?;
        if !parsed.unresolved_inputs.is_empty() {
            return Err(Error::inval(format!(
                "cannot parse ONNX model '{}': unresolved graph inputs {:?}",
                src.name, parsed.unresolved_inputs
            )));
        }
        let model = parsed.model;
        // Output names as the graph declares them; optimisation keeps the order.
        let out_names: Vec<String> = model
            .output_outlets()
            .map_err(|e| Error::inval(format!("ONNX model '{}': {}", src.name, err_chain(&e))))?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .unwrap_or(&model.node(o.node).name)
                    .to_string()
            })
            .collect();
        let typed = model.into_optimized().map_err(|e| {
            Error::notsup(format!(
                "the tract engine cannot prepare ONNX model '{}': {} (try VACCEL_ONNX_ENGINE=ort)",
                src.name,
                err_chain(&e)
            ))
        })?;
        let inputs = typed
            .input_outlets()
            .and_then(|ins| {
                ins.iter()
                    .map(|o| {
                        Ok(spec(
                            typed.node(o.node).name.clone(),
                            typed.outlet_fact(*o)?,
                        ))
                    })
                    .collect::<TractResult<Vec<_>>>()
            })
            .map_err(|e| Error::inval(format!("ONNX model '{}': {}", src.name, err_chain(&e))))?;
        let outputs = typed
            .output_outlets()
            .and_then(|outs| {
                outs.iter()
                    .zip(&out_names)
                    .map(|(o, n)| Ok(spec(n.clone(), typed.outlet_fact(*o)?)))
                    .collect::<TractResult<Vec<_>>>()
            })
            .map_err(|e| Error::inval(format!("ONNX model '{}': {}", src.name, err_chain(&e))))?;
        let options = PlanOptions {
            executor: self.executor.clone(),
            ..Default::default()
        };
        let plan = typed.into_runnable_with_options(&options).map_err(|e| {
            Error::notsup(format!(
                "the tract engine cannot plan ONNX model '{}': {}",
                src.name,
                err_chain(&e)
            ))
        })?;
        Ok(Box::new(TractModel {
            name: src.name.to_string(),
            plan: Arc::new(plan),
            inputs,
            outputs,
        }))
    }
}

/// A model prepared by tract. The plan is shared; each run gets its own state.
struct TractModel {
    name: String,
    plan: Arc<Plan>,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
}

impl std::fmt::Debug for TractModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TractModel")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .finish()
    }
}

fn array<T: Datum>(shape: &[usize], v: Vec<T>) -> Result<Tensor> {
    tract_ndarray::ArrayD::from_shape_vec(tract_ndarray::IxDyn(shape), v)
        .map(Tensor::from)
        .map_err(|e| Error::inval(format!("model_run: {e}")))
}

fn to_tract(t: &vaccel_core::TensorRef<'_>) -> Result<Tensor> {
    let (s, b) = (&t.shape[..], &t.data[..]);
    match t.dtype {
        DType::F32 => array(s, pod_vec::<f32>(b)),
        DType::F64 => array(s, pod_vec::<f64>(b)),
        DType::U8 => array(s, b.to_vec()),
        DType::I8 => array(s, pod_vec::<i8>(b)),
        DType::U16 => array(s, pod_vec::<u16>(b)),
        DType::I16 => array(s, pod_vec::<i16>(b)),
        DType::I32 => array(s, pod_vec::<i32>(b)),
        DType::I64 => array(s, pod_vec::<i64>(b)),
        DType::U32 => array(s, pod_vec::<u32>(b)),
        DType::U64 => array(s, pod_vec::<u64>(b)),
        DType::Bool => array(s, bool_vec(&t.name, b)?),
    }
}

impl TractModel {
    fn exec(&self, inputs: TVec<TValue>) -> Result<TVec<TValue>> {
        self.plan.run(inputs).map_err(|e| {
            Error::backend(format!(
                "tract failed running model '{}': {}",
                self.name,
                err_chain(&e)
            ))
        })
    }
}

impl Model for TractModel {
    fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    fn run(&self, inputs: &[&vaccel_core::TensorRef<'_>]) -> Result<Vec<vaccel_core::Tensor>> {
        let tv = inputs
            .iter()
            .map(|t| to_tract(t).map(IntoTValue::into_tvalue))
            .collect::<Result<TVec<_>>>()?;
        let outs = self.exec(tv)?;
        outs.iter()
            .zip(&self.outputs)
            .map(|(t, spec)| {
                let dt = dtype_of(t.datum_type()).ok_or_else(|| {
                    Error::notsup(format!(
                        "output '{}' has element type {:?}, which vAccel tensors cannot carry",
                        spec.name,
                        t.datum_type()
                    ))
                })?;
                output(&spec.name, dt, t.shape().to_vec(), t.as_bytes().to_vec())
            })
            .collect()
    }

    fn run_f32(
        &self,
        shape: &[usize],
        fill: &mut dyn FnMut(&mut [f32]) -> Result<()>,
    ) -> Result<Vec<f32>> {
        let mut t = Tensor::zero::<f32>(shape)
            .map_err(|e| Error::inval(format!("input shape {shape:?}: {e}")))?;
        fill(
            t.as_slice_mut::<f32>()
                .map_err(|e| Error::backend(e.to_string()))?,
        )?;
        let outs = self.exec(tvec![t.into_tvalue()])?;
        let first = outs
            .first()
            .ok_or_else(|| Error::backend(format!("model '{}' produced no output", self.name)))?;
        let v = first.as_slice::<f32>().map_err(|_| {
            Error::inval(format!(
                "model '{}': first output is {:?}, expected f32 scores",
                self.name,
                first.datum_type()
            ))
        })?;
        Ok(v.to_vec())
    }
}
