//! # vaccel-plugin-onnx
//!
//! The `onnx` plugin (types `CPU|SOFTWARE`): IMAGE_CLASSIFY with an ImageNet
//! classifier, and MODEL_LOAD / MODEL_UNLOAD / MODEL_RUN on any ONNX model
//! registered to a session as a MODEL resource.
//!
//! Two engines run the models (see [`EngineKind`]): tract, pure Rust and
//! always available, and ONNX Runtime, whose shared library is loaded at run
//! time when it can be found (`ORT_DYLIB_PATH`, or
//! `<models dir>/onnxruntime/libonnxruntime.so*`). `VACCEL_ONNX_ENGINE`
//! chooses (`auto`, the default, prefers ONNX Runtime); the active engine is
//! listed in [`PluginInfo::details`] as `engine`.
//!
//! Environment: `VACCEL_ONNX_ENGINE`, `VACCEL_ONNX_THREADS` (default: all
//! cores), `ORT_DYLIB_PATH`, `VACCEL_MODELS_DIR` (default `models/`, see
//! [`paths`]), `VACCEL_MAX_IMAGE_PIXELS` (default 40 000 000).
//!
//! IMAGE_CLASSIFY uses the first MODEL resource registered to the session
//! (its labels: a file of the same resource whose name contains `labels` and
//! ends in `.txt`, else the default labels), or, with none, the default model
//! `efficientnet-lite0.onnx` and `imagenet-labels.txt` from the models
//! directory. Images are preprocessed as [`preprocess`] describes. The
//! image-name output carries the model's file name (no annotated image is
//! produced).

pub mod engine;
pub mod faces;
pub mod labels;
pub mod ort_engine;
pub mod paths;
pub mod preprocess;
pub mod tract_engine;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use vaccel_core::ops::{Classify, ModelRef, ModelRun};
use vaccel_core::{
    Arg, ArgOut, DType, Error, OpCtx, OpSet, OpType, Plugin, PluginInfo, PluginType, Resource,
    ResourceId, ResourceType, Result, SessionId,
};

pub use engine::{Engine, EngineKind, IoSpec, Model, ModelSource};
pub use labels::Labels;
pub use preprocess::{DEFAULT_MAX_PIXELS, Layout};

/// Plugin name.
pub const NAME: &str = "onnx";

/// One line for `vaccel plugins --available`.
pub const DESCRIPTION: &str = "IMAGE_CLASSIFY and MODEL_LOAD/UNLOAD/RUN on ONNX models (tract, or ONNX Runtime when its library is found)";

/// Resource id that MODEL_* ops use for the default classification model.
pub const DEFAULT_MODEL_ID: ResourceId = 0;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a classification model takes its image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInput {
    /// Tensor layout.
    pub layout: Layout,
    /// Crop height.
    pub height: usize,
    /// Crop width.
    pub width: usize,
}

impl ImageInput {
    /// The input tensor shape.
    pub fn shape(&self) -> Vec<usize> {
        match self.layout {
            Layout::Nchw => vec![1, 3, self.height, self.width],
            Layout::Nhwc => vec![1, self.height, self.width, 3],
        }
    }

    /// Recognise `f32 [1, 3, H, W]` or `f32 [1, H, W, 3]` (dynamic sizes: 224).
    fn detect(model: &dyn Model) -> Option<ImageInput> {
        let [inp] = model.inputs() else { return None };
        if inp.dtype != Some(DType::F32)
            || inp.shape.len() != 4
            || !matches!(inp.shape[0], None | Some(1))
        {
            return None;
        }
        let size = |d: Option<usize>| d.unwrap_or(224);
        if inp.shape[1] == Some(3) {
            Some(ImageInput {
                layout: Layout::Nchw,
                height: size(inp.shape[2]),
                width: size(inp.shape[3]),
            })
        } else if inp.shape[3] == Some(3) {
            Some(ImageInput {
                layout: Layout::Nhwc,
                height: size(inp.shape[1]),
                width: size(inp.shape[2]),
            })
        } else {
            None
        }
    }
}

/// A model ready to run, with what classification needs.
#[derive(Debug)]
pub struct Loaded {
    /// File name of the model.
    pub name: String,
    /// The model.
    pub model: Box<dyn Model>,
    /// Class names for classification.
    pub labels: Arc<Labels>,
    /// Image input, when the model looks like an image classifier.
    pub image_input: Option<ImageInput>,
}

/// A cache slot: concurrent first users wait for one load.
type Slot = Arc<Mutex<Option<Arc<Loaded>>>>;

/// Settings of the plugin.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Engine requested.
    pub engine: EngineKind,
    /// Threads for either engine.
    pub threads: usize,
    /// Largest image accepted, in pixels.
    pub max_pixels: u64,
    /// Explicit models directory (else `VACCEL_MODELS_DIR` and the defaults).
    pub models_dir: Option<PathBuf>,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn env_parse<T: std::str::FromStr>(var: &str, what: &str) -> Option<T> {
    let v = std::env::var(var).ok()?;
    let v = v.trim();
    if v.is_empty() {
        return None;
    }
    match v.parse() {
        Ok(x) => Some(x),
        Err(_) => {
            tracing::warn!("{var}='{v}' is not {what}; using the default");
            None
        }
    }
}

impl Settings {
    /// Settings from the environment; invalid values are warned about and
    /// replaced by defaults.
    pub fn from_env() -> Settings {
        let engine = match std::env::var("VACCEL_ONNX_ENGINE") {
            Ok(v) => EngineKind::parse(&v).unwrap_or_else(|e| {
                tracing::warn!("{}; using auto", e.message());
                EngineKind::Auto
            }),
            Err(_) => EngineKind::Auto,
        };
        Settings {
            engine,
            threads: env_parse::<usize>("VACCEL_ONNX_THREADS", "a thread count")
                .filter(|&n| n > 0)
                .unwrap_or_else(default_threads),
            max_pixels: env_parse::<u64>("VACCEL_MAX_IMAGE_PIXELS", "a pixel count")
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_MAX_PIXELS),
            models_dir: None,
        }
    }
}

/// Builder for [`OnnxPlugin`]; unset fields come from the environment.
#[derive(Debug, Clone, Default)]
pub struct OnnxPluginBuilder {
    engine: Option<EngineKind>,
    threads: Option<usize>,
    max_pixels: Option<u64>,
    models_dir: Option<PathBuf>,
}

impl OnnxPluginBuilder {
    /// Engine to use.
    pub fn engine(mut self, kind: EngineKind) -> Self {
        self.engine = Some(kind);
        self
    }

    /// Threads for either engine (at least 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// Largest image accepted, in pixels.
    pub fn max_pixels(mut self, n: u64) -> Self {
        self.max_pixels = Some(n);
        self
    }

    /// Directory of the default model, its labels and `onnxruntime/`.
    pub fn models_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models_dir = Some(dir.into());
        self
    }

    /// Build. Never fails: an ONNX Runtime that cannot be loaded means tract.
    pub fn build(self) -> OnnxPlugin {
        let env = Settings::from_env();
        OnnxPlugin::new(Settings {
            engine: self.engine.unwrap_or(env.engine),
            threads: self.threads.unwrap_or(env.threads),
            max_pixels: self.max_pixels.unwrap_or(env.max_pixels),
            models_dir: self.models_dir.or(env.models_dir),
        })
    }
}

/// The plugin.
#[derive(Debug)]
pub struct OnnxPlugin {
    settings: Settings,
    models_dirs: Vec<PathBuf>,
    engine: Arc<dyn Engine>,
    /// Why ONNX Runtime is not in use, when it was wanted.
    ort_unavailable: Option<String>,
    models: Mutex<HashMap<ResourceId, Slot>>,
    /// Sessions holding each MODEL resource.
    holders: Mutex<HashMap<ResourceId, BTreeSet<SessionId>>>,
    default_labels: Mutex<Option<Arc<Labels>>>,
    /// Which face model IMAGE_DETECT / IMAGE_BLUR_FACES use (`VACCEL_FACE_MODEL`).
    face_kind: faces::FaceModelKind,
    /// The face model, loaded on first use.
    face_model: Mutex<Option<Arc<dyn Model>>>,
}

thread_local! {
    static SCRATCH: RefCell<preprocess::Scratch> = RefCell::new(preprocess::Scratch::default());
}

impl OnnxPlugin {
    /// Settings from the environment (`VACCEL_ONNX_ENGINE`, `VACCEL_ONNX_THREADS`,
    /// `VACCEL_MAX_IMAGE_PIXELS`, `VACCEL_MODELS_DIR`, `ORT_DYLIB_PATH`).
    pub fn from_env_or_default() -> OnnxPlugin {
        OnnxPlugin::new(Settings::from_env())
    }

    /// Settings from the runtime configuration's plugin options, then the
    /// environment: `onnx.engine` (`auto`/`tract`/`ort`), `onnx.threads`,
    /// `onnx.models_dir`, `onnx.max_image_pixels`. This is the constructor
    /// for a [`vaccel_core::Builtin`]. An invalid option is `EINVAL`.
    pub fn from_config(config: &vaccel_core::Config) -> Result<OnnxPlugin> {
        fn num<T: std::str::FromStr + PartialOrd + Default>(
            config: &vaccel_core::Config,
            key: &str,
        ) -> Result<Option<T>> {
            config
                .option(key)
                .map(|v| {
                    v.trim()
                        .parse::<T>()
                        .ok()
                        .filter(|n| *n > T::default())
                        .ok_or_else(|| {
                            Error::inval(format!(
                                "option {key}={v}: expected a positive whole number"
                            ))
                        })
                })
                .transpose()
        }
        let mut b = OnnxPlugin::builder();
        if let Some(e) = config.option("onnx.engine") {
            b = b.engine(EngineKind::parse(e)?);
        }
        if let Some(n) = num::<usize>(config, "onnx.threads")? {
            b = b.threads(n);
        }
        if let Some(n) = num::<u64>(config, "onnx.max_image_pixels")? {
            b = b.max_pixels(n);
        }
        if let Some(d) = config.option("onnx.models_dir").filter(|d| !d.is_empty()) {
            b = b.models_dir(d);
        }
        Ok(b.build())
    }

    /// A builder.
    pub fn builder() -> OnnxPluginBuilder {
        OnnxPluginBuilder::default()
    }

    /// The given engine, other settings from the environment.
    pub fn with_engine(kind: EngineKind) -> OnnxPlugin {
        OnnxPlugin::builder().engine(kind).build()
    }

    /// A plugin with these settings.
    pub fn new(settings: Settings) -> OnnxPlugin {
        let models_dirs = paths::models_dirs(settings.models_dir.as_deref());
        let threads = settings.threads.max(1);
        let (engine, ort_unavailable): (Arc<dyn Engine>, Option<String>) = match settings.engine {
            EngineKind::Tract => (Arc::new(tract_engine::TractEngine::new(threads)), None),
            kind @ (EngineKind::Auto | EngineKind::Ort) => {
                match ort_engine::OrtEngine::new(&models_dirs, threads) {
                    Ok(e) => {
                        tracing::debug!(library = %e.runtime().path.display(), version = %e.runtime().version, "onnx: using onnxruntime");
                        (Arc::new(e), None)
                    }
                    Err(why) => {
                        if kind == EngineKind::Ort {
                            tracing::warn!(
                                "onnx: onnxruntime requested but unavailable, using tract: {why}"
                            );
                        } else {
                            tracing::debug!("onnx: onnxruntime unavailable, using tract: {why}");
                        }
                        (Arc::new(tract_engine::TractEngine::new(threads)), Some(why))
                    }
                }
            }
        };
        OnnxPlugin {
            settings: Settings {
                threads,
                ..settings
            },
            models_dirs,
            engine,
            ort_unavailable,
            models: Mutex::new(HashMap::new()),
            holders: Mutex::new(HashMap::new()),
            default_labels: Mutex::new(None),
            face_kind: std::env::var("VACCEL_FACE_MODEL")
                .ok()
                .and_then(|v| match faces::FaceModelKind::parse(&v) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        tracing::warn!("{e}; using the full-range model");
                        None
                    }
                })
                .unwrap_or(faces::FaceModelKind::Full),
            face_model: Mutex::new(None),
        }
    }

    /// The face-detection model, loaded on first use.
    fn face_model(&self) -> Result<Arc<dyn Model>> {
        let mut g = lock(&self.face_model);
        if let Some(m) = g.as_ref() {
            return Ok(m.clone());
        }
        let file = self.face_kind.file();
        let path = paths::find_in(&self.models_dirs, file).ok_or_else(|| {
            Error::noent(format!(
                "face model {file} not found in {}: run `python3 scripts/setup_models.py` or set VACCEL_MODELS_DIR",
                paths::describe(&self.models_dirs)
            ))
        })?;
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::from_io(&e, format_args!("reading {}", path.display())))?;
        let model: Arc<dyn Model> = Arc::from(self.engine.load(ModelSource {
            name: file,
            bytes: &bytes,
            path: Some(&path),
        })?);
        *g = Some(model.clone());
        Ok(model)
    }

    /// Faces in an encoded image, in image pixels, best first.
    pub fn detect_faces(&self, image: &[u8]) -> Result<Vec<vaccel_core::Detection>> {
        let img = preprocess::decode_rgb(image, self.settings.max_pixels)?;
        faces::detect(&*self.face_model()?, self.face_kind, &img)
    }

    /// The image with every face blurred, as JPEG, and the face count.
    pub fn blur_faces(&self, image: &[u8], padding: f32, quality: u8) -> Result<(Vec<u8>, u32)> {
        let mut img = preprocess::decode_rgb(image, self.settings.max_pixels)?;
        let dets = faces::detect(&*self.face_model()?, self.face_kind, &img)?;
        let n = faces::blur_faces(&mut img, &dets, padding);
        Ok((faces::encode_jpeg(&img, quality)?, n))
    }

    /// The engine in use (`Tract` or `Ort`, never `Auto`).
    pub fn engine_kind(&self) -> EngineKind {
        self.engine.kind()
    }

    /// `tract` or `ort 1.22.1`.
    pub fn engine_name(&self) -> String {
        self.engine.describe()
    }

    /// Why ONNX Runtime is not used, when it was asked for (explicitly or by `auto`).
    pub fn ort_unavailable(&self) -> Option<&str> {
        self.ort_unavailable.as_deref()
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The candidate models directories, best first.
    pub fn models_dirs(&self) -> &[PathBuf] {
        &self.models_dirs
    }

    /// Number of models currently loaded (cached).
    pub fn loaded_models(&self) -> usize {
        let slots: Vec<Slot> = lock(&self.models).values().cloned().collect();
        slots.iter().filter(|s| lock(s).is_some()).count()
    }

    fn default_labels(&self) -> Arc<Labels> {
        let mut g = lock(&self.default_labels);
        if let Some(l) = &*g {
            return l.clone();
        }
        let labels = match paths::find_in(&self.models_dirs, paths::DEFAULT_LABELS) {
            Some(p) => match std::fs::read(&p).map_err(|e| e.to_string()).and_then(|b| {
                Labels::parse(&b, &p.display().to_string()).map_err(|e| e.message().to_string())
            }) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("onnx: cannot read labels {}: {e}", p.display());
                    Labels::default()
                }
            },
            None => {
                tracing::warn!(
                    "onnx: {} not found in {}; classes are named by index",
                    paths::DEFAULT_LABELS,
                    paths::describe(&self.models_dirs)
                );
                Labels::default()
            }
        };
        let labels = Arc::new(labels);
        *g = Some(labels.clone());
        labels
    }

    fn finish_load(&self, name: String, model: Box<dyn Model>, labels: Arc<Labels>) -> Loaded {
        let image_input = ImageInput::detect(&*model);
        Loaded {
            name,
            model,
            labels,
            image_input,
        }
    }

    fn load_default(&self) -> Result<Loaded> {
        let Some(path) = paths::find_in(&self.models_dirs, paths::DEFAULT_MODEL) else {
            let tried: Vec<String> = self
                .models_dirs
                .iter()
                .map(|d| d.join(paths::DEFAULT_MODEL).display().to_string())
                .collect();
            return Err(Error::noent(format!(
                "default classification model not found at {}: run `python3 scripts/setup_models.py` or set VACCEL_MODELS_DIR",
                if tried.is_empty() {
                    paths::DEFAULT_MODEL.to_string()
                } else {
                    tried.join(", ")
                }
            )));
        };
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::from_io(&e, format_args!("reading {}", path.display())))?;
        let model = self.engine.load(ModelSource {
            name: paths::DEFAULT_MODEL,
            bytes: &bytes,
            path: Some(&path),
        })?;
        Ok(self.finish_load(
            paths::DEFAULT_MODEL.to_string(),
            model,
            self.default_labels(),
        ))
    }

    fn load_resource(&self, res: &Resource) -> Result<Loaded> {
        let files = res.files();
        let is_onnx = |n: &str| n.to_ascii_lowercase().ends_with(".onnx");
        let model_file = files
            .iter()
            .find(|f| is_onnx(f.name()))
            .or_else(|| files.first())
            .ok_or_else(|| Error::inval(format!("resource {} has no files", res.id())))?;
        let labels_file = files.iter().find(|f| {
            let n = f.name().to_ascii_lowercase();
            n.contains("labels") && n.ends_with(".txt")
        });
        let bytes = model_file.bytes()?;
        let model = self.engine.load(ModelSource {
            name: model_file.name(),
            bytes: &bytes,
            path: model_file.path(),
        })?;
        let labels = match labels_file {
            Some(f) => Arc::new(Labels::parse(&f.bytes()?, f.name())?),
            None => self.default_labels(),
        };
        Ok(self.finish_load(model_file.name().to_string(), model, labels))
    }

    /// The loaded model for MODEL resource `id` (0: the default model),
    /// loading it on first use.
    fn model(&self, ctx: &OpCtx<'_>, id: ResourceId) -> Result<Arc<Loaded>> {
        let res = if id == DEFAULT_MODEL_ID {
            None
        } else {
            let r = ctx.resource(id)?;
            if r.kind() != ResourceType::Model {
                return Err(Error::inval(format!(
                    "resource {id} is a {} resource: model ops need a MODEL resource",
                    r.kind()
                )));
            }
            Some(r)
        };
        let slot = lock(&self.models).entry(id).or_default().clone();
        let mut g = lock(&slot);
        if let Some(m) = &*g {
            return Ok(m.clone());
        }
        let loaded = Arc::new(match &res {
            None => self.load_default()?,
            Some(r) => self.load_resource(r)?,
        });
        *g = Some(loaded.clone());
        drop(g);
        if res.is_some() {
            // Remember who uses it, so it is dropped when the last user goes
            // (also for sessions whose registration this plugin did not see).
            let mut h = lock(&self.holders);
            h.entry(id).or_default().insert(ctx.session);
        }
        Ok(loaded)
    }

    /// Drop the cached model of `id`. A load in progress finishes into the
    /// detached slot, serves its caller, and is dropped with it.
    fn unload(&self, id: ResourceId) {
        lock(&self.models).remove(&id);
    }

    fn classify(&self, ctx: &OpCtx<'_>, read: &[Arg<'_>], write: &mut [ArgOut<'_>]) -> Result<()> {
        let c = Classify::decode(read)?;
        let id = ctx
            .resources
            .resources()
            .iter()
            .find(|r| r.kind() == ResourceType::Model)
            .map_or(DEFAULT_MODEL_ID, Resource::id);
        let loaded = self.model(ctx, id)?;
        let labels = self.classify_loaded(&loaded, c.image, c.top_k)?;
        Classify::write_outputs(write, &labels, &loaded.name)
    }

    /// Classify an encoded image with a loaded model: the `top_k` best labels.
    pub fn classify_loaded(
        &self,
        loaded: &Loaded,
        image: &[u8],
        top_k: usize,
    ) -> Result<Vec<vaccel_core::Label>> {
        let logits = self.logits(loaded, image)?;
        Ok(labels::top_k(&logits, top_k, &loaded.labels))
    }

    /// Raw scores of the model for an encoded image.
    pub fn logits(&self, loaded: &Loaded, image: &[u8]) -> Result<Vec<f32>> {
        let input = loaded.image_input.ok_or_else(|| {
            let got: Vec<String> = loaded
                .model
                .inputs()
                .iter()
                .map(|i| format!("'{}' {} {}", i.name, i.type_name, engine::shape_text(&i.shape)))
                .collect();
            Error::inval(format!(
                "model '{}' is not an image classifier: it takes {} but IMAGE_CLASSIFY needs one f32 input [1, 3, H, W] or [1, H, W, 3]",
                loaded.name,
                got.join(", ")
            ))
        })?;
        let img = preprocess::decode_rgb(image, self.settings.max_pixels)?;
        loaded.model.run_f32(&input.shape(), &mut |buf| {
            SCRATCH.with(|s| {
                preprocess::preprocess(
                    &img,
                    input.width,
                    input.height,
                    input.layout,
                    &mut s.borrow_mut(),
                    buf,
                )
            })
        })
    }

    /// The default classification model, loaded on first use.
    pub fn default_model(&self) -> Result<Arc<Loaded>> {
        let ctx = OpCtx {
            session: 0,
            hint: PluginType::empty(),
            resources: &vaccel_core::plugin::NoResources,
        };
        self.model(&ctx, DEFAULT_MODEL_ID)
    }
}

impl Default for OnnxPlugin {
    fn default() -> Self {
        OnnxPlugin::from_env_or_default()
    }
}

impl Plugin for OnnxPlugin {
    fn info(&self) -> PluginInfo {
        let mut details = vec![
            ("engine".to_string(), self.engine.describe()),
            ("threads".to_string(), self.settings.threads.to_string()),
            (
                "max_image_pixels".to_string(),
                self.settings.max_pixels.to_string(),
            ),
            (
                "default_model".to_string(),
                paths::find_in(&self.models_dirs, paths::DEFAULT_MODEL).map_or_else(
                    || format!("not found in {}", paths::describe(&self.models_dirs)),
                    |p| p.display().to_string(),
                ),
            ),
        ];
        details.push(("face_model".to_string(), self.face_kind.file().to_string()));
        if let Some(why) = &self.ort_unavailable {
            details.push(("ort".to_string(), format!("unavailable: {why}")));
        }
        PluginInfo {
            name: NAME.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            types: PluginType::CPU | PluginType::SOFTWARE,
            ops: [
                OpType::ImageClassify,
                OpType::ImageDetect,
                OpType::ImageBlurFaces,
                OpType::ModelLoad,
                OpType::ModelUnload,
                OpType::ModelRun,
            ]
            .into_iter()
            .collect::<OpSet>(),
            details,
        }
    }

    fn session_release(&self, session: SessionId) -> Result<()> {
        let emptied: Vec<ResourceId> = {
            let mut h = lock(&self.holders);
            let mut emptied = Vec::new();
            h.retain(|id, s| {
                s.remove(&session);
                if s.is_empty() {
                    emptied.push(*id);
                }
                !s.is_empty()
            });
            emptied
        };
        for id in emptied {
            self.unload(id);
        }
        Ok(())
    }

    fn resource_register(&self, session: SessionId, resource: &Resource) -> Result<()> {
        if resource.kind() == ResourceType::Model {
            lock(&self.holders)
                .entry(resource.id())
                .or_default()
                .insert(session);
        }
        Ok(())
    }

    fn resource_unregister(&self, session: SessionId, resource: &Resource) -> Result<()> {
        let id = resource.id();
        let last = {
            let mut h = lock(&self.holders);
            match h.get_mut(&id) {
                Some(s) => {
                    s.remove(&session);
                    let empty = s.is_empty();
                    if empty {
                        h.remove(&id);
                    }
                    empty
                }
                None => true,
            }
        };
        if last {
            self.unload(id);
        }
        Ok(())
    }

    fn run(
        &self,
        ctx: &OpCtx<'_>,
        op: OpType,
        read: &[Arg<'_>],
        write: &mut [ArgOut<'_>],
    ) -> Result<()> {
        match op {
            OpType::ImageClassify => self.classify(ctx, read, write),
            OpType::ImageDetect => {
                let img = vaccel_core::ops::ImageOp::decode(op, read)?;
                let dets = self.detect_faces(img.image)?;
                vaccel_core::ops::ImageOp::write_detections(write, &dets)
            }
            OpType::ImageBlurFaces => {
                let b = vaccel_core::ops::BlurFaces::decode(read)?;
                let (jpeg, n) = self.blur_faces(b.image, b.padding, b.quality)?;
                vaccel_core::ops::BlurFaces::write_outputs(write, &jpeg, n)
            }
            OpType::ModelLoad => {
                let m = ModelRef::decode(op, read)?;
                self.model(ctx, m.resource).map(|_| ())
            }
            OpType::ModelUnload => {
                let m = ModelRef::decode(op, read)?;
                if m.resource != DEFAULT_MODEL_ID {
                    let r = ctx.resource(m.resource)?;
                    if r.kind() != ResourceType::Model {
                        return Err(Error::inval(format!(
                            "resource {} is a {} resource: model ops need a MODEL resource",
                            m.resource,
                            r.kind()
                        )));
                    }
                }
                self.unload(m.resource);
                Ok(())
            }
            OpType::ModelRun => {
                let r = ModelRun::decode(read)?;
                let loaded = self.model(ctx, r.resource)?;
                let ordered = engine::order_inputs(loaded.model.inputs(), &r.inputs)?;
                let outs = loaded.model.run(&ordered)?;
                ModelRun::write_outputs(write, &outs)
            }
            other => Err(Error::notsup(format!(
                "plugin '{NAME}' does not implement {other}"
            ))),
        }
    }
}

vaccel_core::export_plugin!(
    vaccel_plugin_onnx_entry_v1,
    OnnxPlugin::from_env_or_default()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_override_the_environment() {
        let mut cfg = vaccel_core::Config::default();
        cfg.options.insert("onnx.engine".into(), "tract".into());
        cfg.options.insert("onnx.threads".into(), "3".into());
        cfg.options
            .insert("onnx.max_image_pixels".into(), "1000".into());
        let p = OnnxPlugin::from_config(&cfg).unwrap();
        assert_eq!(p.engine_kind(), EngineKind::Tract);
        assert_eq!(p.settings().threads, 3);
        assert_eq!(p.settings().max_pixels, 1000);
        let info = p.info();
        assert_eq!(info.name, NAME);
        assert_eq!(info.types, PluginType::CPU | PluginType::SOFTWARE);
        assert_eq!(info.ops.len(), 6);
        assert!(info.ops.contains(OpType::ImageBlurFaces));
        assert!(
            info.details
                .contains(&("engine".to_string(), "tract".to_string()))
        );
        assert!(
            info.details
                .contains(&("threads".to_string(), "3".to_string()))
        );

        cfg.options.insert("onnx.threads".into(), "0".into());
        let e = OnnxPlugin::from_config(&cfg).unwrap_err();
        assert!(e.message().contains("onnx.threads=0"), "{e}");
        cfg.options.insert("onnx.threads".into(), "2".into());
        cfg.options.insert("onnx.engine".into(), "cuda".into());
        assert!(
            OnnxPlugin::from_config(&cfg)
                .unwrap_err()
                .message()
                .contains("use auto, tract or ort")
        );
    }

    #[test]
    fn exported_descriptor() {
        let desc = vaccel_plugin_onnx_entry_v1();
        assert!(!desc.is_null());
        // SAFETY: the entry returns a pointer to a descriptor leaked for the
        // life of the process, checked non-null above.
        let desc = unsafe { &*desc };
        assert_eq!(desc.abi_version, vaccel_core::dynamic::ABI_VERSION);
        // SAFETY: `name` points to a NUL-terminated string owned by the descriptor.
        let name = unsafe { std::ffi::CStr::from_ptr(desc.name) };
        assert_eq!(name.to_str().unwrap(), NAME);
        // SAFETY: as above, for the details string.
        let details = unsafe { std::ffi::CStr::from_ptr(desc.details) }
            .to_str()
            .unwrap()
            .to_string();
        assert!(details.contains("engine="), "{details}");
    }
}
