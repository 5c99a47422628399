//! # vaccel-plugin-noop
//!
//! A debug plugin (type DEBUG) that implements every op: it decodes and
//! validates the arguments exactly like a real plugin, logs them at debug
//! level, and writes deterministic dummy outputs. Dispatch tests and the
//! dispatch benchmark use it.
//!
//! | op | dummy output |
//! |---|---|
//! | NOOP | – |
//! | BLAS_SGEMM | C = βC (as if AB were zero) |
//! | MINMAX | the real result (it is cheap) |
//! | IMAGE_CLASSIFY | one label `noop` (index 0, score 1.0), image name `noop.png` |
//! | IMAGE_DETECT | one box (0, 0, 1, 1), score 1.0 |
//! | IMAGE_SEGMENT / POSE / DEPTH | text `noop` |
//! | IMAGE_BLUR_FACES | the input bytes unchanged, 0 faces |
//! | EXEC / EXEC_WITH_RESOURCE | nothing is executed; the resource must be registered |
//! | MODEL_LOAD / MODEL_UNLOAD | the resource (if not 0) must be registered and a MODEL |
//! | MODEL_RUN | the inputs, echoed as outputs |
//! | AES_CBC_ENCRYPT / DECRYPT | the input bytes unchanged |
//! | reserved upstream ops | – |
//!
//! Built as a `cdylib` too: `VACCEL_PLUGINS=/path/to/libvaccel_plugin_noop.so`.

#![forbid(unsafe_code)]

use tracing::debug;
use vaccel_core::ops::{
    self, BlurFaces, Classify, Exec, ExecWithResource, ImageOp, Minmax, ModelRef, ModelRun, Sgemm,
};
use vaccel_core::{
    Arg, ArgOut, Detection, Error, Label, OpCtx, OpSet, OpType, Plugin, PluginInfo, PluginType,
    ResourceType, Result,
};

/// The noop plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopPlugin;

impl NoopPlugin {
    /// A new instance.
    pub fn new() -> NoopPlugin {
        NoopPlugin
    }
}

fn check_model(ctx: &OpCtx<'_>, id: u64) -> Result<()> {
    if id == 0 {
        return Ok(());
    }
    let r = ctx.resource(id)?;
    if r.kind() != ResourceType::Model {
        return Err(Error::inval(format!(
            "resource {id} is a {} resource, not a MODEL",
            r.kind()
        )));
    }
    Ok(())
}

impl Plugin for NoopPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "noop".into(),
            version: vaccel_core::VERSION.into(),
            types: PluginType::DEBUG,
            ops: OpSet::all(),
            details: Vec::new(),
        }
    }

    #[inline]
    fn run(
        &self,
        ctx: &OpCtx<'_>,
        op: OpType,
        read: &[Arg<'_>],
        write: &mut [ArgOut<'_>],
    ) -> Result<()> {
        debug!(session = ctx.session, %op, n_read = read.len(), n_write = write.len(), "noop plugin called");
        match op {
            OpType::Noop => Ok(()),
            OpType::BlasSgemm => {
                let s = Sgemm::decode(read)?;
                debug!(
                    m = s.m,
                    n = s.n,
                    k = s.k,
                    alpha = s.alpha,
                    beta = s.beta,
                    "sgemm"
                );
                let (m, n, ldc, beta) = (s.m, s.n, s.ldc, s.beta);
                let c = s.c(write)?;
                for i in 0..m {
                    for v in &mut c[i * ldc..i * ldc + n] {
                        *v = if beta == 0.0 { 0.0 } else { beta * *v };
                    }
                }
                Ok(())
            }
            OpType::Minmax => Minmax::decode(read)?.compute(write),
            OpType::ImageClassify => {
                let c = Classify::decode(read)?;
                debug!(image_bytes = c.image.len(), top_k = c.top_k, "classify");
                let labels = [Label {
                    index: 0,
                    label: "noop".into(),
                    score: 1.0,
                }];
                Classify::write_outputs(write, &labels, "noop.png")
            }
            OpType::ImageDetect => {
                ImageOp::decode(op, read)?;
                let d = [Detection {
                    x: 0.0,
                    y: 0.0,
                    width: 1.0,
                    height: 1.0,
                    score: 1.0,
                }];
                ImageOp::write_detections(write, &d)
            }
            OpType::ImageSegment | OpType::ImagePose | OpType::ImageDepth => {
                ImageOp::decode(op, read)?;
                ops::write_text(ops::out(op, write, 0, "result name")?, "noop")
            }
            OpType::ImageBlurFaces => {
                let b = BlurFaces::decode(read)?;
                BlurFaces::write_outputs(write, b.image, 0)
            }
            OpType::Exec => {
                let e = Exec::decode(read)?;
                debug!(
                    library = e.library,
                    symbol = e.symbol,
                    args = e.args.len(),
                    "exec (not executed)"
                );
                Ok(())
            }
            OpType::ExecWithResource => {
                let e = ExecWithResource::decode(read)?;
                ctx.resource(e.resource)?;
                debug!(
                    resource = e.resource,
                    symbol = e.symbol,
                    "exec_with_resource (not executed)"
                );
                Ok(())
            }
            OpType::ModelLoad | OpType::ModelUnload => {
                check_model(ctx, ModelRef::decode(op, read)?.resource)
            }
            OpType::ModelRun => {
                let r = ModelRun::decode(read)?;
                check_model(ctx, r.resource)?;
                ModelRun::write_outputs(write, &r.inputs)
            }
            OpType::AesCbcEncrypt | OpType::AesCbcDecrypt => {
                let a = ops::AesCbc::decode(op, read)?;
                ops::out(op, write, 0, "output")?.write(a.data)
            }
            _ => {
                debug!(%op, "reserved op: nothing to do");
                Ok(())
            }
        }
    }
}

vaccel_core::export_plugin!(vaccel_plugin_noop_entry_v1, NoopPlugin::new());

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use vaccel_core::{Code, Resource, Runtime, TensorRef};

    fn session() -> vaccel_core::Session {
        let rt = Runtime::builder()
            .with_plugin(Arc::new(NoopPlugin))
            .build()
            .unwrap();
        rt.session(PluginType::empty()).unwrap()
    }

    #[test]
    fn every_typed_op_works() {
        let s = session();
        s.noop().unwrap();
        let a = [1.0f32; 4];
        let mut c = [2.0f32; 4];
        s.sgemm(2, 2, 2, 1.0, &a, 2, &a, 2, 0.5, &mut c, 2).unwrap();
        assert_eq!(c, [1.0; 4]);
        let mut out = [0.0f64; 3];
        assert_eq!(
            s.minmax(&[1.0, 9.0, 4.0], 2.0, 5.0, &mut out).unwrap(),
            (1.0, 9.0)
        );
        assert_eq!(out, [2.0, 5.0, 4.0]);
        let labels = s.image_classify(b"not really an image").unwrap();
        assert_eq!(
            labels,
            vec![Label {
                index: 0,
                label: "noop".into(),
                score: 1.0
            }]
        );
        assert_eq!(
            s.image_classify_text(b"x").unwrap(),
            "classification tags: 100.000% noop"
        );
        assert_eq!(s.image_detect(b"x").unwrap().len(), 1);
        assert_eq!(s.image_segment(b"x").unwrap(), "noop");
        assert_eq!(
            s.image_blur_faces(b"jpeg", 0.2, 90).unwrap(),
            (b"jpeg".to_vec(), 0)
        );
        assert_eq!(
            s.aes_cbc_encrypt(&[0; 16], &[0; 16], b"abc").unwrap(),
            b"abc"
        );
        let v = [1.0f32, 2.0];
        let t = TensorRef::from_f32("in", vec![2], &v).unwrap();
        let outs = s.model_run(None, std::slice::from_ref(&t)).unwrap();
        assert_eq!(outs, vec![t.into_owned()]);
        s.model_load(None).unwrap();
    }

    #[test]
    fn resources_are_checked() {
        let s = session();
        let lib = Resource::from_bytes(vec![0u8; 4], "lib.so", ResourceType::Lib).unwrap();
        let e = s.exec_with_resource(&lib, "f", &[], &mut []).unwrap_err();
        assert_eq!(e.code(), Code::Perm);
        s.register(&lib).unwrap();
        s.exec_with_resource(&lib, "f", &[], &mut []).unwrap();
        let e = s.model_load(Some(&lib)).unwrap_err();
        assert_eq!(e.code(), Code::Inval);
        assert!(e.message().contains("not a MODEL"));
        s.unregister(&lib).unwrap();
    }

    #[test]
    fn bad_arguments_are_einval() {
        let s = session();
        let a = [1.0f32; 3];
        let mut c = [0.0f32; 4];
        let e = s
            .sgemm(2, 2, 2, 1.0, &a, 2, &a, 2, 0.0, &mut c, 2)
            .unwrap_err();
        assert_eq!(e.code(), Code::Inval);
        assert!(e.message().contains("A has 3 elements"));
        assert_eq!(s.image_classify(b"").unwrap_err().code(), Code::Inval);
        assert_eq!(
            s.aes_cbc_decrypt(&[0; 16], &[0; 16], b"short")
                .unwrap_err()
                .code(),
            Code::Inval
        );
    }
}
