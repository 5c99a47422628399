/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Bad input through the C API: every case returns its error code and
 * nothing crashes.
 *
 * Usage: bad_input [MODE]
 *   (none)      VACCEL_PLUGINS=noop
 *   notsup      VACCEL_PLUGINS=exec: ops the plugin lacks
 *   prof        VACCEL_PROFILING_ENABLED=1
 *   badplugins  VACCEL_PLUGINS names a plugin that does not exist
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static unsigned char img[] = "not really an image";

static void null_sessions(void)
{
	unsigned char out[64];
	struct vaccel_session zeroed;
	memset(&zeroed, 0, sizeof(zeroed));

	EXPECT(vaccel_session_init(NULL, 0), VACCEL_EINVAL);
	EXPECT(vaccel_session_new(NULL, 0), VACCEL_EINVAL);
	EXPECT(vaccel_session_release(NULL), VACCEL_EINVAL);
	EXPECT(vaccel_session_delete(NULL), VACCEL_EINVAL);
	EXPECT(vaccel_noop(NULL), VACCEL_EINVAL);
	CHECK(strlen(vaccel_last_error_message()) > 0);
	CHECK(strstr(vaccel_last_error_message(), "session") != NULL);
	/* A zeroed (never initialised) struct is refused, not dereferenced. */
	EXPECT(vaccel_noop(&zeroed), VACCEL_EINVAL);
	EXPECT(vaccel_session_release(&zeroed), VACCEL_EINVAL);
	EXPECT(vaccel_image_classification(NULL, img, out, out, sizeof(img),
					   sizeof(out), sizeof(out)),
	       VACCEL_EINVAL);
	EXPECT(vaccel_image_detection(NULL, img, out, sizeof(img), sizeof(out)),
	       VACCEL_EINVAL);
	EXPECT(vaccel_genop(NULL, NULL, 0, NULL, 0), VACCEL_EINVAL);
	EXPECT(vaccel_exec(NULL, "lib.so", "f", NULL, 0, NULL, 0),
	       VACCEL_EINVAL);
	float a[4] = { 0 };
	EXPECT(vaccel_sgemm(NULL, 2, 2, 1, 1.0f, a, 1, a, 2, 0.0f, a, 2),
	       VACCEL_EINVAL);
	double d[2] = { 1, 2 }, mn, mx;
	EXPECT(vaccel_minmax(NULL, d, 2, 0, 1, d, &mn, &mx), VACCEL_EINVAL);
	CHECK(!vaccel_session_has_resource(NULL, NULL));
}

static void bad_buffers(struct vaccel_session *s)
{
	unsigned char text[64], name[64];

	/* Classification: NULL / empty image, NULL / empty outputs. */
	EXPECT(vaccel_image_classification(s, NULL, text, name, 10,
					   sizeof(text), sizeof(name)),
	       VACCEL_EINVAL);
	EXPECT(vaccel_image_classification(s, img, text, name, 0, sizeof(text),
					   sizeof(name)),
	       VACCEL_EINVAL);
	EXPECT(vaccel_image_classification(s, img, NULL, name, sizeof(img),
					   sizeof(text), sizeof(name)),
	       VACCEL_EINVAL);
	EXPECT(vaccel_image_classification(s, img, text, name, sizeof(img), 0,
					   sizeof(name)),
	       VACCEL_EINVAL);
	EXPECT(vaccel_image_classification(s, img, text, NULL, sizeof(img),
					   sizeof(text), 5),
	       VACCEL_EINVAL);
	/* Output overlapping the image. */
	EXPECT(vaccel_image_classification(s, img, img, name, sizeof(img),
					   sizeof(img), sizeof(name)),
	       VACCEL_EINVAL);
	EXPECT(vaccel_image_segmentation(s, img, NULL, sizeof(img), 10),
	       VACCEL_EINVAL);
	EXPECT(vaccel_image_pose(s, img, name, sizeof(img), 0), VACCEL_EINVAL);
	EXPECT(vaccel_image_depth(s, NULL, name, 1, sizeof(name)),
	       VACCEL_EINVAL);

	/* SGEMM: negative or inconsistent dimensions, NULL matrices. */
	float a[6] = { 1, 2, 3, 4, 5, 6 }, b[6] = { 1, 2, 3, 4, 5, 6 }, c[4];
	EXPECT(vaccel_sgemm(s, -1, 2, 3, 1.0f, a, 3, b, 2, 0.0f, c, 2),
	       VACCEL_EINVAL);
	EXPECT(vaccel_sgemm(s, 2, 2, 3, 1.0f, NULL, 3, b, 2, 0.0f, c, 2),
	       VACCEL_EINVAL);
	EXPECT(vaccel_sgemm(s, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, NULL, 2),
	       VACCEL_EINVAL);
	EXPECT(vaccel_sgemm(s, 2, 2, 3, 1.0f, a, 2, b, 2, 0.0f, c, 2),
	       VACCEL_EINVAL); /* lda < k */
	EXPECT(vaccel_sgemm(s, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, a, 2),
	       VACCEL_EINVAL); /* C overlaps A */
	EXPECT(vaccel_sgemm(s, INT64_MAX, INT64_MAX, 3, 1.0f, a, 3, b, 2, 0.0f,
			    c, INT64_MAX),
	       VACCEL_EINVAL); /* overflow */

	/* MINMAX */
	double d[3] = { 3, -1, 10 }, out[3], mn, mx;
	EXPECT(vaccel_minmax(s, d, -1, 0, 5, out, &mn, &mx), VACCEL_EINVAL);
	EXPECT(vaccel_minmax(s, d, 0, 0, 5, out, &mn, &mx), VACCEL_EINVAL);
	EXPECT(vaccel_minmax(s, NULL, 3, 0, 5, out, &mn, &mx), VACCEL_EINVAL);
	EXPECT(vaccel_minmax(s, d, 3, 0, 5, NULL, &mn, &mx), VACCEL_EINVAL);
	EXPECT(vaccel_minmax(s, d, 3, 0, 5, out, NULL, &mx), VACCEL_EINVAL);
	EXPECT(vaccel_minmax(s, d, 3, 5, 0, out, &mn, &mx), VACCEL_EINVAL);

	/* EXEC: NULL strings, NULL argument lists with a count, NULL buffers. */
	EXPECT(vaccel_exec(s, NULL, "f", NULL, 0, NULL, 0), VACCEL_EINVAL);
	EXPECT(vaccel_exec(s, "lib.so", NULL, NULL, 0, NULL, 0), VACCEL_EINVAL);
	EXPECT(vaccel_exec(s, "lib.so", "f", NULL, 2, NULL, 0), VACCEL_EINVAL);
	struct vaccel_arg bad = { .buf = NULL, .size = 8,
				  .type = VACCEL_ARG_RAW };
	EXPECT(vaccel_exec(s, "lib.so", "f", &bad, 1, NULL, 0), VACCEL_EINVAL);
	EXPECT(vaccel_exec(s, "lib.so", "f", NULL, 0, &bad, 1), VACCEL_EINVAL);

	/* AES: NULL key / out_len; output too small reports the size needed. */
	uint8_t key[16] = { 0 }, iv[16] = { 0 }, msg[3] = { 1, 2, 3 },
		small[8];
	size_t n = 0;
	EXPECT(vaccel_aes_cbc_encrypt(s, NULL, 16, iv, 16, msg, 3, small,
				      sizeof(small), &n),
	       VACCEL_EINVAL);
	EXPECT(vaccel_aes_cbc_encrypt(s, key, 16, iv, 16, msg, 3, small,
				      sizeof(small), NULL),
	       VACCEL_EINVAL);
	EXPECT(vaccel_aes_cbc_encrypt(s, key, 16, iv, 16, msg, 3, small,
				      sizeof(small), &n),
	       VACCEL_ERANGE);
	CHECK(n == 16);
	EXPECT(vaccel_aes_cbc_decrypt(s, key, 15, iv, 16, msg, 3, small,
				      sizeof(small), &n),
	       VACCEL_EINVAL);

	/* Blur: output too small reports the size needed (noop echoes the input). */
	unsigned char jpeg[4];
	uint32_t faces = 99;
	EXPECT(vaccel_image_blur_faces(s, img, 10, jpeg, 2, &n, &faces),
	       VACCEL_ERANGE);
	CHECK(n == 10 && faces == 0);
	EXPECT(vaccel_image_blur_faces(s, img, 10, NULL, 2, &n, &faces),
	       VACCEL_EINVAL);
}

static void small_outputs(struct vaccel_session *s)
{
	/* Text that does not fit is truncated and NUL-terminated. */
	unsigned char text[8], name[3], one[1];
	memset(text, 'x', sizeof(text));
	memset(name, 'x', sizeof(name));
	EXPECT(vaccel_image_classification(s, img, text, name, sizeof(img),
					   sizeof(text), sizeof(name)),
	       VACCEL_OK);
	CHECK(strcmp((char *)text, "classif") == 0);
	CHECK(strcmp((char *)name, "no") == 0);
	EXPECT(vaccel_image_classification(s, img, one, NULL, sizeof(img),
					   sizeof(one), 0),
	       VACCEL_OK);
	CHECK(one[0] == '\0');
	unsigned char seg[3];
	EXPECT(vaccel_image_segmentation(s, img, seg, sizeof(img), sizeof(seg)),
	       VACCEL_OK);
	CHECK(strcmp((char *)seg, "no") == 0);
}

static void bad_genop(struct vaccel_session *s)
{
	uint8_t op8 = 99;
	uint32_t op32 = 1000;
	uint64_t op64 = UINT64_MAX;
	unsigned char op3[3] = { 0, 0, 0 };
	struct vaccel_arg read[1];

	EXPECT(vaccel_genop(s, NULL, 0, NULL, 0), VACCEL_EINVAL);
	EXPECT(vaccel_genop(s, NULL, 1, NULL, 0), VACCEL_EINVAL);
	vaccel_arg_init(&read[0], &op8, sizeof(op8), VACCEL_ARG_UINT8, 0);
	EXPECT(vaccel_genop(s, read, 1, NULL, 0), VACCEL_EINVAL);
	CHECK(strstr(vaccel_last_error_message(), "unknown op type 99") != NULL);
	vaccel_arg_init(&read[0], &op32, sizeof(op32), VACCEL_ARG_UINT32, 0);
	EXPECT(vaccel_genop(s, read, 1, NULL, 0), VACCEL_EINVAL);
	vaccel_arg_init(&read[0], &op64, sizeof(op64), VACCEL_ARG_UINT64, 0);
	EXPECT(vaccel_genop(s, read, 1, NULL, 0), VACCEL_EINVAL);
	vaccel_arg_init(&read[0], op3, sizeof(op3), VACCEL_ARG_RAW, 0);
	EXPECT(vaccel_genop(s, read, 1, NULL, 0), VACCEL_EINVAL);
	read[0].buf = NULL;
	read[0].size = 4;
	EXPECT(vaccel_genop(s, read, 1, NULL, 0), VACCEL_EINVAL);

	/* A known op with bad arguments: the plugin's validation speaks. */
	vaccel_op_type_t op = VACCEL_OP_BLAS_SGEMM;
	vaccel_arg_init(&read[0], &op, sizeof(op), VACCEL_ARG_UINT32, 0);
	EXPECT(vaccel_genop(s, read, 1, NULL, 0), VACCEL_EINVAL);

	/* Overlapping write buffers, and an unknown write argument type. */
	op = VACCEL_OP_NOOP;
	unsigned char buf[16];
	struct vaccel_arg write[2];
	vaccel_arg_init(&read[0], &op, sizeof(op), VACCEL_ARG_UINT32, 0);
	vaccel_arg_init(&write[0], buf, 8, VACCEL_ARG_RAW, 0);
	vaccel_arg_init(&write[1], buf + 4, 8, VACCEL_ARG_RAW, 0);
	EXPECT(vaccel_genop(s, read, 1, write, 2), VACCEL_EINVAL);
	vaccel_arg_init(&write[1], buf + 8, 8, (vaccel_arg_type_t)77, 0);
	EXPECT(vaccel_genop(s, read, 1, write, 2), VACCEL_EINVAL);
	vaccel_arg_init(&write[1], buf + 8, 8, VACCEL_ARG_RAW, 0);
	EXPECT(vaccel_genop(s, read, 1, write, 2), VACCEL_OK);
}

static void bad_resources(struct vaccel_session *s)
{
	struct vaccel_resource res, *rp = NULL;
	const char *paths[2] = { "/nonexistent/a.onnx", NULL };

	EXPECT(vaccel_resource_init(&res, "/nonexistent/model.onnx",
				    VACCEL_RESOURCE_MODEL),
	       VACCEL_ENOENT);
	CHECK(res.priv == NULL);
	CHECK(strstr(vaccel_last_error_message(), "/nonexistent/model.onnx") != NULL);
	EXPECT(vaccel_resource_release(&res), VACCEL_EINVAL);
	EXPECT(vaccel_resource_register(&res, s), VACCEL_EINVAL);
	EXPECT(vaccel_resource_new(&rp, "/nonexistent/model.onnx",
				   VACCEL_RESOURCE_MODEL),
	       VACCEL_ENOENT);
	CHECK(rp == NULL);
	EXPECT(vaccel_resource_init(&res, NULL, VACCEL_RESOURCE_MODEL),
	       VACCEL_EINVAL);
	EXPECT(vaccel_resource_init(NULL, "x", VACCEL_RESOURCE_MODEL),
	       VACCEL_EINVAL);
	EXPECT(vaccel_resource_init(&res, "https://example.com/m.onnx",
				    VACCEL_RESOURCE_MODEL),
	       VACCEL_ENOTSUP);
	EXPECT(vaccel_resource_init_multi(&res, paths, 1, VACCEL_RESOURCE_DATA),
	       VACCEL_ENOENT);
	EXPECT(vaccel_resource_init_multi(&res, paths, 2, VACCEL_RESOURCE_DATA),
	       VACCEL_EINVAL); /* paths[1] is NULL */
	EXPECT(vaccel_resource_init_multi(&res, paths, 0, VACCEL_RESOURCE_DATA),
	       VACCEL_EINVAL);
	EXPECT(vaccel_resource_init_from_buf(&res, NULL, 4,
					     VACCEL_RESOURCE_DATA, "x", true),
	       VACCEL_EINVAL);
	EXPECT(vaccel_resource_init_from_buf(&res, img, 0,
					     VACCEL_RESOURCE_DATA, "x", true),
	       VACCEL_EINVAL);
	EXPECT(vaccel_resource_init_from_buf(&res, img, 4,
					     (vaccel_resource_type_t)7, "x",
					     true),
	       VACCEL_EINVAL);
	EXPECT(vaccel_resource_init_from_buf(&res, img, 4,
					     VACCEL_RESOURCE_DATA, "a/b", true),
	       VACCEL_EINVAL);

	/* A good one: double registration, release while registered. */
	EXPECT(vaccel_resource_init_from_buf(&res, img, sizeof(img),
					     VACCEL_RESOURCE_LIB, "lib.so",
					     true),
	       VACCEL_OK);
	EXPECT(vaccel_exec_with_resource(s, &res, "f", NULL, 0, NULL, 0),
	       VACCEL_EPERM);
	EXPECT(vaccel_resource_unregister(&res, s), VACCEL_ENOENT);
	EXPECT(vaccel_resource_register(&res, NULL), VACCEL_EINVAL);
	EXPECT(vaccel_resource_register(NULL, s), VACCEL_EINVAL);
	EXPECT(vaccel_resource_register(&res, s), VACCEL_OK);
	EXPECT(vaccel_resource_register(&res, s), VACCEL_EEXIST);
	EXPECT(vaccel_resource_release(&res), VACCEL_EBUSY);
	CHECK(vaccel_session_has_resource(s, &res));
	EXPECT(vaccel_resource_unregister(&res, s), VACCEL_OK);
	EXPECT(vaccel_resource_release(&res), VACCEL_OK);
	EXPECT(vaccel_resource_release(&res), VACCEL_EINVAL);
	EXPECT(vaccel_resource_delete(NULL), VACCEL_EINVAL);
}

static void bad_arg_arrays(void)
{
	struct vaccel_arg_array a, w;
	int32_t i32 = 7, got = 0;
	double dbl = 0;
	char *str = NULL;
	struct vaccel_arg raw[1];
	char not_terminated[3] = { 'a', 'b', 'c' };

	EXPECT(vaccel_arg_array_init(NULL, 1), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_init(&a, 0), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_int32(&a, &got), VACCEL_ERANGE);
	EXPECT(vaccel_arg_array_add_int32(&a, NULL), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_add_int32(&a, &i32), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_double(&a, &dbl), VACCEL_EINVAL);
	CHECK(vaccel_arg_array_position(&a) == 0);
	EXPECT(vaccel_arg_array_get_int32(&a, NULL), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_get_int32(&a, &got), VACCEL_OK);
	CHECK(got == 7);
	EXPECT(vaccel_arg_array_get_int32(&a, &got), VACCEL_ERANGE);
	EXPECT(vaccel_arg_array_add_raw(&a, NULL, 4), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_add_string(&a, NULL), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_add_serialized(&a, VACCEL_ARG_CUSTOM, 1, &i32,
					       NULL),
	       VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_release(&a), VACCEL_OK);
	EXPECT(vaccel_arg_array_release(NULL), VACCEL_EINVAL);
	CHECK(vaccel_arg_array_count(NULL) == 0);
	CHECK(vaccel_arg_array_raw(NULL) == NULL);
	vaccel_arg_array_reset_position(NULL);

	/* A wrapped array cannot grow; a non-terminated STRING is refused;
	 * set_* must fit the argument. */
	vaccel_arg_init(&raw[0], not_terminated, sizeof(not_terminated),
			VACCEL_ARG_STRING, 0);
	EXPECT(vaccel_arg_array_wrap(&w, raw, 1), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_int32(&w, &i32), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_clear(&w), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_get_string(&w, &str), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_set_string(&w, "too long"), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_set_string(&w, "ok"), VACCEL_OK);
	CHECK(raw[0].size == 3 && strcmp(not_terminated, "ok") == 0);
	vaccel_arg_array_reset_position(&w);
	EXPECT(vaccel_arg_array_get_string(&w, &str), VACCEL_OK);
	CHECK(str == not_terminated);
	EXPECT(vaccel_arg_array_wrap(&w, NULL, 2), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_release(&w), VACCEL_OK);

	/* A zeroed array is not usable until initialised. */
	struct vaccel_arg_array z;
	memset(&z, 0, sizeof(z));
	EXPECT(vaccel_arg_array_add_int32(&z, &i32), VACCEL_EINVAL);
	EXPECT(vaccel_arg_array_get_int32(&z, &got), VACCEL_ERANGE);

	/* Plain args */
	EXPECT(vaccel_arg_init(NULL, NULL, 0, VACCEL_ARG_RAW, 0), VACCEL_EINVAL);
	EXPECT(vaccel_arg_init(&raw[0], NULL, 4, VACCEL_ARG_RAW, 0),
	       VACCEL_EINVAL);
	EXPECT(vaccel_arg_release(NULL), VACCEL_EINVAL);
	EXPECT(vaccel_arg_delete(NULL), VACCEL_EINVAL);
}

static void bad_models(struct vaccel_session *s)
{
	int64_t dims[2] = { 2, 2 }, neg[1] = { -1 };
	float x[4] = { 1, 2, 3, 4 };
	struct vaccel_tensor in = { "x", VACCEL_TENSOR_FLOAT32, 2, dims, x,
				    sizeof(x) };
	struct vaccel_tensor *out = NULL;
	size_t nr = 0;

	EXPECT(vaccel_model_run(s, NULL, &in, 1, NULL, &nr), VACCEL_EINVAL);
	EXPECT(vaccel_model_run(s, NULL, NULL, 1, &out, &nr), VACCEL_EINVAL);
	in.size = 12; /* shape needs 16 bytes */
	EXPECT(vaccel_model_run(s, NULL, &in, 1, &out, &nr), VACCEL_EINVAL);
	in.size = sizeof(x);
	in.dtype = (vaccel_tensor_dtype_t)99;
	EXPECT(vaccel_model_run(s, NULL, &in, 1, &out, &nr), VACCEL_EINVAL);
	in.dtype = VACCEL_TENSOR_FLOAT32;
	in.dims = neg;
	in.nr_dims = 1;
	EXPECT(vaccel_model_run(s, NULL, &in, 1, &out, &nr), VACCEL_EINVAL);
	in.dims = NULL;
	EXPECT(vaccel_model_run(s, NULL, &in, 1, &out, &nr), VACCEL_EINVAL);
	CHECK(out == NULL);
	vaccel_tensors_free(NULL);
}

static void released_session(void)
{
	struct vaccel_session s;
	unsigned char text[64];
	EXPECT(vaccel_session_init(&s, 0), VACCEL_OK);
	EXPECT(vaccel_noop(&s), VACCEL_OK);
	EXPECT(vaccel_session_release(&s), VACCEL_OK);
	CHECK(s.priv == NULL);
	EXPECT(vaccel_noop(&s), VACCEL_EINVAL);
	EXPECT(vaccel_session_release(&s), VACCEL_EINVAL);
	EXPECT(vaccel_image_classification(&s, img, text, NULL, sizeof(img),
					   sizeof(text), 0),
	       VACCEL_EINVAL);
	EXPECT(vaccel_model_load(&s, NULL), VACCEL_EINVAL);

	/* Releasing a session unregisters its resources. */
	struct vaccel_resource res;
	EXPECT(vaccel_session_init(&s, 0), VACCEL_OK);
	EXPECT(vaccel_resource_init_from_buf(&res, img, sizeof(img),
					     VACCEL_RESOURCE_DATA, NULL, false),
	       VACCEL_OK);
	EXPECT(vaccel_resource_register(&res, &s), VACCEL_OK);
	EXPECT(vaccel_session_release(&s), VACCEL_OK);
	CHECK(!vaccel_session_has_resource(&s, &res));
	EXPECT(vaccel_resource_register(&res, &s), VACCEL_EINVAL);
	EXPECT(vaccel_resource_release(&res), VACCEL_OK);

	/* A heap session deleted after a release. */
	struct vaccel_session *hp = NULL;
	EXPECT(vaccel_session_new(&hp, 0), VACCEL_OK);
	EXPECT(vaccel_session_release(hp), VACCEL_OK);
	EXPECT(vaccel_session_delete(hp), VACCEL_OK);
}

static void bad_profiling(void)
{
	struct vaccel_prof_region r = VACCEL_PROF_REGION_INIT("r");
	EXPECT(vaccel_prof_region_start(NULL), VACCEL_EINVAL);
	EXPECT(vaccel_prof_region_stop(NULL), VACCEL_EINVAL);
	EXPECT(vaccel_prof_region_print(NULL), VACCEL_EINVAL);
	EXPECT(vaccel_prof_region_release(NULL), VACCEL_EINVAL);
	/* Profiling is disabled here: stop without start is fine, nothing counts. */
	EXPECT(vaccel_prof_region_stop(&r), VACCEL_OK);
	EXPECT(vaccel_prof_region_start(&r), VACCEL_OK);
	EXPECT(vaccel_prof_region_stop(&r), VACCEL_OK);
	CHECK(r.nr_entries == 0);
}

static int mode_default(void)
{
	struct vaccel_session s;

	null_sessions();
	EXPECT(vaccel_session_init(&s, 0), VACCEL_OK);
	bad_buffers(&s);
	small_outputs(&s);
	bad_genop(&s);
	bad_resources(&s);
	bad_models(&s);
	EXPECT(vaccel_session_release(&s), VACCEL_OK);
	bad_arg_arrays();
	released_session();
	bad_profiling();
	/* No plugin of this type is loaded. */
	EXPECT(vaccel_session_init(&s, VACCEL_PLUGIN_GPU), VACCEL_ENOTSUP);
	EXPECT(vaccel_noop(&s), VACCEL_EINVAL);
	return report("bad_input");
}

static int mode_notsup(void)
{
	struct vaccel_session s;
	unsigned char text[64];
	float m[1] = { 0 };
	uint8_t key[16] = { 0 }, iv[16] = { 0 }, out[32];
	size_t n;

	EXPECT(vaccel_session_init(&s, 0), VACCEL_OK);
	EXPECT(vaccel_image_classification(&s, img, text, NULL, sizeof(img),
					   sizeof(text), 0),
	       VACCEL_ENOTSUP);
	CHECK(strstr(vaccel_last_error_message(), "does not implement") != NULL);
	EXPECT(vaccel_sgemm(&s, 1, 1, 1, 1.0f, m, 1, m, 1, 0.0f, m, 1),
	       VACCEL_EINVAL); /* C overlaps A: refused before dispatch */
	float a[1] = { 1 }, c[1] = { 0 };
	EXPECT(vaccel_sgemm(&s, 1, 1, 1, 1.0f, a, 1, a, 1, 0.0f, c, 1),
	       VACCEL_ENOTSUP);
	EXPECT(vaccel_aes_cbc_encrypt(&s, key, 16, iv, 16, key, 16, out,
				      sizeof(out), &n),
	       VACCEL_ENOTSUP);
	/* The exec plugin does NOOP; a library off the allow-list is EPERM. */
	EXPECT(vaccel_noop(&s), VACCEL_OK);
	EXPECT(vaccel_exec(&s, "/nonexistent/lib.so", "f", NULL, 0, NULL, 0),
	       VACCEL_ENOENT);
	EXPECT(vaccel_session_release(&s), VACCEL_OK);
	return report("bad_input notsup");
}

static int mode_prof(void)
{
	struct vaccel_prof_region r = VACCEL_PROF_REGION_INIT("region");
	EXPECT(vaccel_prof_region_stop(&r), VACCEL_EINVAL);
	for (int i = 0; i < 3; i++) {
		EXPECT(vaccel_prof_region_start(&r), VACCEL_OK);
		EXPECT(vaccel_prof_region_stop(&r), VACCEL_OK);
	}
	CHECK(r.nr_entries == 3);
	CHECK(r.min_ns <= r.max_ns && r.max_ns <= r.total_ns);
	EXPECT(vaccel_prof_region_print(&r), VACCEL_OK);
	EXPECT(vaccel_prof_region_release(&r), VACCEL_OK);
	CHECK(r.nr_entries == 0 && r.total_ns == 0 && strcmp(r.name, "region") == 0);
	return report("bad_input prof");
}

static int mode_badplugins(void)
{
	struct vaccel_session s;
	EXPECT(vaccel_bootstrap(), VACCEL_ENOENT);
	EXPECT(vaccel_session_init(&s, 0), VACCEL_ENOENT);
	CHECK(strstr(vaccel_last_error_message(), "nosuch") != NULL);
	CHECK(s.priv == NULL);
	EXPECT(vaccel_noop(&s), VACCEL_EINVAL);
	return report("bad_input badplugins");
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	if (strcmp(mode, "notsup") == 0)
		return mode_notsup();
	if (strcmp(mode, "prof") == 0)
		return mode_prof();
	if (strcmp(mode, "badplugins") == 0)
		return mode_badplugins();
	return mode_default();
}
