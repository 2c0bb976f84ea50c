/*
 * metrics: families and their series, atomic updates, and the text
 * exposition. A value (a counter's, a gauge's, a histogram's sum) is a
 * double kept as its bits in an atomic word, added to by compare and
 * swap; a histogram counts each bucket apart, so that its +Inf bucket and
 * _count, both their sum, always agree in a scrape.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define METRICS_OVERFLOW_NAME "tessera_metrics_series_overflow_total"
#define METRICS_TEXT_FIRST (16 * 1024) /* first allocation of an exposition */

static const double metrics_latency_le[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
					     0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
					     1,	     2.5,     5,      10 };
static const double metrics_runtime_le[] = { 0.1, 1, 5, 15, 60, 300, 900, 3600, 14400, 86400 };

const struct metric_buckets metrics_buckets_latency = {
	metrics_latency_le, sizeof(metrics_latency_le) / sizeof(metrics_latency_le[0])
};
const struct metric_buckets metrics_buckets_runtime = {
	metrics_runtime_le, sizeof(metrics_runtime_le) / sizeof(metrics_runtime_le[0])
};

struct metric_series {
	const struct metric_family *family;
	char values[METRICS_LABELS_MAX][METRICS_VALUE_MAX + 1];
	_Atomic uint64_t bits;				  /* the value, or a histogram's sum */
	_Atomic uint64_t counts[METRICS_BUCKETS_MAX + 1]; /* per bucket; the last is +Inf */
};

struct metric_family {
	char name[METRICS_NAME_MAX + 1];
	char help[METRICS_HELP_MAX + 1];
	enum metric_type type;
	char labels[METRICS_LABELS_MAX][METRICS_NAME_MAX + 1];
	size_t nlabels;
	double le[METRICS_BUCKETS_MAX];
	size_t nbuckets;
	pthread_mutex_t mu; /* making a series */
	_Atomic(struct metric_series *) series[METRICS_SERIES_MAX];
	atomic_size_t n;		       /* series[0..n) are made */
	_Atomic(struct metric_series *) other; /* made at the first overflow */
	atomic_uint_fast64_t overflow;	       /* look-ups sent to other */
};

struct metrics_collector {
	metrics_collect_fn fn;
	void *arg;
};

struct metrics {
	struct metric_family *families[METRICS_FAMILIES_MAX];
	atomic_size_t n;
	struct metrics_collector collectors[METRICS_COLLECTORS_MAX];
	atomic_size_t ncollectors;
	pthread_mutex_t render_mu; /* one exposition, and its collectors, at a time */
};

static double metrics_double(uint64_t bits)
{
	double v;

	memcpy(&v, &bits, sizeof(v));
	return v;
}

static uint64_t metrics_bits(double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	return bits;
}

int metrics_new(struct metrics **out, struct tsr_err *err)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	atomic_init(&m->n, 0);
	atomic_init(&m->ncollectors, 0);
	pthread_mutex_init(&m->render_mu, NULL);
	*out = m;
	return 0;
}

static void metrics_family_free(struct metric_family *f)
{
	size_t n = atomic_load(&f->n);

	for (size_t i = 0; i < n; i++)
		free(atomic_load(&f->series[i]));
	free(atomic_load(&f->other));
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void metrics_free(struct metrics *m)
{
	size_t n;

	if (m == NULL)
		return;
	n = atomic_load(&m->n);
	for (size_t i = 0; i < n; i++)
		metrics_family_free(m->families[i]);
	pthread_mutex_destroy(&m->render_mu);
	free(m);
}

/* A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), or a label name (no ':'). */
static bool metrics_name_ok(const char *s, bool metric)
{
	size_t len = s != NULL ? strnlen(s, METRICS_NAME_MAX + 1) : 0;

	if (len == 0 || len > METRICS_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (metric && c == ':')))
			return false;
	}
	return true;
}

/* The label names (none reserved: "le" is a histogram's, "__" Prometheus's). */
static int metrics_labels_check(const struct metric_desc *d, size_t *n, struct tsr_err *err)
{
	*n = 0;
	while (*n < METRICS_LABELS_MAX && d->labels[*n] != NULL) {
		const char *l = d->labels[*n];

		if (!metrics_name_ok(l, false) || strcmp(l, "le") == 0 || strncmp(l, "__", 2) == 0)
			return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
					   "metric %s: bad label name", d->name);
		(*n)++;
	}
	return 0;
}

static int metrics_buckets_check(const struct metric_desc *d, struct tsr_err *err)
{
	const struct metric_buckets *b = d->buckets;
	bool ok = b != NULL && b->n >= 1 && b->n <= METRICS_BUCKETS_MAX;

	for (size_t i = 0; ok && i < b->n; i++)
		ok = isfinite(b->le[i]) && (i == 0 || b->le[i] > b->le[i - 1]);
	if (!ok)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT,
				   "metric %s: want 1-%d finite, ascending bucket bounds", d->name,
				   METRICS_BUCKETS_MAX);
	return 0;
}

int metrics_add(struct metrics *m, const struct metric_desc *d, struct metric_family **out,
		struct tsr_err *err)
{
	size_t n = atomic_load(&m->n), nlabels;
	struct metric_family *f;

	if (!metrics_name_ok(d->name, true) || d->help == NULL)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "bad metric name or help");
	if (metrics_labels_check(d, &nlabels, err) != 0 ||
	    (d->type == METRIC_HISTOGRAM && metrics_buckets_check(d, err) != 0))
		return -1;
	if (n == METRICS_FAMILIES_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "more than %d metrics",
				   METRICS_FAMILIES_MAX);
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
	snprintf(f->name, sizeof(f->name), "%s", d->name);
	snprintf(f->help, sizeof(f->help), "%s", d->help);
	f->type = d->type;
	f->nlabels = nlabels;
	for (size_t i = 0; i < nlabels; i++)
		snprintf(f->labels[i], sizeof(f->labels[i]), "%s", d->labels[i]);
	if (d->type == METRIC_HISTOGRAM) {
		f->nbuckets = d->buckets->n;
		memcpy(f->le, d->buckets->le, f->nbuckets * sizeof(f->le[0]));
	}
	pthread_mutex_init(&f->mu, NULL);
	atomic_init(&f->n, 0);
	atomic_init(&f->other, NULL);
	atomic_init(&f->overflow, 0);
	m->families[n] = f;
	atomic_store_explicit(&m->n, n + 1, memory_order_release);
	*out = f;
	return 0;
}

int metrics_on_collect(struct metrics *m, metrics_collect_fn fn, void *arg, struct tsr_err *err)
{
	size_t n = atomic_load(&m->ncollectors);

	if (n == METRICS_COLLECTORS_MAX)
		return tsr_err_set(err, GRPC_STATUS_INVALID_ARGUMENT, "more than %d collectors",
				   METRICS_COLLECTORS_MAX);
	m->collectors[n].fn = fn;
	m->collectors[n].arg = arg;
	atomic_store_explicit(&m->ncollectors, n + 1, memory_order_release);
	return 0;
}

/* v cut to METRICS_VALUE_MAX bytes, each byte of an ill-formed stretch as '?'. */
static void metrics_value_copy(const char *v, char out[METRICS_VALUE_MAX + 1])
{
	size_t len = v != NULL ? strnlen(v, METRICS_VALUE_MAX) : 0, i = 0, k;
	bool ok;

	while (i < len) {
		k = utf8_next(v + i, len - i, &ok);
		if (ok)
			memcpy(out + i, v + i, k);
		else
			memset(out + i, '?', k);
		i += k;
	}
	out[len] = '\0';
}

static struct metric_series *metrics_find(struct metric_family *f, char v[][METRICS_VALUE_MAX + 1],
					  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct metric_series *s = atomic_load_explicit(&f->series[i], memory_order_acquire);
		size_t j = 0;

		while (j < f->nlabels && strcmp(s->values[j], v[j]) == 0)
			j++;
		if (j == f->nlabels)
			return s;
	}
	return NULL;
}

static struct metric_series *metrics_make(const struct metric_family *f,
					  char v[][METRICS_VALUE_MAX + 1])
{
	struct metric_series *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->family = f;
	for (size_t j = 0; j < f->nlabels; j++)
		memcpy(s->values[j], v[j], sizeof(s->values[j]));
	atomic_init(&s->bits, metrics_bits(0.0));
	for (size_t i = 0; i <= METRICS_BUCKETS_MAX; i++)
		atomic_init(&s->counts[i], 0);
	return s;
}

/* With f->mu held: the series every label set beyond the last gets. */
static struct metric_series *metrics_other(struct metric_family *f)
{
	char v[METRICS_LABELS_MAX][METRICS_VALUE_MAX + 1];
	struct metric_series *s = atomic_load(&f->other);

	atomic_fetch_add_explicit(&f->overflow, 1, memory_order_relaxed);
	if (s != NULL)
		return s;
	for (size_t j = 0; j < f->nlabels; j++)
		snprintf(v[j], sizeof(v[j]), "%s", METRICS_OTHER);
	s = metrics_make(f, v);
	atomic_store_explicit(&f->other, s, memory_order_release);
	return s;
}

struct metric_series *metrics_series(struct metric_family *f, const char *const *values)
{
	char v[METRICS_LABELS_MAX][METRICS_VALUE_MAX + 1];
	struct metric_series *s;
	size_t n;

	if (f == NULL)
		return NULL;
	for (size_t j = 0; j < f->nlabels; j++)
		metrics_value_copy(values[j], v[j]);
	s = metrics_find(f, v, atomic_load_explicit(&f->n, memory_order_acquire));
	if (s != NULL)
		return s;
	pthread_mutex_lock(&f->mu);
	n = atomic_load_explicit(&f->n, memory_order_relaxed);
	s = metrics_find(f, v, n);
	if (s == NULL && n == METRICS_SERIES_MAX) {
		s = metrics_other(f);
	} else if (s == NULL) {
		s = metrics_make(f, v);
		if (s != NULL) {
			atomic_store_explicit(&f->series[n], s, memory_order_release);
			atomic_store_explicit(&f->n, n + 1, memory_order_release);
		}
	}
	pthread_mutex_unlock(&f->mu);
	return s;
}

struct metric_series *metrics_series1(struct metric_family *f, const char *value)
{
	const char *values[1] = { value };

	return metrics_series(f, values);
}

static void metrics_bits_add(_Atomic uint64_t *p, double v)
{
	uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(p, &old,
						      metrics_bits(metrics_double(old) + v),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

void metric_inc(struct metric_series *s)
{
	metric_add(s, 1);
}

void metric_add(struct metric_series *s, double v)
{
	if (s != NULL)
		metrics_bits_add(&s->bits, v);
}

void metric_set(struct metric_series *s, double v)
{
	if (s != NULL)
		atomic_store_explicit(&s->bits, metrics_bits(v), memory_order_relaxed);
}

void metric_observe(struct metric_series *s, double v)
{
	size_t i = 0;

	if (s == NULL || isnan(v))
		return;
	/* Bounds are inclusive: le="0.1" counts 0.1. */
	while (i < s->family->nbuckets && v > s->family->le[i])
		i++;
	atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
	metrics_bits_add(&s->bits, v);
}

/* An exposition being written: it grows up to METRICS_TEXT_MAX, then is full. */
struct metrics_text {
	char *p;
	size_t len, cap;
	bool full; /* too long, or out of memory: the exposition fails */
};

static void text_put(struct metrics_text *t, const char *s, size_t n)
{
	size_t cap = t->cap > 0 ? t->cap : METRICS_TEXT_FIRST;
	char *p;

	if (t->full)
		return;
	while (cap - t->len < n && cap < METRICS_TEXT_MAX)
		cap *= 2;
	if (cap - t->len < n || cap > METRICS_TEXT_MAX) {
		t->full = true;
		return;
	}
	if (cap != t->cap) {
		p = realloc(t->p, cap);
		if (p == NULL) {
			t->full = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
}

static void text_puts(struct metrics_text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

/* Backslash and newline escaped (a HELP text), and '"' too for a label value. */
static void text_escaped(struct metrics_text *t, const char *s, bool label)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			text_puts(t, "\\\\");
		else if (*s == '\n')
			text_puts(t, "\\n");
		else if (*s == '"' && label)
			text_puts(t, "\\\"");
		else
			text_put(t, s, 1);
	}
}

static void text_number(struct metrics_text *t, double v)
{
	char buf[48];

	if (isnan(v))
		snprintf(buf, sizeof(buf), "NaN");
	else if (isinf(v))
		snprintf(buf, sizeof(buf), "%s", v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e17)
		snprintf(buf, sizeof(buf), "%.0f", v); /* a count, exactly */
	else
		snprintf(buf, sizeof(buf), "%.15g", v);
	text_puts(t, buf);
}

/* {name="value",...} of s, with le last for a histogram's bucket; nothing if empty. */
static void text_labels(struct metrics_text *t, const struct metric_family *f,
			const struct metric_series *s, const char *le)
{
	if (f->nlabels == 0 && le == NULL)
		return;
	text_puts(t, "{");
	for (size_t j = 0; j < f->nlabels; j++) {
		if (j > 0)
			text_puts(t, ",");
		text_puts(t, f->labels[j]);
		text_puts(t, "=\"");
		text_escaped(t, s->values[j], true);
		text_puts(t, "\"");
	}
	if (le != NULL) {
		text_puts(t, f->nlabels > 0 ? ",le=\"" : "le=\"");
		text_puts(t, le);
		text_puts(t, "\"");
	}
	text_puts(t, "}");
}

static void text_sample(struct metrics_text *t, const struct metric_family *f, const char *suffix,
			const struct metric_series *s, const char *le, double v)
{
	text_puts(t, f->name);
	text_puts(t, suffix);
	text_labels(t, f, s, le);
	text_puts(t, " ");
	text_number(t, v);
	text_puts(t, "\n");
}

static void text_histogram(struct metrics_text *t, const struct metric_family *f,
			   const struct metric_series *s)
{
	char le[48];
	uint64_t total = 0;

	for (size_t i = 0; i <= f->nbuckets; i++) {
		total += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
		if (i < f->nbuckets)
			snprintf(le, sizeof(le), "%.15g", f->le[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		text_sample(t, f, "_bucket", s, le, (double)total);
	}
	text_sample(t, f, "_sum", s, NULL,
		    metrics_double(atomic_load_explicit(&s->bits, memory_order_relaxed)));
	text_sample(t, f, "_count", s, NULL, (double)total);
}

static void text_header(struct metrics_text *t, const char *name, const char *help,
			enum metric_type type)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	text_puts(t, "# HELP ");
	text_puts(t, name);
	text_puts(t, " ");
	text_escaped(t, help, false);
	text_puts(t, "\n# TYPE ");
	text_puts(t, name);
	text_puts(t, " ");
	text_puts(t, types[type]);
	text_puts(t, "\n");
}

static void text_series(struct metrics_text *t, const struct metric_family *f,
			const struct metric_series *s)
{
	if (f->type == METRIC_HISTOGRAM)
		text_histogram(t, f, s);
	else
		text_sample(t, f, "", s, NULL,
			    metrics_double(atomic_load_explicit(&s->bits, memory_order_relaxed)));
}

static void text_family(struct metrics_text *t, struct metric_family *f)
{
	size_t n = atomic_load_explicit(&f->n, memory_order_acquire);
	const struct metric_series *other = atomic_load_explicit(&f->other, memory_order_acquire);

	text_header(t, f->name, f->help, f->type);
	for (size_t i = 0; i < n; i++)
		text_series(t, f, atomic_load_explicit(&f->series[i], memory_order_acquire));
	if (other != NULL)
		text_series(t, f, other);
}

/* The registry's own counter: look-ups that found their family full. */
static void text_overflow(struct metrics_text *t, struct metrics *m, size_t n)
{
	char v[METRICS_NAME_MAX * 2 + 48];

	text_header(t, METRICS_OVERFLOW_NAME,
		    "Label sets counted under \"" METRICS_OTHER "\" because their metric "
		    "already had its most series",
		    METRIC_COUNTER);
	for (size_t i = 0; i < n; i++) {
		const struct metric_family *f = m->families[i];
		uint64_t k = atomic_load_explicit(&f->overflow, memory_order_relaxed);

		if (k == 0)
			continue;
		snprintf(v, sizeof(v), METRICS_OVERFLOW_NAME "{family=\"%s\"} %llu\n", f->name,
			 (unsigned long long)k);
		text_puts(t, v);
	}
}

int metrics_render(struct metrics *m, char **out, size_t *len, struct tsr_err *err)
{
	struct metrics_text t = { 0 };
	size_t n, ncollectors;

	pthread_mutex_lock(&m->render_mu);
	ncollectors = atomic_load_explicit(&m->ncollectors, memory_order_acquire);
	for (size_t i = 0; i < ncollectors; i++)
		m->collectors[i].fn(m->collectors[i].arg);
	n = atomic_load_explicit(&m->n, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		text_family(&t, m->families[i]);
	text_overflow(&t, m, n);
	pthread_mutex_unlock(&m->render_mu);
	if (t.full) {
		free(t.p);
		return tsr_err_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
				   "metrics: exposition beyond %d bytes, or out of memory",
				   METRICS_TEXT_MAX);
	}
	*out = t.p;
	*len = t.len;
	return 0;
}
