/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The smallest vAccel program: one session, one NOOP.
 *
 *     VACCEL_PLUGINS=noop ./noop
 *     noop: OK (session 1, plugin hint 0x0)
 */
#include <inttypes.h>
#include <stdio.h>

#include <vaccel.h>

int main(void)
{
	struct vaccel_session sess;
	int ret = vaccel_session_init(&sess, 0);
	if (ret != VACCEL_OK) {
		fprintf(stderr, "cannot create a session (%d): %s\n", ret,
			vaccel_last_error_message());
		return 1;
	}
	ret = vaccel_noop(&sess);
	if (ret != VACCEL_OK)
		fprintf(stderr, "noop failed (%d): %s\n", ret,
			vaccel_last_error_message());
	else
		printf("noop: OK (session %" PRId64 ", plugin hint 0x%x)\n",
		       sess.id, (unsigned)sess.hint);
	vaccel_session_release(&sess);
	return ret == VACCEL_OK ? 0 : 1;
}
