/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small library for vaccel_exec: every function has the exec callee
 * signature and reads / writes its arguments with argument arrays.
 *
 *     cc -shared -fPIC libmytestlib.c $(pkg-config --cflags --libs vaccel) -o libmytestlib.so
 */
#include <stdlib.h>
#include <string.h>

#include <vaccel.h>

/* out[0] (INT32) = 2 * in[0] (INT32) */
int mytestfunc(struct vaccel_arg *in, size_t nr_in, struct vaccel_arg *out,
	       size_t nr_out)
{
	struct vaccel_arg_array read, write;
	int32_t x, y;

	if (vaccel_arg_array_wrap(&read, in, nr_in) != VACCEL_OK ||
	    vaccel_arg_array_wrap(&write, out, nr_out) != VACCEL_OK)
		return VACCEL_EINVAL;
	if (vaccel_arg_array_get_int32(&read, &x) != VACCEL_OK)
		return VACCEL_EINVAL;
	y = 2 * x;
	return vaccel_arg_array_set_int32(&write, &y);
}

/* out[0] (STRING, large enough) = in[0] (STRING) reversed */
int reverse_string(struct vaccel_arg *in, size_t nr_in, struct vaccel_arg *out,
		   size_t nr_out)
{
	struct vaccel_arg_array read, write;
	char *s;

	if (vaccel_arg_array_wrap(&read, in, nr_in) != VACCEL_OK ||
	    vaccel_arg_array_wrap(&write, out, nr_out) != VACCEL_OK)
		return VACCEL_EINVAL;
	if (vaccel_arg_array_get_string(&read, &s) != VACCEL_OK)
		return VACCEL_EINVAL;
	size_t len = strlen(s);
	char *r = malloc(len + 1);
	if (!r)
		return VACCEL_ENOMEM;
	for (size_t i = 0; i < len; i++)
		r[i] = s[len - 1 - i];
	r[len] = '\0';
	int ret = vaccel_arg_array_set_string(&write, r);
	free(r);
	return ret;
}
