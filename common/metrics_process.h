/*
 * metrics_process: the process_* metrics every Prometheus client exports,
 * read from /proc/self, getrusage and getrlimit at each scrape, on the
 * scraping thread (they touch no state of the daemon's):
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_cpu_seconds_total, process_open_fds, process_max_fds and
 * process_start_time_seconds. A figure that cannot be read keeps its
 * last value.
 */
#ifndef TSR_METRICS_PROCESS_H
#define TSR_METRICS_PROCESS_H

#include "error.h"
#include "metrics.h"

struct metrics_process {
	struct metric_series *rss, *vsize, *cpu, *open_fds, *max_fds, *start;
};

/* Adds the families to m and the collector that fills them; p must outlive m. */
int metrics_process_register(struct metrics *m, struct metrics_process *p, struct tsr_err *err);

#endif
