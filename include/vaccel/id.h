/* SPDX-License-Identifier: Apache-2.0 */
#ifndef VACCEL_ID_H
#define VACCEL_ID_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Session and resource ids (positive; ids start at 1). */
typedef int64_t vaccel_id_t;

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_ID_H */
