/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process-wide runtime. It is created from the environment on first
 * use (the first vaccel_session_init):
 *
 *   VACCEL_PLUGINS       ':'-separated built-in plugin names (noop, exec,
 *                        remote) or plugin .so paths, in priority order;
 *                        default: the built-in defaults (VACCEL_BACKENDS
 *                        is a deprecated alias)
 *   VACCEL_LOG_LEVEL     1 error (default), 2 warn, 3 info, 4 debug
 *   VACCEL_PROFILING_ENABLED  1: per-op and application profiling regions
 *   VACCEL_RPC_ADDRESS   the agent the remote plugin connects to
 *                        (unix://, tcp://, vsock://, hybrid-vsock://)
 */
#ifndef VACCEL_RUNTIME_H
#define VACCEL_RUNTIME_H

#ifdef __cplusplus
extern "C" {
#endif

/* Create the runtime now (loading the plugins), reporting configuration
 * errors early. Calling it is optional. */
int vaccel_bootstrap(void);
/* Accepted for compatibility: the runtime lives until the process exits. */
int vaccel_cleanup(void);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_RUNTIME_H */
