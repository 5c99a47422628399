/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Profiling regions for applications:
 *
 *     static struct vaccel_prof_region r = VACCEL_PROF_REGION_INIT("classify");
 *     vaccel_prof_region_start(&r);
 *     ...
 *     vaccel_prof_region_stop(&r);
 *     vaccel_prof_region_print(&r);
 *
 * Times come from a monotonic clock. Unless VACCEL_PROFILING_ENABLED is set
 * (1/true/yes/on), start, stop and print do nothing and return VACCEL_OK.
 * A region is not synchronised: use one per thread. With profiling
 * enabled, releasing a session also prints its per-op regions
 * ("vaccel_<op>_op") to stderr.
 */
#ifndef VACCEL_PROF_H
#define VACCEL_PROF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vaccel_prof_region {
	const char *name; /* not owned */
	size_t nr_entries; /* completed samples */
	uint64_t total_ns;
	uint64_t min_ns;
	uint64_t max_ns;
	uint64_t start_ns; /* sample in progress (0: none) */
};

#define VACCEL_PROF_REGION_INIT(region_name) { (region_name), 0, 0, 0, 0, 0 }

/* Start a sample (restarting one in progress). */
int vaccel_prof_region_start(struct vaccel_prof_region *region);
/* End the sample in progress (VACCEL_EINVAL if none). */
int vaccel_prof_region_stop(struct vaccel_prof_region *region);
/* Print "[prof] <name>: total_time: <ns> nsec nr_entries: <n> ..." to stderr. */
int vaccel_prof_region_print(const struct vaccel_prof_region *region);
/* Reset the counters (the name is kept, nothing is freed). */
int vaccel_prof_region_release(struct vaccel_prof_region *region);

#ifdef __cplusplus
}
#endif

#endif /* VACCEL_PROF_H */
