/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Operations. Each returns VACCEL_OK or a VACCEL_E* code: VACCEL_EINVAL
 * for a NULL or released session, NULL or empty buffers and invalid
 * sizes; VACCEL_ENOTSUP when the session's plugin lacks the op.
 *
 * Text outputs (classification tags, image names) that do not fit their
 * buffer are truncated and always NUL-terminated. Binary outputs that do
 * not fit are VACCEL_ERANGE with the size needed stored in *out_len.
 */
#ifndef VACCEL_OPS_H
#define VACCEL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "arg.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vaccel_session;
struct vaccel_resource;

/* Does nothing (measures dispatch). */
int vaccel_noop(struct vaccel_session *sess);

/*
 * C = alpha * A * B + beta * C, row-major. A is m x k (leading dimension
 * lda >= k), B is k x n (ldb >= n), C is m x n (ldc >= n). With beta = 0
 * the old contents of C are ignored. C must not overlap A or B.
 */
int vaccel_sgemm(struct vaccel_session *sess, int64_t m, int64_t n, int64_t k,
		 float alpha, float *a, int64_t lda, float *b, int64_t ldb,
		 float beta, float *c, int64_t ldc);

/*
 * Image classification: out_text receives the top label in upstream's form
 * ("classification tags: 60.547% malamute, ..."), out_imgname the result
 * image name; both truncated to fit and NUL-terminated. out_imgname may be
 * NULL with len_out_imgname 0.
 */
int vaccel_image_classification(struct vaccel_session *sess, const void *img,
				unsigned char *out_text,
				unsigned char *out_imgname, size_t len_img,
				size_t len_out_text, size_t len_out_imgname);
/* Single-image ops: out_imgname receives the plugin's result name or
 * summary (e.g. "detected 2 face(s)"), truncated and NUL-terminated. */
int vaccel_image_detection(struct vaccel_session *sess, const void *img,
			   unsigned char *out_imgname, size_t len_img,
			   size_t len_out_imgname);
int vaccel_image_segmentation(struct vaccel_session *sess, const void *img,
			      unsigned char *out_imgname, size_t len_img,
			      size_t len_out_imgname);
int vaccel_image_pose(struct vaccel_session *sess, const void *img,
		      unsigned char *out_imgname, size_t len_img,
		      size_t len_out_imgname);
int vaccel_image_depth(struct vaccel_session *sess, const void *img,
		       unsigned char *out_imgname, size_t len_img,
		       size_t len_out_imgname);

/*
 * Any op: read[0] holds the vaccel_op_type_t (a 1, 2, 4 or 8-byte integer;
 * an unknown id is VACCEL_EINVAL), read[1..] and write[] are the op's
 * arguments (docs/ops.md). Write arguments are fixed buffers of `size`
 * bytes whose contents are also inputs; the structs are not modified.
 * Write buffers may not overlap each other or a read buffer.
 */
int vaccel_genop(struct vaccel_session *sess, struct vaccel_arg *read,
		 size_t nr_read, struct vaccel_arg *write, size_t nr_write);

/*
 * Call `int fn_symbol(struct vaccel_arg *in, size_t nr_in,
 * struct vaccel_arg *out, size_t nr_out)` in `library` with the given
 * arguments (the exec plugin opens only libraries on
 * VACCEL_EXEC_ALLOWLIST; a non-zero return is VACCEL_EBACKEND).
 */
int vaccel_exec(struct vaccel_session *sess, const char *library,
		const char *fn_symbol, struct vaccel_arg *read, size_t nr_read,
		struct vaccel_arg *write, size_t nr_write);
/* The same with a LIB resource registered to the session (VACCEL_EPERM
 * if it is not). */
int vaccel_exec_with_resource(struct vaccel_session *sess,
			      struct vaccel_resource *resource,
			      const char *fn_symbol, struct vaccel_arg *read,
			      size_t nr_read, struct vaccel_arg *write,
			      size_t nr_write);

/*
 * outdata = indata clamped into [low_threshold, high_threshold];
 * *min / *max = the smallest / largest value of indata. outdata may be
 * indata.
 */
int vaccel_minmax(struct vaccel_session *sess, const double *indata, int ndata,
		  int low_threshold, int high_threshold, double *outdata,
		  double *min, double *max);

/* ---- vaccel-rs additions ---- */

/* Ciphertext size for in_len bytes of plaintext (PKCS#7 always pads). */
#define VACCEL_AES_CBC_ENCRYPTED_LEN(in_len) ((((size_t)(in_len)) / 16 + 1) * 16)

/*
 * AES-CBC with PKCS#7 padding. key: 16, 24 or 32 bytes; iv: 16 bytes.
 * Encryption needs out_cap >= VACCEL_AES_CBC_ENCRYPTED_LEN(in_len);
 * decryption needs in_len a non-zero multiple of 16 and out_cap >= in_len.
 * *out_len receives the output size (or, with VACCEL_ERANGE, the size
 * needed). out may be in (in place).
 */
int vaccel_aes_cbc_encrypt(struct vaccel_session *sess, const uint8_t *key,
			   size_t key_len, const uint8_t *iv, size_t iv_len,
			   const uint8_t *in, size_t in_len, uint8_t *out,
			   size_t out_cap, size_t *out_len);
int vaccel_aes_cbc_decrypt(struct vaccel_session *sess, const uint8_t *key,
			   size_t key_len, const uint8_t *iv, size_t iv_len,
			   const uint8_t *in, size_t in_len, uint8_t *out,
			   size_t out_cap, size_t *out_len);

/*
 * The image with every detected face blurred, as JPEG (padding 20 %,
 * quality 90), and the number of faces (faces may be NULL). If out_cap is
 * too small: VACCEL_ERANGE, *out_len = the size needed, *faces set.
 */
int vaccel_image_blur_faces(struct vaccel_session *sess, const void *img,
			    size_t len_img, unsigned char *out, size_t out_cap,
			    size_t *out_len, uint32_t *faces);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_OPS_H */
