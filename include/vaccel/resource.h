/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Resources: models, libraries and data that sessions use. A resource is
 * created from a file, a directory (every regular file in it), several
 * files, or bytes in memory; its contents are read on first use. Register
 * it to every session that uses it; release it when no session does.
 */
#ifndef VACCEL_RESOURCE_H
#define VACCEL_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "id.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vaccel_session;

typedef enum vaccel_resource_type {
	VACCEL_RESOURCE_LIB = 0, /* a shared library (EXEC_WITH_RESOURCE) */
	VACCEL_RESOURCE_DATA = 1,
	VACCEL_RESOURCE_MODEL = 2
} vaccel_resource_type_t;

struct vaccel_resource {
	vaccel_id_t id; /* unique in the process, >= 1 */
	vaccel_id_t remote_id; /* 0: not exposed by this implementation */
	vaccel_resource_type_t type;
	size_t nr_files;
	void *priv; /* private to the library; NULL when released */
};

/* From a file or a directory, which must exist (VACCEL_ENOENT otherwise).
 * URLs are not supported (VACCEL_ENOTSUP). */
int vaccel_resource_init(struct vaccel_resource *res, const char *path,
			 vaccel_resource_type_t type);
/* From several files, in order. */
int vaccel_resource_init_multi(struct vaccel_resource *res, const char **paths,
			       size_t nr_paths, vaccel_resource_type_t type);
/* From bytes (copied), as one file called `filename` (NULL: "resource.bin";
 * plugins may use its extension). The bytes always stay in memory;
 * `mem_only` is accepted for compatibility. */
int vaccel_resource_init_from_buf(struct vaccel_resource *res, const void *buf,
				  size_t nr_bytes, vaccel_resource_type_t type,
				  const char *filename, bool mem_only);
/* Release; VACCEL_EBUSY while it is still registered to a session. */
int vaccel_resource_release(struct vaccel_resource *res);

/* Heap-allocated variants; free with vaccel_resource_delete. */
int vaccel_resource_new(struct vaccel_resource **res, const char *path,
			vaccel_resource_type_t type);
int vaccel_resource_new_multi(struct vaccel_resource **res, const char **paths,
			      size_t nr_paths, vaccel_resource_type_t type);
/* The same as vaccel_resource_new_multi (upstream spelling). */
int vaccel_resource_multi_new(struct vaccel_resource **res, const char **paths,
			      size_t nr_paths, vaccel_resource_type_t type);
int vaccel_resource_from_buf(struct vaccel_resource **res, const void *buf,
			     size_t nr_bytes, vaccel_resource_type_t type,
			     const char *filename, bool mem_only);
int vaccel_resource_delete(struct vaccel_resource *res);

/* VACCEL_EEXIST if already registered to the session. */
int vaccel_resource_register(struct vaccel_resource *res,
			     struct vaccel_session *sess);
/* VACCEL_ENOENT if not registered to the session. */
int vaccel_resource_unregister(struct vaccel_resource *res,
			       struct vaccel_session *sess);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_RESOURCE_H */
