/* test_pcache.c: the proxy's registry of prefetch cache entries
 * (proxy/pcache.h): ranges are found only when every block is recorded,
 * drops clear exactly the blocks asked, one holder per segment, the LRU
 * bound evicts the least recently used segment, and bad ranges are
 * refused.  Fails (cmocka) naming the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/pcache.h"

static void test_add_lookup_drop(void **state)
{
	struct pcache *c;

	(void)state;
	assert_int_equal(pcache_create(8, &c), 0);
	assert_int_equal(pcache_lookup(c, 1, 0, 0, 1), 0);
	assert_true(pcache_add(c, 1, 0, 7, 10, 20));
	assert_int_equal(pcache_lookup(c, 1, 0, 10, 20), 7);
	assert_int_equal(pcache_lookup(c, 1, 0, 15, 5), 7);
	assert_int_equal(pcache_lookup(c, 1, 0, 9, 2), 0);  /* 9 missing */
	assert_int_equal(pcache_lookup(c, 1, 0, 29, 2), 0); /* 30 missing */
	assert_int_equal(pcache_lookup(c, 1, 1, 10, 1), 0); /* other seg */
	assert_int_equal(pcache_lookup(c, 2, 0, 10, 1), 0); /* other vol */
	assert_int_equal(pcache_blocks(c), 20);
	assert_int_equal(pcache_drop(c, 1, 0, 12, 2), 2);
	assert_int_equal(pcache_lookup(c, 1, 0, 10, 5), 0);
	assert_int_equal(pcache_lookup(c, 1, 0, 14, 16), 7);
	assert_int_equal(pcache_holder(c, 1, 0), 7);
	assert_int_equal(pcache_drop(c, 1, 0, 0, 0), 18);
	assert_int_equal(pcache_holder(c, 1, 0), 0);
	assert_int_equal(pcache_segments(c), 0);
	assert_int_equal(pcache_blocks(c), 0);
	pcache_destroy(c);
}

static void test_one_holder_and_bad_ranges(void **state)
{
	struct pcache *c;

	(void)state;
	assert_int_equal(pcache_create(8, &c), 0);
	assert_true(pcache_add(c, 1, 3, 7, 0, 4));
	assert_true(pcache_add(c, 1, 3, 8, 100, 1)); /* replaces node 7 */
	assert_int_equal(pcache_lookup(c, 1, 3, 0, 1), 0);
	assert_int_equal(pcache_lookup(c, 1, 3, 100, 1), 8);
	assert_false(pcache_add(c, 1, 3, 8, PCACHE_MAX_BLOCKS, 1));
	assert_false(pcache_add(c, 1, 3, 8, 0, 0));
	assert_false(pcache_add(c, 1, 3, 0, 0, 1));
	assert_int_equal(pcache_lookup(c, 1, 3, UINT32_MAX, 2), 0);
	assert_true(pcache_add(c, 1, 3, 8, 0, PCACHE_MAX_BLOCKS));
	assert_int_equal(pcache_lookup(c, 1, 3, 0, PCACHE_MAX_BLOCKS), 8);
	assert_int_equal(pcache_blocks(c), PCACHE_MAX_BLOCKS);
	pcache_destroy(c);
}

static void test_lru_bound(void **state)
{
	struct pcache *c;
	uint64_t s;

	(void)state;
	assert_int_equal(pcache_create(3, &c), 0);
	for (s = 0; s < 3; s++)
		assert_true(pcache_add(c, 5, s, 9, 0, 1));
	assert_int_equal(pcache_lookup(c, 5, 0, 0, 1), 9); /* 0 is recent */
	assert_true(pcache_add(c, 5, 3, 9, 0, 1));	   /* evicts 1 */
	assert_int_equal(pcache_segments(c), 3);
	assert_int_equal(pcache_holder(c, 5, 1), 0);
	assert_int_equal(pcache_holder(c, 5, 0), 9);
	assert_int_equal(pcache_holder(c, 5, 2), 9);
	assert_int_equal(pcache_holder(c, 5, 3), 9);
	pcache_drop_volume(c, 5);
	assert_int_equal(pcache_segments(c), 0);
	pcache_destroy(c);
	assert_int_not_equal(pcache_create(0, &c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_lookup_drop),
	    cmocka_unit_test(test_one_holder_and_bad_ranges),
	    cmocka_unit_test(test_lru_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
