/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Arguments: a typed view of a buffer. This is the layout EXEC callees
 * receive:
 *
 *     int fn(struct vaccel_arg *in, size_t nr_in,
 *            struct vaccel_arg *out, size_t nr_out);
 *
 * and what vaccel_genop / vaccel_exec take. Scalars are native-endian.
 */
#ifndef VACCEL_ARG_H
#define VACCEL_ARG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vaccel_arg_type {
	VACCEL_ARG_RAW = 0,
	VACCEL_ARG_INT8 = 1,
	VACCEL_ARG_INT8_ARRAY = 2,
	VACCEL_ARG_INT16 = 3,
	VACCEL_ARG_INT16_ARRAY = 4,
	VACCEL_ARG_INT32 = 5,
	VACCEL_ARG_INT32_ARRAY = 6,
	VACCEL_ARG_INT64 = 7,
	VACCEL_ARG_INT64_ARRAY = 8,
	VACCEL_ARG_UINT8 = 9,
	VACCEL_ARG_UINT8_ARRAY = 10,
	VACCEL_ARG_UINT16 = 11,
	VACCEL_ARG_UINT16_ARRAY = 12,
	VACCEL_ARG_UINT32 = 13,
	VACCEL_ARG_UINT32_ARRAY = 14,
	VACCEL_ARG_UINT64 = 15,
	VACCEL_ARG_UINT64_ARRAY = 16,
	VACCEL_ARG_FLOAT32 = 17,
	VACCEL_ARG_FLOAT32_ARRAY = 18,
	VACCEL_ARG_FLOAT64 = 19,
	VACCEL_ARG_FLOAT64_ARRAY = 20,
	VACCEL_ARG_BOOL = 21,
	VACCEL_ARG_BOOL_ARRAY = 22,
	VACCEL_ARG_CHAR = 23,
	VACCEL_ARG_CHAR_ARRAY = 24,
	VACCEL_ARG_UCHAR = 25,
	VACCEL_ARG_UCHAR_ARRAY = 26,
	VACCEL_ARG_STRING = 27,
	VACCEL_ARG_BUFFER = 28,
	VACCEL_ARG_CUSTOM = 29
} vaccel_arg_type_t;

struct vaccel_arg {
	void *buf; /* data */
	size_t size; /* size of the data in bytes */
	vaccel_arg_type_t type;
	uint32_t custom_type_id; /* for VACCEL_ARG_CUSTOM */
	bool owned; /* whether the library allocated buf (and frees it) */
};

/* Initialise an argument referencing buf (not copied, not freed). */
int vaccel_arg_init(struct vaccel_arg *arg, void *buf, size_t size,
		    vaccel_arg_type_t type, uint32_t custom_id);

/* Initialise an argument holding a copy of buf (freed by vaccel_arg_release). */
int vaccel_arg_init_from_buf(struct vaccel_arg *arg, const void *buf,
			     size_t size, vaccel_arg_type_t type,
			     uint32_t custom_id);

/* Free an owned buffer and clear the argument. */
int vaccel_arg_release(struct vaccel_arg *arg);

/* Heap-allocated variants; free with vaccel_arg_delete. */
int vaccel_arg_new(struct vaccel_arg **arg, void *buf, size_t size,
		   vaccel_arg_type_t type, uint32_t custom_id);
int vaccel_arg_from_buf(struct vaccel_arg **arg, const void *buf, size_t size,
			vaccel_arg_type_t type, uint32_t custom_id);
int vaccel_arg_delete(struct vaccel_arg *arg);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_ARG_H */
