/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vAccel C API (vaccel-rs).
 *
 *     #include <vaccel.h>
 *     cc app.c $(pkg-config --cflags --libs vaccel)
 *
 * Source-compatible with the public C API of upstream vAccel 0.7/0.8 for
 * sessions, resources, arguments, the typed ops, genop, exec and profiling
 * regions; see docs/c-api.md for the exact coverage and the additions
 * (AES-CBC, face blurring, models).
 *
 * Every function returning int returns VACCEL_OK (0) or a VACCEL_E* errno
 * value; vaccel_last_error_message() describes the last failure on the
 * calling thread. The runtime is configured from the environment
 * (VACCEL_PLUGINS, VACCEL_LOG_LEVEL, VACCEL_PROFILING_ENABLED, ...) and
 * created on first use.
 */
#ifndef VACCEL_H
#define VACCEL_H

#include "vaccel/error.h"
#include "vaccel/id.h"
#include "vaccel/plugin.h"
#include "vaccel/op.h"
#include "vaccel/arg.h"
#include "vaccel/arg_array.h"
#include "vaccel/session.h"
#include "vaccel/resource.h"
#include "vaccel/ops.h"
#include "vaccel/model.h"
#include "vaccel/prof.h"
#include "vaccel/runtime.h"

#endif /* VACCEL_H */
