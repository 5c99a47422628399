/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Models (vaccel-rs addition): load a MODEL resource and run it on named,
 * typed tensors.
 *
 *     int64_t dims[] = {1, 4};
 *     float x[4] = {1, 2, 3, 4};
 *     struct vaccel_tensor in = {"input", VACCEL_TENSOR_FLOAT32, 2, dims, x, sizeof(x)};
 *     struct vaccel_tensor *out;
 *     size_t nr_out;
 *     vaccel_model_run(&sess, &model, &in, 1, &out, &nr_out);
 *     ... out[0].data, out[0].dims ...
 *     vaccel_tensors_free(out);
 */
#ifndef VACCEL_MODEL_H
#define VACCEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vaccel_session;
struct vaccel_resource;

/* Element types, with ONNX's numbering. */
typedef enum vaccel_tensor_dtype {
	VACCEL_TENSOR_FLOAT32 = 1,
	VACCEL_TENSOR_UINT8 = 2,
	VACCEL_TENSOR_INT8 = 3,
	VACCEL_TENSOR_UINT16 = 4,
	VACCEL_TENSOR_INT16 = 5,
	VACCEL_TENSOR_INT32 = 6,
	VACCEL_TENSOR_INT64 = 7,
	VACCEL_TENSOR_BOOL = 9,
	VACCEL_TENSOR_FLOAT64 = 11,
	VACCEL_TENSOR_UINT32 = 12,
	VACCEL_TENSOR_UINT64 = 13
} vaccel_tensor_dtype_t;

struct vaccel_tensor {
	const char *name; /* NULL or "" for a positional input */
	vaccel_tensor_dtype_t dtype;
	uint32_t nr_dims;
	const int64_t *dims; /* nr_dims dimensions, none negative */
	const void *data; /* row-major elements, native-endian */
	size_t size; /* bytes: elements x element size */
};

/* Prepare a MODEL resource registered to the session (NULL: the plugin's
 * default model). */
int vaccel_model_load(struct vaccel_session *sess,
		      struct vaccel_resource *model);
int vaccel_model_unload(struct vaccel_session *sess,
			struct vaccel_resource *model);
/* Run a model (NULL: the plugin's default). *outputs is one allocation
 * (NULL when there are none): free it with vaccel_tensors_free. */
int vaccel_model_run(struct vaccel_session *sess, struct vaccel_resource *model,
		     const struct vaccel_tensor *inputs, size_t nr_inputs,
		     struct vaccel_tensor **outputs, size_t *nr_outputs);
void vaccel_tensors_free(struct vaccel_tensor *tensors);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_MODEL_H */
