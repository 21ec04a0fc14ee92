/* test_busypoll.c: the proxy's busy polling (proxy/busypoll.h) on a real
 * libuv loop: the loop's poll timeout (uv_backend_timeout) is 0 from
 * busypoll_begin() until as many busypoll_end() calls (checked at the next
 * loop turn) or until the budget has passed, and infinite again after
 * that; two reads in flight keep it polling until both ended; a zero
 * budget turns it off; the polling time is counted in
 * ombra_proxy_read_poll_seconds_total.  Fails (cmocka) naming the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "lib/err.h"
#include "lib/metrics.h"
#include "proxy/busypoll.h"

struct fixture {
	uv_loop_t loop;
	uv_async_t keep; /* an active handle: the loop would sleep */
	struct metrics_registry *reg;
	struct busypoll *bp;
};

static void noop(uv_async_t *h)
{
	(void)h;
}

static struct fixture *fixture_new(uint64_t budget_us)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	char errmsg[OMBRA_ERRMSG_LEN];

	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(uv_async_init(&f->loop, &f->keep, noop), 0);
	f->reg = metrics_registry_create();
	assert_non_null(f->reg);
	assert_int_equal(
	    busypoll_create(&f->loop, budget_us, f->reg, &f->bp, errmsg), 0);
	/* libuv reports a zero timeout before the loop's first turn. */
	uv_run(&f->loop, UV_RUN_NOWAIT);
	return f;
}

static void fixture_free(struct fixture *f)
{
	busypoll_close(f->bp);
	uv_close((uv_handle_t *)&f->keep, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	metrics_registry_destroy(f->reg);
	test_free(f);
}

/* One loop turn that never sleeps. */
static void turn(struct fixture *f)
{
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

static double poll_seconds(struct fixture *f)
{
	return metric_value(metrics_counter(
	    f->reg, "ombra_proxy_read_poll_seconds_total", "", NULL));
}

static void test_polls_until_the_read_ends(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(100000);

	assert_true(busypoll_enabled(f->bp));
	assert_int_equal(uv_backend_timeout(&f->loop), -1);
	busypoll_begin(f->bp);
	assert_int_equal(uv_backend_timeout(&f->loop), 0);
	usleep(1000);
	turn(f);
	assert_int_equal(uv_backend_timeout(&f->loop), 0);
	busypoll_end(f->bp);
	turn(f);
	assert_int_equal(uv_backend_timeout(&f->loop), -1);
	assert_true(poll_seconds(f) >= 0.001);
	assert_true(poll_seconds(f) < 10);
	fixture_free(f);
}

static void test_two_reads(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(100000);

	busypoll_begin(f->bp);
	busypoll_begin(f->bp);
	busypoll_end(f->bp);
	turn(f);
	assert_int_equal(uv_backend_timeout(&f->loop), 0);
	busypoll_end(f->bp);
	turn(f);
	assert_int_equal(uv_backend_timeout(&f->loop), -1);
	/* A later read polls again. */
	busypoll_begin(f->bp);
	assert_int_equal(uv_backend_timeout(&f->loop), 0);
	busypoll_end(f->bp);
	turn(f);
	assert_int_equal(uv_backend_timeout(&f->loop), -1);
	fixture_free(f);
}

static void test_budget_runs_out(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(1000);

	busypoll_begin(f->bp);
	usleep(3000);
	turn(f);
	/* The read is still in flight, but the budget has passed. */
	assert_int_equal(uv_backend_timeout(&f->loop), -1);
	busypoll_end(f->bp);
	turn(f);
	assert_int_equal(uv_backend_timeout(&f->loop), -1);
	fixture_free(f);
}

static void test_off(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(0);

	assert_false(busypoll_enabled(f->bp));
	assert_false(busypoll_enabled(NULL));
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_polls_until_the_read_ends),
	    cmocka_unit_test(test_two_reads),
	    cmocka_unit_test(test_budget_runs_out),
	    cmocka_unit_test(test_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
