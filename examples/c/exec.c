/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Call functions of a shared library through the exec plugin, directly
 * (vaccel_exec) and as a LIB resource (vaccel_exec_with_resource).
 *
 * Usage: exec LIBRARY [VALUE]        (LIBRARY: libmytestlib.so)
 *
 *     VACCEL_PLUGINS=exec VACCEL_EXEC_ALLOWLIST=$PWD ./exec $PWD/libmytestlib.so 21
 *     mytestfunc(21) = 42
 *     reverse_string("hello vaccel") = "leccav olleh"
 *     mytestfunc via resource(21) = 42
 */
#include <stdio.h>
#include <stdlib.h>

#include <vaccel.h>

static int fail(const char *what, int ret)
{
	fprintf(stderr, "%s failed (%d): %s\n", what, ret,
		vaccel_last_error_message());
	return 1;
}

/* Call `fn` with an INT32 in and an INT32 out, via a resource when res != NULL. */
static int call_int(struct vaccel_session *sess, const char *library,
		    struct vaccel_resource *res, const char *fn, int32_t x,
		    int32_t *y)
{
	struct vaccel_arg_array read, write;
	int32_t out = 0;
	int ret;

	vaccel_arg_array_init(&read, 1);
	vaccel_arg_array_init(&write, 1);
	vaccel_arg_array_add_int32(&read, &x);
	vaccel_arg_array_add_int32(&write, &out);
	if (res)
		ret = vaccel_exec_with_resource(
			sess, res, fn, vaccel_arg_array_raw(&read),
			vaccel_arg_array_count(&read),
			vaccel_arg_array_raw(&write),
			vaccel_arg_array_count(&write));
	else
		ret = vaccel_exec(sess, library, fn,
				  vaccel_arg_array_raw(&read),
				  vaccel_arg_array_count(&read),
				  vaccel_arg_array_raw(&write),
				  vaccel_arg_array_count(&write));
	if (ret == VACCEL_OK)
		ret = vaccel_arg_array_get_int32(&write, y);
	vaccel_arg_array_release(&read);
	vaccel_arg_array_release(&write);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s LIBRARY [VALUE]\n", argv[0]);
		return 2;
	}
	const char *library = argv[1];
	int32_t x = argc == 3 ? (int32_t)atoi(argv[2]) : 21, y = 0;

	struct vaccel_session sess;
	int ret = vaccel_session_init(&sess, 0);
	if (ret != VACCEL_OK)
		return fail("vaccel_session_init", ret);

	ret = call_int(&sess, library, NULL, "mytestfunc", x, &y);
	if (ret != VACCEL_OK)
		return fail("vaccel_exec(mytestfunc)", ret);
	printf("mytestfunc(%d) = %d\n", (int)x, (int)y);

	/* A string in, a string out: the output buffer is ours. */
	char in[] = "hello vaccel";
	char out[sizeof(in)] = { 0 };
	struct vaccel_arg read[1], write[1];
	vaccel_arg_init(&read[0], in, sizeof(in), VACCEL_ARG_STRING, 0);
	vaccel_arg_init(&write[0], out, sizeof(out), VACCEL_ARG_STRING, 0);
	ret = vaccel_exec(&sess, library, "reverse_string", read, 1, write, 1);
	if (ret != VACCEL_OK)
		return fail("vaccel_exec(reverse_string)", ret);
	printf("reverse_string(\"%s\") = \"%s\"\n", in, out);

	struct vaccel_resource res;
	ret = vaccel_resource_init(&res, library, VACCEL_RESOURCE_LIB);
	if (ret != VACCEL_OK)
		return fail("vaccel_resource_init", ret);
	ret = vaccel_resource_register(&res, &sess);
	if (ret != VACCEL_OK)
		return fail("vaccel_resource_register", ret);
	ret = call_int(&sess, NULL, &res, "mytestfunc", x, &y);
	if (ret != VACCEL_OK)
		return fail("vaccel_exec_with_resource(mytestfunc)", ret);
	printf("mytestfunc via resource(%d) = %d\n", (int)x, (int)y);
	vaccel_resource_unregister(&res, &sess);
	vaccel_resource_release(&res);

	vaccel_session_release(&sess);
	return 0;
}
