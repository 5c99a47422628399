//! Operation ids. The numeric values are stable and documented: ids 0–23
//! are upstream vAccel's `vaccel_op_type_t` values (so `vaccel_genop` callers
//! written against upstream keep working); ids from 64 up are this project's
//! additions.

use std::fmt;

macro_rules! op_types {
    ($($(#[$m:meta])* $name:ident = $id:literal, $str:literal;)*) => {
        /// An operation id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        #[non_exhaustive]
        pub enum OpType {
            $($(#[$m])* $name = $id,)*
        }

        impl OpType {
            /// Every op, in id order.
            pub const ALL: &'static [OpType] = &[$(OpType::$name,)*];

            /// The op for a numeric id.
            pub fn from_u32(id: u32) -> Option<OpType> {
                match id {
                    $($id => Some(OpType::$name),)*
                    _ => None,
                }
            }

            /// Upstream-style name, e.g. `IMAGE_CLASSIFY`.
            pub fn name(self) -> &'static str {
                match self {
                    $(OpType::$name => $str,)*
                }
            }
        }
    };
}

op_types! {
    /// Does nothing; measures dispatch cost.
    Noop = 0, "NOOP";
    /// Call a function in a shared library (allow-listed).
    Exec = 1, "EXEC";
    /// Call a function in a LIB resource registered to the session.
    ExecWithResource = 2, "EXEC_WITH_RESOURCE";
    /// Image classification.
    ImageClassify = 3, "IMAGE_CLASSIFY";
    /// Object (face) detection.
    ImageDetect = 4, "IMAGE_DETECT";
    /// Image segmentation.
    ImageSegment = 5, "IMAGE_SEGMENT";
    /// Pose estimation.
    ImagePose = 6, "IMAGE_POSE";
    /// Depth estimation.
    ImageDepth = 7, "IMAGE_DEPTH";
    /// Upstream TensorFlow model load (reserved; no plugin here implements it).
    TfModelLoad = 8, "TF_MODEL_LOAD";
    /// Upstream TensorFlow model unload (reserved).
    TfModelUnload = 9, "TF_MODEL_UNLOAD";
    /// Upstream TensorFlow model run (reserved).
    TfModelRun = 10, "TF_MODEL_RUN";
    /// Upstream TFLite model load (reserved).
    TfliteModelLoad = 11, "TFLITE_MODEL_LOAD";
    /// Upstream TFLite model unload (reserved).
    TfliteModelUnload = 12, "TFLITE_MODEL_UNLOAD";
    /// Upstream TFLite model run (reserved).
    TfliteModelRun = 13, "TFLITE_MODEL_RUN";
    /// Upstream Torch model load (reserved).
    TorchModelLoad = 14, "TORCH_MODEL_LOAD";
    /// Upstream Torch model run (reserved).
    TorchModelRun = 15, "TORCH_MODEL_RUN";
    /// Upstream Torch SGEMM (reserved).
    TorchSgemm = 16, "TORCH_SGEMM";
    /// Single-precision GEMM: C = αAB + βC, row-major.
    BlasSgemm = 17, "BLAS_SGEMM";
    /// FPGA array copy (reserved).
    FpgaArrayCopy = 18, "FPGA_ARRAYCOPY";
    /// FPGA matrix multiply (reserved).
    FpgaMmult = 19, "FPGA_MMULT";
    /// FPGA parallel (reserved).
    FpgaParallel = 20, "FPGA_PARALLEL";
    /// FPGA vector add (reserved).
    FpgaVectorAdd = 21, "FPGA_VECTORADD";
    /// Clamp values into [low, high] and report min and max.
    Minmax = 22, "MINMAX";
    /// Upstream OpenCV (reserved).
    Opencv = 23, "OPENCV";
    /// Load (prepare) a MODEL resource registered to the session.
    ModelLoad = 64, "MODEL_LOAD";
    /// Drop a loaded model.
    ModelUnload = 65, "MODEL_UNLOAD";
    /// Run a loaded model: named, typed tensors in and out.
    ModelRun = 66, "MODEL_RUN";
    /// AES-CBC encryption with PKCS#7 padding (128-, 192- or 256-bit key).
    AesCbcEncrypt = 67, "AES_CBC_ENCRYPT";
    /// AES-CBC decryption with PKCS#7 padding.
    AesCbcDecrypt = 68, "AES_CBC_DECRYPT";
    /// Detect faces and return the image with every face blurred, as JPEG.
    ImageBlurFaces = 69, "IMAGE_BLUR_FACES";
}

impl OpType {
    /// The numeric id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Parse a name (`image_classify`, `IMAGE_CLASSIFY`, `image-classify`) or a number.
    pub fn parse(s: &str) -> Option<OpType> {
        if let Ok(n) = s.parse::<u32>() {
            return OpType::from_u32(n);
        }
        let norm = s.replace('-', "_");
        OpType::ALL
            .iter()
            .copied()
            .find(|op| op.name().eq_ignore_ascii_case(&norm))
    }
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of op ids (ids 0–127), as a bitmap.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OpSet(u128);

impl OpSet {
    /// No ops.
    pub const EMPTY: OpSet = OpSet(0);

    /// Every op this runtime knows.
    pub fn all() -> OpSet {
        OpType::ALL.iter().copied().collect()
    }

    /// From raw bitmap bits (bit i = op id i).
    pub const fn from_bits(bits: u128) -> OpSet {
        OpSet(bits)
    }

    /// Raw bitmap bits.
    pub const fn bits(self) -> u128 {
        self.0
    }

    /// Whether `op` is in the set.
    #[inline]
    pub fn contains(self, op: OpType) -> bool {
        self.0 & (1u128 << op.id()) != 0
    }

    /// Add an op.
    pub fn insert(&mut self, op: OpType) {
        self.0 |= 1u128 << op.id();
    }

    /// The ops in the set, in id order.
    pub fn iter(self) -> impl Iterator<Item = OpType> {
        OpType::ALL
            .iter()
            .copied()
            .filter(move |op| self.contains(*op))
    }

    /// Number of ops in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<OpType> for OpSet {
    fn from_iter<I: IntoIterator<Item = OpType>>(iter: I) -> Self {
        let mut s = OpSet::EMPTY;
        for op in iter {
            s.insert(op);
        }
        s
    }
}

impl fmt::Debug for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_ids_are_stable() {
        assert_eq!(OpType::Noop.id(), 0);
        assert_eq!(OpType::Exec.id(), 1);
        assert_eq!(OpType::ExecWithResource.id(), 2);
        assert_eq!(OpType::ImageClassify.id(), 3);
        assert_eq!(OpType::ImageDepth.id(), 7);
        assert_eq!(OpType::BlasSgemm.id(), 17);
        assert_eq!(OpType::Minmax.id(), 22);
        assert_eq!(OpType::Opencv.id(), 23);
    }

    #[test]
    fn ids_fit_the_bitmap_and_round_trip() {
        for op in OpType::ALL {
            assert!(op.id() < 128);
            assert_eq!(OpType::from_u32(op.id()), Some(*op));
            assert_eq!(OpType::parse(op.name()), Some(*op));
        }
        assert_eq!(OpType::from_u32(24), None);
        assert_eq!(OpType::parse("image-classify"), Some(OpType::ImageClassify));
        assert_eq!(OpType::parse("17"), Some(OpType::BlasSgemm));
    }

    #[test]
    fn opset() {
        let s: OpSet = [OpType::Noop, OpType::BlasSgemm].into_iter().collect();
        assert!(s.contains(OpType::Noop));
        assert!(!s.contains(OpType::Exec));
        assert_eq!(s.len(), 2);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![OpType::Noop, OpType::BlasSgemm]
        );
        assert_eq!(OpSet::all().len(), OpType::ALL.len());
    }
}
