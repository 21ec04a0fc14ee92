/* metrics.c: a Prometheus registry rendered in text exposition format
 * 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Metrics are grouped in families (one name, help text and type); each
 * family holds series that differ by their label set.  Rendering walks the
 * families in creation order and prints "# HELP" and "# TYPE" once per
 * family, then every series; histograms print cumulative _bucket lines
 * with the series' labels merged with le="...", the +Inf bucket, _sum and
 * _count.
 *
 * Failure: creation returns NULL on out-of-memory, and also, after logging
 * an error, on a programming mistake (invalid metric or label name,
 * malformed label string, a name reused with another type, unordered
 * histogram bounds).  Every update accepts NULL and does nothing, so a
 * daemon whose metric could not be created keeps running.  One mutex per
 * registry guards all state. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const metric_type_names[] = {
    [METRIC_COUNTER] = "counter",
    [METRIC_GAUGE] = "gauge",
    [METRIC_HISTOGRAM] = "histogram",
};

struct metric {
	struct metrics_registry *reg;
	struct metric_family *family;
	struct metric *next; /* next series in the family */
	char *labels;	     /* "" when none */
	double value;	     /* counter, gauge; histogram: sum */
	/* Histogram only: counts[i] observations <= bounds[i] and above
	 * bounds[i - 1] (not cumulative); counts[n_bounds] is the overflow
	 * bucket above the last bound. */
	double *bounds;
	uint64_t *counts;
	size_t n_bounds;
	uint64_t count;
};

struct metric_family {
	char *name;
	char *help;
	enum metric_type type;
	struct metric *series;
	struct metric **series_tail;
	struct metric_family *next;
};

struct metrics_registry {
	pthread_mutex_t lock;
	struct metric_family *families;
	struct metric_family **families_tail;
};

/* ------------------------------------------------------------ validation */

static bool metrics_name_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
		return true;
	}
	return !first && c >= '0' && c <= '9';
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static bool metrics_valid_name(const char *name)
{
	const char *p;

	if (name == NULL || name[0] == '\0') {
		return false;
	}
	for (p = name; *p != '\0'; p++) {
		if (!metrics_name_char(*p, p == name) && *p != ':') {
			return false;
		}
	}
	return true;
}

/* Label string: name="value"(,name="value")* with label names
 * [a-zA-Z_][a-zA-Z0-9_]* and values using the escapes \\ \" \n.  A
 * histogram may not use the reserved label "le".  Empty means none. */
static bool metrics_valid_labels(const char *labels, bool histogram)
{
	const char *p = labels;

	while (*p != '\0') {
		const char *name = p;

		if (!metrics_name_char(*p, true)) {
			return false;
		}
		while (metrics_name_char(*p, false)) {
			p++;
		}
		if (histogram && p - name == 2 && strncmp(name, "le", 2) == 0) {
			return false;
		}
		if (p[0] != '=' || p[1] != '"') {
			return false;
		}
		for (p += 2; *p != '"'; p++) {
			if (*p == '\0' || *p == '\n') {
				return false;
			}
			if (*p == '\\') {
				p++;
				if (*p != '\\' && *p != '"' && *p != 'n') {
					return false;
				}
			}
		}
		p++;
		if (*p == ',') {
			p++;
			if (*p == '\0') {
				return false;
			}
		} else if (*p != '\0') {
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------- lifecycle */

struct metrics_registry *metrics_registry_create(void)
{
	struct metrics_registry *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		return NULL;
	}
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		free(r);
		return NULL;
	}
	r->families_tail = &r->families;
	return r;
}

static void metric_free(struct metric *m)
{
	free(m->labels);
	free(m->bounds);
	free(m->counts);
	free(m);
}

static void metric_family_free(struct metric_family *f)
{
	struct metric *m = f->series;

	while (m != NULL) {
		struct metric *next = m->next;

		metric_free(m);
		m = next;
	}
	free(f->name);
	free(f->help);
	free(f);
}

void metrics_registry_destroy(struct metrics_registry *r)
{
	struct metric_family *f;

	if (r == NULL) {
		return;
	}
	f = r->families;
	while (f != NULL) {
		struct metric_family *next = f->next;

		metric_family_free(f);
		f = next;
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* -------------------------------------------------------------- creation */

static struct metric_family *metrics_find_family(struct metrics_registry *r,
						 const char *name)
{
	struct metric_family *f;

	for (f = r->families; f != NULL; f = f->next) {
		if (strcmp(f->name, name) == 0) {
			return f;
		}
	}
	return NULL;
}

static struct metric_family *
metrics_family_new(const char *name, const char *help, enum metric_type type)
{
	struct metric_family *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		return NULL;
	}
	f->name = strdup(name);
	f->help = strdup(help != NULL ? help : "");
	if (f->name == NULL || f->help == NULL) {
		metric_family_free(f);
		return NULL;
	}
	f->type = type;
	f->series_tail = &f->series;
	return f;
}

/* A new series; bounds (n ascending finite values) only for histograms. */
static struct metric *metric_new(struct metrics_registry *r,
				 struct metric_family *f, const char *labels,
				 const double *bounds, size_t n)
{
	struct metric *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		return NULL;
	}
	m->reg = r;
	m->family = f;
	m->labels = strdup(labels);
	if (m->labels == NULL) {
		goto err_free;
	}
	if (f->type == METRIC_HISTOGRAM) {
		m->n_bounds = n;
		m->counts = calloc(n + 1, sizeof(*m->counts));
		if (m->counts == NULL) {
			goto err_free;
		}
		if (n > 0) {
			m->bounds = malloc(n * sizeof(*m->bounds));
			if (m->bounds == NULL) {
				goto err_free;
			}
			memcpy(m->bounds, bounds, n * sizeof(*m->bounds));
		}
	}
	return m;

err_free:
	metric_free(m);
	return NULL;
}

/* Number of bounds to keep: a trailing +Inf is implied and dropped.
 * Returns false if the bounds are not strictly ascending or are NaN. */
static bool metrics_check_bounds(const double *bounds, size_t n, size_t *keep)
{
	size_t i;

	if (n > 0 && bounds == NULL) {
		return false;
	}
	if (n > 0 && isinf(bounds[n - 1]) && bounds[n - 1] > 0) {
		n--;
	}
	for (i = 0; i < n; i++) {
		if (!isfinite(bounds[i]) ||
		    (i > 0 && bounds[i] <= bounds[i - 1])) {
			return false;
		}
	}
	*keep = n;
	return true;
}

static struct metric *metrics_get(struct metrics_registry *r,
				  enum metric_type type, const char *name,
				  const char *help, const char *labels,
				  const double *bounds, size_t n)
{
	struct metric_family *f;
	struct metric *m;
	bool new_family = false;

	if (r == NULL) {
		return NULL;
	}
	if (labels == NULL) {
		labels = "";
	}
	if (!metrics_valid_name(name) ||
	    !metrics_valid_labels(labels, type == METRIC_HISTOGRAM)) {
		log_error("metrics: invalid %s name %s or labels {%s}",
			  metric_type_names[type], name ? name : "(null)",
			  labels);
		return NULL;
	}
	if (type == METRIC_HISTOGRAM && !metrics_check_bounds(bounds, n, &n)) {
		log_error("metrics: histogram %s: bounds must be finite and "
			  "strictly ascending",
			  name);
		return NULL;
	}

	pthread_mutex_lock(&r->lock);
	f = metrics_find_family(r, name);
	if (f != NULL && f->type != type) {
		pthread_mutex_unlock(&r->lock);
		log_error("metrics: %s is already a %s, not a %s", name,
			  metric_type_names[f->type], metric_type_names[type]);
		return NULL;
	}
	if (f == NULL) {
		f = metrics_family_new(name, help, type);
		if (f == NULL) {
			goto err_unlock;
		}
		new_family = true;
	}
	for (m = f->series; m != NULL; m = m->next) {
		if (strcmp(m->labels, labels) == 0) {
			pthread_mutex_unlock(&r->lock);
			return m;
		}
	}
	m = metric_new(r, f, labels, bounds, n);
	if (m == NULL) {
		goto err_free_family;
	}
	*f->series_tail = m;
	f->series_tail = &m->next;
	if (new_family) {
		*r->families_tail = f;
		r->families_tail = &f->next;
	}
	pthread_mutex_unlock(&r->lock);
	return m;

err_free_family:
	if (new_family) {
		metric_family_free(f);
	}
err_unlock:
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct metric *metrics_counter(struct metrics_registry *r, const char *name,
			       const char *help, const char *labels)
{
	return metrics_get(r, METRIC_COUNTER, name, help, labels, NULL, 0);
}

struct metric *metrics_gauge(struct metrics_registry *r, const char *name,
			     const char *help, const char *labels)
{
	return metrics_get(r, METRIC_GAUGE, name, help, labels, NULL, 0);
}

struct metric *metrics_histogram(struct metrics_registry *r, const char *name,
				 const char *help, const char *labels,
				 const double *bounds, size_t n)
{
	return metrics_get(r, METRIC_HISTOGRAM, name, help, labels, bounds, n);
}

/* --------------------------------------------------------------- updates */

/* Counters only go up: a negative or NaN increment is ignored. */
void metric_inc(struct metric *m, double by)
{
	if (m == NULL || m->family->type == METRIC_HISTOGRAM) {
		return;
	}
	if (m->family->type == METRIC_COUNTER && !(by >= 0)) {
		return;
	}
	pthread_mutex_lock(&m->reg->lock);
	m->value += by;
	pthread_mutex_unlock(&m->reg->lock);
}

/* Gauges only; ignored on counters and histograms. */
void metric_set(struct metric *m, double value)
{
	if (m == NULL || m->family->type != METRIC_GAUGE) {
		return;
	}
	pthread_mutex_lock(&m->reg->lock);
	m->value = value;
	pthread_mutex_unlock(&m->reg->lock);
}

/* Histograms only.  The bucket is found by binary search: the first bound
 * >= value (Prometheus buckets are "less than or equal").  NaN is ignored. */
void metric_observe(struct metric *m, double value)
{
	size_t lo = 0;
	size_t hi;

	if (m == NULL || m->family->type != METRIC_HISTOGRAM || isnan(value)) {
		return;
	}
	hi = m->n_bounds;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (value <= m->bounds[mid]) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	pthread_mutex_lock(&m->reg->lock);
	m->counts[lo]++;
	m->count++;
	m->value += value;
	pthread_mutex_unlock(&m->reg->lock);
}

/* Counter or gauge value; for a histogram, the sum of observations.
 * NULL gives 0. */
double metric_value(struct metric *m)
{
	double v;

	if (m == NULL) {
		return 0;
	}
	pthread_mutex_lock(&m->reg->lock);
	v = m->value;
	pthread_mutex_unlock(&m->reg->lock);
	return v;
}

/* ------------------------------------------------------------- rendering */

struct metrics_buf {
	char *data;
	size_t len;
	size_t cap;
	bool oom;
};

static void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom) {
		return;
	}
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n + 1;
		char *data = realloc(b->data, cap);

		if (data == NULL) {
			b->oom = true;
			return;
		}
		b->data = data;
		b->cap = cap;
	}
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64) style, as Prometheus clients
 * print values: the shortest of %.15g..%.17g that reads back exactly;
 * "+Inf", "-Inf" and "NaN" for the special values. */
static void metrics_format_double(double v, char *out, size_t len)
{
	int prec;

	if (isnan(v)) {
		snprintf(out, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (prec = 15; prec < 17; prec++) {
		snprintf(out, len, "%.*g", prec, v);
		if (strtod(out, NULL) == v) {
			return;
		}
	}
	snprintf(out, len, "%.17g", v);
}

/* HELP text escapes backslash and newline (format 0.0.4). */
static void metrics_render_help(struct metrics_buf *b, const char *help)
{
	const char *p = help;

	while (*p != '\0') {
		size_t run = strcspn(p, "\\\n");

		if (run > 0) {
			metrics_buf_printf(b, "%.*s", (int)run, p);
			p += run;
			continue;
		}
		metrics_buf_printf(b, "%s", *p == '\\' ? "\\\\" : "\\n");
		p++;
	}
}

static void metrics_render_series(struct metrics_buf *b, const char *name,
				  const char *suffix, const char *labels,
				  double v)
{
	char num[40];

	metrics_format_double(v, num, sizeof(num));
	if (labels[0] != '\0') {
		metrics_buf_printf(b, "%s%s{%s} %s\n", name, suffix, labels,
				   num);
	} else {
		metrics_buf_printf(b, "%s%s %s\n", name, suffix, num);
	}
}

static void metrics_render_bucket(struct metrics_buf *b, const char *name,
				  const char *labels, double bound,
				  uint64_t cumulative)
{
	char le[40];

	metrics_format_double(bound, le, sizeof(le));
	metrics_buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels,
			   labels[0] != '\0' ? "," : "", le,
			   (unsigned long long)cumulative);
}

static void metrics_render_histogram(struct metrics_buf *b,
				     const struct metric_family *f,
				     const struct metric *m)
{
	uint64_t cumulative = 0;
	size_t i;

	for (i = 0; i < m->n_bounds; i++) {
		cumulative += m->counts[i];
		metrics_render_bucket(b, f->name, m->labels, m->bounds[i],
				      cumulative);
	}
	metrics_render_bucket(b, f->name, m->labels, INFINITY, m->count);
	metrics_render_series(b, f->name, "_sum", m->labels, m->value);
	metrics_render_series(b, f->name, "_count", m->labels,
			      (double)m->count);
}

char *metrics_render(struct metrics_registry *r)
{
	struct metrics_buf b = {0};
	const struct metric_family *f;
	const struct metric *m;

	if (r == NULL) {
		return strdup("");
	}
	b.cap = 4096;
	b.data = malloc(b.cap);
	if (b.data == NULL) {
		return NULL;
	}
	b.data[0] = '\0';

	pthread_mutex_lock(&r->lock);
	for (f = r->families; f != NULL; f = f->next) {
		metrics_buf_printf(&b, "# HELP %s ", f->name);
		metrics_render_help(&b, f->help);
		metrics_buf_printf(&b, "\n# TYPE %s %s\n", f->name,
				   metric_type_names[f->type]);
		for (m = f->series; m != NULL; m = m->next) {
			if (f->type == METRIC_HISTOGRAM) {
				metrics_render_histogram(&b, f, m);
			} else {
				metrics_render_series(&b, f->name, "",
						      m->labels, m->value);
			}
		}
	}
	pthread_mutex_unlock(&r->lock);

	if (b.oom) {
		free(b.data);
		return NULL;
	}
	return b.data;
}
