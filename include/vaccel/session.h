/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sessions. A session picks its plugin once, at creation, from the plugins
 * VACCEL_PLUGINS loaded: `flags` is a VACCEL_PLUGIN_* hint (0: any plugin).
 *
 *     struct vaccel_session sess;
 *     if (vaccel_session_init(&sess, 0) != VACCEL_OK) ...
 *     vaccel_noop(&sess);
 *     vaccel_session_release(&sess);
 *
 * Do not copy an initialised session struct: copies share its private
 * pointer, which vaccel_session_release frees. After a release (or a failed
 * init) every call on the session returns VACCEL_EINVAL.
 */
#ifndef VACCEL_SESSION_H
#define VACCEL_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "id.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vaccel_resource;

struct vaccel_session {
	vaccel_id_t id; /* >= 1 once initialised */
	uint32_t hint; /* the flags it was created with */
	vaccel_id_t remote_id; /* 0: not exposed by this implementation */
	bool is_virtio; /* the session's plugin forwards to a remote agent */
	void *priv; /* private to the library; NULL when released */
};

int vaccel_session_init(struct vaccel_session *sess, uint32_t flags);
/* Release the session and unregister its resources (VACCEL_EINVAL if it
 * was already released). */
int vaccel_session_release(struct vaccel_session *sess);
/* Heap-allocated variants; free with vaccel_session_delete. */
int vaccel_session_new(struct vaccel_session **sess, uint32_t flags);
int vaccel_session_delete(struct vaccel_session *sess);
/* Whether res is registered to sess (false for NULL or released arguments). */
bool vaccel_session_has_resource(const struct vaccel_session *sess,
				 const struct vaccel_resource *res);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_SESSION_H */
