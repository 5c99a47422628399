/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Op types. Ids 0-23 are upstream vAccel's values (so vaccel_genop callers
 * written against upstream keep working); ids from 64 up are vaccel-rs
 * additions. The argument layout of every op is in docs/ops.md.
 */
#ifndef VACCEL_OP_H
#define VACCEL_OP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vaccel_op_type {
	VACCEL_OP_NOOP = 0,
	VACCEL_OP_EXEC = 1,
	VACCEL_OP_EXEC_WITH_RESOURCE = 2,
	VACCEL_OP_IMAGE_CLASSIFY = 3,
	VACCEL_OP_IMAGE_DETECT = 4,
	VACCEL_OP_IMAGE_SEGMENT = 5,
	VACCEL_OP_IMAGE_POSE = 6,
	VACCEL_OP_IMAGE_DEPTH = 7,
	/* 8-16: upstream TensorFlow / TFLite / Torch ops (reserved: no plugin
	 * here implements them) */
	VACCEL_OP_TF_MODEL_LOAD = 8,
	VACCEL_OP_TF_MODEL_UNLOAD = 9,
	VACCEL_OP_TF_MODEL_RUN = 10,
	VACCEL_OP_TFLITE_MODEL_LOAD = 11,
	VACCEL_OP_TFLITE_MODEL_UNLOAD = 12,
	VACCEL_OP_TFLITE_MODEL_RUN = 13,
	VACCEL_OP_TORCH_MODEL_LOAD = 14,
	VACCEL_OP_TORCH_MODEL_RUN = 15,
	VACCEL_OP_TORCH_SGEMM = 16,
	VACCEL_OP_BLAS_SGEMM = 17,
	/* 18-21: upstream FPGA ops (reserved) */
	VACCEL_OP_FPGA_ARRAYCOPY = 18,
	VACCEL_OP_FPGA_MMULT = 19,
	VACCEL_OP_FPGA_PARALLEL = 20,
	VACCEL_OP_FPGA_VECTORADD = 21,
	VACCEL_OP_MINMAX = 22,
	VACCEL_OP_OPENCV = 23, /* reserved */
	/* vaccel-rs additions */
	VACCEL_OP_MODEL_LOAD = 64,
	VACCEL_OP_MODEL_UNLOAD = 65,
	VACCEL_OP_MODEL_RUN = 66,
	VACCEL_OP_AES_CBC_ENCRYPT = 67,
	VACCEL_OP_AES_CBC_DECRYPT = 68,
	VACCEL_OP_IMAGE_BLUR_FACES = 69
} vaccel_op_type_t;

/* The op's name ("IMAGE_CLASSIFY"), or "UNKNOWN". Never NULL. */
const char *vaccel_op_type_to_str(vaccel_op_type_t op);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_OP_H */
