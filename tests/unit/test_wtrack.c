/* test_wtrack.c: the proxy's read-your-writes guard (proxy/wtrack.h):
 * recorded versions are returned, a later (higher) version wins over an
 * older acknowledgement that arrives late, trimmed blocks are forgotten,
 * colliding blocks evict each other without ever answering for the wrong
 * block, and reset drops everything.  Fails (cmocka) naming the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/wtrack.h"

static void test_empty(void **state)
{
	struct wtrack t = {0};

	(void)state;
	assert_int_equal(wtrack_expected(&t, 0), 0);
	assert_int_equal(wtrack_expected(&t, 12345), 0);
	wtrack_forget(&t, 0, 10);    /* no table yet: no-op */
	wtrack_written(&t, 5, 3, 0); /* version 0 is not recorded */
	assert_int_equal(wtrack_expected(&t, 5), 0);
	wtrack_reset(&t);
}

static void test_record_and_order(void **state)
{
	struct wtrack t = {0};

	(void)state;
	wtrack_written(&t, 100, 4, 7);
	for (uint64_t b = 100; b < 104; b++)
		assert_int_equal(wtrack_expected(&t, b), 7);
	assert_int_equal(wtrack_expected(&t, 99), 0);
	assert_int_equal(wtrack_expected(&t, 104), 0);
	/* A later write's acknowledgement. */
	wtrack_written(&t, 101, 1, 9);
	assert_int_equal(wtrack_expected(&t, 101), 9);
	/* An older write acknowledged late does not lower it. */
	wtrack_written(&t, 101, 1, 8);
	assert_int_equal(wtrack_expected(&t, 101), 9);
	/* Trim forgets. */
	wtrack_forget(&t, 100, 2);
	assert_int_equal(wtrack_expected(&t, 100), 0);
	assert_int_equal(wtrack_expected(&t, 101), 0);
	assert_int_equal(wtrack_expected(&t, 102), 7);
	wtrack_reset(&t);
	assert_int_equal(wtrack_expected(&t, 102), 0);
}

/* Many more blocks than slots: every answer is either 0 (evicted) or the
 * version written to that very block. */
static void test_collisions(void **state)
{
	struct wtrack t = {0};
	const uint64_t n = 4 * WTRACK_SLOTS;
	uint64_t kept = 0;

	(void)state;
	for (uint64_t b = 0; b < n; b++)
		wtrack_written(&t, b * 7, 1, b + 1);
	for (uint64_t b = 0; b < n; b++) {
		uint64_t v = wtrack_expected(&t, b * 7);

		if (v != 0) {
			assert_int_equal(v, b + 1);
			kept++;
		}
	}
	assert_true(kept > 0 && kept <= WTRACK_SLOTS);
	wtrack_reset(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_record_and_order),
	    cmocka_unit_test(test_collisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
