/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error codes. The values are Linux errno values, equal to upstream
 * vAccel's VACCEL_E* definitions, and never change.
 */
#ifndef VACCEL_ERROR_H
#define VACCEL_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define VACCEL_OK 0
#define VACCEL_EPERM 1 /* not allowed (e.g. resource not registered, library not allow-listed) */
#define VACCEL_ENOENT 2 /* no such plugin, library, symbol, file, session or resource */
#define VACCEL_EIO 5 /* I/O error */
#define VACCEL_ENOEXEC 8 /* exec format error */
#define VACCEL_EAGAIN 11 /* temporarily unavailable */
#define VACCEL_ENOMEM 12 /* out of memory, or a configured limit */
#define VACCEL_EBUSY 16 /* still in use (e.g. releasing a registered resource) */
#define VACCEL_EEXIST 17 /* already exists (e.g. registering a resource twice) */
#define VACCEL_EINVAL 22 /* invalid argument */
#define VACCEL_ERANGE 34 /* result does not fit the buffer; argument array exhausted */
#define VACCEL_EBACKEND 71 /* the plugin failed (upstream: EPROTO) */
#define VACCEL_ELIBBAD 80 /* a shared library that is not a usable plugin */
#define VACCEL_ENOTSUP 95 /* op not implemented by the plugin, or no plugin matches */
#define VACCEL_ESESS 104 /* connection to the remote agent reset (upstream: ECONNRESET) */
#define VACCEL_ETIMEDOUT 110 /* timed out */
#define VACCEL_EREMOTEIO 121 /* remote I/O error */

/*
 * The message of the last call that failed on the calling thread ("" if
 * none), e.g. "vaccel_resource_init: resource path /x: No such file or
 * directory (os error 2)". Valid until the next failing call on the same
 * thread. Never NULL.
 */
const char *vaccel_last_error_message(void);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_ERROR_H */
