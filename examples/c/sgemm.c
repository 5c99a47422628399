/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C = alpha * A * B + beta * C with vaccel_sgemm (row-major).
 *
 * Usage: sgemm [N] [--check]
 *   N        matrix size (N x N; default 64)
 *   --check  compare with a plain C implementation and fail on a mismatch
 *            (only meaningful with a plugin that computes, e.g. the CPU
 *            plugin; the noop plugin returns beta * C)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vaccel.h>

int main(int argc, char **argv)
{
	int64_t n = 64;
	int check = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else
			n = atoll(argv[i]);
	}
	if (n <= 0 || n > 4096) {
		fprintf(stderr, "usage: %s [N (1..4096)] [--check]\n", argv[0]);
		return 2;
	}
	size_t elems = (size_t)(n * n);
	float *a = malloc(elems * sizeof(float));
	float *b = malloc(elems * sizeof(float));
	float *c = malloc(elems * sizeof(float));
	float *ref = malloc(elems * sizeof(float));
	if (!a || !b || !c || !ref) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < elems; i++) {
		a[i] = (float)(i % 7) * 0.25f;
		b[i] = (float)(i % 5) * 0.5f - 1.0f;
		c[i] = 1.0f;
	}
	const float alpha = 1.5f, beta = 0.5f;
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < n; j++) {
			double acc = 0;
			for (int64_t p = 0; p < n; p++)
				acc += (double)a[i * n + p] * b[p * n + j];
			ref[i * n + j] = alpha * (float)acc + beta * c[i * n + j];
		}

	struct vaccel_session sess;
	int ret = vaccel_session_init(&sess, 0);
	if (ret != VACCEL_OK) {
		fprintf(stderr, "cannot create a session (%d): %s\n", ret,
			vaccel_last_error_message());
		return 1;
	}
	ret = vaccel_sgemm(&sess, n, n, n, alpha, a, n, b, n, beta, c, n);
	if (ret != VACCEL_OK) {
		fprintf(stderr, "sgemm failed (%d): %s\n", ret,
			vaccel_last_error_message());
		vaccel_session_release(&sess);
		return 1;
	}
	double sum = 0, max_err = 0;
	for (size_t i = 0; i < elems; i++) {
		sum += c[i];
		double err = fabs((double)c[i] - ref[i]);
		if (err > max_err)
			max_err = err;
	}
	printf("sgemm %lldx%lld: C[0] = %g, sum = %g, max error vs reference = %g\n",
	       (long long)n, (long long)n, c[0], sum, max_err);
	vaccel_session_release(&sess);
	free(a);
	free(b);
	free(c);
	free(ref);
	if (check && max_err > 1e-3 * (double)n) {
		fprintf(stderr, "sgemm result differs from the reference\n");
		return 1;
	}
	return 0;
}
