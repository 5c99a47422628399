/* SPDX-License-Identifier: Apache-2.0 */
/* Tiny assertion helpers for the C test programs. */
#ifndef VACCEL_TEST_CHECK_H
#define VACCEL_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

#include <vaccel.h>

static int checks, failures;

/* `expr` (an int) must equal `want`. */
#define EXPECT(expr, want)                                                       \
	do {                                                                     \
		int got_ = (expr);                                               \
		if (got_ != (want)) {                                            \
			fprintf(stderr, "%s:%d: %s returned %d, expected %d (%s)\n", \
				__FILE__, __LINE__, #expr, got_, (int)(want),    \
				vaccel_last_error_message());                    \
			failures++;                                              \
		} else {                                                         \
			checks++;                                                \
		}                                                                \
	} while (0)

/* `cond` must hold. */
#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                \
			failures++;                                              \
		} else {                                                         \
			checks++;                                                \
		}                                                                \
	} while (0)

static int report(const char *name)
{
	if (failures) {
		fprintf(stderr, "%s: %d of %d checks failed\n", name, failures,
			checks + failures);
		return 1;
	}
	printf("%s: %d checks passed\n", name, checks);
	return 0;
}

#endif /* VACCEL_TEST_CHECK_H */
