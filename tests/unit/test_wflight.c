/* test_wflight.c: writes in flight (proxy/wflight.h): overlap by 4 KiB
 * blocks (partial blocks count), per volume, removal from any position,
 * removing twice or never added is harmless.  Fails (cmocka) naming the
 * check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/wflight.h"

static const int VOL_A = 1, VOL_B = 2;

static void test_overlap(void **state)
{
	struct wflight f = {0};
	struct wflight_ent w1 = {0}, w2 = {0}, w3 = {0};

	(void)state;
	assert_false(wflight_overlaps(&f, &VOL_A, 0, 4096));
	wflight_add(&f, &w1, &VOL_A, 8192, 4096); /* block 2 */
	assert_true(wflight_overlaps(&f, &VOL_A, 8192, 512));
	assert_true(wflight_overlaps(&f, &VOL_A, 0, 8193));  /* blocks 0-2 */
	assert_false(wflight_overlaps(&f, &VOL_A, 0, 8192)); /* blocks 0-1 */
	assert_false(wflight_overlaps(&f, &VOL_A, 12288, 4096));
	assert_false(wflight_overlaps(&f, &VOL_B, 8192, 4096)); /* volume */
	assert_false(wflight_overlaps(&f, &VOL_A, 8192, 0));	/* empty */
	/* An unaligned write touches its partial blocks. */
	wflight_add(&f, &w2, &VOL_A, 20000, 100); /* block 4 */
	assert_true(wflight_overlaps(&f, &VOL_A, 16384, 4096));
	wflight_add(&f, &w3, &VOL_B, 0, 4096);
	assert_true(wflight_overlaps(&f, &VOL_B, 0, 1));
	/* Removal from the middle, the head, the tail; twice. */
	wflight_remove(&f, &w2);
	assert_false(wflight_overlaps(&f, &VOL_A, 16384, 4096));
	assert_true(wflight_overlaps(&f, &VOL_A, 8192, 4096));
	assert_true(wflight_overlaps(&f, &VOL_B, 0, 4096));
	wflight_remove(&f, &w3);
	wflight_remove(&f, &w3);
	assert_false(wflight_overlaps(&f, &VOL_B, 0, 4096));
	wflight_remove(&f, &w1);
	assert_null(f.head);
	/* Never added: harmless. */
	wflight_remove(&f, &w2);
	assert_null(f.head);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_overlap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
