/* test_placement.c: unit tests of metad/placement.c (weighted rendezvous
 * hashing): stability, balance by weight, minimal movement when a node is
 * added, distinct replicas, and weight-0 nodes never chosen.  Fails
 * through cmocka assertions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metad/placement.h"

#define SEGMENTS 200000u

static void test_stable(void **state)
{
	const struct placement_node nodes[3] = {{1, 100}, {2, 100}, {3, 300}};
	const struct placement_node reordered[3] = {
	    {3, 300}, {1, 100}, {2, 100}};
	uint64_t a[3];
	uint64_t b[3];
	uint64_t c[3];
	uint64_t s;

	(void)state;
	for (s = 0; s < 1000; s++) {
		assert_int_equal(placement_pick(nodes, 3, 7, s, 3, a), 3);
		assert_int_equal(placement_pick(nodes, 3, 7, s, 3, b), 3);
		/* Input order does not matter. */
		assert_int_equal(placement_pick(reordered, 3, 7, s, 3, c), 3);
		assert_memory_equal(a, b, sizeof(a));
		assert_memory_equal(a, c, sizeof(a));
		assert_true(placement_score(7, s, &nodes[0]) ==
			    placement_score(7, s, &nodes[0]));
	}
	/* Different volumes hash differently: not every segment agrees. */
	{
		unsigned differ = 0;

		for (s = 0; s < 1000; s++) {
			placement_pick(nodes, 3, 7, s, 1, a);
			placement_pick(nodes, 3, 8, s, 1, b);
			differ += a[0] != b[0];
		}
		assert_true(differ > 300);
	}
}

static void test_balanced_by_weight(void **state)
{
	const struct placement_node nodes[4] = {
	    {11, 1}, {12, 1}, {13, 2}, {14, 4}};
	const double share[4] = {1.0 / 8, 1.0 / 8, 2.0 / 8, 4.0 / 8};
	unsigned counts[4] = {0, 0, 0, 0};
	uint64_t out[1];
	uint64_t s;
	int i;

	(void)state;
	for (s = 0; s < SEGMENTS; s++) {
		assert_int_equal(placement_pick(nodes, 4, 99, s, 1, out), 1);
		for (i = 0; i < 4; i++) {
			if (out[0] == nodes[i].id)
				counts[i]++;
		}
	}
	for (i = 0; i < 4; i++) {
		double expect = share[i] * SEGMENTS;
		double diff = counts[i] > expect ? counts[i] - expect
						 : expect - counts[i];

		print_message("node %d weight %d: %u primaries (expect %.0f)\n",
			      i, (int)nodes[i].weight, counts[i], expect);
		assert_true(diff <= 0.10 * expect);
	}
}

static void test_minimal_movement(void **state)
{
	const struct placement_node before[4] = {
	    {21, 1000}, {22, 1000}, {23, 2000}, {24, 4000}};
	struct placement_node after[5];
	uint64_t a[1];
	uint64_t b[1];
	unsigned moved = 0;
	unsigned won = 0;
	uint64_t s;

	(void)state;
	memcpy(after, before, sizeof(before));
	after[4].id = 25;
	after[4].weight = 2000;
	for (s = 0; s < SEGMENTS; s++) {
		placement_pick(before, 4, 5, s, 1, a);
		placement_pick(after, 5, 5, s, 1, b);
		if (b[0] == 25)
			won++;
		if (a[0] != b[0]) {
			moved++;
			/* Only the added node takes segments. */
			assert_int_equal(b[0], 25);
		}
	}
	/* Exactly the segments the new node wins have moved. */
	assert_int_equal(moved, won);
	/* And it wins about its share, 2000 / 10000. */
	assert_true(won > SEGMENTS * 0.18 && won < SEGMENTS * 0.22);
}

static void test_distinct_replicas(void **state)
{
	const struct placement_node nodes[5] = {
	    {1, 10}, {2, 20}, {3, 30}, {4, 40}, {5, 50}};
	uint64_t out[8];
	uint64_t s;
	size_t i;
	size_t j;

	(void)state;
	for (s = 0; s < 5000; s++) {
		size_t got = placement_pick(nodes, 5, 3, s, 3, out);

		assert_int_equal(got, 3);
		for (i = 0; i < got; i++) {
			for (j = 0; j < i; j++)
				assert_true(out[i] != out[j]);
		}
		/* Descending score: out[0] is the best. */
		for (i = 1; i < got; i++) {
			const struct placement_node *p = NULL;
			const struct placement_node *q = NULL;

			for (j = 0; j < 5; j++) {
				if (nodes[j].id == out[i - 1])
					p = &nodes[j];
				if (nodes[j].id == out[i])
					q = &nodes[j];
			}
			assert_true(placement_score(3, s, p) >=
				    placement_score(3, s, q));
		}
		/* The first replicas of a larger pick are the smaller pick. */
		{
			uint64_t two[2];

			assert_int_equal(placement_pick(nodes, 5, 3, s, 2, two),
					 2);
			assert_memory_equal(two, out, sizeof(two));
		}
	}
	/* More replicas than nodes: every node once. */
	assert_int_equal(placement_pick(nodes, 5, 3, 1, 8, out), 5);
	assert_int_equal(placement_pick(nodes, 0, 3, 1, 3, out), 0);
	assert_int_equal(placement_pick(NULL, 5, 3, 1, 3, out), 0);
}

static void test_weight_zero_never_chosen(void **state)
{
	const struct placement_node nodes[4] = {
	    {1, 0}, {2, 100}, {3, 0}, {4, 100}};
	const struct placement_node none[2] = {{1, 0}, {2, 0}};
	uint64_t out[4];
	uint64_t s;
	size_t i;

	(void)state;
	for (s = 0; s < 20000; s++) {
		size_t got = placement_pick(nodes, 4, 1, s, 4, out);

		assert_int_equal(got, 2);
		for (i = 0; i < got; i++)
			assert_true(out[i] == 2 || out[i] == 4);
	}
	assert_true(placement_score(1, 1, &nodes[0]) == 0.0);
	assert_true(placement_score(1, 1, &nodes[1]) > 0.0);
	assert_int_equal(placement_pick(none, 2, 1, 1, 2, out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stable),
	    cmocka_unit_test(test_balanced_by_weight),
	    cmocka_unit_test(test_minimal_movement),
	    cmocka_unit_test(test_distinct_replicas),
	    cmocka_unit_test(test_weight_zero_never_chosen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
