/* test_delayq.c: the scheduler of ombra-netdelay (tools/netdelay/delayq.c)
 * on a virtual clock: each item is released exactly when its queue's delay
 * has passed, never before; per-queue order is kept; queues with different
 * delays interleave in deadline order; a full queue refuses (and counts)
 * new items and accepts again once drained; releasing "everything" at exit
 * empties every queue; invalid arguments are refused.  Fails (cmocka) on
 * the first wrong release, naming the item. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "tools/netdelay/delayq.h"

#define MS (UINT64_C(1000000))

struct released {
	size_t q[256];
	uint32_t id[256];
	size_t n;
	size_t stop_after; /* stop delayq_release() after this many (0: no) */
};

static int record(size_t q, uint32_t id, void *arg)
{
	struct released *r = arg;
	assert_true(r->n < 256);
	r->q[r->n] = q;
	r->id[r->n] = id;
	r->n++;
	return r->stop_after != 0 && r->n >= r->stop_after;
}

static void test_single_queue_exact_delay(void **state)
{
	struct delayq dq;
	uint64_t d = 25 * MS;
	struct released r = {0};

	assert_int_equal(delayq_init(&dq, &d, 1, 8), DELAYQ_OK);
	assert_int_equal(delayq_next_due(&dq), DELAYQ_NEVER);
	assert_int_equal(delayq_push(&dq, 0, 7, 100 * MS), DELAYQ_OK);
	assert_int_equal(delayq_push(&dq, 0, 8, 101 * MS), DELAYQ_OK);
	assert_int_equal(delayq_next_due(&dq), 125 * MS);
	/* one ns early: nothing */
	assert_int_equal(delayq_release(&dq, 125 * MS - 1, record, &r), 0);
	assert_int_equal(delayq_release(&dq, 125 * MS, record, &r), 1);
	assert_int_equal(r.id[0], 7);
	assert_int_equal(delayq_next_due(&dq), 126 * MS);
	assert_int_equal(delayq_held(&dq, 0), 1);
	assert_int_equal(delayq_release(&dq, 200 * MS, record, &r), 1);
	assert_int_equal(r.id[1], 8);
	assert_int_equal(delayq_next_due(&dq), DELAYQ_NEVER);
	assert_int_equal(dq.queues[0].stats.pushed, 2);
	assert_int_equal(dq.queues[0].stats.released, 2);
	delayq_close(&dq);
}

/* Three queues (25, 40, 30 ms), items pushed 1 ms apart round robin:
 * the release order must be by due time, each queue's items in push
 * order, and no item released before its due time. */
static void test_interleaved_queues_in_deadline_order(void **state)
{
	struct delayq dq;
	uint64_t d[3] = {25 * MS, 40 * MS, 30 * MS};
	struct released r = {0};
	uint64_t now;
	uint32_t next_id[3] = {0, 0, 0};
	uint64_t pushed_at[3][20];

	assert_int_equal(delayq_init(&dq, d, 3, 32), DELAYQ_OK);
	for (int i = 0; i < 60; i++) {
		size_t q = (size_t)i % 3;
		pushed_at[q][next_id[q]] = (uint64_t)i * MS;
		assert_int_equal(
		    delayq_push(&dq, q, next_id[q]++, (uint64_t)i * MS),
		    DELAYQ_OK);
	}
	/* step the clock 0.5 ms at a time, checking each release time */
	for (now = 0; now <= 200 * MS; now += MS / 2) {
		size_t before = r.n;
		delayq_release(&dq, now, record, &r);
		for (size_t k = before; k < r.n; k++) {
			uint64_t due = pushed_at[r.q[k]][r.id[k]] + d[r.q[k]];
			if (due > now || now - due >= MS / 2)
				fail_msg("queue %zu item %u due %llu released "
					 "at %llu",
					 r.q[k], r.id[k],
					 (unsigned long long)due,
					 (unsigned long long)now);
		}
	}
	assert_int_equal(r.n, 60);
	for (size_t q = 0; q < 3; q++) {
		uint32_t want = 0;
		for (size_t k = 0; k < r.n; k++)
			if (r.q[k] == q && r.id[k] != want++)
				fail_msg("queue %zu out of order at %zu", q, k);
		assert_int_equal(want, 20);
	}
	delayq_close(&dq);
}

static void test_full_queue_drops_and_recovers(void **state)
{
	struct delayq dq;
	uint64_t d[2] = {10 * MS, 10 * MS};
	struct released r = {0};

	assert_int_equal(delayq_init(&dq, d, 2, 4), DELAYQ_OK);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(delayq_push(&dq, 0, i, i), DELAYQ_OK);
	assert_int_equal(delayq_push(&dq, 0, 99, 5), DELAYQ_FULL);
	assert_int_equal(delayq_push(&dq, 0, 98, 6), DELAYQ_FULL);
	assert_int_equal(dq.queues[0].stats.dropped, 2);
	/* the other queue is not affected */
	assert_int_equal(delayq_push(&dq, 1, 50, 6), DELAYQ_OK);
	assert_int_equal(dq.queues[0].stats.held_max, 4);
	/* drain two, then the ring wraps around */
	assert_int_equal(delayq_release(&dq, 10 * MS + 1, record, &r), 2);
	assert_int_equal(delayq_push(&dq, 0, 4, 10 * MS + 2), DELAYQ_OK);
	assert_int_equal(delayq_push(&dq, 0, 5, 10 * MS + 3), DELAYQ_OK);
	assert_int_equal(delayq_push(&dq, 0, 6, 10 * MS + 4), DELAYQ_FULL);
	assert_int_equal(delayq_release(&dq, 30 * MS, record, &r), 5);
	assert_int_equal(r.n, 7);
	{
		uint32_t want0[] = {0, 1, 2, 3, 4, 5};
		size_t j = 0;
		for (size_t k = 0; k < r.n; k++) {
			if (r.q[k] == 1) {
				assert_int_equal(r.id[k], 50);
				continue;
			}
			assert_int_equal(r.id[k], want0[j++]);
		}
		assert_int_equal(j, 6);
	}
	assert_int_equal(dq.queues[0].stats.dropped, 3);
	delayq_close(&dq);
}

/* What ombra-netdelay does on SIGTERM: release everything at once. */
static void test_release_all_and_stop(void **state)
{
	struct delayq dq;
	uint64_t d[2] = {1000 * MS, 5 * MS};
	struct released r = {0};

	assert_int_equal(delayq_init(&dq, d, 2, 16), DELAYQ_OK);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(delayq_push(&dq, i % 2, i, 0), DELAYQ_OK);
	r.stop_after = 3;
	assert_int_equal(delayq_release(&dq, DELAYQ_NEVER - 1, record, &r), 3);
	/* the 5 ms queue is due first */
	assert_int_equal(r.q[0], 1);
	assert_int_equal(r.id[0], 1);
	r.stop_after = 0;
	assert_int_equal(delayq_release(&dq, DELAYQ_NEVER - 1, record, &r), 7);
	assert_int_equal(delayq_held(&dq, 0) + delayq_held(&dq, 1), 0);
	assert_int_equal(delayq_next_due(&dq), DELAYQ_NEVER);
	/* a push near the end of time saturates instead of wrapping */
	assert_int_equal(delayq_push(&dq, 0, 77, UINT64_MAX - 10), DELAYQ_OK);
	assert_int_equal(delayq_next_due(&dq), UINT64_MAX - 1);
	assert_int_equal(delayq_release(&dq, DELAYQ_NEVER - 1, record, &r), 1);
	delayq_close(&dq);
}

static void test_invalid(void **state)
{
	struct delayq dq;
	uint64_t d = MS;

	assert_int_equal(delayq_init(&dq, &d, 0, 8), DELAYQ_INVAL);
	assert_int_equal(delayq_init(&dq, &d, 1, 0), DELAYQ_INVAL);
	assert_int_equal(delayq_init(&dq, &d, 1, 1), DELAYQ_OK);
	assert_int_equal(delayq_push(&dq, 1, 0, 0), DELAYQ_INVAL);
	assert_int_equal(delayq_held(&dq, 5), 0);
	delayq_close(&dq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_queue_exact_delay),
	    cmocka_unit_test(test_interleaved_queues_in_deadline_order),
	    cmocka_unit_test(test_full_queue_drops_and_recovers),
	    cmocka_unit_test(test_release_all_and_stop),
	    cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
