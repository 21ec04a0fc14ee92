/* test_metrics.c: the metrics registry renders exactly the Prometheus text
 * format 0.0.4 for counters, labelled gauges and histograms; creation
 * deduplicates and rejects misuse; updates are safe on NULL and from
 * several threads.  Fails (cmocka) on any difference, printing both texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static int setup(void **state)
{
	*state = metrics_registry_create();
	return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	metrics_registry_destroy(*state);
	return 0;
}

static void assert_render(struct metrics_registry *r, const char *want)
{
	char *got = metrics_render(r);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_empty(void **state)
{
	assert_render(*state, "");
}

static void test_counter_gauge_histogram(void **state)
{
	struct metrics_registry *r = *state;
	static const double bounds[] = {0.25, 1, 4};
	static const double obs[] = {0.125, 0.25, 0.5, 3, 8};
	struct metric *c, *g1, *g2, *h;
	size_t i;

	c = metrics_counter(r, "ombra_requests_total", "Requests served.",
			    NULL);
	g1 = metrics_gauge(r, "ombra_queue_depth",
			   "Queued items.\nSecond line \\ backslash",
			   "region=\"eu\",node=\"a\"");
	g2 = metrics_gauge(r, "ombra_queue_depth", "ignored: first help wins",
			   "region=\"us\",node=\"b\"");
	h = metrics_histogram(r, "ombra_latency_seconds", "Latency.",
			      "method=\"Read\"", bounds, 3);
	assert_non_null(c);
	assert_non_null(g1);
	assert_non_null(g2);
	assert_non_null(h);

	metric_inc(c, 1);
	metric_inc(c, 2.5);
	metric_inc(c, -1);  /* counters never go down */
	metric_set(c, 100); /* not a gauge: ignored */
	metric_set(g1, 7);
	metric_set(g2, 1);
	metric_inc(g2, -3.25);
	for (i = 0; i < sizeof(obs) / sizeof(obs[0]); i++) {
		metric_observe(h, obs[i]);
	}
	metric_observe(h, NAN); /* ignored */
	metric_observe(c, 1);	/* not a histogram: ignored */

	assert_true(metric_value(c) == 3.5);
	assert_true(metric_value(g2) == -2.25);
	assert_true(metric_value(h) == 11.875);

	assert_render(
	    r, "# HELP ombra_requests_total Requests served.\n"
	       "# TYPE ombra_requests_total counter\n"
	       "ombra_requests_total 3.5\n"
	       "# HELP ombra_queue_depth Queued items.\\nSecond line \\\\ "
	       "backslash\n"
	       "# TYPE ombra_queue_depth gauge\n"
	       "ombra_queue_depth{region=\"eu\",node=\"a\"} 7\n"
	       "ombra_queue_depth{region=\"us\",node=\"b\"} -2.25\n"
	       "# HELP ombra_latency_seconds Latency.\n"
	       "# TYPE ombra_latency_seconds histogram\n"
	       "ombra_latency_seconds_bucket{method=\"Read\",le=\"0.25\"} "
	       "2\n"
	       "ombra_latency_seconds_bucket{method=\"Read\",le=\"1\"} 3\n"
	       "ombra_latency_seconds_bucket{method=\"Read\",le=\"4\"} 4\n"
	       "ombra_latency_seconds_bucket{method=\"Read\",le=\"+Inf\"} "
	       "5\n"
	       "ombra_latency_seconds_sum{method=\"Read\"} 11.875\n"
	       "ombra_latency_seconds_count{method=\"Read\"} 5\n");
}

static void test_histogram_without_labels(void **state)
{
	struct metrics_registry *r = *state;
	/* A trailing +Inf bound is implied, so it is dropped, not doubled. */
	static const double bounds[] = {0.001, 0.5, INFINITY};
	struct metric *h;

	h = metrics_histogram(r, "ombra_fsync_seconds", "fsync time.", NULL,
			      bounds, 3);
	assert_non_null(h);
	metric_observe(h, 0.0005);
	metric_observe(h, 0.75);
	assert_render(r, "# HELP ombra_fsync_seconds fsync time.\n"
			 "# TYPE ombra_fsync_seconds histogram\n"
			 "ombra_fsync_seconds_bucket{le=\"0.001\"} 1\n"
			 "ombra_fsync_seconds_bucket{le=\"0.5\"} 1\n"
			 "ombra_fsync_seconds_bucket{le=\"+Inf\"} 2\n"
			 "ombra_fsync_seconds_sum 0.7505\n"
			 "ombra_fsync_seconds_count 2\n");
}

static void test_special_values(void **state)
{
	struct metrics_registry *r = *state;
	struct metric *a = metrics_gauge(r, "a", "", "k=\"1\"");
	struct metric *b = metrics_gauge(r, "a", "", "k=\"2\"");
	struct metric *c = metrics_gauge(r, "a", "", "k=\"3\"");
	struct metric *d = metrics_gauge(r, "a", "", "k=\"4\"");

	metric_set(a, NAN);
	metric_set(b, -INFINITY);
	metric_set(c, 0.1);
	metric_set(d, 1e-9);
	assert_render(r, "# HELP a \n"
			 "# TYPE a gauge\n"
			 "a{k=\"1\"} NaN\n"
			 "a{k=\"2\"} -Inf\n"
			 "a{k=\"3\"} 0.1\n"
			 "a{k=\"4\"} 1e-09\n");
}

static void test_same_object_twice(void **state)
{
	struct metrics_registry *r = *state;
	struct metric *a = metrics_counter(r, "x_total", "X.", "k=\"v\"");
	struct metric *b = metrics_counter(r, "x_total", "X.", "k=\"v\"");
	struct metric *c = metrics_counter(r, "x_total", "X.", NULL);
	struct metric *d = metrics_counter(r, "x_total", "X.", "");

	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, c);
	assert_ptr_equal(c, d);
}

static void test_misuse_rejected(void **state)
{
	struct metrics_registry *r = *state;
	static const double unordered[] = {1, 0.5};
	static const double with_nan[] = {0.5, NAN};

	assert_non_null(metrics_counter(r, "dup", "", NULL));
	assert_null(metrics_gauge(r, "dup", "", NULL));
	assert_null(metrics_counter(r, "", "", NULL));
	assert_null(metrics_counter(r, NULL, "", NULL));
	assert_null(metrics_counter(r, "9lives", "", NULL));
	assert_null(metrics_counter(r, "has-dash", "", NULL));
	assert_null(metrics_counter(r, "ok", "", "k=v"));
	assert_null(metrics_counter(r, "ok", "", "k=\"v"));
	assert_null(metrics_counter(r, "ok", "", "k=\"v\","));
	assert_null(metrics_counter(r, "ok", "", "k=\"v\" j=\"w\""));
	assert_null(metrics_counter(r, "ok", "", "k=\"bad \\x escape\""));
	assert_null(metrics_histogram(r, "h", "", "le=\"1\"", NULL, 0));
	assert_null(metrics_histogram(r, "h", "", NULL, unordered, 2));
	assert_null(metrics_histogram(r, "h", "", NULL, with_nan, 2));
	assert_null(metrics_histogram(r, "h", "", NULL, NULL, 2));
	assert_non_null(metrics_counter(r, "ns:ok_total", "",
					"a=\"q\\\"uote\",b=\"\\\\\""));
	/* Nothing half-created is rendered. */
	assert_render(r, "# HELP dup \n"
			 "# TYPE dup counter\n"
			 "dup 0\n"
			 "# HELP ns:ok_total \n"
			 "# TYPE ns:ok_total counter\n"
			 "ns:ok_total{a=\"q\\\"uote\",b=\"\\\\\"} 0\n");
}

static void test_null_safe(void **state)
{
	(void)state;
	metric_inc(NULL, 1);
	metric_set(NULL, 1);
	metric_observe(NULL, 1);
	assert_true(metric_value(NULL) == 0);
	assert_null(metrics_counter(NULL, "x", "", NULL));
	metrics_registry_destroy(NULL);
}

#define WORKERS 4
#define INCS 20000

static void *worker(void *arg)
{
	struct metric *m = arg;
	int i;

	for (i = 0; i < INCS; i++) {
		metric_inc(m, 1);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct metrics_registry *r = *state;
	struct metric *m = metrics_counter(r, "hits_total", "Hits.", NULL);
	pthread_t th[WORKERS];
	int i;

	assert_non_null(m);
	for (i = 0; i < WORKERS; i++) {
		assert_int_equal(pthread_create(&th[i], NULL, worker, m), 0);
	}
	/* Render while the workers update. */
	for (i = 0; i < 50; i++) {
		char *text = metrics_render(r);

		assert_non_null(text);
		assert_non_null(strstr(text, "# TYPE hits_total counter\n"));
		free(text);
	}
	for (i = 0; i < WORKERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
	}
	assert_true(metric_value(m) == (double)(WORKERS * INCS));
	assert_render(r, "# HELP hits_total Hits.\n"
			 "# TYPE hits_total counter\n"
			 "hits_total 80000\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counter_gauge_histogram, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_histogram_without_labels,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_special_values, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_same_object_twice, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_misuse_rejected, setup,
					    teardown),
	    cmocka_unit_test(test_null_safe),
	    cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
