/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Argument arrays: build argument lists for vaccel_genop / vaccel_exec, and
 * read them back (e.g. in an EXEC callee, after vaccel_arg_array_wrap).
 *
 * Memory:
 * - add_<scalar> copies the value into memory the array owns;
 * - add_raw / add_buffer / add_string / add_<type>_array reference the
 *   caller's memory (not copied): keep it alive while the array is used;
 * - add_serialized owns the buffer the serializer returned (it must come
 *   from malloc; the array frees it).
 *
 * Reading and writing: get_* and set_* use the argument at `position` and
 * move to the next one. The argument must have the expected type (and, for
 * scalars, exactly the scalar's size): otherwise VACCEL_EINVAL and the
 * position does not move. Past the last argument: VACCEL_ERANGE.
 * get_* of buffers, strings and arrays return pointers into the argument
 * (nothing is copied); set_* copy into the argument's buffer, which must be
 * large enough, and set its size to what was written.
 *
 *     struct vaccel_arg_array read, write;
 *     int32_t x = 21, y = 0;
 *     vaccel_arg_array_init(&read, 1);
 *     vaccel_arg_array_init(&write, 1);
 *     vaccel_arg_array_add_int32(&read, &x);
 *     vaccel_arg_array_add_int32(&write, &y);
 *     vaccel_exec(&sess, lib, "fn", vaccel_arg_array_raw(&read),
 *                 vaccel_arg_array_count(&read), vaccel_arg_array_raw(&write),
 *                 vaccel_arg_array_count(&write));
 *     vaccel_arg_array_get_int32(&write, &y);
 *     vaccel_arg_array_release(&read);
 *     vaccel_arg_array_release(&write);
 */
#ifndef VACCEL_ARG_ARRAY_H
#define VACCEL_ARG_ARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arg.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vaccel_arg_array {
	struct vaccel_arg *args;
	size_t count; /* arguments in args */
	size_t capacity; /* allocated entries */
	size_t position; /* next argument get_* / set_* use */
	bool owned; /* whether the array owns args (false when wrapped) */
};

/* Serialize obj into a malloc'ed buffer, storing its size; NULL on failure. */
typedef void *(*vaccel_arg_serializer_t)(const void *obj, size_t *size);
/* Build an object from a buffer; NULL on failure. */
typedef void *(*vaccel_arg_deserializer_t)(const void *buf, size_t size);

/* An empty array with room for capacity arguments (it grows as needed). */
int vaccel_arg_array_init(struct vaccel_arg_array *array, size_t capacity);
/* A view of existing arguments (e.g. an EXEC callee's); nothing is copied
 * or freed, and nothing can be added. */
int vaccel_arg_array_wrap(struct vaccel_arg_array *array,
			  struct vaccel_arg *args, size_t count);
/* Free what the array owns and clear it. */
int vaccel_arg_array_release(struct vaccel_arg_array *array);
/* Heap-allocated variants; free with vaccel_arg_array_delete. */
int vaccel_arg_array_new(struct vaccel_arg_array **array, size_t capacity);
int vaccel_arg_array_delete(struct vaccel_arg_array *array);
/* Drop every argument (freeing owned buffers), keeping the allocation. */
int vaccel_arg_array_clear(struct vaccel_arg_array *array);

size_t vaccel_arg_array_count(const struct vaccel_arg_array *array);
size_t vaccel_arg_array_position(const struct vaccel_arg_array *array);
void vaccel_arg_array_reset_position(struct vaccel_arg_array *array);
/* The arguments, for vaccel_genop / vaccel_exec (NULL when empty). */
struct vaccel_arg *vaccel_arg_array_raw(struct vaccel_arg_array *array);

/* VACCEL_ARG_RAW */
int vaccel_arg_array_add_raw(struct vaccel_arg_array *array, void *buf,
			     size_t size);
int vaccel_arg_array_get_raw(struct vaccel_arg_array *array, void **buf,
			     size_t *size);
int vaccel_arg_array_set_raw(struct vaccel_arg_array *array, const void *buf,
			     size_t size);

/* VACCEL_ARG_BUFFER */
int vaccel_arg_array_add_buffer(struct vaccel_arg_array *array, void *buf, size_t size);
int vaccel_arg_array_get_buffer(struct vaccel_arg_array *array, void **buf, size_t *size);
int vaccel_arg_array_set_buffer(struct vaccel_arg_array *array,
				const void *buf, size_t size);

/* VACCEL_ARG_STRING (the size includes the terminating NUL) */
int vaccel_arg_array_add_string(struct vaccel_arg_array *array, const char *str);
int vaccel_arg_array_get_string(struct vaccel_arg_array *array, char **str);
int vaccel_arg_array_set_string(struct vaccel_arg_array *array, const char *str);

/* Any type (e.g. VACCEL_ARG_CUSTOM with a custom id), via (de)serializers */
int vaccel_arg_array_add_serialized(struct vaccel_arg_array *array,
				    vaccel_arg_type_t type, uint32_t custom_id,
				    const void *obj,
				    vaccel_arg_serializer_t serializer);
int vaccel_arg_array_get_serialized(struct vaccel_arg_array *array,
				    vaccel_arg_type_t type, uint32_t custom_id,
				    void **obj,
				    vaccel_arg_deserializer_t deserializer);

/* int8_t: VACCEL_ARG_INT8 (scalar, copied) and VACCEL_ARG_INT8_ARRAY (referenced) */
int vaccel_arg_array_add_int8(struct vaccel_arg_array *array, const int8_t *value);
int vaccel_arg_array_get_int8(struct vaccel_arg_array *array, int8_t *value);
int vaccel_arg_array_set_int8(struct vaccel_arg_array *array, const int8_t *value);
int vaccel_arg_array_add_int8_array(struct vaccel_arg_array *array, int8_t *values, size_t count);
int vaccel_arg_array_get_int8_array(struct vaccel_arg_array *array, int8_t **values, size_t *count);
int vaccel_arg_array_set_int8_array(struct vaccel_arg_array *array, const int8_t *values, size_t count);

/* int16_t: VACCEL_ARG_INT16 (scalar, copied) and VACCEL_ARG_INT16_ARRAY (referenced) */
int vaccel_arg_array_add_int16(struct vaccel_arg_array *array, const int16_t *value);
int vaccel_arg_array_get_int16(struct vaccel_arg_array *array, int16_t *value);
int vaccel_arg_array_set_int16(struct vaccel_arg_array *array, const int16_t *value);
int vaccel_arg_array_add_int16_array(struct vaccel_arg_array *array, int16_t *values, size_t count);
int vaccel_arg_array_get_int16_array(struct vaccel_arg_array *array, int16_t **values, size_t *count);
int vaccel_arg_array_set_int16_array(struct vaccel_arg_array *array, const int16_t *values, size_t count);

/* int32_t: VACCEL_ARG_INT32 (scalar, copied) and VACCEL_ARG_INT32_ARRAY (referenced) */
int vaccel_arg_array_add_int32(struct vaccel_arg_array *array, const int32_t *value);
int vaccel_arg_array_get_int32(struct vaccel_arg_array *array, int32_t *value);
int vaccel_arg_array_set_int32(struct vaccel_arg_array *array, const int32_t *value);
int vaccel_arg_array_add_int32_array(struct vaccel_arg_array *array, int32_t *values, size_t count);
int vaccel_arg_array_get_int32_array(struct vaccel_arg_array *array, int32_t **values, size_t *count);
int vaccel_arg_array_set_int32_array(struct vaccel_arg_array *array, const int32_t *values, size_t count);

/* int64_t: VACCEL_ARG_INT64 (scalar, copied) and VACCEL_ARG_INT64_ARRAY (referenced) */
int vaccel_arg_array_add_int64(struct vaccel_arg_array *array, const int64_t *value);
int vaccel_arg_array_get_int64(struct vaccel_arg_array *array, int64_t *value);
int vaccel_arg_array_set_int64(struct vaccel_arg_array *array, const int64_t *value);
int vaccel_arg_array_add_int64_array(struct vaccel_arg_array *array, int64_t *values, size_t count);
int vaccel_arg_array_get_int64_array(struct vaccel_arg_array *array, int64_t **values, size_t *count);
int vaccel_arg_array_set_int64_array(struct vaccel_arg_array *array, const int64_t *values, size_t count);

/* uint8_t: VACCEL_ARG_UINT8 (scalar, copied) and VACCEL_ARG_UINT8_ARRAY (referenced) */
int vaccel_arg_array_add_uint8(struct vaccel_arg_array *array, const uint8_t *value);
int vaccel_arg_array_get_uint8(struct vaccel_arg_array *array, uint8_t *value);
int vaccel_arg_array_set_uint8(struct vaccel_arg_array *array, const uint8_t *value);
int vaccel_arg_array_add_uint8_array(struct vaccel_arg_array *array, uint8_t *values, size_t count);
int vaccel_arg_array_get_uint8_array(struct vaccel_arg_array *array, uint8_t **values, size_t *count);
int vaccel_arg_array_set_uint8_array(struct vaccel_arg_array *array, const uint8_t *values, size_t count);

/* uint16_t: VACCEL_ARG_UINT16 (scalar, copied) and VACCEL_ARG_UINT16_ARRAY (referenced) */
int vaccel_arg_array_add_uint16(struct vaccel_arg_array *array, const uint16_t *value);
int vaccel_arg_array_get_uint16(struct vaccel_arg_array *array, uint16_t *value);
int vaccel_arg_array_set_uint16(struct vaccel_arg_array *array, const uint16_t *value);
int vaccel_arg_array_add_uint16_array(struct vaccel_arg_array *array, uint16_t *values, size_t count);
int vaccel_arg_array_get_uint16_array(struct vaccel_arg_array *array, uint16_t **values, size_t *count);
int vaccel_arg_array_set_uint16_array(struct vaccel_arg_array *array, const uint16_t *values, size_t count);

/* uint32_t: VACCEL_ARG_UINT32 (scalar, copied) and VACCEL_ARG_UINT32_ARRAY (referenced) */
int vaccel_arg_array_add_uint32(struct vaccel_arg_array *array, const uint32_t *value);
int vaccel_arg_array_get_uint32(struct vaccel_arg_array *array, uint32_t *value);
int vaccel_arg_array_set_uint32(struct vaccel_arg_array *array, const uint32_t *value);
int vaccel_arg_array_add_uint32_array(struct vaccel_arg_array *array, uint32_t *values, size_t count);
int vaccel_arg_array_get_uint32_array(struct vaccel_arg_array *array, uint32_t **values, size_t *count);
int vaccel_arg_array_set_uint32_array(struct vaccel_arg_array *array, const uint32_t *values, size_t count);

/* uint64_t: VACCEL_ARG_UINT64 (scalar, copied) and VACCEL_ARG_UINT64_ARRAY (referenced) */
int vaccel_arg_array_add_uint64(struct vaccel_arg_array *array, const uint64_t *value);
int vaccel_arg_array_get_uint64(struct vaccel_arg_array *array, uint64_t *value);
int vaccel_arg_array_set_uint64(struct vaccel_arg_array *array, const uint64_t *value);
int vaccel_arg_array_add_uint64_array(struct vaccel_arg_array *array, uint64_t *values, size_t count);
int vaccel_arg_array_get_uint64_array(struct vaccel_arg_array *array, uint64_t **values, size_t *count);
int vaccel_arg_array_set_uint64_array(struct vaccel_arg_array *array, const uint64_t *values, size_t count);

/* float: VACCEL_ARG_FLOAT32 (scalar, copied) and VACCEL_ARG_FLOAT32_ARRAY (referenced) */
int vaccel_arg_array_add_float(struct vaccel_arg_array *array, const float *value);
int vaccel_arg_array_get_float(struct vaccel_arg_array *array, float *value);
int vaccel_arg_array_set_float(struct vaccel_arg_array *array, const float *value);
int vaccel_arg_array_add_float_array(struct vaccel_arg_array *array, float *values, size_t count);
int vaccel_arg_array_get_float_array(struct vaccel_arg_array *array, float **values, size_t *count);
int vaccel_arg_array_set_float_array(struct vaccel_arg_array *array, const float *values, size_t count);

/* double: VACCEL_ARG_FLOAT64 (scalar, copied) and VACCEL_ARG_FLOAT64_ARRAY (referenced) */
int vaccel_arg_array_add_double(struct vaccel_arg_array *array, const double *value);
int vaccel_arg_array_get_double(struct vaccel_arg_array *array, double *value);
int vaccel_arg_array_set_double(struct vaccel_arg_array *array, const double *value);
int vaccel_arg_array_add_double_array(struct vaccel_arg_array *array, double *values, size_t count);
int vaccel_arg_array_get_double_array(struct vaccel_arg_array *array, double **values, size_t *count);
int vaccel_arg_array_set_double_array(struct vaccel_arg_array *array, const double *values, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_ARG_ARRAY_H */
