//! The ONNX Runtime engine, through the `ort` crate with its library loaded
//! at run time (`load-dynamic`): nothing is downloaded or linked at build time.
//!
//! The library is found, in order, at `ORT_DYLIB_PATH`, then
//! `<models dir>/onnxruntime/libonnxruntime.so*` for each candidate models
//! directory (see [`crate::paths`]). Before `ort` touches it, the library is
//! opened here and checked: it must export `OrtGetApiBase`, report version
//! 1.`MIN_MINOR` or newer and serve the C API version `ort` was built for.
//! `ort` panics when loading fails, so every call into it that can load the
//! library runs under `catch_unwind`. Loading is process-wide and happens
//! once; a failure is remembered and reported as a reason to use tract.

use std::borrow::Cow;
use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::tensor::TensorElementType;
use ort::value::{DynValue, Tensor as OrtTensor, TensorRef as OrtTensorRef, ValueType};
use vaccel_core::{DType, Error, Result, Tensor, TensorRef};

use crate::engine::{Engine, EngineKind, IoSpec, Model, ModelSource, bool_vec, output, pod_vec};

/// The oldest onnxruntime minor version (1.x) this build can drive: the C API
/// version `ort` was compiled against.
pub const MIN_MINOR: u32 = ort::MINOR_VERSION;

/// A loaded onnxruntime library.
#[derive(Debug, Clone)]
pub struct OrtRuntime {
    /// The library file.
    pub path: PathBuf,
    /// Its version string, e.g. `1.22.1`.
    pub version: String,
}

static RUNTIME: OnceLock<std::result::Result<OrtRuntime, String>> = OnceLock::new();

/// The onnxruntime library candidates, in search order.
pub fn candidates(models_dirs: &[PathBuf]) -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut out = Vec::new();
    for dir in models_dirs {
        let dir = dir.join("onnxruntime");
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n == "libonnxruntime.so" || n.starts_with("libonnxruntime.so.")
                })
            })
            .collect();
        // The plain name first (usually a link to the newest), then newest versions first.
        found.sort_by(|a, b| {
            let key = |p: &PathBuf| {
                let n = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .to_string();
                let v: Vec<u32> = n
                    .trim_start_matches("libonnxruntime.so")
                    .split('.')
                    .filter_map(|s| s.parse().ok())
                    .collect();
                (n != "libonnxruntime.so", std::cmp::Reverse(v))
            };
            key(a).cmp(&key(b))
        });
        out.extend(found);
    }
    out
}

/// Parse `1.22.1` into (major, minor).
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split('.');
    let major = it.next()?.trim().parse().ok()?;
    let minor = it.next()?.trim().parse().ok()?;
    Some((major, minor))
}

/// Open `path` and check it is a usable onnxruntime; returns its version.
/// The library stays loaded for the life of the process.
fn preflight(path: &Path) -> std::result::Result<String, String> {
    if !path.is_file() {
        return Err(format!("{}: no such file", path.display()));
    }
    // SAFETY: opening a shared library runs its initialisers. The path is an
    // onnxruntime library chosen by the operator (ORT_DYLIB_PATH or the models
    // directory); loading it is the whole point of this engine.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| format!("{}: cannot load: {e}", path.display()))?;
    // SAFETY: `OrtGetApiBase` has had this signature in every onnxruntime
    // release (it is the entry point of the stable C API).
    let get_base = unsafe {
        lib.get::<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase>(b"OrtGetApiBase\0")
    }
    .map_err(|e| {
        format!(
            "{}: not an onnxruntime library (no OrtGetApiBase): {e}",
            path.display()
        )
    })?;
    // SAFETY: calling the C API entry point; it takes no arguments.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(format!("{}: OrtGetApiBase returned NULL", path.display()));
    }
    // SAFETY: `base` is a non-null pointer to the library's static OrtApiBase.
    let base = unsafe { &*base };
    // SAFETY: GetVersionString takes no arguments and returns a static string or NULL.
    let vptr = unsafe { (base.GetVersionString)() };
    if vptr.is_null() {
        return Err(format!(
            "{}: GetVersionString returned NULL",
            path.display()
        ));
    }
    // SAFETY: non-null, NUL-terminated, static for the library's lifetime (which is the process's: see below).
    let version = unsafe { CStr::from_ptr(vptr) }
        .to_string_lossy()
        .into_owned();
    match parse_version(&version) {
        Some((1, minor)) if minor >= MIN_MINOR => {}
        _ => {
            return Err(format!(
                "{}: onnxruntime {version} is too old or unknown; this build needs 1.{MIN_MINOR} or newer",
                path.display()
            ));
        }
    }
    // SAFETY: GetApi takes the requested API version and returns NULL when unsupported.
    let api = unsafe { (base.GetApi)(MIN_MINOR) };
    if api.is_null() {
        return Err(format!(
            "{}: onnxruntime {version} does not serve C API version {MIN_MINOR}",
            path.display()
        ));
    }
    // Keep the library loaded for the process: `ort` opens the same file again
    // (a reference-counted no-op) and its pointers must never dangle.
    std::mem::forget(lib);
    Ok(version)
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

fn init(models_dirs: &[PathBuf]) -> std::result::Result<OrtRuntime, String> {
    let cands = candidates(models_dirs);
    if cands.is_empty() {
        let dirs: Vec<String> = models_dirs
            .iter()
            .map(|d| d.join("onnxruntime").display().to_string())
            .collect();
        return Err(format!(
            "onnxruntime library not found: set ORT_DYLIB_PATH or put libonnxruntime.so.1.{MIN_MINOR}+ in one of: {}",
            if dirs.is_empty() {
                "(no models directory)".to_string()
            } else {
                dirs.join(", ")
            }
        ));
    }
    let mut errors = Vec::new();
    for path in cands {
        match preflight(&path) {
            Ok(version) => {
                let p = path.to_string_lossy().into_owned();
                let r = catch_unwind(AssertUnwindSafe(|| {
                    ort::init_from(p).with_name("vaccel-onnx").commit()
                }));
                return match r {
                    Ok(Ok(_)) => Ok(OrtRuntime { path, version }),
                    Ok(Err(e)) => Err(format!(
                        "{}: creating the onnxruntime environment failed: {e}",
                        path.display()
                    )),
                    Err(p) => Err(format!(
                        "{}: loading onnxruntime panicked: {}",
                        path.display(),
                        panic_text(&*p)
                    )),
                };
            }
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("; "))
}

/// The process-wide onnxruntime, loading it on first call. Later calls return
/// the first call's outcome (only one library can be bound per process).
pub fn runtime(models_dirs: &[PathBuf]) -> std::result::Result<&'static OrtRuntime, &'static str> {
    match RUNTIME.get_or_init(|| init(models_dirs)) {
        Ok(rt) => Ok(rt),
        Err(e) => Err(e.as_str()),
    }
}

/// The ONNX Runtime engine.
#[derive(Debug)]
pub struct OrtEngine {
    runtime: &'static OrtRuntime,
    threads: usize,
}

impl OrtEngine {
    /// Load onnxruntime (once per process) and make an engine with `threads`
    /// intra-op threads. Errors say why the library could not be used.
    pub fn new(models_dirs: &[PathBuf], threads: usize) -> std::result::Result<OrtEngine, String> {
        let runtime = runtime(models_dirs).map_err(str::to_string)?;
        Ok(OrtEngine {
            runtime,
            threads: threads.max(1),
        })
    }

    /// The loaded library.
    pub fn runtime(&self) -> &OrtRuntime {
        self.runtime
    }
}

fn dtype_of(t: TensorElementType) -> Option<DType> {
    Some(match t {
        TensorElementType::Float32 => DType::F32,
        TensorElementType::Float64 => DType::F64,
        TensorElementType::Uint8 => DType::U8,
        TensorElementType::Int8 => DType::I8,
        TensorElementType::Uint16 => DType::U16,
        TensorElementType::Int16 => DType::I16,
        TensorElementType::Int32 => DType::I32,
        TensorElementType::Int64 => DType::I64,
        TensorElementType::Uint32 => DType::U32,
        TensorElementType::Uint64 => DType::U64,
        TensorElementType::Bool => DType::Bool,
        _ => return None,
    })
}

fn spec(name: &str, vt: &ValueType) -> IoSpec {
    match vt {
        ValueType::Tensor { ty, shape, .. } => IoSpec {
            name: name.to_string(),
            dtype: dtype_of(*ty),
            shape: shape.iter().map(|&d| usize::try_from(d).ok()).collect(),
            type_name: format!("{ty:?}"),
        },
        other => IoSpec {
            name: name.to_string(),
            dtype: None,
            shape: Vec::new(),
            type_name: format!("{other:?}"),
        },
    }
}

fn load_error(name: &str, e: &ort::Error) -> Error {
    use ort::ErrorCode as C;
    match e.code() {
        C::NotImplemented => Error::notsup(format!(
            "onnxruntime cannot run ONNX model '{name}': {} (try VACCEL_ONNX_ENGINE=tract)",
            e.message()
        )),
        C::ExecutionProviderFailure | C::EngineError => Error::backend(format!(
            "onnxruntime failed loading ONNX model '{name}': {}",
            e.message()
        )),
        // Thrown while initialising a session from a malformed graph.
        C::RuntimeException => Error::inval(format!(
            "cannot load ONNX model '{name}' with onnxruntime: {}",
            e.message()
        )),
        // Invalid protobuf, no graph, invalid graph, failed type or shape
        // inference, ...: the file is not a model onnxruntime can read.
        _ => Error::inval(format!("cannot parse ONNX model '{name}': {}", e.message())),
    }
}

impl Engine for OrtEngine {
    fn describe(&self) -> String {
        format!("ort {}", self.runtime.version)
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Ort
    }

    fn load(&self, src: ModelSource<'_>) -> Result<Box<dyn Model>> {
        let name = src.name;
        let threads = self.threads;
        let build = || -> Result<Session> {
            let b = Session::builder()
                .and_then(|b| b.with_optimization_level(GraphOptimizationLevel::Level3))
                .and_then(|b| b.with_intra_threads(threads))
                .and_then(|b| b.with_inter_threads(1))
                .map_err(|e| Error::backend(format!("onnxruntime session options: {e}")))?;
            // A model with external data needs its directory: load from the file then.
            match src.path {
                Some(p) if p.is_file() => b.commit_from_file(p),
                _ => b.commit_from_memory(src.bytes),
            }
            .map_err(|e| load_error(name, &e))
        };
        let build_caught = || {
            catch_unwind(AssertUnwindSafe(build)).unwrap_or_else(|p| {
                Err(Error::inval(format!(
                    "cannot load ONNX model '{name}' with onnxruntime: {}",
                    panic_text(&*p)
                )))
            })
        };
        let session = build_caught()?;
        if session.outputs.is_empty() {
            return Err(Error::inval(format!(
                "cannot parse ONNX model '{name}': the graph has no outputs"
            )));
        }
        let inputs = session
            .inputs
            .iter()
            .map(|i| spec(&i.name, &i.input_type))
            .collect();
        let outputs = session
            .outputs
            .iter()
            .map(|o| spec(&o.name, &o.output_type))
            .collect();
        // `ort` runs a session through `&mut`, so one session serves one
        // call at a time: keep enough sessions that concurrent callers can
        // use every core (cores ÷ intra-op threads; one when each run
        // already uses all cores).
        let mut sessions = vec![Mutex::new(session)];
        for _ in 1..parallel_runs(threads) {
            sessions.push(Mutex::new(build_caught()?));
        }
        Ok(Box::new(OrtModel {
            name: name.to_string(),
            sessions,
            next: AtomicUsize::new(0),
            inputs,
            outputs,
        }))
    }
}

/// How many runs of one model may proceed at once with `threads` intra-op
/// threads each: the cores divided among them, at least one.
fn parallel_runs(threads: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / threads.max(1)).max(1)
}

/// A model loaded by onnxruntime. `ort` needs `&mut Session` to run, so each
/// session serves one run at a time; a model keeps [`parallel_runs`]
/// sessions (each run uses its intra-op threads).
struct OrtModel {
    name: String,
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
}

impl OrtModel {
    /// A free session, or (all busy) the next one in turn, waiting for it.
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        for m in &self.sessions {
            if let Ok(g) = m.try_lock() {
                return g;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        self.sessions[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for OrtModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtModel")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .finish()
    }
}

fn ort_err(name: &str, e: ort::Error) -> Error {
    Error::backend(format!("onnxruntime failed running model '{name}': {e}"))
}

fn to_ort(t: &TensorRef<'_>) -> Result<DynValue> {
    fn mk<T: ort::tensor::PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static>(
        shape: &[usize],
        v: Vec<T>,
    ) -> Result<DynValue> {
        OrtTensor::from_array((shape.to_vec(), v))
            .map(|t| t.into_dyn())
            .map_err(|e| Error::inval(format!("model_run: {e}")))
    }
    let (s, b) = (&t.shape[..], &t.data[..]);
    match t.dtype {
        DType::F32 => mk(s, pod_vec::<f32>(b)),
        DType::F64 => mk(s, pod_vec::<f64>(b)),
        DType::U8 => mk(s, b.to_vec()),
        DType::I8 => mk(s, pod_vec::<i8>(b)),
        DType::U16 => mk(s, pod_vec::<u16>(b)),
        DType::I16 => mk(s, pod_vec::<i16>(b)),
        DType::I32 => mk(s, pod_vec::<i32>(b)),
        DType::I64 => mk(s, pod_vec::<i64>(b)),
        DType::U32 => mk(s, pod_vec::<u32>(b)),
        DType::U64 => mk(s, pod_vec::<u64>(b)),
        DType::Bool => mk(s, bool_vec(&t.name, b)?),
    }
}

fn from_ort(name: &str, v: &DynValue) -> Result<Tensor> {
    fn pod<T: ort::tensor::PrimitiveTensorElementType + bytemuck::Pod>(
        name: &str,
        dt: DType,
        v: &DynValue,
    ) -> Result<Tensor> {
        let (shape, data) = v
            .try_extract_tensor::<T>()
            .map_err(|e| Error::backend(format!("output '{name}': {e}")))?;
        let shape = shape.iter().map(|&d| d.max(0) as usize).collect();
        output(name, dt, shape, bytemuck::cast_slice(data).to_vec())
    }
    let ValueType::Tensor { ty, .. } = v.dtype() else {
        return Err(Error::notsup(format!(
            "output '{name}' is not a tensor ({:?})",
            v.dtype()
        )));
    };
    match dtype_of(*ty) {
        Some(DType::F32) => pod::<f32>(name, DType::F32, v),
        Some(DType::F64) => pod::<f64>(name, DType::F64, v),
        Some(DType::U8) => pod::<u8>(name, DType::U8, v),
        Some(DType::I8) => pod::<i8>(name, DType::I8, v),
        Some(DType::U16) => pod::<u16>(name, DType::U16, v),
        Some(DType::I16) => pod::<i16>(name, DType::I16, v),
        Some(DType::I32) => pod::<i32>(name, DType::I32, v),
        Some(DType::I64) => pod::<i64>(name, DType::I64, v),
        Some(DType::U32) => pod::<u32>(name, DType::U32, v),
        Some(DType::U64) => pod::<u64>(name, DType::U64, v),
        Some(DType::Bool) => {
            let (shape, data) = v
                .try_extract_tensor::<bool>()
                .map_err(|e| Error::backend(format!("output '{name}': {e}")))?;
            let shape = shape.iter().map(|&d| d.max(0) as usize).collect();
            output(
                name,
                DType::Bool,
                shape,
                data.iter().map(|&b| b as u8).collect(),
            )
        }
        None => Err(Error::notsup(format!(
            "output '{name}' has element type {ty:?}, which vAccel tensors cannot carry"
        ))),
    }
}

impl Model for OrtModel {
    fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    fn run(&self, inputs: &[&TensorRef<'_>]) -> Result<Vec<Tensor>> {
        let values: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = inputs
            .iter()
            .zip(&self.inputs)
            .map(|(t, spec)| {
                Ok((
                    Cow::Borrowed(spec.name.as_str()),
                    SessionInputValue::from(to_ort(t)?),
                ))
            })
            .collect::<Result<_>>()?;
        let mut session = self.session();
        let outs = session.run(values).map_err(|e| ort_err(&self.name, e))?;
        self.outputs
            .iter()
            .map(|spec| {
                let v = outs.get(&spec.name).ok_or_else(|| {
                    Error::backend(format!("onnxruntime did not return output '{}'", spec.name))
                })?;
                from_ort(&spec.name, v)
            })
            .collect()
    }

    fn run_f32(
        &self,
        shape: &[usize],
        fill: &mut dyn FnMut(&mut [f32]) -> Result<()>,
    ) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        let mut buf = vec![0f32; n];
        fill(&mut buf)?;
        let input = OrtTensorRef::from_array_view((shape.to_vec(), &buf[..]))
            .map_err(|e| Error::backend(format!("onnxruntime input: {e}")))?;
        let in_name = self
            .inputs
            .first()
            .map(|s| s.name.as_str())
            .ok_or_else(|| Error::inval(format!("model '{}' has no inputs", self.name)))?;
        let out_name = self
            .outputs
            .first()
            .map(|s| s.name.as_str())
            .ok_or_else(|| Error::inval(format!("model '{}' has no outputs", self.name)))?;
        let mut session = self.session();
        let outs = session
            .run(ort::inputs![in_name => input])
            .map_err(|e| ort_err(&self.name, e))?;
        let v = outs.get(out_name).ok_or_else(|| {
            Error::backend(format!("onnxruntime did not return output '{out_name}'"))
        })?;
        let (_, data) = v.try_extract_tensor::<f32>().map_err(|_| {
            Error::inval(format!(
                "model '{}': first output is {:?}, expected f32 scores",
                self.name,
                v.dtype()
            ))
        })?;
        Ok(data.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.22.1"), Some((1, 22)));
        assert_eq!(parse_version("1.9"), Some((1, 9)));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn missing_and_bogus_libraries_are_refused_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            preflight(&dir.path().join("libonnxruntime.so"))
                .unwrap_err()
                .contains("no such file")
        );
        let bogus = dir.path().join("libonnxruntime.so.1.99.0");
        std::fs::write(&bogus, b"not an ELF file").unwrap();
        assert!(preflight(&bogus).unwrap_err().contains("cannot load"));
    }

    #[test]
    fn candidate_order() {
        if std::env::var_os("ORT_DYLIB_PATH").is_some() {
            return; // the variable overrides the directory search
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("onnxruntime");
        std::fs::create_dir(&d).unwrap();
        for n in [
            "libonnxruntime.so.1.9.0",
            "libonnxruntime.so.1.22.1",
            "libonnxruntime_providers_shared.so",
            "libonnxruntime.so",
        ] {
            std::fs::write(d.join(n), b"").unwrap();
        }
        let c = candidates(&[dir.path().to_path_buf()]);
        let names: Vec<_> = c
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "libonnxruntime.so",
                "libonnxruntime.so.1.22.1",
                "libonnxruntime.so.1.9.0"
            ]
        );
    }
}
