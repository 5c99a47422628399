/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C API doing its job, on the noop plugin (VACCEL_PLUGINS=noop):
 * sessions, resources, every op function, genop, argument arrays, models.
 *
 * Usage: api FILE   (FILE: any existing regular file, used as a resource)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static unsigned char img[] = "pretend image bytes";

static void sessions(void)
{
	struct vaccel_session *hp = NULL, s;
	EXPECT(vaccel_bootstrap(), VACCEL_OK);
	EXPECT(vaccel_session_new(&hp, VACCEL_PLUGIN_DEBUG), VACCEL_OK);
	CHECK(hp != NULL && hp->id >= 1 && hp->hint == VACCEL_PLUGIN_DEBUG);
	CHECK(!hp->is_virtio && hp->priv != NULL);
	EXPECT(vaccel_session_init(&s, 0), VACCEL_OK);
	CHECK(s.id != hp->id);
	EXPECT(vaccel_noop(hp), VACCEL_OK);
	EXPECT(vaccel_session_delete(hp), VACCEL_OK);
	EXPECT(vaccel_session_release(&s), VACCEL_OK);
	EXPECT(vaccel_cleanup(), VACCEL_OK);
	CHECK(strcmp(vaccel_op_type_to_str(VACCEL_OP_IMAGE_CLASSIFY),
		     "IMAGE_CLASSIFY") == 0);
	CHECK(strcmp(vaccel_op_type_to_str(VACCEL_OP_AES_CBC_ENCRYPT),
		     "AES_CBC_ENCRYPT") == 0);
	CHECK(strcmp(vaccel_op_type_to_str((vaccel_op_type_t)999), "UNKNOWN") == 0);
}

static void typed_ops(struct vaccel_session *s)
{
	/* noop's SGEMM: C = beta * C */
	float a[4] = { 1, 2, 3, 4 }, c[4] = { 2, 4, 6, 8 };
	EXPECT(vaccel_sgemm(s, 2, 2, 2, 1.0f, a, 2, a, 2, 0.5f, c, 2),
	       VACCEL_OK);
	CHECK(c[0] == 1 && c[1] == 2 && c[2] == 3 && c[3] == 4);
	/* m = 0: nothing to do, NULL matrices are fine. */
	EXPECT(vaccel_sgemm(s, 0, 2, 2, 1.0f, NULL, 2, a, 2, 0.0f, NULL, 2),
	       VACCEL_OK);

	/* MINMAX (computed for real by noop), also in place. */
	double d[4] = { 3, -1, 10, 4 }, out[4], mn = 0, mx = 0;
	EXPECT(vaccel_minmax(s, d, 4, 0, 5, out, &mn, &mx), VACCEL_OK);
	CHECK(out[0] == 3 && out[1] == 0 && out[2] == 5 && out[3] == 4);
	CHECK(mn == -1 && mx == 10);
	EXPECT(vaccel_minmax(s, d, 4, 0, 5, d, &mn, &mx), VACCEL_OK);
	CHECK(d[1] == 0 && d[2] == 5 && mn == -1 && mx == 10);

	unsigned char text[128], name[64];
	EXPECT(vaccel_image_classification(s, img, text, name, sizeof(img),
					   sizeof(text), sizeof(name)),
	       VACCEL_OK);
	CHECK(strcmp((char *)text, "classification tags: 100.000% noop") == 0);
	CHECK(strcmp((char *)name, "noop.png") == 0);
	EXPECT(vaccel_image_detection(s, img, name, sizeof(img), sizeof(name)),
	       VACCEL_OK);
	CHECK(strcmp((char *)name, "detected 1 face(s)") == 0);
	EXPECT(vaccel_image_segmentation(s, img, name, sizeof(img), sizeof(name)),
	       VACCEL_OK);
	CHECK(strcmp((char *)name, "noop") == 0);
	EXPECT(vaccel_image_pose(s, img, name, sizeof(img), sizeof(name)),
	       VACCEL_OK);
	EXPECT(vaccel_image_depth(s, img, name, sizeof(img), sizeof(name)),
	       VACCEL_OK);

	/* noop's AES echoes the input. */
	uint8_t key[16] = { 0 }, iv[16] = { 0 }, buf[32] = "secret";
	uint8_t enc[32];
	size_t n = 0;
	EXPECT(vaccel_aes_cbc_encrypt(s, key, 16, iv, 16, buf, 6, enc,
				      sizeof(enc), &n),
	       VACCEL_OK);
	CHECK(n == 6 && memcmp(enc, "secret", 6) == 0);
	EXPECT(vaccel_aes_cbc_encrypt(s, key, 16, iv, 16, buf, 6, buf,
				      sizeof(buf), &n),
	       VACCEL_OK); /* in place */
	CHECK(n == 6 && memcmp(buf, "secret", 6) == 0);
	EXPECT(vaccel_aes_cbc_decrypt(s, key, 32, iv, 16, enc, 16, buf, 16, &n),
	       VACCEL_OK);
	CHECK(n == 16);

	/* noop's blur returns the image unchanged. */
	unsigned char jpeg[64];
	uint32_t faces = 7;
	EXPECT(vaccel_image_blur_faces(s, img, sizeof(img), jpeg, sizeof(jpeg),
				       &n, &faces),
	       VACCEL_OK);
	CHECK(n == sizeof(img) && faces == 0 && memcmp(jpeg, img, n) == 0);
	EXPECT(vaccel_image_blur_faces(s, img, sizeof(img), jpeg, sizeof(jpeg),
				       &n, NULL),
	       VACCEL_OK);
}

static void genop(struct vaccel_session *s)
{
	/* MINMAX through genop, with the op id as a uint8 (upstream style). */
	uint8_t op8 = VACCEL_OP_MINMAX;
	double data[3] = { 1, 9, 4 }, lo = 2, hi = 5, out[3], mn, mx;
	struct vaccel_arg_array read, write;
	EXPECT(vaccel_arg_array_init(&read, 2), VACCEL_OK);
	EXPECT(vaccel_arg_array_init(&write, 2), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_uint8(&read, &op8), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_double_array(&read, data, 3), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_double(&read, &lo), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_double(&read, &hi), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_double_array(&write, out, 3), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_double(&write, &mn), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_double(&write, &mx), VACCEL_OK);
	CHECK(vaccel_arg_array_count(&read) == 4);
	EXPECT(vaccel_genop(s, vaccel_arg_array_raw(&read),
			    vaccel_arg_array_count(&read),
			    vaccel_arg_array_raw(&write),
			    vaccel_arg_array_count(&write)),
	       VACCEL_OK);
	CHECK(out[0] == 2 && out[1] == 5 && out[2] == 4);
	double *vals = NULL;
	size_t count = 0;
	EXPECT(vaccel_arg_array_get_double_array(&write, &vals, &count),
	       VACCEL_OK);
	CHECK(vals == out && count == 3);
	EXPECT(vaccel_arg_array_get_double(&write, &mn), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_double(&write, &mx), VACCEL_OK);
	CHECK(mn == 1 && mx == 9);
	vaccel_arg_array_release(&read);
	vaccel_arg_array_release(&write);

	/* IMAGE_CLASSIFY through genop, with a 4-byte enum and an 8-byte id. */
	vaccel_op_type_t op = VACCEL_OP_IMAGE_CLASSIFY;
	uint64_t op64 = VACCEL_OP_IMAGE_CLASSIFY;
	char text[128] = "", name[64] = "";
	struct vaccel_arg r[2], w[2];
	vaccel_arg_init(&r[0], &op, sizeof(op), VACCEL_ARG_UINT32, 0);
	vaccel_arg_init(&r[1], img, sizeof(img), VACCEL_ARG_BUFFER, 0);
	vaccel_arg_init(&w[0], text, sizeof(text), VACCEL_ARG_STRING, 0);
	vaccel_arg_init(&w[1], name, sizeof(name), VACCEL_ARG_STRING, 0);
	EXPECT(vaccel_genop(s, r, 2, w, 2), VACCEL_OK);
	CHECK(strcmp(text, "classification tags: 100.000% noop") == 0);
	CHECK(strcmp(name, "noop.png") == 0);
	CHECK(w[0].size == sizeof(text)); /* the structs are not modified */
	vaccel_arg_init(&r[0], &op64, sizeof(op64), VACCEL_ARG_UINT64, 0);
	EXPECT(vaccel_genop(s, r, 2, w, 1), VACCEL_OK);
	op = VACCEL_OP_NOOP;
	vaccel_arg_init(&r[0], &op, sizeof(op), VACCEL_ARG_UINT32, 0);
	EXPECT(vaccel_genop(s, r, 1, NULL, 0), VACCEL_OK);
}

struct point {
	int32_t x, y;
};

static void *point_ser(const void *obj, size_t *size)
{
	void *b = malloc(sizeof(struct point));
	if (b) {
		memcpy(b, obj, sizeof(struct point));
		*size = sizeof(struct point);
	}
	return b;
}

static void *point_de(const void *buf, size_t size)
{
	if (size != sizeof(struct point))
		return NULL;
	struct point *p = malloc(sizeof(*p));
	if (p)
		memcpy(p, buf, size);
	return p;
}

static void arg_arrays(void)
{
	struct vaccel_arg_array *a = NULL;
	int8_t i8 = -8, gi8;
	int16_t i16 = -16, gi16;
	int32_t i32 = -32, gi32;
	int64_t i64 = -64, gi64;
	uint8_t u8 = 8, gu8;
	uint16_t u16 = 16, gu16;
	uint32_t u32 = 32, gu32;
	uint64_t u64 = 64, gu64;
	float f = 1.5f, gf;
	double d = 2.5, gd;
	int32_t arr[3] = { 1, 2, 3 }, *garr;
	size_t count, size;
	char *str;
	void *raw;
	char rawbuf[4] = "raw", bufbuf[4] = "buf";
	struct point pt = { 3, 4 }, *gpt = NULL;

	EXPECT(vaccel_arg_array_new(&a, 0), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_int8(a, &i8), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_int16(a, &i16), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_int32(a, &i32), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_int64(a, &i64), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_uint8(a, &u8), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_uint16(a, &u16), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_uint32(a, &u32), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_uint64(a, &u64), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_float(a, &f), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_double(a, &d), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_int32_array(a, arr, 3), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_string(a, "hello"), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_raw(a, rawbuf, sizeof(rawbuf)), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_buffer(a, bufbuf, sizeof(bufbuf)), VACCEL_OK);
	EXPECT(vaccel_arg_array_add_serialized(a, VACCEL_ARG_CUSTOM, 42, &pt,
					       point_ser),
	       VACCEL_OK);
	CHECK(vaccel_arg_array_count(a) == 15);
	/* Scalars are copies: changing the source does not matter. */
	i32 = 0;
	EXPECT(vaccel_arg_array_get_int8(a, &gi8), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_int16(a, &gi16), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_int32(a, &gi32), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_int64(a, &gi64), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_uint8(a, &gu8), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_uint16(a, &gu16), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_uint32(a, &gu32), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_uint64(a, &gu64), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_float(a, &gf), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_double(a, &gd), VACCEL_OK);
	CHECK(gi8 == -8 && gi16 == -16 && gi32 == -32 && gi64 == -64);
	CHECK(gu8 == 8 && gu16 == 16 && gu32 == 32 && gu64 == 64);
	CHECK(gf == 1.5f && gd == 2.5);
	EXPECT(vaccel_arg_array_get_int32_array(a, &garr, &count), VACCEL_OK);
	CHECK(garr == arr && count == 3);
	EXPECT(vaccel_arg_array_get_string(a, &str), VACCEL_OK);
	CHECK(strcmp(str, "hello") == 0);
	EXPECT(vaccel_arg_array_get_raw(a, &raw, &size), VACCEL_OK);
	CHECK(raw == rawbuf && size == sizeof(rawbuf));
	EXPECT(vaccel_arg_array_get_buffer(a, &raw, &size), VACCEL_OK);
	CHECK(raw == bufbuf && size == sizeof(bufbuf));
	EXPECT(vaccel_arg_array_get_serialized(a, VACCEL_ARG_CUSTOM, 7,
					       (void **)&gpt, point_de),
	       VACCEL_EINVAL); /* wrong custom id */
	EXPECT(vaccel_arg_array_get_serialized(a, VACCEL_ARG_CUSTOM, 42,
					       (void **)&gpt, point_de),
	       VACCEL_OK);
	CHECK(gpt && gpt->x == 3 && gpt->y == 4);
	free(gpt);
	CHECK(vaccel_arg_array_position(a) == 15);
	EXPECT(vaccel_arg_array_get_int8(a, &gi8), VACCEL_ERANGE);

	/* set_* write into the arguments. */
	vaccel_arg_array_reset_position(a);
	int8_t n8 = 100;
	int32_t narr[2] = { 7, 8 };
	EXPECT(vaccel_arg_array_set_int8(a, &n8), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_int16(a, &gi16), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_int32(a, &gi32), VACCEL_OK);
	EXPECT(vaccel_arg_array_get_int64(a, &gi64), VACCEL_OK);
	EXPECT(vaccel_arg_array_set_uint8(a, &u8), VACCEL_OK);
	EXPECT(vaccel_arg_array_set_uint16(a, &u16), VACCEL_OK);
	EXPECT(vaccel_arg_array_set_uint32(a, &u32), VACCEL_OK);
	EXPECT(vaccel_arg_array_set_uint64(a, &u64), VACCEL_OK);
	EXPECT(vaccel_arg_array_set_float(a, &f), VACCEL_OK);
	EXPECT(vaccel_arg_array_set_double(a, &d), VACCEL_OK);
	EXPECT(vaccel_arg_array_set_int32_array(a, narr, 2), VACCEL_OK);
	CHECK(arr[0] == 7 && arr[1] == 8 && arr[2] == 3);
	vaccel_arg_array_reset_position(a);
	EXPECT(vaccel_arg_array_get_int8(a, &gi8), VACCEL_OK);
	CHECK(gi8 == 100);

	struct vaccel_arg *args = vaccel_arg_array_raw(a);
	CHECK(args[0].owned && !args[10].owned && args[14].owned);
	CHECK(args[14].type == VACCEL_ARG_CUSTOM && args[14].custom_type_id == 42);
	EXPECT(vaccel_arg_array_clear(a), VACCEL_OK);
	CHECK(vaccel_arg_array_count(a) == 0 && vaccel_arg_array_position(a) == 0);
	EXPECT(vaccel_arg_array_add_int32(a, &i32), VACCEL_OK);
	EXPECT(vaccel_arg_array_delete(a), VACCEL_OK);

	/* Plain arguments. */
	struct vaccel_arg arg, *ap = NULL;
	EXPECT(vaccel_arg_init_from_buf(&arg, "abc", 4, VACCEL_ARG_STRING, 0),
	       VACCEL_OK);
	CHECK(arg.owned && arg.size == 4 && strcmp(arg.buf, "abc") == 0);
	EXPECT(vaccel_arg_release(&arg), VACCEL_OK);
	CHECK(arg.buf == NULL && arg.size == 0);
	EXPECT(vaccel_arg_from_buf(&ap, "xyz", 3, VACCEL_ARG_RAW, 0), VACCEL_OK);
	CHECK(ap && ap->owned && memcmp(ap->buf, "xyz", 3) == 0);
	EXPECT(vaccel_arg_delete(ap), VACCEL_OK);
	EXPECT(vaccel_arg_new(&ap, rawbuf, 4, VACCEL_ARG_RAW, 0), VACCEL_OK);
	CHECK(ap && !ap->owned && ap->buf == rawbuf);
	EXPECT(vaccel_arg_delete(ap), VACCEL_OK);
}

static void resources(struct vaccel_session *s, const char *file)
{
	struct vaccel_resource *r1 = NULL, *r2 = NULL, *r3 = NULL, model, data;
	const char *paths[2] = { file, file };

	EXPECT(vaccel_resource_new(&r1, file, VACCEL_RESOURCE_DATA), VACCEL_OK);
	CHECK(r1 && r1->id >= 1 && r1->type == VACCEL_RESOURCE_DATA &&
	      r1->nr_files == 1);
	EXPECT(vaccel_resource_new_multi(&r2, paths, 2, VACCEL_RESOURCE_DATA),
	       VACCEL_OK);
	CHECK(r2 && r2->nr_files == 2 && r2->id != r1->id);
	EXPECT(vaccel_resource_multi_new(&r3, paths, 1, VACCEL_RESOURCE_LIB),
	       VACCEL_OK);
	EXPECT(vaccel_resource_register(r1, s), VACCEL_OK);
	CHECK(vaccel_session_has_resource(s, r1));
	CHECK(!vaccel_session_has_resource(s, r2));
	EXPECT(vaccel_resource_delete(r1), VACCEL_EBUSY); /* not freed */
	EXPECT(vaccel_resource_unregister(r1, s), VACCEL_OK);
	EXPECT(vaccel_resource_delete(r1), VACCEL_OK);
	EXPECT(vaccel_resource_delete(r2), VACCEL_OK);
	EXPECT(vaccel_resource_delete(r3), VACCEL_OK);
	EXPECT(vaccel_resource_from_buf(&r1, img, sizeof(img),
					VACCEL_RESOURCE_DATA, "img.bin", false),
	       VACCEL_OK);
	EXPECT(vaccel_resource_delete(r1), VACCEL_OK);

	/* Models (noop checks the resource and echoes tensors). */
	EXPECT(vaccel_resource_init_from_buf(&model, img, sizeof(img),
					     VACCEL_RESOURCE_MODEL,
					     "model.onnx", true),
	       VACCEL_OK);
	EXPECT(vaccel_resource_init(&data, file, VACCEL_RESOURCE_DATA),
	       VACCEL_OK);
	EXPECT(vaccel_model_load(s, &model), VACCEL_EPERM); /* not registered */
	EXPECT(vaccel_resource_register(&model, s), VACCEL_OK);
	EXPECT(vaccel_resource_register(&data, s), VACCEL_OK);
	EXPECT(vaccel_model_load(s, &model), VACCEL_OK);
	EXPECT(vaccel_model_load(s, &data), VACCEL_EINVAL); /* not a MODEL */
	EXPECT(vaccel_model_load(s, NULL), VACCEL_OK); /* plugin default */

	int64_t dims[2] = { 2, 2 }, one[1] = { 3 };
	float x[4] = { 1, 2, 3, 4 };
	uint8_t bytes[3] = { 9, 8, 7 };
	struct vaccel_tensor in[2] = {
		{ "x", VACCEL_TENSOR_FLOAT32, 2, dims, x, sizeof(x) },
		{ NULL, VACCEL_TENSOR_UINT8, 1, one, bytes, sizeof(bytes) },
	};
	struct vaccel_tensor *out = NULL;
	size_t nr = 0;
	EXPECT(vaccel_model_run(s, &model, in, 2, &out, &nr), VACCEL_OK);
	CHECK(nr == 2 && out != NULL);
	if (out && nr == 2) {
		CHECK(strcmp(out[0].name, "x") == 0);
		CHECK(out[0].dtype == VACCEL_TENSOR_FLOAT32 && out[0].nr_dims == 2);
		CHECK(out[0].dims[0] == 2 && out[0].dims[1] == 2);
		CHECK(out[0].size == sizeof(x) &&
		      memcmp(out[0].data, x, sizeof(x)) == 0);
		CHECK(((uintptr_t)out[0].data) % 16 == 0);
		CHECK(strcmp(out[1].name, "") == 0 && out[1].nr_dims == 1);
		CHECK(out[1].size == 3 && memcmp(out[1].data, bytes, 3) == 0);
	}
	vaccel_tensors_free(out);
	EXPECT(vaccel_model_run(s, NULL, NULL, 0, &out, &nr), VACCEL_OK);
	CHECK(nr == 0 && out == NULL);
	EXPECT(vaccel_model_unload(s, &model), VACCEL_OK);
	EXPECT(vaccel_resource_unregister(&model, s), VACCEL_OK);
	EXPECT(vaccel_resource_unregister(&data, s), VACCEL_OK);
	EXPECT(vaccel_resource_release(&model), VACCEL_OK);
	EXPECT(vaccel_resource_release(&data), VACCEL_OK);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	struct vaccel_session s;
	sessions();
	EXPECT(vaccel_session_init(&s, 0), VACCEL_OK);
	typed_ops(&s);
	genop(&s);
	arg_arrays();
	resources(&s, argv[1]);
	EXPECT(vaccel_session_release(&s), VACCEL_OK);
	return report("api");
}
