//! Sessions: the handle an application calls ops on.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::ops::{self, BYTES};
use crate::plugin::{OpCtx, ResourceLookup, SessionId};
use crate::profiling::{OpProfile, RegionStats};
use crate::runtime::LoadedPlugin;
use crate::tensor::{Tensor, TensorRef};
use crate::{Arg, ArgOut, ArgType, Code, Error, OpType, PluginType, Resource, ResourceId, Result};

pub(crate) struct Inner {
    id: SessionId,
    hint: PluginType,
    plugin: Arc<LoadedPlugin>,
    /// Other plugins matching the hint, tried in order for ops `plugin` lacks
    /// (only when per-op fallback is enabled).
    fallback: Vec<Arc<LoadedPlugin>>,
    resources: RwLock<Vec<Resource>>,
    released: AtomicBool,
    profile: Option<OpProfile>,
}

impl ResourceLookup for Inner {
    fn resource(&self, id: ResourceId) -> Option<Resource> {
        self.resources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|r| r.id() == id)
            .cloned()
    }

    fn resources(&self) -> Vec<Resource> {
        self.resources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// A session. `Send + Sync`; clone it to share it between threads (clones
/// are the same session). The session is released by [`Session::release`]
/// or when the last clone is dropped.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.inner.id)
            .field("hint", &self.inner.hint)
            .field("plugin", &self.inner.plugin.info().name)
            .finish()
    }
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

/// Run `f`, turning a panic into an `EBACKEND` error naming `who`.
pub(crate) fn guard<T>(
    who: &str,
    what: impl fmt::Display,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Error::backend(format!(
            "plugin '{who}' panicked during {what}: {}",
            panic_message(&*p)
        ))),
    }
}

impl Session {
    pub(crate) fn new(
        id: SessionId,
        hint: PluginType,
        plugin: Arc<LoadedPlugin>,
        fallback: Vec<Arc<LoadedPlugin>>,
        profiling: bool,
    ) -> Result<Session> {
        guard(&plugin.info().name, "session init", || {
            plugin.plugin().session_init(id, hint)
        })?;
        // Fallback plugins see the session too (they may run its ops); one
        // that refuses it is simply not used as a fallback.
        let fallback: Vec<Arc<LoadedPlugin>> = fallback
            .into_iter()
            .filter(|f| {
                let r = guard(&f.info().name, "session init", || f.plugin().session_init(id, hint));
                if let Err(e) = &r {
                    tracing::debug!(session = id, plugin = %f.info().name, error = %e, "not a fallback for this session");
                }
                r.is_ok()
            })
            .collect();
        tracing::debug!(session = id, plugin = %plugin.info().name, %hint, "session created");
        Ok(Session {
            inner: Arc::new(Inner {
                id,
                hint,
                plugin,
                fallback,
                resources: RwLock::new(Vec::new()),
                released: AtomicBool::new(false),
                profile: profiling.then(OpProfile::default),
            }),
        })
    }

    /// The id (ids start at 1).
    pub fn id(&self) -> SessionId {
        self.inner.id
    }

    /// The hint the session was created with.
    pub fn hint(&self) -> PluginType {
        self.inner.hint
    }

    /// The plugin chosen for this session.
    pub fn plugin(&self) -> &crate::PluginInfo {
        self.inner.plugin.info()
    }

    /// The plugin that runs `op` for this session: the session's plugin, or
    /// with per-op fallback the first other matching plugin that has it.
    pub fn op_plugin(&self, op: OpType) -> Result<&crate::PluginInfo> {
        self.plugin_for(op).map(LoadedPlugin::info)
    }

    /// Whether the session was released.
    pub fn is_released(&self) -> bool {
        self.inner.released.load(Ordering::Acquire)
    }

    fn check_live(&self) -> Result<()> {
        if self.is_released() {
            return Err(Error::inval(format!(
                "session {} was released: create a new session",
                self.inner.id
            )));
        }
        Ok(())
    }

    fn plugin_for(&self, op: OpType) -> Result<&LoadedPlugin> {
        let p = &*self.inner.plugin;
        if p.info().ops.contains(op) {
            return Ok(p);
        }
        if let Some(f) = self
            .inner
            .fallback
            .iter()
            .find(|f| f.info().ops.contains(op))
        {
            tracing::debug!(session = self.inner.id, %op, plugin = %f.info().name, "per-op fallback");
            return Ok(f);
        }
        Err(Error::notsup(format!(
            "plugin '{}' does not implement {op}: load a plugin that does (VACCEL_PLUGINS){}",
            p.info().name,
            if self.inner.fallback.is_empty() {
                ""
            } else {
                "; no fallback plugin implements it either"
            }
        )))
    }

    /// Run any op in the generic shape. Every typed method below ends here.
    #[inline]
    pub fn genop(&self, op: OpType, read: &[Arg<'_>], write: &mut [ArgOut<'_>]) -> Result<()> {
        self.check_live()?;
        let lp = self.plugin_for(op)?;
        let ctx = OpCtx {
            session: self.inner.id,
            hint: self.inner.hint,
            resources: &*self.inner,
        };
        let call = || lp.plugin().run(&ctx, op, read, write);
        match &self.inner.profile {
            None => guard(&lp.info().name, op, call),
            Some(prof) => {
                let t0 = Instant::now();
                let r = guard(&lp.info().name, op, call);
                prof.record(op, t0.elapsed());
                r
            }
        }
    }

    /// Register a resource to this session.
    pub fn register(&self, res: &Resource) -> Result<()> {
        self.check_live()?;
        let mut list = self
            .inner
            .resources
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if list.iter().any(|r| r.ptr_eq(res)) {
            return Err(Error::new(
                Code::Exist,
                format!(
                    "resource {} is already registered to session {}",
                    res.id(),
                    self.inner.id
                ),
            ));
        }
        let lp = &self.inner.plugin;
        guard(&lp.info().name, "resource register", || {
            lp.plugin().resource_register(self.inner.id, res)
        })?;
        for f in &self.inner.fallback {
            if let Err(e) = guard(&f.info().name, "resource register", || {
                f.plugin().resource_register(self.inner.id, res)
            }) {
                tracing::warn!(session = self.inner.id, plugin = %f.info().name, error = %e, "fallback plugin refused a resource");
            }
        }
        res.add_session(self.inner.id);
        list.push(res.clone());
        Ok(())
    }

    /// Unregister a resource from this session.
    pub fn unregister(&self, res: &Resource) -> Result<()> {
        self.check_live()?;
        let mut list = self
            .inner
            .resources
            .write()
            .unwrap_or_else(|p| p.into_inner());
        let Some(pos) = list.iter().position(|r| r.ptr_eq(res)) else {
            return Err(Error::noent(format!(
                "resource {} is not registered to session {}",
                res.id(),
                self.inner.id
            )));
        };
        let r = list.remove(pos);
        r.remove_session(self.inner.id);
        self.inner.unregister_everywhere(&r)
    }

    /// Whether `res` is registered to this session.
    pub fn has_resource(&self, res: &Resource) -> bool {
        self.inner.resource(res.id()).is_some_and(|r| r.ptr_eq(res))
    }

    /// The registered resources.
    pub fn resources(&self) -> Vec<Resource> {
        self.inner.resources()
    }

    /// Release the session: unregister every resource and tell the plugin.
    /// Releasing twice is `EINVAL`.
    pub fn release(&self) -> Result<()> {
        if self.inner.released.swap(true, Ordering::AcqRel) {
            return Err(Error::inval(format!(
                "session {} is already released",
                self.inner.id
            )));
        }
        self.inner.release_all()
    }

    /// Per-op profiling statistics (empty unless profiling is enabled).
    pub fn profile(&self) -> Vec<(OpType, RegionStats)> {
        self.inner
            .profile
            .as_ref()
            .map(OpProfile::stats)
            .unwrap_or_default()
    }

    /// Whether profiling is enabled for this session.
    pub fn profiling_enabled(&self) -> bool {
        self.inner.profile.is_some()
    }

    // ------------------------------------------------------ typed API

    /// NOOP.
    #[inline]
    pub fn noop(&self) -> Result<()> {
        self.genop(OpType::Noop, &[], &mut [])
    }

    /// BLAS_SGEMM: C = αAB + βC, row-major, with leading dimensions.
    #[allow(clippy::too_many_arguments)]
    pub fn sgemm(
        &self,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: &[f32],
        lda: usize,
        b: &[f32],
        ldb: usize,
        beta: f32,
        c: &mut [f32],
        ldc: usize,
    ) -> Result<()> {
        let dims = [m, n, k, lda, ldb, ldc].map(|d| d as i64);
        let read = [
            Arg::scalar(&dims[0]),
            Arg::scalar(&dims[1]),
            Arg::scalar(&dims[2]),
            Arg::scalar(&alpha),
            Arg::f32s(a),
            Arg::scalar(&dims[3]),
            Arg::f32s(b),
            Arg::scalar(&dims[4]),
            Arg::scalar(&beta),
            Arg::scalar(&dims[5]),
        ];
        // With beta == 0 and no padding between rows, C's old contents are
        // never read nor kept, so they need not travel to a remote agent.
        let c = bytemuck::cast_slice_mut(c);
        let mut write = [if beta == 0.0 && ldc == n {
            ArgOut::fixed(ArgType::Float32Array, c)
        } else {
            ArgOut::inout(ArgType::Float32Array, c)
        }];
        self.genop(OpType::BlasSgemm, &read, &mut write)
    }

    /// MINMAX: clamp `data` into [low, high] (written to `out`) and return
    /// the (min, max) of the input.
    pub fn minmax(&self, data: &[f64], low: f64, high: f64, out: &mut [f64]) -> Result<(f64, f64)> {
        let read = [Arg::f64s(data), Arg::scalar(&low), Arg::scalar(&high)];
        let (mut mn, mut mx) = ([0u8; 8], [0u8; 8]);
        let mut write = [
            ArgOut::fixed(ArgType::Float64Array, bytemuck::cast_slice_mut(out)),
            ArgOut::fixed(ArgType::Float64, &mut mn),
            ArgOut::fixed(ArgType::Float64, &mut mx),
        ];
        self.genop(OpType::Minmax, &read, &mut write)?;
        Ok((f64::from_ne_bytes(mn), f64::from_ne_bytes(mx)))
    }

    /// Run `op` with one growable output per entry of `types`; return the
    /// outputs, each truncated to what the plugin wrote.
    pub fn genop_collect<const N: usize>(
        &self,
        op: OpType,
        read: &[Arg<'_>],
        types: [ArgType; N],
    ) -> Result<[Vec<u8>; N]> {
        let mut bufs: [Vec<u8>; N] = std::array::from_fn(|_| Vec::new());
        let mut lens = [0usize; N];
        {
            let mut write: Vec<ArgOut<'_>> = bufs
                .iter_mut()
                .zip(types)
                .map(|(b, t)| ArgOut::growable(t, b))
                .collect();
            self.genop(op, read, &mut write)?;
            for (l, w) in lens.iter_mut().zip(&write) {
                *l = w.len();
            }
        }
        for (b, l) in bufs.iter_mut().zip(lens) {
            b.truncate(l);
        }
        Ok(bufs)
    }

    fn text_op(&self, op: OpType, read: &[Arg<'_>]) -> Result<String> {
        let [text] = self.genop_collect(op, read, [ArgType::String])?;
        String::from_utf8(text)
            .map_err(|_| Error::backend(format!("plugin returned non-UTF-8 text for {op}")))
    }

    /// IMAGE_CLASSIFY with the default top-k (5): labels, best first.
    pub fn image_classify(&self, image: &[u8]) -> Result<Vec<ops::Label>> {
        self.image_classify_top(image, ops::DEFAULT_TOP_K)
    }

    /// IMAGE_CLASSIFY returning the `k` best labels.
    pub fn image_classify_top(&self, image: &[u8], k: usize) -> Result<Vec<ops::Label>> {
        let k32 = u32::try_from(k).map_err(|_| Error::inval("top_k too large"))?;
        let read = [Arg::buffer(image), Arg::scalar(&k32)];
        let [_, _, labels] = self.genop_collect(
            OpType::ImageClassify,
            &read,
            [ArgType::String, ArgType::String, BYTES],
        )?;
        ops::decode_labels(&labels)
    }

    /// IMAGE_CLASSIFY returning upstream's text form
    /// (`classification tags: 60.547% malamute, …`).
    pub fn image_classify_text(&self, image: &[u8]) -> Result<String> {
        self.text_op(OpType::ImageClassify, &[Arg::buffer(image)])
    }

    /// IMAGE_DETECT: face boxes in pixels of the input image, with scores.
    pub fn image_detect(&self, image: &[u8]) -> Result<Vec<ops::Detection>> {
        let read = [Arg::buffer(image)];
        let [_, dets] = self.genop_collect(OpType::ImageDetect, &read, [ArgType::String, BYTES])?;
        ops::decode_detections(&dets)
    }

    /// IMAGE_SEGMENT: the plugin's result name / summary.
    pub fn image_segment(&self, image: &[u8]) -> Result<String> {
        self.text_op(OpType::ImageSegment, &[Arg::buffer(image)])
    }

    /// IMAGE_POSE: the plugin's result name / summary.
    pub fn image_pose(&self, image: &[u8]) -> Result<String> {
        self.text_op(OpType::ImagePose, &[Arg::buffer(image)])
    }

    /// IMAGE_DEPTH: the plugin's result name / summary.
    pub fn image_depth(&self, image: &[u8]) -> Result<String> {
        self.text_op(OpType::ImageDepth, &[Arg::buffer(image)])
    }

    /// IMAGE_BLUR_FACES: the image with every face blurred, as JPEG, and the
    /// number of faces.
    pub fn image_blur_faces(
        &self,
        image: &[u8],
        padding: f32,
        quality: u8,
    ) -> Result<(Vec<u8>, u32)> {
        let read = [
            Arg::buffer(image),
            Arg::scalar(&padding),
            Arg::scalar(&quality),
        ];
        let [jpeg, faces] =
            self.genop_collect(OpType::ImageBlurFaces, &read, [BYTES, ArgType::Uint32])?;
        let faces = <[u8; 4]>::try_from(faces.as_slice())
            .map(u32::from_ne_bytes)
            .unwrap_or(0);
        Ok((jpeg, faces))
    }

    /// EXEC: call `symbol` in `library` with the given arguments.
    pub fn exec(
        &self,
        library: &str,
        symbol: &str,
        args: &[Arg<'_>],
        out: &mut [ArgOut<'_>],
    ) -> Result<()> {
        let mut read = Vec::with_capacity(args.len() + 2);
        read.push(Arg::string(library));
        read.push(Arg::string(symbol));
        read.extend_from_slice(args);
        self.genop(OpType::Exec, &read, out)
    }

    /// EXEC_WITH_RESOURCE: call `symbol` in a LIB resource registered to this session.
    pub fn exec_with_resource(
        &self,
        res: &Resource,
        symbol: &str,
        args: &[Arg<'_>],
        out: &mut [ArgOut<'_>],
    ) -> Result<()> {
        if !self.has_resource(res) {
            return Err(Error::perm(format!(
                "resource {} is not registered to session {}: register it first",
                res.id(),
                self.inner.id
            )));
        }
        let id = res.id();
        let mut read = Vec::with_capacity(args.len() + 2);
        read.push(Arg::scalar(&id));
        read.push(Arg::string(symbol));
        read.extend_from_slice(args);
        self.genop(OpType::ExecWithResource, &read, out)
    }

    fn model_id(&self, model: Option<&Resource>) -> Result<u64> {
        match model {
            None => Ok(0),
            Some(r) if self.has_resource(r) => Ok(r.id()),
            Some(r) => Err(Error::perm(format!(
                "model resource {} is not registered to session {}: register it first",
                r.id(),
                self.inner.id
            ))),
        }
    }

    /// MODEL_LOAD: prepare a registered MODEL resource (or the default model with `None`).
    pub fn model_load(&self, model: Option<&Resource>) -> Result<()> {
        let id = self.model_id(model)?;
        self.genop(OpType::ModelLoad, &[Arg::scalar(&id)], &mut [])
    }

    /// MODEL_UNLOAD.
    pub fn model_unload(&self, model: Option<&Resource>) -> Result<()> {
        let id = self.model_id(model)?;
        self.genop(OpType::ModelUnload, &[Arg::scalar(&id)], &mut [])
    }

    /// MODEL_RUN: named, typed tensors in; the model's outputs back.
    pub fn model_run(
        &self,
        model: Option<&Resource>,
        inputs: &[TensorRef<'_>],
    ) -> Result<Vec<Tensor>> {
        let id = self.model_id(model)?;
        let headers: Vec<Vec<u8>> = inputs.iter().map(TensorRef::encode_header).collect();
        let mut read = Vec::with_capacity(1 + 2 * inputs.len());
        read.push(Arg::scalar(&id));
        for (h, t) in headers.iter().zip(inputs) {
            read.push(Arg::raw(h));
            read.push(Arg::raw(&t.data));
        }
        let [outb] = self.genop_collect(OpType::ModelRun, &read, [BYTES])?;
        Ok(ops::ModelRun::decode_outputs(&outb)?
            .into_iter()
            .map(TensorRef::into_owned)
            .collect())
    }

    fn aes(&self, op: OpType, key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        let read = [Arg::buffer(key), Arg::buffer(iv), Arg::buffer(data)];
        let [out] = self.genop_collect(op, &read, [BYTES])?;
        Ok(out)
    }

    /// AES-CBC encryption with PKCS#7 padding.
    pub fn aes_cbc_encrypt(&self, key: &[u8], iv: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        self.aes(OpType::AesCbcEncrypt, key, iv, plaintext)
    }

    /// AES-CBC decryption, removing PKCS#7 padding.
    pub fn aes_cbc_decrypt(&self, key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
        self.aes(OpType::AesCbcDecrypt, key, iv, ciphertext)
    }
}

impl Inner {
    /// The session's plugin, then its fallback plugins.
    fn all_plugins(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        std::iter::once(&self.plugin).chain(&self.fallback)
    }

    /// Tell every plugin of the session; the first error is returned.
    fn unregister_everywhere(&self, r: &Resource) -> Result<()> {
        let mut first_err = None;
        for lp in self.all_plugins() {
            if let Err(e) = guard(&lp.info().name, "resource unregister", || {
                lp.plugin().resource_unregister(self.id, r)
            }) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn release_all(&self) -> Result<()> {
        let list = std::mem::take(&mut *self.resources.write().unwrap_or_else(|p| p.into_inner()));
        let mut first_err = None;
        for r in list {
            r.remove_session(self.id);
            if let Err(e) = self.unregister_everywhere(&r) {
                first_err.get_or_insert(e);
            }
        }
        for lp in self.all_plugins() {
            if let Err(e) = guard(&lp.info().name, "session release", || {
                lp.plugin().session_release(self.id)
            }) {
                first_err.get_or_insert(e);
            }
        }
        tracing::debug!(session = self.id, "session released");
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.release_all() {
                tracing::warn!(session = self.id, error = %e, "releasing dropped session");
            }
        }
    }
}
