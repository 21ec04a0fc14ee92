/* test_stored_logic.c: the pure parts of ombra-stored: version and
 * sequence assignment, range validation of StoreService requests, the
 * unaligned-write merge, the request-id LRU, the command line, and the
 * shard-map conversion.  Fails (cmocka) naming the case that disagrees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "options.h"
#include "segstore.h"
#include "shardmap.h"
#include "wlogic.h"

#define SEG (64u * 1024u)

/* ------------------------------------------------ versions */

static void test_next_seq(void **state)
{
	uint64_t v;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	assert_int_equal(wl_next_seq(0, 1), 1);
	assert_int_equal(wl_version(3, 41, &v, errmsg), 0);
	assert_int_equal(v, (UINT64_C(3) << 40) | 41);
	/* Same epoch: continue after the highest sequence. */
	assert_int_equal(wl_next_seq(v, 3), 42);
	/* Newer epoch (after a promotion): start again at 1. */
	assert_int_equal(wl_next_seq(v, 4), 1);
	/* An older epoch than stored cannot continue its sequence either. */
	assert_int_equal(wl_next_seq(v, 2), 1);
	/* A new epoch's versions are higher than any of the old one's. */
	uint64_t v2;
	assert_int_equal(wl_version(4, 1, &v2, errmsg), 0);
	assert_true(v2 > v);
}

static void test_version_bounds(void **state)
{
	uint64_t v = 0;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	assert_int_equal(wl_version(0, 1, &v, errmsg), OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "epoch"));
	assert_int_equal(wl_version(1u << 24, 1, &v, errmsg), OMBRA_EINVAL);
	assert_int_equal(wl_version(1, 0, &v, errmsg), OMBRA_EINVAL);
	assert_int_equal(wl_version(1, UINT64_C(1) << 40, &v, errmsg),
			 OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "sequence"));
	assert_int_equal(
	    wl_version((1u << 24) - 1, (UINT64_C(1) << 40) - 1, &v, errmsg), 0);
	assert_int_equal(v, UINT64_MAX);
}

/* ------------------------------------------------ ranges */

struct range_row {
	uint64_t seg, vol_size, off, len;
	bool aligned;
	int rv;
	uint64_t aoff, alen;
	bool head, tail;
};

static void test_ranges(void **state)
{
	static const struct range_row rows[] = {
	    /* aligned, whole blocks */
	    {0, 0, 0, 4096, true, 0, 0, 4096, false, false},
	    {1, 0, SEG, SEG, true, 0, SEG, SEG, false, false},
	    {1, 0, SEG + 8192, 4096, false, 0, SEG + 8192, 4096, false, false},
	    /* unaligned head, tail, inside one block */
	    {0, 0, 100, 4096, false, 0, 0, 8192, true, true},
	    {0, 0, 4096, 10, false, 0, 4096, 4096, false, true},
	    {0, 0, 4100, 10, false, 0, 4096, 4096, true, true},
	    {0, 0, SEG - 10, 10, false, 0, SEG - 4096, 4096, true, false},
	    /* errors */
	    {0, 0, 0, 0, false, OMBRA_EINVAL, 0, 0, false, false},
	    {0, 0, 100, 4096, true, OMBRA_EINVAL, 0, 0, false, false},
	    {0, 0, 0, 100, true, OMBRA_EINVAL, 0, 0, false, false},
	    {0, 0, SEG - 100, 200, false, OMBRA_EINVAL, 0, 0, false, false},
	    {1, 0, 0, 4096, true, OMBRA_EINVAL, 0, 0, false, false},
	    {0, 0, UINT64_MAX - 10, 20, false, OMBRA_EINVAL, 0, 0, false,
	     false},
	    /* volume size limits the last segment */
	    {0, 8192, 4096, 4096, true, 0, 4096, 4096, false, false},
	    {0, 8192, 8192, 4096, true, OMBRA_EINVAL, 0, 0, false, false},
	};
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct range_row *w = &rows[i];
		struct wl_range r;
		int rv;

		errmsg[0] = '\0';
		rv = wl_check_range(w->seg, SEG, w->vol_size, w->off, w->len,
				    w->aligned, &r, errmsg);
		if (rv != w->rv) {
			fail_msg("row %zu: rv %d, want %d (%s)", i, rv, w->rv,
				 errmsg);
		}
		if (rv != 0) {
			assert_true(errmsg[0] != '\0');
			continue;
		}
		if (r.aoff != w->aoff || r.alen != w->alen ||
		    r.head_partial != w->head || r.tail_partial != w->tail) {
			fail_msg("row %zu: aoff %llu alen %llu head %d tail %d",
				 i, (unsigned long long)r.aoff,
				 (unsigned long long)r.alen, r.head_partial,
				 r.tail_partial);
		}
		assert_int_equal(r.first_block, r.aoff / 4096);
		assert_int_equal(r.n_blocks, r.alen / 4096);
	}
}

static void test_bad_segment_size(void **state)
{
	struct wl_range r;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	assert_int_equal(
	    wl_check_range(0, 3 * 4096, 0, 0, 4096, true, &r, errmsg),
	    OMBRA_EINVAL);
	assert_non_null(strstr(errmsg, "segment size"));
	assert_int_equal(
	    wl_check_range(0, 8u << 20, 0, 0, 4096, true, &r, errmsg),
	    OMBRA_EINVAL);
	assert_int_equal(wl_check_range(UINT64_C(1) << 50, SEG, 0, 0, 4096,
					true, &r, errmsg),
			 OMBRA_EINVAL);
}

static void test_merge(void **state)
{
	struct wl_range r;
	unsigned char buf[8192];
	unsigned char data[5000];
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	assert_int_equal(
	    wl_check_range(0, SEG, 0, 4096 + 3000, 5000, false, &r, errmsg), 0);
	assert_int_equal(r.aoff, 4096);
	assert_int_equal(r.alen, 8192);
	memset(buf, 0xAA, sizeof(buf)); /* the old head and tail blocks */
	memset(data, 0x55, sizeof(data));
	wl_merge(&r, buf, data);
	for (size_t i = 0; i < sizeof(buf); i++) {
		unsigned char want = (i >= 3000 && i < 8000) ? 0x55 : 0xAA;

		if (buf[i] != want) {
			fail_msg("byte %zu: %#x, want %#x", i, buf[i], want);
		}
	}
	wl_merge(&r, buf, NULL); /* zero write */
	for (size_t i = 3000; i < 8000; i++) {
		assert_int_equal(buf[i], 0);
	}
	assert_int_equal(buf[2999], 0xAA);
	assert_int_equal(buf[8000], 0xAA);
}

/* ------------------------------------------------ LRU */

static void test_lru(void **state)
{
	struct wl_lru *l = wl_lru_create(3);
	char longid[WL_LRU_ID_MAX + 2];

	(void)state;
	assert_non_null(l);
	assert_int_equal(wl_lru_get(l, "a"), 0);
	wl_lru_put(l, "a", 1);
	wl_lru_put(l, "b", 2);
	wl_lru_put(l, "c", 3);
	assert_int_equal(wl_lru_count(l), 3);
	assert_int_equal(wl_lru_get(l, "a"), 1); /* a is now most recent */
	wl_lru_put(l, "d", 4);			 /* evicts b, the oldest */
	assert_int_equal(wl_lru_get(l, "b"), 0);
	assert_int_equal(wl_lru_get(l, "a"), 1);
	assert_int_equal(wl_lru_get(l, "c"), 3);
	assert_int_equal(wl_lru_get(l, "d"), 4);
	assert_int_equal(wl_lru_count(l), 3);
	wl_lru_put(l, "c", 30); /* replace */
	assert_int_equal(wl_lru_get(l, "c"), 30);
	assert_int_equal(wl_lru_count(l), 3);
	/* Ignored: empty id, version 0, too long. */
	wl_lru_put(l, "", 5);
	wl_lru_put(l, "e", 0);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	wl_lru_put(l, longid, 6);
	assert_int_equal(wl_lru_get(l, ""), 0);
	assert_int_equal(wl_lru_get(l, "e"), 0);
	assert_int_equal(wl_lru_get(l, longid), 0);
	assert_int_equal(wl_lru_get(l, NULL), 0);
	assert_int_equal(wl_lru_count(l), 3);
	wl_lru_destroy(l);
	assert_null(wl_lru_create(0));
}

static void test_lru_many(void **state)
{
	struct wl_lru *l = wl_lru_create(100);
	char id[32];

	(void)state;
	for (int i = 1; i <= 1000; i++) {
		snprintf(id, sizeof(id), "req-%d", i);
		wl_lru_put(l, id, (uint64_t)i);
	}
	assert_int_equal(wl_lru_count(l), 100);
	for (int i = 1; i <= 1000; i++) {
		snprintf(id, sizeof(id), "req-%d", i);
		assert_int_equal(wl_lru_get(l, id), i > 900 ? (uint64_t)i : 0);
	}
	wl_lru_destroy(l);
}

/* ------------------------------------------------ command line */

static int parse(struct stored_config *cfg, char *errmsg, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;
	int rv;

	argv[argc++] = "ombra-stored";
	va_start(ap, errmsg);
	for (char *a; (a = va_arg(ap, char *)) != NULL;) {
		argv[argc++] = a;
	}
	va_end(ap);
	argv[argc] = NULL;
	rv = stored_config_parse(cfg, argc, argv, errmsg);
	return rv;
}

#define REQ                                                                    \
	"--name", "n1", "--region", "r1", "--listen", "127.0.0.1:7000",        \
	    "--metad", "127.0.0.1:9000", "--data-dir", "/tmp/x"

static void test_config_ok(void **state)
{
	struct stored_config cfg;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	assert_int_equal(parse(&cfg, errmsg, REQ, NULL), 0);
	assert_string_equal(cfg.name, "n1");
	assert_int_equal(cfg.scrub_rate, STORED_DEFAULT_SCRUB_RATE);
	assert_int_equal(cfg.n_tiers, 0);
	assert_null(cfg.http);
	stored_config_free(&cfg);

	assert_int_equal(parse(&cfg, errmsg, REQ, "--tier", "fast:/a:10GiB",
			       "--tier", "slow:/b/c", "--scrub-rate", "0",
			       "--http", "127.0.0.1:0", "--log-level", "debug",
			       NULL),
			 0);
	assert_int_equal(cfg.n_tiers, 2);
	assert_string_equal(cfg.tiers[0].name, "fast");
	assert_string_equal(cfg.tiers[0].dir, "/a");
	assert_int_equal(cfg.tiers[0].capacity, UINT64_C(10) << 30);
	assert_string_equal(cfg.tiers[1].dir, "/b/c");
	assert_int_equal(cfg.tiers[1].capacity, 0);
	assert_int_equal(cfg.scrub_rate, 0);
	assert_int_equal(cfg.log_level, LOG_DEBUG);
	assert_int_equal(stored_config_finish(&cfg, errmsg), 0);
	assert_true(cfg.tiers[1].capacity > 0);
	stored_config_free(&cfg);

	assert_int_equal(parse(&cfg, errmsg, "--help", NULL), 0);
	assert_true(cfg.help);
	stored_config_free(&cfg);
}

static void test_config_default_tier(void **state)
{
	struct stored_config cfg;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	assert_int_equal(parse(&cfg, errmsg, REQ, NULL), 0);
	assert_int_equal(stored_config_finish(&cfg, errmsg), 0);
	assert_int_equal(cfg.n_tiers, 1);
	assert_string_equal(cfg.tiers[0].name, "fast");
	assert_string_equal(cfg.tiers[0].dir, "/tmp/x/fast");
	assert_true(cfg.tiers[0].capacity > 0);
	stored_config_free(&cfg);
}

static void test_config_bad(void **state)
{
	static const struct {
		const char *a, *b, *want;
	} rows[] = {
	    {"--tier", "fast", "NAME:DIR"},
	    {"--tier", ":/a", "NAME:DIR"},
	    {"--tier", "fa st:/a", "[A-Za-z0-9_.-]"},
	    {"--tier", "fast:/a:lots", "bad size"},
	    {"--tier", "fast::10GiB", "empty directory"},
	    {"--scrub-rate", "-1", "--scrub-rate"},
	    {"--scrub-rate", "fast", "--scrub-rate"},
	    {"--listen", "nohost", "HOST:PORT"},
	    {"--listen", "h:99999", "bad port"},
	    {"--http", "h:", "bad port"},
	    {"--log-level", "loud", "--log-level"},
	    {"--metad", "a:1,,b:2", "HOST:PORT[,HOST:PORT...]"},
	    {"--metad", "a:1,b", "expected HOST:PORT"},
	    {"--tls-ca", "/ca.pem", "TLS needs"},
	    {"--bogus", "x", "unknown option"},
	};
	struct stored_config cfg;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		errmsg[0] = '\0';
		if (parse(&cfg, errmsg, REQ, rows[i].a, rows[i].b, NULL) !=
			OMBRA_ECONFIG ||
		    strstr(errmsg, rows[i].want) == NULL) {
			fail_msg("%s %s: '%s', want '%s'", rows[i].a, rows[i].b,
				 errmsg, rows[i].want);
		}
		stored_config_free(&cfg);
	}
	/* Missing required flags, a duplicate tier, a stray argument. */
	assert_int_equal(parse(&cfg, errmsg, "--name", "x", NULL),
			 OMBRA_ECONFIG);
	assert_non_null(strstr(errmsg, "--region is required"));
	stored_config_free(&cfg);
	assert_int_equal(
	    parse(&cfg, errmsg, REQ, "--tier", "a:/x", "--tier", "a:/y", NULL),
	    OMBRA_ECONFIG);
	assert_non_null(strstr(errmsg, "twice"));
	stored_config_free(&cfg);
	assert_int_equal(parse(&cfg, errmsg, REQ, "stray", NULL),
			 OMBRA_ECONFIG);
	assert_non_null(strstr(errmsg, "stray"));
	stored_config_free(&cfg);
	assert_int_equal(parse(&cfg, errmsg, REQ, "--name", NULL),
			 OMBRA_ECONFIG);
	assert_non_null(strstr(errmsg, "missing value"));
	stored_config_free(&cfg);
}

/* ------------------------------------------------ shard map */

static void test_shardmap(void **state)
{
	Ombra__V1__Volume vol = OMBRA__V1__VOLUME__INIT;
	Ombra__V1__SegmentPlacement p0 = OMBRA__V1__SEGMENT_PLACEMENT__INIT;
	Ombra__V1__SegmentPlacement p1 = OMBRA__V1__SEGMENT_PLACEMENT__INIT;
	Ombra__V1__SegmentPlacement *segs[] = {&p0, &p1};
	Ombra__V1__Node n1 = OMBRA__V1__NODE__INIT;
	Ombra__V1__Node n2 = OMBRA__V1__NODE__INIT;
	Ombra__V1__Node *nodes[] = {&n1, &n2};
	Ombra__V1__GetVolumeShardingInfoResponse resp =
	    OMBRA__V1__GET_VOLUME_SHARDING_INFO_RESPONSE__INIT;
	uint64_t rep0[] = {2}, resync1[] = {1};
	uint64_t too_many[SM_MAX_COPIES + 1] = {0};
	struct shardmap cache = {0};
	struct sm_volume *v = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];

	(void)state;
	vol.id = 7;
	vol.name = "v";
	vol.size_bytes = 2 * SEG - 4096; /* last segment partial */
	vol.segment_size_bytes = SEG;
	p0.index = 0;
	p0.primary_node_id = 1;
	p0.replica_node_ids = rep0;
	p0.n_replica_node_ids = 1;
	p0.lease_epoch = 3;
	p1.index = 1;
	p1.primary_node_id = 2;
	p1.resync_node_ids = resync1;
	p1.n_resync_node_ids = 1;
	n1.id = 1;
	n1.address = "h:1";
	n1.state = OMBRA__V1__NODE_STATE__NODE_UP;
	n2.id = 2;
	n2.address = "h:2";
	resp.volume = &vol;
	resp.segments = segs;
	resp.n_segments = 2;
	resp.nodes = nodes;
	resp.n_nodes = 2;

	assert_int_equal(sm_volume_new(&resp, &v, errmsg), 0);
	assert_int_equal(sm_volume_add_page(v, &resp, errmsg), 0);
	assert_int_equal(v->n_segs, 2);
	assert_int_equal(v->segs[0].epoch, 3);
	assert_int_equal(v->segs[1].epoch, 1); /* 0 from metad = 1 */
	assert_true(sm_seg_in_sync(&v->segs[0], 1));
	assert_true(sm_seg_in_sync(&v->segs[0], 2));
	assert_false(sm_seg_in_sync(&v->segs[1], 1)); /* only re-syncing */
	assert_int_equal(v->segs[1].n_resync, 1);
	assert_string_equal(sm_volume_node(v, 2)->address, "h:2");
	assert_null(sm_volume_node(v, 3));

	/* Bad placements are refused, the old one kept. */
	p1.index = 2;
	assert_int_equal(sm_volume_set_segment(v, &p1, errmsg), OMBRA_EPROTO);
	p1.index = 1;
	p1.replica_node_ids = too_many;
	p1.n_replica_node_ids = SM_MAX_COPIES + 1;
	assert_int_equal(sm_volume_set_segment(v, &p1, errmsg), OMBRA_EPROTO);
	p1.n_replica_node_ids = 0;
	p1.primary_node_id = UINT64_C(1) << 33;
	assert_int_equal(sm_volume_set_segment(v, &p1, errmsg), OMBRA_EPROTO);
	assert_int_equal(v->segs[1].primary, 2);

	/* Cache: put replaces by id, remove frees. */
	sm_put(&cache, v);
	assert_ptr_equal(sm_find(&cache, 7), v);
	v = NULL;
	assert_int_equal(sm_volume_new(&resp, &v, errmsg), 0);
	sm_put(&cache, v);
	assert_ptr_equal(sm_find(&cache, 7), v);
	assert_null(cache.head->next);
	sm_remove(&cache, 7);
	assert_null(sm_find(&cache, 7));
	sm_clear(&cache);

	resp.volume = NULL;
	assert_int_equal(sm_volume_new(&resp, &v, errmsg), OMBRA_EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_next_seq),
	    cmocka_unit_test(test_version_bounds),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_bad_segment_size),
	    cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_lru),
	    cmocka_unit_test(test_lru_many),
	    cmocka_unit_test(test_config_ok),
	    cmocka_unit_test(test_config_default_tier),
	    cmocka_unit_test(test_config_bad),
	    cmocka_unit_test(test_shardmap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
