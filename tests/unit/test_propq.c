/* test_propq: the propagation queue (proxy/propq.c) without sockets: chain
 * order, batching of consecutive writes (and not across a gap), merged
 * blocks and invalidated partial blocks, crc32c as stored computes it,
 * retries with backoff, drops on FAILED_PRECONDITION, the memory bound and
 * its drop policy (oldest entry of the largest queue), lag counters,
 * whether a propagation is pending for a reader to wait on, and the linger
 * before a chain's first write is sent (and a reader hurrying it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/propagate.h"
#include "stored/crc.h"

#define SEG (1024u * 1024u) /* 1 MiB segments: 256 blocks */
#define MAXB 64

/* The fake transport: batches handed to send, in order. */
struct sent {
	struct propq_batch *b[MAXB];
	unsigned n;
	bool refuse;
};

static int fake_send(void *ctx, struct propq_batch *b)
{
	struct sent *s = ctx;

	if (s->refuse)
		return -1;
	assert_true(s->n < MAXB);
	s->b[s->n++] = b;
	return 0;
}

static struct propq *mkq_linger(struct sent *s, uint64_t max_bytes,
				uint64_t linger_ms)
{
	struct propq_config cfg = {.max_bytes = max_bytes,
				   .max_batch_bytes = 4u << 20,
				   .max_batch_writes = 8,
				   .backoff_min_ms = 50,
				   .backoff_max_ms = 400,
				   .linger_ms = linger_ms};
	struct propq *q = NULL;

	memset(s, 0, sizeof(*s));
	assert_int_equal(propq_create(&cfg, fake_send, s, &q), 0);
	return q;
}

static struct propq *mkq(struct sent *s, uint64_t max_bytes)
{
	return mkq_linger(s, max_bytes, 0);
}

/* A write of len bytes at off (volume bytes) in segment seg of volume 7,
 * filled with byte fill (NULL data for fill < 0: a zero write). */
static void add(struct propq *q, uint64_t seg, uint64_t off, uint64_t len,
		int fill, uint64_t prev, uint64_t ver, const uint64_t *t,
		unsigned nt, uint64_t now)
{
	uint8_t *buf = NULL;
	struct propq_write w = {.volume_id = 7,
				.seg = seg,
				.seg_size = SEG,
				.lease_epoch = 1,
				.primary_node_id = 1,
				.prev_version = prev,
				.version = ver,
				.acked_unix_ms = 1000 + ver,
				.off = off,
				.len = len};

	if (fill >= 0) {
		buf = malloc(len);
		assert_non_null(buf);
		memset(buf, fill, len);
		w.data = buf;
	}
	propq_add(q, &w, t, nt, now);
	free(buf); /* the queue copied it */
}

static const uint64_t T1[] = {101};
static const uint64_t T2[] = {101, 102};

struct tstats {
	struct propq_target_stats s[8];
	unsigned n;
};

static void collect(void *arg, const struct propq_target_stats *s)
{
	struct tstats *t = arg;

	t->s[t->n++] = *s;
}

static struct propq_target_stats stats_of(struct propq *q, uint64_t node)
{
	struct tstats t = {.n = 0};

	propq_targets(q, collect, &t);
	for (unsigned i = 0; i < t.n; i++)
		if (t.s[i].node == node)
			return t.s[i];
	fail_msg("no target %lu", (unsigned long)node);
	return t.s[0];
}

/* Consecutive writes queued together go out as one batch, prev of the
 * first and version of the last, the newest data per block. */
static void test_batch_consecutive(void **state)
{
	struct sent s;
	struct propq *q = mkq(&s, 64u << 20);

	(void)state;
	add(q, 0, 0, 8192, 0xaa, 10, 11, T1, 1, 100);
	add(q, 0, 4096, 8192, 0xbb, 11, 12, T1, 1, 101);
	add(q, 0, 65536, 4096, 0xcc, 12, 13, T1, 1, 102);
	propq_kick(q, 200);
	assert_int_equal(s.n, 1);
	{
		struct propq_batch *b = s.b[0];

		assert_int_equal(b->node, 101);
		assert_int_equal(b->n_writes, 3);
		assert_int_equal(b->prev_version, 10);
		assert_int_equal(b->version, 13);
		assert_int_equal(b->n_invalidate, 0);
		assert_int_equal(b->n_blocks, 4); /* blocks 0, 1, 2, 16 */
		assert_int_equal(b->blocks[0].index, 0);
		assert_int_equal(b->blocks[0].version, 11);
		assert_int_equal(b->blocks[0].data[0], 0xaa);
		assert_int_equal(b->blocks[1].index, 1);
		assert_int_equal(b->blocks[1].version, 12);
		assert_int_equal(b->blocks[1].data[4095], 0xbb);
		assert_int_equal(b->blocks[2].index, 2);
		assert_int_equal(b->blocks[3].index, 16);
		assert_int_equal(b->blocks[3].version, 13);
		for (size_t i = 0; i < b->n_blocks; i++)
			assert_int_equal(b->blocks[i].crc32c,
					 crc_block(b->blocks[i].data, 7,
						   b->blocks[i].index,
						   b->blocks[i].version));
		/* one batch per chain in flight: nothing more to send */
		propq_kick(q, 201);
		assert_int_equal(s.n, 1);
		propq_done(q, b, PROPQ_OK, 210);
	}
	assert_int_equal(stats_of(q, 101).sent_writes, 3);
	assert_int_equal(stats_of(q, 101).queued_writes, 0);
	assert_int_equal(propq_bytes(q), 0);
	propq_destroy(q);
}

/* A gap in the chain (a write by another proxy: 12 -> 13 missing) ends
 * the batch; the rest follows in chain order after the first is done. */
static void test_chain_order_and_gap(void **state)
{
	struct sent s;
	struct propq *q = mkq(&s, 64u << 20);

	(void)state;
	add(q, 2, 2 * SEG, 4096, 1, 10, 11, T1, 1, 100);
	add(q, 2, 2 * SEG, 4096, 2, 11, 12, T1, 1, 100);
	add(q, 2, 2 * SEG, 4096, 3, 13, 14, T1, 1, 100);
	propq_kick(q, 100);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.b[0]->n_writes, 2);
	assert_int_equal(s.b[0]->prev_version, 10);
	assert_int_equal(s.b[0]->version, 12);
	assert_int_equal(s.b[0]->blocks[0].data[0], 2);
	propq_done(q, s.b[0], PROPQ_OK, 110);
	propq_kick(q, 110);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.b[1]->n_writes, 1);
	assert_int_equal(s.b[1]->prev_version, 13);
	assert_int_equal(s.b[1]->version, 14);
	propq_done(q, s.b[1], PROPQ_OK, 120);
	assert_int_equal(stats_of(q, 101).sent_writes, 3);
	propq_destroy(q);
}

/* Unaligned writes: the partial head and tail blocks are invalidated; a
 * later whole-block write of an invalidated block sends its data. */
static void test_unaligned_invalidate(void **state)
{
	struct sent s;
	struct propq *q = mkq(&s, 64u << 20);

	(void)state;
	/* bytes 100 .. 3*4096+10: partial 0 and 3, whole 1 and 2 */
	add(q, 0, 100, 3 * 4096 - 90, 5, 20, 21, T1, 1, 0);
	add(q, 0, 0, 4096, 6, 21, 22, T1, 1, 0); /* block 0 whole again */
	propq_kick(q, 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.b[0]->n_blocks, 3);
	assert_int_equal(s.b[0]->blocks[0].index, 0);
	assert_int_equal(s.b[0]->blocks[0].version, 22);
	assert_int_equal(s.b[0]->blocks[1].index, 1);
	assert_int_equal(s.b[0]->blocks[1].version, 21);
	assert_int_equal(s.b[0]->blocks[2].index, 2);
	assert_int_equal(s.b[0]->n_invalidate, 1);
	assert_int_equal(s.b[0]->invalidate[0], 3);
	propq_done(q, s.b[0], PROPQ_OK, 1);
	/* inside one block: no whole block, just the invalidation */
	add(q, 0, 10, 20, 7, 22, 23, T1, 1, 2);
	propq_kick(q, 2);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.b[1]->n_blocks, 0);
	assert_int_equal(s.b[1]->n_invalidate, 1);
	assert_int_equal(s.b[1]->invalidate[0], 0);
	propq_done(q, s.b[1], PROPQ_OK, 3);
	propq_destroy(q);
}

/* Zero writes carry empty blocks with the crc of a zero block; an
 * unknown prev_version (0) never advances the receiver's watermark. */
static void test_zero_and_unknown_prev(void **state)
{
	struct sent s;
	struct propq *q = mkq(&s, 64u << 20);

	(void)state;
	add(q, 1, SEG, 8192, -1, 0, 40, T1, 1, 0);
	propq_kick(q, 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.b[0]->n_blocks, 2);
	assert_null(s.b[0]->blocks[0].data);
	assert_int_equal(s.b[0]->blocks[0].crc32c, crc_block(NULL, 7, 256, 40));
	assert_int_equal(s.b[0]->prev_version, 40);
	assert_int_equal(s.b[0]->version, 40);
	propq_done(q, s.b[0], PROPQ_OK, 1);
	propq_destroy(q);
}

/* UNAVAILABLE: the same batch is sent again after a doubling backoff;
 * FAILED_PRECONDITION drops it (counted). */
static void test_retry_and_drop(void **state)
{
	struct sent s;
	struct propq *q = mkq(&s, 64u << 20);
	uint64_t next;

	(void)state;
	add(q, 0, 0, 4096, 1, 1, 2, T1, 1, 0);
	propq_kick(q, 0);
	propq_done(q, s.b[0], PROPQ_RETRY, 10);
	next = propq_kick(q, 10);
	assert_int_equal(next, 60); /* 50 ms */
	assert_int_equal(s.n, 1);
	propq_kick(q, 60);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.b[1]->version, 2);
	propq_done(q, s.b[1], PROPQ_RETRY, 70);
	assert_int_equal(propq_kick(q, 70), 170); /* 100 ms */
	propq_kick(q, 170);
	assert_int_equal(s.n, 3);
	propq_done(q, s.b[2], PROPQ_DROP, 180);
	assert_int_equal(stats_of(q, 101).dropped_writes, 1);
	assert_int_equal(stats_of(q, 101).sent_writes, 0);
	assert_int_equal(propq_entries(q), 0);
	/* a send that cannot start waits for its backoff too */
	s.refuse = true;
	add(q, 0, 0, 4096, 1, 2, 3, T1, 1, 200);
	assert_int_equal(propq_kick(q, 200), 250);
	s.refuse = false;
	propq_kick(q, 250);
	assert_int_equal(s.n, 4);
	propq_done(q, s.b[3], PROPQ_OK, 260);
	propq_destroy(q);
}

/* propq_pending: a write of at least the version asked, queued or in
 * flight, for that node and segment, while the chain is not backing off. */
static void test_pending(void **state)
{
	struct sent s;
	struct propq *q = mkq(&s, 64u << 20);

	(void)state;
	assert_false(propq_pending(q, 101, 7, 0, 1, 0)); /* nothing queued */
	add(q, 0, 0, 4096, 1, 1, 2, T1, 1, 0);
	add(q, 0, 4096, 4096, 1, 2, 3, T1, 1, 0);
	assert_true(propq_pending(q, 101, 7, 0, 3, 0));	 /* queued, due */
	assert_false(propq_pending(q, 101, 7, 0, 4, 0)); /* newer asked */
	assert_false(propq_pending(q, 102, 7, 0, 2, 0)); /* other node */
	assert_false(propq_pending(q, 101, 7, 1, 2, 0)); /* other segment */
	assert_false(propq_pending(q, 101, 8, 0, 2, 0)); /* other volume */
	propq_kick(q, 0);
	assert_int_equal(s.n, 1);
	assert_true(propq_pending(q, 101, 7, 0, 3, 1)); /* in flight */
	propq_done(q, s.b[0], PROPQ_RETRY, 10);
	/* Backing off until 60: not soon, the reader should not wait. */
	assert_false(propq_pending(q, 101, 7, 0, 3, 20));
	assert_true(propq_pending(q, 101, 7, 0, 3, 60));
	propq_kick(q, 60);
	propq_done(q, s.b[1], PROPQ_OK, 61);
	assert_false(propq_pending(q, 101, 7, 0, 3, 61)); /* delivered */
	propq_destroy(q);
}

/* Linger: a chain's first write waits linger_ms (the writes queued
 * meanwhile join its batch), counts as pending, and a reader can end the
 * wait (propq_hurry); what queues behind a flight goes when it ends, and a
 * backoff is not shortened. */
static void test_linger(void **state)
{
	struct sent s;
	struct propq *q = mkq_linger(&s, 64u << 20, 4);

	(void)state;
	add(q, 0, 0, 4096, 1, 1, 2, T1, 1, 10);
	assert_int_equal(propq_kick(q, 10), 14);
	assert_int_equal(s.n, 0);
	assert_true(propq_pending(q, 101, 7, 0, 2, 11)); /* lingering */
	add(q, 0, 4096, 4096, 1, 2, 3, T1, 1, 12);	 /* joins, no reset */
	assert_int_equal(propq_kick(q, 13), 14);
	propq_kick(q, 14);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.b[0]->n_writes, 2);
	/* queued during the flight: sent as soon as it ends */
	add(q, 0, 0, 4096, 1, 3, 4, T1, 1, 15);
	propq_done(q, s.b[0], PROPQ_OK, 16);
	propq_kick(q, 16);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.b[1]->version, 4);
	/* a reader hurries a lingering chain, only that one */
	add(q, 1, SEG, 4096, 1, 1, 2, T1, 1, 20);
	add(q, 2, 2 * SEG, 4096, 1, 1, 2, T1, 1, 20);
	assert_false(propq_hurry(q, 102, 7, 1, 21)); /* other node */
	assert_false(propq_hurry(q, 101, 7, 0, 21)); /* in flight */
	assert_true(propq_hurry(q, 101, 7, 1, 21));
	assert_false(propq_hurry(q, 101, 7, 1, 21)); /* already due */
	assert_int_equal(propq_kick(q, 21), 24);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.b[2]->seg, 1);
	/* a failed chain backs off; hurrying does not shorten it */
	propq_done(q, s.b[2], PROPQ_RETRY, 22);
	assert_false(propq_hurry(q, 101, 7, 1, 23));
	assert_false(propq_pending(q, 101, 7, 1, 2, 23));
	propq_kick(q, 24);
	assert_int_equal(s.n, 4); /* seg 2 after its linger, seg 1 waits */
	assert_int_equal(s.b[3]->seg, 2);
	propq_kick(q, 72);
	assert_int_equal(s.n, 5);
	for (unsigned i = 1; i < 5; i++)
		if (i != 2)
			propq_done(q, s.b[i], PROPQ_OK, 80);
	assert_int_equal(propq_entries(q), 0);
	propq_destroy(q);
}

/* Two targets share one copy of the data but have their own chains. */
static void test_two_targets(void **state)
{
	struct sent s;
	struct propq *q = mkq(&s, 64u << 20);
	uint64_t n0, n1;

	(void)state;
	add(q, 0, 0, 4096, 9, 1, 2, T2, 2, 0);
	propq_kick(q, 0);
	assert_int_equal(s.n, 2);
	assert_ptr_equal(s.b[0]->blocks[0].data, s.b[1]->blocks[0].data);
	n0 = s.b[0]->node;
	n1 = s.b[1]->node;
	assert_int_equal(n0 + n1, 101 + 102);
	propq_done(q, s.b[0], PROPQ_OK, 1);
	assert_int_equal(s.b[1]->blocks[0].data[0], 9);
	propq_done(q, s.b[1], PROPQ_RETRY, 1);
	assert_int_equal(stats_of(q, n1).queued_writes, 1);
	assert_int_equal(stats_of(q, n0).queued_writes, 0);
	propq_destroy(q); /* frees the queued entry */
}

/* The bound: the oldest queued entries of the largest queue go; entries
 * in flight are never dropped; the counts say so. */
static void test_memory_bound(void **state)
{
	struct sent s;
	/* room for about 3 one-block writes (4096 + 256 each) */
	struct propq *q = mkq(&s, 3 * (4096 + 256) + 100);
	uint64_t big[] = {101}, small[] = {102};

	(void)state;
	add(q, 0, 0, 4096, 1, 1, 2, big, 1, 10);
	propq_kick(q, 10); /* v2 in flight to 101 */
	assert_int_equal(s.n, 1);
	add(q, 0, 4096, 4096, 2, 2, 3, big, 1, 11);
	add(q, 3, 3 * SEG, 4096, 3, 5, 6, small, 1, 12);
	assert_int_equal(stats_of(q, 101).dropped_writes, 0);
	/* a fourth write: 101 holds the most; its oldest queued one (v3,
	 * not the v2 in flight) is dropped */
	add(q, 0, 8192, 4096, 4, 3, 4, big, 1, 13);
	assert_int_equal(stats_of(q, 101).dropped_writes, 1);
	assert_int_equal(stats_of(q, 101).queued_writes, 2);
	assert_int_equal(stats_of(q, 102).queued_writes, 1);
	assert_true(propq_bytes(q) <= 3 * (4096 + 256) + 100);
	assert_int_equal(stats_of(q, 101).oldest_ms, 10);
	propq_done(q, s.b[0], PROPQ_OK, 20);
	assert_int_equal(stats_of(q, 101).oldest_ms, 13);
	/* v4 follows v2 with a gap (v3 dropped): it goes alone, with its own
	 * prev_version, so the receiver's watermark stops at 2 */
	propq_kick(q, 20);
	for (unsigned i = 1; i < s.n; i++) {
		if (s.b[i]->node == 101) {
			assert_int_equal(s.b[i]->prev_version, 3);
			assert_int_equal(s.b[i]->version, 4);
		}
		propq_done(q, s.b[i], PROPQ_OK, 30);
	}
	assert_int_equal(propq_entries(q), 0);
	propq_destroy(q);
}

static void vol_cb(void *arg, uint64_t vol, uint64_t oldest)
{
	uint64_t *o = arg;

	o[0] = vol;
	o[1] = oldest;
}

/* Per-volume lag: the oldest entry over the volume's chains. */
static void test_volume_lag(void **state)
{
	struct sent s;
	struct propq *q = mkq(&s, 64u << 20);
	uint64_t o[2] = {0, 0};

	(void)state;
	add(q, 0, 0, 4096, 1, 1, 2, T1, 1, 500);
	add(q, 1, SEG, 4096, 1, 1, 2, T2, 2, 400);
	propq_volumes(q, vol_cb, o);
	assert_int_equal(o[0], 7);
	assert_int_equal(o[1], 400);
	propq_destroy(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_consecutive),
	    cmocka_unit_test(test_chain_order_and_gap),
	    cmocka_unit_test(test_unaligned_invalidate),
	    cmocka_unit_test(test_zero_and_unknown_prev),
	    cmocka_unit_test(test_retry_and_drop),
	    cmocka_unit_test(test_two_targets),
	    cmocka_unit_test(test_pending),
	    cmocka_unit_test(test_linger),
	    cmocka_unit_test(test_memory_bound),
	    cmocka_unit_test(test_volume_lag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
