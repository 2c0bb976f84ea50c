/*
 * metrics: a registry of Prometheus metric families (counters, gauges,
 * histograms) and their exposition in the text format 0.0.4. A family
 * has up to METRICS_LABELS_MAX label names and at most METRICS_SERIES_MAX
 * series; label values beyond that all go to one series whose values are
 * METRICS_OTHER, and each such look-up is counted in
 * tessera_metrics_series_overflow_total{family}, so memory stays bounded
 * whatever values come.
 *
 * Threads: updates are lock-free atomics, from any thread; a short mutex
 * per family is taken only to create a series, never by an update of one
 * that exists nor by a scrape. Families and collectors are added at
 * start-up, before anything scrapes; a series, once made, lives as long
 * as the registry. Every update function takes NULL (a series that could
 * not be made, or metrics that were never set up) and does nothing.
 */
#ifndef TSR_METRICS_H
#define TSR_METRICS_H

#include <stddef.h>

#include "error.h"

#define METRICS_LABELS_MAX 3
#define METRICS_SERIES_MAX 256	   /* per family; beyond: METRICS_OTHER */
#define METRICS_FAMILIES_MAX 64	   /* per registry */
#define METRICS_BUCKETS_MAX 20	   /* a histogram's bounds, +Inf aside */
#define METRICS_COLLECTORS_MAX 8   /* per registry */
#define METRICS_NAME_MAX 80	   /* bytes of a family or label name */
#define METRICS_HELP_MAX 240	   /* bytes of a family's help */
#define METRICS_VALUE_MAX 128	   /* bytes of a label value kept; longer ones are cut */
#define METRICS_TEXT_MAX (4 << 20) /* bytes of one exposition */
#define METRICS_OTHER "_other"
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum metric_type {
	METRIC_COUNTER,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

/* A histogram's upper bounds, in base units (seconds), ascending; +Inf is implied. */
struct metric_buckets {
	const double *le;
	size_t n; /* 1..METRICS_BUCKETS_MAX */
};

extern const struct metric_buckets metrics_buckets_latency; /* 100 µs to 10 s */
extern const struct metric_buckets metrics_buckets_runtime; /* 100 ms to 1 day */

struct metric_desc {
	const char *name; /* [a-zA-Z_:][a-zA-Z0-9_:]* */
	const char *help;
	enum metric_type type;
	const char *labels[METRICS_LABELS_MAX]; /* names; the unused ones NULL */
	const struct metric_buckets *buckets;	/* histograms only */
};

struct metrics;
struct metric_family;
struct metric_series;

/* Called at the start of every exposition, on the scraping thread. */
typedef void (*metrics_collect_fn)(void *arg);

int metrics_new(struct metrics **out, struct tsr_err *err);
/* Once nothing updates or scrapes any more. NULL is fine. */
void metrics_free(struct metrics *m);
/* A new family; INVALID_ARGUMENT for a bad name, label or bucket list, or one too many. */
int metrics_add(struct metrics *m, const struct metric_desc *d, struct metric_family **out,
		struct tsr_err *err);
int metrics_on_collect(struct metrics *m, metrics_collect_fn fn, void *arg, struct tsr_err *err);
/*
 * The series of f with these label values, one per label name (values
 * may be NULL for a family without labels), made on first use; the
 * METRICS_OTHER series once f is full. NULL only if f is NULL or memory
 * ran out. Values are cut to METRICS_VALUE_MAX bytes, and a byte that is
 * not part of well-formed UTF-8 becomes '?'.
 */
struct metric_series *metrics_series(struct metric_family *f, const char *const *values);
/* The same for a family of one label. */
struct metric_series *metrics_series1(struct metric_family *f, const char *value);

void metric_inc(struct metric_series *s);
void metric_add(struct metric_series *s, double v); /* on a counter, v >= 0 */
void metric_set(struct metric_series *s, double v); /* gauges, and counters read elsewhere */
void metric_observe(struct metric_series *s, double v);

/*
 * The exposition, malloc'd in *out (not NUL-ended), *len bytes. Runs the
 * collectors first; one exposition at a time. RESOURCE_EXHAUSTED beyond
 * METRICS_TEXT_MAX or out of memory.
 */
int metrics_render(struct metrics *m, char **out, size_t *len, struct tsr_err *err);

#endif
