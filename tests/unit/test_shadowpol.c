/* test_shadowpol.c: the pure shadow policy decision (metad/shadowpol.c)
 * and the leader's access table (metad/access.c): a hot segment gets a
 * shadow on the region's rendezvous node, an idle one is removed (counting
 * from the new leader's start too), the budget and max_shadows are never
 * exceeded, the home region is never chosen, node choice is deterministic
 * and skips nodes holding a copy; decayed rates, half-life, Space-Saving
 * bound and lower-bound counts of the access table. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "metad/access.h"
#include "metad/shadowpol.h"

#define MIB (1024ull * 1024ull)
#define NOW 1000000000ull

static const struct placement_node r2_nodes[] = {
    {.id = 4, .weight = 1ull << 40},
    {.id = 5, .weight = 1ull << 40},
    {.id = 6, .weight = 1ull << 40},
};
static const struct placement_node r1_nodes[] = {
    {.id = 1, .weight = 1ull << 40},
};
static const struct shadowpol_region regions[] = {
    {.name = "r1", .nodes = r1_nodes, .n_nodes = 1},
    {.name = "r2", .nodes = r2_nodes, .n_nodes = 3},
};

/* Volume 7 homed in r1, 16 segments of 1 MiB; policy: defaults but idle
 * 10 s, create at 5 reads/s. */
static void input_init(struct shadowpol_input *in, Ombra__V1__ShadowPolicy *pol)
{
	memset(in, 0, sizeof(*in));
	pol->idle_ms = 10000;
	pol->create_reads_per_s = 5;
	shadowpol_effective(pol, &in->policy);
	in->volume_id = 7;
	in->home_region = "r1";
	in->segment_size = MIB;
	in->segment_count = 16;
	in->regions = regions;
	in->n_regions = 2;
	in->now_ms = NOW;
	in->since_ms = NOW - 3600000;
	in->max_adds = 64;
}

static void test_check(void **state)
{
	Ombra__V1__ShadowPolicy p = OMBRA__V1__SHADOW_POLICY__INIT;
	char *bad[] = {"-x"};
	char errmsg[OMBRA_ERRMSG_LEN];
	struct shadowpol_params pp;

	(void)state;
	assert_int_equal(shadowpol_check(&p, errmsg), 0);
	shadowpol_effective(&p, &pp);
	assert_int_equal(pp.max_shadows, 1);
	assert_true(pp.create_reads_per_s == 1.0);
	assert_int_equal(pp.idle_ms, 300000);
	assert_int_equal(pp.fill_bytes_per_s, 64 * MIB);
	p.create_reads_per_s = NAN;
	assert_int_equal(shadowpol_check(&p, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "create_reads_per_s"));
	p.create_reads_per_s = -1;
	assert_int_equal(shadowpol_check(&p, errmsg), OMBRA_EINVAL);
	p.create_reads_per_s = 0;
	p.fill_bytes_per_s = 1;
	assert_int_equal(shadowpol_check(&p, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "fill_bytes_per_s"));
	p.fill_bytes_per_s = 0;
	p.n_regions = 1;
	p.regions = bad;
	assert_int_equal(shadowpol_check(&p, errmsg), OMBRA_EINVAL);
	p.n_regions = 0;
	assert_false(shadowpol_region_allowed(&pp, "r1", "r1"));
	assert_true(shadowpol_region_allowed(&pp, "r1", "r2"));
}

static void test_hot_segment_gets_shadow(void **state)
{
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	struct shadowpol_access acc[] = {
	    {.segment = 3,
	     .region = "r2",
	     .reads_per_s = 50,
	     .last_read_ms = NOW - 100},
	    {.segment = 4,
	     .region = "r2",
	     .reads_per_s = 4.9,
	     .last_read_ms = NOW - 100},
	};
	struct shadowpol_change *out = NULL, *again = NULL;
	struct shadowpol_input in;
	uint64_t expect[3];
	size_t n = 0, n2 = 0;

	(void)state;
	input_init(&in, &pol);
	in.access = acc;
	in.n_access = 2;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	assert_int_equal(n, 1); /* segment 4 is below the threshold */
	assert_false(out[0].remove);
	assert_int_equal(out[0].segment, 3);
	assert_string_equal(out[0].region, "r2");
	/* The rendezvous winner of (7, 3) among r2's nodes. */
	assert_int_equal(placement_pick(r2_nodes, 3, 7, 3, 3, expect), 3);
	assert_int_equal(out[0].node_id, expect[0]);
	/* Deterministic. */
	assert_int_equal(shadowpol_decide(&in, &again, &n2), 0);
	assert_int_equal(n2, 1);
	assert_int_equal(again[0].node_id, out[0].node_id);
	free(again);
	free(out);
	/* Reads stopped idle_ms ago: the decayed rate is still above the
	 * threshold, but no shadow is made (it would be idle at birth). */
	acc[0].last_read_ms = NOW - 10000;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	assert_int_equal(n, 0);
	assert_null(out);
	acc[0].last_read_ms = NOW - 100;
	/* max_adds 0: nothing. */
	in.max_adds = 0;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	assert_int_equal(n, 0);
	assert_null(out);
}

static void test_home_region_never_chosen(void **state)
{
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	struct shadowpol_access acc[] = {
	    {.segment = 1,
	     .region = "r1",
	     .reads_per_s = 1000,
	     .last_read_ms = NOW},
	};
	struct shadowpol_shadow sh[] = {
	    {.segment = 2, .node_id = 1, .region = "r1", .added_ms = NOW},
	};
	struct shadowpol_change *out = NULL;
	struct shadowpol_input in;
	size_t n = 0;

	(void)state;
	input_init(&in, &pol);
	in.access = acc;
	in.n_access = 1;
	in.shadows = sh;
	in.n_shadows = 1;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	/* No add in r1; a (stale) shadow there is removed. */
	assert_int_equal(n, 1);
	assert_true(out[0].remove);
	assert_int_equal(out[0].node_id, 1);
	free(out);
}

static void test_skips_holders(void **state)
{
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	struct shadowpol_access acc[] = {
	    {.segment = 3,
	     .region = "r2",
	     .reads_per_s = 50,
	     .last_read_ms = NOW},
	};
	uint64_t order[3];
	uint64_t held[1];
	struct shadowpol_holders h = {.segment = 3, .node_ids = held, .n = 1};
	struct shadowpol_change *out = NULL;
	struct shadowpol_input in;
	size_t n = 0;

	(void)state;
	input_init(&in, &pol);
	in.access = acc;
	in.n_access = 1;
	placement_pick(r2_nodes, 3, 7, 3, 3, order);
	/* The winner already holds a copy (e.g. a promoted primary). */
	held[0] = order[0];
	in.holders = &h;
	in.n_holders = 1;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].node_id, order[1]);
	free(out);
}

static void test_idle_removed(void **state)
{
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	struct shadowpol_access acc[] = {
	    {.segment = 1,
	     .region = "r2",
	     .reads_per_s = 0.2,
	     .last_read_ms = NOW - 9000},
	    {.segment = 2,
	     .region = "r2",
	     .reads_per_s = 0.1,
	     .last_read_ms = NOW - 10000},
	};
	struct shadowpol_shadow sh[] = {
	    {.segment = 1, .node_id = 4, .region = "r2", .added_ms = 5},
	    {.segment = 2, .node_id = 5, .region = "r2", .added_ms = 5},
	    /* never read, but added 5 s ago */
	    {.segment = 3,
	     .node_id = 6,
	     .region = "r2",
	     .added_ms = NOW - 5000},
	    /* never read, added long ago */
	    {.segment = 4, .node_id = 6, .region = "r2", .added_ms = 5},
	};
	struct shadowpol_change *out = NULL;
	struct shadowpol_input in;
	size_t n = 0;

	(void)state;
	input_init(&in, &pol);
	in.access = acc;
	in.n_access = 2;
	in.shadows = sh;
	in.n_shadows = 4;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	assert_int_equal(n, 2);
	assert_true(out[0].remove && out[0].segment == 2 &&
		    out[0].node_id == 5);
	assert_true(out[1].remove && out[1].segment == 4);
	free(out);
	/* A leader that started measuring 2 s ago removes nothing yet. */
	in.since_ms = NOW - 2000;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	assert_int_equal(n, 0);
}

static void test_budget_never_exceeded(void **state)
{
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	struct shadowpol_access acc[8];
	struct shadowpol_shadow sh[] = {
	    {.segment = 0, .node_id = 4, .region = "r2", .added_ms = NOW},
	};
	struct shadowpol_change *out = NULL;
	struct shadowpol_input in;
	size_t n = 0, i, adds = 0;

	(void)state;
	for (i = 0; i < 8; i++) {
		acc[i].segment = i;
		acc[i].region = "r2";
		acc[i].reads_per_s = 10.0 + (double)i;
		acc[i].last_read_ms = NOW;
	}
	pol.budget_bytes = 3 * MIB + 100; /* 3 shadows */
	input_init(&in, &pol);
	in.access = acc;
	in.n_access = 8;
	in.shadows = sh;
	in.n_shadows = 1;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	for (i = 0; i < n; i++) {
		assert_false(out[i].remove);
		adds++;
	}
	assert_int_equal(adds, 2); /* 1 held + 2 = 3 */
	/* The hottest first: segments 7 and 6. */
	assert_int_equal(out[0].segment, 7);
	assert_int_equal(out[1].segment, 6);
	free(out);

	/* A budget lowered below what is held: the coldest go. */
	{
		struct shadowpol_shadow held[] = {
		    {.segment = 1,
		     .node_id = 4,
		     .region = "r2",
		     .added_ms = NOW},
		    {.segment = 5,
		     .node_id = 5,
		     .region = "r2",
		     .added_ms = NOW},
		    {.segment = 3,
		     .node_id = 6,
		     .region = "r2",
		     .added_ms = NOW},
		};

		pol.budget_bytes = MIB;
		input_init(&in, &pol);
		in.access = acc;
		in.n_access = 8;
		in.shadows = held;
		in.n_shadows = 3;
		assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
		assert_int_equal(n, 2);
		assert_true(out[0].remove && out[0].segment == 1);
		assert_true(out[1].remove && out[1].segment == 3);
		free(out);
	}
}

static void test_max_shadows(void **state)
{
	static const struct placement_node r3_nodes[] = {
	    {.id = 8, .weight = 1ull << 40},
	};
	const struct shadowpol_region three[] = {
	    regions[0],
	    regions[1],
	    {.name = "r3", .nodes = r3_nodes, .n_nodes = 1}};
	Ombra__V1__ShadowPolicy pol = OMBRA__V1__SHADOW_POLICY__INIT;
	struct shadowpol_access acc[] = {
	    {.segment = 2,
	     .region = "r2",
	     .reads_per_s = 30,
	     .last_read_ms = NOW},
	    {.segment = 2,
	     .region = "r3",
	     .reads_per_s = 40,
	     .last_read_ms = NOW},
	};
	struct shadowpol_shadow sh[] = {
	    {.segment = 2, .node_id = 4, .region = "r2", .added_ms = NOW},
	    {.segment = 2, .node_id = 8, .region = "r3", .added_ms = NOW},
	};
	struct shadowpol_change *out = NULL;
	struct shadowpol_input in;
	size_t n = 0;

	(void)state;
	/* Default max 1: the r3 shadow (hotter) wins, no second add. */
	input_init(&in, &pol);
	in.regions = three;
	in.n_regions = 3;
	in.access = acc;
	in.n_access = 2;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].region, "r3");
	assert_int_equal(out[0].node_id, 8);
	free(out);
	/* Both held with max 1: the colder (r2) is removed. */
	in.shadows = sh;
	in.n_shadows = 2;
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	assert_int_equal(n, 1);
	assert_true(out[0].remove && out[0].node_id == 4);
	free(out);
	/* max 2: both kept, nothing to add. */
	pol.max_shadows = 2;
	shadowpol_effective(&pol, &in.policy);
	assert_int_equal(shadowpol_decide(&in, &out, &n), 0);
	assert_int_equal(n, 0);
}

/* ------------------------------------------------------------ access */

static void test_access_rates(void **state)
{
	struct access_table *t = NULL;
	struct access_rate *r = NULL;
	size_t n = 0;
	double steady;
	int i;

	(void)state;
	assert_int_equal(access_create(16, 10000, &t), 0);
	/* 100 reads every 2 s (50/s) for 200 s: the rate converges. */
	for (i = 0; i <= 100; i++)
		assert_int_equal(access_record(t, NOW + (uint64_t)i * 2000,
					       "r2", 7, 3, 100, 10),
				 0);
	assert_int_equal(access_snapshot(t, NOW + 200000, &r, &n), 0);
	assert_int_equal(n, 1);
	steady = r[0].reads_per_s;
	/* Within 10% of 50/s (discrete reports around the mean). */
	assert_true(steady > 45 && steady < 56);
	assert_true(r[0].writes_per_s > 4.5 && r[0].writes_per_s < 5.6);
	assert_int_equal(r[0].last_read_ms, NOW + 200000);
	assert_string_equal(r[0].region, "r2");
	free(r);
	/* One half-life later without reports: half. */
	assert_int_equal(access_snapshot(t, NOW + 210000, &r, &n), 0);
	assert_true(fabs(r[0].reads_per_s - steady / 2) < 0.01 * steady);
	free(r);
	/* Writes only: last_read_ms stays. */
	assert_int_equal(access_record(t, NOW + 220000, "r2", 7, 3, 0, 5), 0);
	assert_int_equal(access_snapshot(t, NOW + 220000, &r, &n), 0);
	assert_int_equal(r[0].last_read_ms, NOW + 200000);
	free(r);
	/* Long silences rescale without losing order or overflowing. */
	assert_int_equal(
	    access_record(t, NOW + 4000000000ull, "r2", 7, 4, 10, 0), 0);
	assert_int_equal(access_snapshot(t, NOW + 4000000000ull, &r, &n), 0);
	assert_int_equal(n, 2);
	assert_true(isfinite(r[1].reads_per_s) && r[1].reads_per_s > 0);
	assert_true(r[0].reads_per_s < 1e-9);
	free(r);
	access_reset(t);
	assert_int_equal(access_size(t), 0);
	access_destroy(t);
}

static void test_access_bounded(void **state)
{
	struct access_table *t = NULL;
	struct access_rate *r = NULL;
	size_t n = 0, i;
	bool hot_seen = false;

	(void)state;
	assert_int_equal(access_create(8, 10000, &t), 0);
	/* A hot key among 1000 one-off cold ones. */
	for (i = 0; i < 1000; i++) {
		assert_int_equal(
		    access_record(t, NOW + i, "r2", 1, 1000 + i, 1, 0), 0);
		if (i % 10 == 0)
			assert_int_equal(
			    access_record(t, NOW + i, "r2", 1, 5, 20, 0), 0);
	}
	assert_int_equal(access_size(t), 8);
	assert_int_equal(access_capacity(t), 8);
	assert_int_equal(access_snapshot(t, NOW + 1000, &r, &n), 0);
	assert_int_equal(n, 8);
	for (i = 0; i < n; i++) {
		if (r[i].segment == 5) {
			hot_seen = true;
			/* Lower bound: never more than what was reported. */
			assert_true(r[i].reads_per_s > 0);
		} else {
			/* A taken-over cold key counts only its own read. */
			assert_true(r[i].reads_per_s < 0.1);
		}
		if (i > 0)
			assert_true(r[i - 1].segment < r[i].segment);
	}
	assert_true(hot_seen);
	free(r);
	/* Region table bound. */
	for (i = 0; i < ACCESS_REGIONS_MAX; i++) {
		char name[16];

		snprintf(name, sizeof(name), "x%zu", i);
		access_record(t, NOW + 2000, name, 1, 1, 1, 0);
	}
	assert_int_equal(access_record(t, NOW + 2000, "one-more", 1, 1, 1, 0),
			 OMBRA_EINVAL);
	access_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check),
	    cmocka_unit_test(test_hot_segment_gets_shadow),
	    cmocka_unit_test(test_home_region_never_chosen),
	    cmocka_unit_test(test_skips_holders),
	    cmocka_unit_test(test_idle_removed),
	    cmocka_unit_test(test_budget_never_exceeded),
	    cmocka_unit_test(test_max_shadows),
	    cmocka_unit_test(test_access_rates),
	    cmocka_unit_test(test_access_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
