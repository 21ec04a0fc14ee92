/* metrics.h: a small Prometheus metrics registry (text exposition format
 * 0.0.4, https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Counters, gauges and histograms, each with an optional fixed label set
 * given at creation.  All calls are thread-safe (one mutex per registry): the
 * loop thread updates, the HTTP thread renders.  Objects are created by and
 * owned by the registry; they live until metrics_registry_destroy().
 * Creation returns NULL only on out-of-memory; updates never fail. */
#ifndef OMBRA_METRICS_H
#define OMBRA_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics_registry;
struct metric;

struct metrics_registry *metrics_registry_create(void);
void metrics_registry_destroy(struct metrics_registry *r);

/* name: Prometheus metric name; help: one line.  labels: NULL or a string
 * like `method="CreateVolume",code="OK"` (copied).  Creating the same
 * name+labels twice returns the same object. */
struct metric *metrics_counter(struct metrics_registry *r, const char *name,
			       const char *help, const char *labels);
struct metric *metrics_gauge(struct metrics_registry *r, const char *name,
			     const char *help, const char *labels);
/* bounds: n ascending upper bounds (copied), in the metric's unit. */
struct metric *metrics_histogram(struct metrics_registry *r, const char *name,
				 const char *help, const char *labels,
				 const double *bounds, size_t n);

void metric_inc(struct metric *m, double by);	     /* counter or gauge */
void metric_set(struct metric *m, double value);     /* gauge */
void metric_observe(struct metric *m, double value); /* histogram */
double metric_value(struct metric *m);		     /* counter/gauge value */

/* Render everything in text format.  Returns a malloc'd NUL-terminated
 * string the caller frees, or NULL on out-of-memory. */
char *metrics_render(struct metrics_registry *r);

#endif
