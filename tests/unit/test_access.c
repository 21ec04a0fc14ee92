/* test_access: the bounded per-segment access counter (proxy/
 * access_table.c): counts, the top-N by reads kept when the table fills,
 * and the reset at each interval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/access.h"

static void test_counts(void **state)
{
	struct access_table *t = access_table_create(8);
	const struct access_seg *e;
	size_t n;

	(void)state;
	assert_non_null(t);
	access_table_note(t, 1, 0, false, 4096);
	access_table_note(t, 1, 0, false, 8192);
	access_table_note(t, 1, 0, true, 4096);
	access_table_note(t, 1, 3, true, 512);
	access_table_note(t, 2, 0, false, 100);
	e = access_table_take(t, &n);
	assert_int_equal(n, 3);
	assert_int_equal(e[0].volume_id, 1);
	assert_int_equal(e[0].seg, 0);
	assert_int_equal(e[0].reads, 2);
	assert_int_equal(e[0].writes, 1);
	assert_int_equal(e[0].read_bytes, 12288);
	assert_int_equal(e[1].volume_id, 2);
	assert_int_equal(e[1].reads, 1);
	assert_int_equal(e[2].seg, 3);
	assert_int_equal(e[2].writes, 1);
	assert_int_equal(e[2].read_bytes, 0);
	/* next interval starts empty */
	e = access_table_take(t, &n);
	assert_int_equal(n, 0);
	access_table_destroy(t);
}

/* 4 kept: many cold segments never push out the hot ones. */
static void test_top_n(void **state)
{
	struct access_table *t = access_table_create(4);
	const struct access_seg *e;
	size_t n;

	(void)state;
	for (uint64_t s = 0; s < 4; s++)
		for (unsigned k = 0; k < 100 + s; k++)
			access_table_note(t, 9, s, false, 4096);
	for (uint64_t s = 100; s < 10000; s++)
		access_table_note(t, 9, s, false, 4096);
	for (uint64_t s = 0; s < 4; s++)
		access_table_note(t, 9, s, false, 4096);
	e = access_table_take(t, &n);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(e[i].seg, 3 - i);
		assert_int_equal(e[i].reads, 101 + (3 - i));
	}
	access_table_destroy(t);
}

static void test_bad_size(void **state)
{
	(void)state;
	assert_null(access_table_create(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_top_n),
	    cmocka_unit_test(test_bad_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
