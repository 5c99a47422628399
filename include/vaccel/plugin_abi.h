/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vaccel-rs plugin ABI, version 1.
 *
 * A plugin is a shared library exporting
 *
 *     const struct vaccel_plugin_desc *vaccel_plugin_entry_v1(void);
 *
 * (or <library stem>_entry_v1, e.g. vaccel_plugin_noop_entry_v1 for
 * libvaccel_plugin_noop.so). The runtime checks abi_version first and
 * desc_size second, and only then reads anything else. Every function
 * returns 0 or an errno value (VACCEL_E*). Load it with
 * VACCEL_PLUGINS=/path/to/libyourplugin.so.
 *
 * Argument structs are shared with the caller: read arguments point at the
 * caller's bytes; write arguments point at the caller's buffer. A growable
 * write argument has a non-NULL `reserve`: call it to get room for `size`
 * bytes (it updates buf, capacity and len); for a fixed one write at most
 * `capacity` bytes and set `len`. On failure, return an errno value and
 * optionally describe it with VACCEL_PLUGIN_SET_ERROR(call, "fmt", ...).
 */
#ifndef VACCEL_PLUGIN_ABI_H
#define VACCEL_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VACCEL_PLUGIN_ABI_VERSION 1u

/* Flag of a write argument whose initial contents are also an input. */
#define VACCEL_PLUGIN_ARG_INOUT 0x1u

struct vaccel_plugin_arg {
	uint32_t type; /* vaccel_arg_type_t */
	uint32_t flags;
	const uint8_t *buf;
	size_t size;
};

struct vaccel_plugin_arg_out {
	uint32_t type;
	uint32_t flags;
	uint8_t *buf;
	size_t capacity;
	size_t len; /* bytes written; set it */
	void *owner; /* private to the caller */
	int (*reserve)(struct vaccel_plugin_arg_out *out, size_t size);
};

struct vaccel_plugin_file {
	const char *name;
	const char *path; /* NULL for in-memory files */
	const uint8_t *data; /* NULL for files on disk */
	size_t size;
};

struct vaccel_plugin_resource {
	uint64_t id;
	uint32_t type; /* VACCEL_RESOURCE_LIB / DATA / MODEL */
	uint32_t reserved;
	const struct vaccel_plugin_file *files;
	size_t n_files;
};

struct vaccel_plugin_call {
	uint64_t session;
	uint32_t hint;
	uint32_t op; /* vaccel_op_type_t */
	const struct vaccel_plugin_arg *read;
	size_t n_read;
	struct vaccel_plugin_arg_out *write;
	size_t n_write;
	void *err_ctx; /* pass to set_error */
	/* On failure, optionally record a message (len bytes, no NUL needed). */
	void (*set_error)(void *err_ctx, const char *msg, size_t len);
};

/* Record a printf-style error message for the current call, then return an errno. */
#define VACCEL_PLUGIN_SET_ERROR(call, ...)                                     \
	do {                                                                   \
		char vaccel_err_buf_[256];                                     \
		int vaccel_err_n_ = snprintf(vaccel_err_buf_,                  \
					     sizeof(vaccel_err_buf_), __VA_ARGS__); \
		if ((call)->set_error && vaccel_err_n_ > 0)                    \
			(call)->set_error((call)->err_ctx, vaccel_err_buf_,    \
					  (size_t)vaccel_err_n_ < sizeof(vaccel_err_buf_) \
						  ? (size_t)vaccel_err_n_      \
						  : sizeof(vaccel_err_buf_) - 1); \
	} while (0)

struct vaccel_plugin_desc {
	uint32_t abi_version; /* VACCEL_PLUGIN_ABI_VERSION */
	uint32_t desc_size; /* sizeof(struct vaccel_plugin_desc) */
	const char *name;
	const char *version;
	const char *details; /* "key=value;key=value" or NULL */
	uint32_t types; /* VACCEL_PLUGIN_* bitmask */
	uint32_t reserved;
	uint64_t ops[2]; /* bit i set: op id i supported */
	void *state;
	int (*init)(void *state);
	void (*fini)(void *state);
	int (*session_init)(void *state, uint64_t session, uint32_t hint);
	int (*session_release)(void *state, uint64_t session);
	int (*resource_register)(void *state, uint64_t session,
				 const struct vaccel_plugin_resource *res);
	int (*resource_unregister)(void *state, uint64_t session, uint64_t res);
	int (*op)(void *state, struct vaccel_plugin_call *call);
};

#define VACCEL_PLUGIN_OP_BIT(desc, op) \
	((desc)->ops[(op) / 64] |= (uint64_t)1 << ((op) % 64))

#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(struct vaccel_plugin_arg) == 24, "ABI: vaccel_plugin_arg");
_Static_assert(sizeof(struct vaccel_plugin_arg_out) == 48, "ABI: vaccel_plugin_arg_out");
_Static_assert(sizeof(struct vaccel_plugin_file) == 32, "ABI: vaccel_plugin_file");
_Static_assert(sizeof(struct vaccel_plugin_resource) == 32, "ABI: vaccel_plugin_resource");
_Static_assert(sizeof(struct vaccel_plugin_call) == 64, "ABI: vaccel_plugin_call");
_Static_assert(sizeof(struct vaccel_plugin_desc) == 120, "ABI: vaccel_plugin_desc");
#endif

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_PLUGIN_ABI_H */
