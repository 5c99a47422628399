/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Plugin types: what a plugin drives. A session is created with a hint in
 * the same bitmask (0: any plugin). Plugins themselves are written against
 * vaccel/plugin_abi.h.
 */
#ifndef VACCEL_PLUGIN_H
#define VACCEL_PLUGIN_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vaccel_plugin_type {
	VACCEL_PLUGIN_NONE = 0,
	VACCEL_PLUGIN_CPU = 0x0001,
	VACCEL_PLUGIN_GPU = 0x0002,
	VACCEL_PLUGIN_FPGA = 0x0004,
	VACCEL_PLUGIN_SOFTWARE = 0x0008,
	VACCEL_PLUGIN_TENSORFLOW = 0x0010,
	VACCEL_PLUGIN_TORCH = 0x0020,
	VACCEL_PLUGIN_JETSON = 0x0040,
	VACCEL_PLUGIN_GENERIC = 0x0080,
	VACCEL_PLUGIN_DEBUG = 0x0100,
	VACCEL_PLUGIN_PROFILING = 0x0200,
	VACCEL_PLUGIN_REMOTE = 0x4000,
	VACCEL_PLUGIN_ALL = 0xffff
} vaccel_plugin_type_t;

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_PLUGIN_H */
