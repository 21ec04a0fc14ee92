/* test_prefetch_core.c: the prefetch engine's logic (proxy/prefetch_core.h)
 * without sockets: a fake transport records the pulls and drops it is
 * asked for and the test completes them.  Checked: sequential reads make
 * pulls of the next blocks on the rendezvous node of the region (never a
 * node holding a copy of the segment), cut at segment boundaries and
 * never repeated while cached or in flight; completed pulls turn later
 * reads into hits with the right precision, coverage and used counts; the
 * byte budget (token bucket) bounds predicted pulls and refills with
 * time; hints: RANDOM issues nothing, SEQUENTIAL a long window,
 * WILLNEED/explicit requests pull outside the budget, DONTNEED drops on
 * the holder and counts the unused blocks as wasted; a request someone
 * waits for is not held back by a pull it does not own; the cache-bytes
 * bound evicts the least recently used entries with a DropCopy each; no
 * UP node is an explicit failure.  Fails (cmocka) naming the check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "predict/predict.h"
#include "proxy/pcache.h"
#include "proxy/prefetch_core.h"

#define SEG (1024u * 1024u) /* 256 blocks */
#define BPS (SEG / PF_BLOCK)
#define MAXP 256

struct fake {
	struct pf_pull *pulls[MAXP];
	size_t n_pulls;
	struct {
		uint64_t vol, seg, node;
		uint32_t first, n;
	} drops[MAXP];
	size_t n_drops;
	uint64_t copy_node; /* is_copy() says yes for it */
	bool refuse;	    /* pull() fails */
};

static int fake_pull(void *ctx, struct pf_pull *r)
{
	struct fake *f = ctx;

	if (f->refuse)
		return OMBRA_EUNAVAIL;
	assert_true(f->n_pulls < MAXP);
	f->pulls[f->n_pulls++] = r;
	return 0;
}

static void fake_drop(void *ctx, uint64_t vol, uint64_t seg, uint64_t node,
		      uint32_t first, uint32_t n)
{
	struct fake *f = ctx;

	assert_true(f->n_drops < MAXP);
	f->drops[f->n_drops].vol = vol;
	f->drops[f->n_drops].seg = seg;
	f->drops[f->n_drops].node = node;
	f->drops[f->n_drops].first = first;
	f->drops[f->n_drops].n = n;
	f->n_drops++;
}

static bool fake_is_copy(void *ctx, void *volctx, uint64_t seg, uint64_t node)
{
	struct fake *f = ctx;

	(void)volctx;
	(void)seg;
	return node == f->copy_node;
}

struct env {
	struct fake f;
	struct predictor *amp, *seq;
	struct pf_core *c;
	struct pf_volinfo v;
};

static void env_init(struct env *e, uint64_t budget_bps, uint64_t cache_bytes)
{
	struct predict_config pc = {.block_size = PF_BLOCK,
				    .max_candidates = 16};
	struct pf_core_config cc = {.budget_bps = budget_bps,
				    .cache_bytes = cache_bytes,
				    .max_inflight = 64};
	struct pf_io io = {
	    .pull = fake_pull, .drop = fake_drop, .is_copy = fake_is_copy};
	struct pf_node nodes[3] = {
	    {.id = 11, .weight = 1, .up = true},
	    {.id = 12, .weight = 1, .up = true},
	    {.id = 13, .weight = 1, .up = false},
	};
	char errmsg[OMBRA_ERRMSG_LEN];

	memset(e, 0, sizeof(*e));
	io.ctx = &e->f;
	e->amp = predictor_create("amp", &pc, NULL, errmsg);
	e->seq = predictor_create("amp", &pc, NULL, errmsg);
	assert_non_null(e->amp);
	assert_non_null(e->seq);
	assert_int_equal(pf_core_create(&cc, e->amp, e->seq, &io, &e->c), 0);
	pf_core_set_nodes(e->c, nodes, 3);
	assert_int_equal(pf_core_nodes_up(e->c), 2);
	e->v = (struct pf_volinfo){
	    .id = 7, .size = 64ull * SEG, .seg_size = SEG, .ctx = NULL};
}

static void env_fini(struct env *e)
{
	pf_core_destroy(e->c);
	predictor_destroy(e->amp);
	predictor_destroy(e->seq);
}

/* Complete every recorded pull (ok) and forget them. */
static void complete_all(struct env *e, bool ok)
{
	for (size_t i = 0; i < e->f.n_pulls; i++)
		pf_core_pull_done(e->c, e->f.pulls[i], ok);
	e->f.n_pulls = 0;
}

static uint64_t pulled_blocks(const struct env *e)
{
	uint64_t n = 0;

	for (size_t i = 0; i < e->f.n_pulls; i++)
		n += e->f.pulls[i]->n;
	return n;
}

static void read_blocks(struct env *e, uint64_t b, uint64_t n, uint64_t t_us)
{
	pf_core_observe(e->c, &e->v, b * PF_BLOCK, n * PF_BLOCK, true, t_us);
}

static void test_sequential_pulls_and_hits(void **state)
{
	struct env e;
	struct pf_volume_stats st;
	uint64_t t = 1000000, b = 0;
	uint64_t node0 = 0, max_end = 0;

	(void)state;
	env_init(&e, 0, 64u << 20);
	e.f.copy_node = 12; /* 12 holds a home copy: only 11 may cache */
	for (int i = 0; i < 512; i++, b += 2, t += 1000) {
		read_blocks(&e, b, 2, t);
		for (size_t k = 0; k < e.f.n_pulls; k++) {
			struct pf_pull *r = e.f.pulls[k];

			assert_int_equal(r->volume_id, 7);
			assert_int_equal(r->node, 11);
			assert_int_equal(r->seg_size, SEG);
			assert_true(r->first + r->n <= BPS);
			assert_int_equal(r->src, PF_SRC_AMP);
			/* never a block already read or cached */
			assert_true(r->seg * BPS + r->first >= b + 2);
			node0 = r->node;
			if (r->seg * BPS + r->first + r->n > max_end)
				max_end = r->seg * BPS + r->first + r->n;
		}
		complete_all(&e, true);
	}
	assert_int_equal(node0, 11);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.reads, 512);
	assert_int_equal(st.read_blocks, 1024);
	/* amp recognises the stream after a few reads: most reads hit. */
	assert_true(st.read_hits >= 500);
	assert_int_equal(st.block_hits, st.src[PF_SRC_AMP].hits);
	assert_true(st.src[PF_SRC_AMP].prefetched >= st.block_hits);
	assert_int_equal(st.src[PF_SRC_AMP].used, st.block_hits);
	/* Sequential: pulls reach a window (>= 64 blocks) ahead of the
	 * stream, more than amp's own candidates. */
	assert_true(max_end >= b + 64);
	assert_true(st.src[PF_SRC_AMP].issued >= st.src[PF_SRC_AMP].predicted);
	assert_int_equal(st.src[PF_SRC_AMP].issued,
			 st.src[PF_SRC_AMP].prefetched);
	assert_true(pf_stats_precision(&st.src[PF_SRC_AMP]) > 0.5);
	assert_true(pf_stats_precision(&st.src[PF_SRC_AMP]) <= 1.0);
	assert_true(pf_stats_coverage(&st.src[PF_SRC_AMP], st.read_blocks) >
		    0.85);
	assert_string_equal(st.active, "amp");
	assert_int_equal(pf_core_inflight(e.c), 0);
	env_fini(&e);
}

static void test_stats_arithmetic(void **state)
{
	struct pf_stats s = {.prefetched = 8, .used = 6, .hits = 9};

	(void)state;
	assert_true(pf_stats_precision(&s) == 0.75);
	assert_true(pf_stats_coverage(&s, 12) == 0.75);
	s.prefetched = 0;
	assert_true(pf_stats_precision(&s) == 0.0);
	assert_true(pf_stats_coverage(&s, 0) == 0.0);
	assert_string_equal(pf_src_name(PF_SRC_REQUEST), "request");
	assert_string_equal(pf_src_name(PF_SRC_MITHRIL), "mithril");
}

static void test_budget(void **state)
{
	struct env e;
	uint64_t t = 5000000, b = 0, first;

	(void)state;
	/* 8 blocks per second, one second of burst. */
	env_init(&e, 8 * PF_BLOCK, 64u << 20);
	for (int i = 0; i < 32; i++, b++)
		read_blocks(&e, b, 1, t); /* all at the same time */
	first = pulled_blocks(&e);
	assert_true(first > 0);
	assert_true(first <= 8);
	complete_all(&e, true);
	/* No time passed: nothing more. */
	for (int i = 0; i < 16; i++, b++)
		read_blocks(&e, b, 1, t);
	assert_int_equal(pulled_blocks(&e), 0);
	/* Half a second later: at most 4 more blocks, from the range amp
	 * predicted in the first burst and the budget deferred. */
	t += 500000;
	for (int i = 0; i < 16; i++, b++)
		read_blocks(&e, b, 1, t);
	assert_true(pulled_blocks(&e) > 0);
	assert_true(pulled_blocks(&e) <= 4);
	complete_all(&e, false);
	env_fini(&e);
}

static void test_hints(void **state)
{
	struct env e;
	struct pf_volume_stats st;
	unsigned started = 0;
	uint64_t bytes = 0, t = 1000000;
	const char *why;

	(void)state;
	env_init(&e, 4 * PF_BLOCK, 64u << 20);
	/* RANDOM: nothing predicted is pulled. */
	pf_core_set_hint(e.c, 7, PF_HINT_RANDOM);
	for (uint64_t b = 0; b < 64; b++, t += 1000)
		read_blocks(&e, b, 1, t);
	assert_int_equal(e.f.n_pulls, 0);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.hint, PF_HINT_RANDOM);

	/* WILLNEED / PrefetchData: outside the tiny budget, whole blocks
	 * covering the range, cut at the segment boundary. */
	assert_int_equal(pf_core_request(e.c, &e.v, SEG - 2 * PF_BLOCK - 100,
					 3 * PF_BLOCK, NULL, &started, &bytes,
					 &why),
			 0);
	assert_int_equal(started, 2);
	assert_int_equal(bytes, 4 * PF_BLOCK);
	assert_int_equal(e.f.pulls[0]->seg, 0);
	assert_int_equal(e.f.pulls[0]->first, BPS - 3);
	assert_int_equal(e.f.pulls[0]->n, 3);
	assert_int_equal(e.f.pulls[1]->seg, 1);
	assert_int_equal(e.f.pulls[1]->first, 0);
	assert_int_equal(e.f.pulls[1]->n, 1);
	assert_int_equal(e.f.pulls[0]->src, PF_SRC_REQUEST);
	/* In flight: asking again starts nothing. */
	started = 0;
	assert_int_equal(pf_core_request(e.c, &e.v, SEG - 3 * PF_BLOCK,
					 4 * PF_BLOCK, NULL, &started, NULL,
					 &why),
			 0);
	assert_int_equal(started, 0);
	complete_all(&e, true);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.cached_blocks, 4);
	assert_int_equal(st.src[PF_SRC_REQUEST].prefetched, 4);

	/* One block read, then DONTNEED of everything: 3 wasted, drops on
	 * the holder of each segment. */
	read_blocks(&e, BPS - 1, 1, t);
	assert_int_equal(pf_core_dontneed(e.c, &e.v, 0, 2 * SEG), 4 * PF_BLOCK);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.cached_blocks, 0);
	assert_int_equal(st.src[PF_SRC_REQUEST].used, 1);
	assert_int_equal(st.src[PF_SRC_REQUEST].wasted, 3);
	assert_int_equal(e.f.n_drops, 2);
	assert_true(e.f.drops[0].node == 11 || e.f.drops[0].node == 12);
	assert_int_equal(e.f.drops[0].first, 0);
	assert_int_equal(e.f.drops[0].n, BPS);

	/* SEQUENTIAL: the amp predictor with a long window. */
	pf_core_set_hint(e.c, 7, PF_HINT_SEQUENTIAL);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.window, PF_SEQ_WINDOW);
	pf_core_set_hint(e.c, 7, PF_HINT_NORMAL);
	pf_core_volume_stats(e.c, 7, &st);
	assert_true(st.window < PF_SEQ_WINDOW);
	assert_int_equal(st.hint, PF_HINT_NORMAL);

	/* No UP node: an explicit request fails with a reason. */
	pf_core_set_nodes(e.c, NULL, 0);
	started = 0;
	assert_int_equal(
	    pf_core_request(e.c, &e.v, 0, PF_BLOCK, NULL, &started, NULL, &why),
	    -1);
	assert_int_equal(started, 0);
	assert_non_null(strstr(why, "no storage node UP"));
	env_fini(&e);
}

static void test_sequential_hint_window(void **state)
{
	struct env e;
	uint64_t t = 1000000, max_n = 0;

	(void)state;
	env_init(&e, 0, 64u << 20);
	pf_core_set_hint(e.c, 7, PF_HINT_SEQUENTIAL);
	for (uint64_t b = 0; b < 4 * BPS; b += 8, t += 1000) {
		read_blocks(&e, b, 8, t);
		for (size_t k = 0; k < e.f.n_pulls; k++)
			if (e.f.pulls[k]->n > max_n)
				max_n = e.f.pulls[k]->n;
		complete_all(&e, true);
	}
	/* amp's degree grows to 64 accesses of 8 blocks: pieces longer
	 * than NORMAL's window at the start are allowed. */
	assert_true(max_n >= 64);
	env_fini(&e);
}

static void test_eviction(void **state)
{
	struct env e;
	struct pf_volume_stats st;
	unsigned started = 0;
	const char *why;

	(void)state;
	env_init(&e, 0, 1u << 20); /* 256 blocks */
	for (uint64_t s = 0; s < 4; s++) {
		assert_int_equal(pf_core_request(e.c, &e.v, s * SEG,
						 128 * PF_BLOCK, NULL, &started,
						 NULL, &why),
				 0);
		complete_all(&e, true);
	}
	/* Segments 0 and 1 were evicted (256 blocks kept), each dropped on
	 * its node as a whole, all 128 blocks of each wasted. */
	assert_int_equal(e.f.n_drops, 2);
	assert_int_equal(e.f.drops[0].seg, 0);
	assert_int_equal(e.f.drops[0].n, 0);
	assert_int_equal(e.f.drops[1].seg, 1);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.cached_blocks, 256);
	assert_int_equal(st.src[PF_SRC_REQUEST].wasted, 256);
	assert_int_equal(st.src[PF_SRC_REQUEST].prefetched, 512);
	assert_int_equal(pcache_unused_blocks(pf_core_pcache(e.c)), 256);

	/* A pull that cannot be sent is a failure, counted. */
	e.f.refuse = true;
	assert_int_equal(pf_core_request(e.c, &e.v, 10 * SEG, PF_BLOCK, NULL,
					 &started, NULL, &why),
			 -1);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.src[PF_SRC_REQUEST].failed, 1);
	assert_int_equal(pf_core_inflight(e.c), 0);
	env_fini(&e);
}

/* DONTNEED while a pull is in flight: when it ends its blocks are dropped
 * on the node, never recorded, and count as wasted; a new request of the
 * range is not held back by the dropped pull. */
static void test_dontneed_in_flight(void **state)
{
	struct env e;
	struct pf_volume_stats st;
	unsigned started = 0;
	const char *why;

	(void)state;
	env_init(&e, 0, 64u << 20);
	assert_int_equal(pf_core_request(e.c, &e.v, 0, 8 * PF_BLOCK, NULL,
					 &started, NULL, &why),
			 0);
	assert_int_equal(pf_core_volume_inflight(e.c, 7), 1);
	assert_int_equal(pf_core_dontneed(e.c, &e.v, 0, SEG), 0);
	assert_int_equal(pf_core_volume_inflight(e.c, 7), 0);
	assert_int_equal(e.f.n_drops, 0); /* nothing was recorded yet */
	/* Asked again: pulled again (the dropped pull does not count). */
	assert_int_equal(pf_core_request(e.c, &e.v, 0, 8 * PF_BLOCK, NULL,
					 &started, NULL, &why),
			 0);
	assert_int_equal(e.f.n_pulls, 2);
	/* The dropped pull ends while the new one runs: no DropCopy (it
	 * could remove what the new pull brings). */
	pf_core_pull_done(e.c, e.f.pulls[0], true);
	assert_int_equal(e.f.n_drops, 0);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.cached_blocks, 0);
	assert_int_equal(st.src[PF_SRC_REQUEST].wasted, 8);
	pf_core_pull_done(e.c, e.f.pulls[1], true);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.cached_blocks, 8);
	assert_int_equal(pf_core_inflight(e.c), 0);
	/* Dropped again while pulled, nothing else asked: DropCopy. */
	e.f.n_pulls = 0;
	assert_int_equal(pf_core_dontneed(e.c, &e.v, 0, SEG), 8 * PF_BLOCK);
	assert_int_equal(e.f.n_drops, 1);
	assert_int_equal(pf_core_request(e.c, &e.v, PF_BLOCK, PF_BLOCK, NULL,
					 &started, NULL, &why),
			 0);
	assert_int_equal(pf_core_dontneed(e.c, &e.v, 0, SEG), 0);
	pf_core_pull_done(e.c, e.f.pulls[0], true);
	assert_int_equal(e.f.n_drops, 2);
	assert_int_equal(e.f.drops[1].first, 1);
	assert_int_equal(e.f.drops[1].n, 1);
	env_fini(&e);
}

/* The read path refused a cache entry: only its holder's refusal drops
 * it, and the whole segment goes (DropCopy n 0 = whole, pulls in flight
 * dropped), so a later pull starts the entry afresh. */
static void test_refused(void **state)
{
	struct env e;
	struct pf_volume_stats st;
	unsigned started = 0;
	const char *why;
	uint64_t holder;

	(void)state;
	env_init(&e, 0, 64u << 20);
	assert_int_equal(pf_core_request(e.c, &e.v, SEG + 8 * PF_BLOCK,
					 8 * PF_BLOCK, NULL, &started, NULL,
					 &why),
			 0);
	complete_all(&e, true);
	assert_int_equal(pf_core_request(e.c, &e.v, SEG + 32 * PF_BLOCK,
					 8 * PF_BLOCK, NULL, &started, NULL,
					 &why),
			 0);
	holder = e.f.pulls[0]->node;
	assert_false(pf_core_refused(e.c, &e.v, 1, holder == 11 ? 12 : 11));
	assert_false(pf_core_refused(e.c, &e.v, 2, holder));
	assert_true(pf_core_refused(e.c, &e.v, 1, holder));
	assert_int_equal(e.f.n_drops, 1);
	assert_int_equal(e.f.drops[0].seg, 1);
	assert_int_equal(e.f.drops[0].first, 0);
	assert_int_equal(e.f.drops[0].n, BPS);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.cached_blocks, 0);
	assert_int_equal(pf_core_volume_inflight(e.c, 7), 0);
	assert_int_equal(st.src[PF_SRC_REQUEST].wasted, 8);
	complete_all(&e, true); /* the dropped pull: dropped on the node */
	assert_int_equal(e.f.n_drops, 2);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.cached_blocks, 0);
	assert_int_equal(st.src[PF_SRC_REQUEST].wasted, 16);
	env_fini(&e);
}

/* An explicit request someone waits for (PrefetchData) is not held back
 * by a pull of the same blocks it does not own (a predicted one): that
 * pull may fail, or end after the request answered, and the answer must
 * mean the blocks are cached (test_prefetch_engine failed "range not
 * cached": a predicted pull refused UNAVAILABLE by a node deleting the
 * volume's dropped copies made PrefetchData answer 0 bytes at once).
 * Without a waiter, and for the waiter's own pulls, in-flight blocks are
 * still not pulled twice. */
static void test_request_not_held_by_other_pull(void **state)
{
	struct env e;
	struct pf_volume_stats st;
	unsigned started = 0;
	uint64_t bytes = 0;
	const char *why;
	int waiter_a, waiter_b;

	(void)state;
	env_init(&e, 0, 64u << 20);
	/* A pull nobody waits for (as a predicted one): blocks 16..47. */
	assert_int_equal(pf_core_request(e.c, &e.v, 2 * SEG + 16 * PF_BLOCK,
					 32 * PF_BLOCK, NULL, &started, NULL,
					 &why),
			 0);
	assert_int_equal(started, 1);
	assert_null(e.f.pulls[0]->waiter);
	/* Asked again without a waiter: nothing new (unchanged). */
	started = 0;
	assert_int_equal(pf_core_request(e.c, &e.v, 2 * SEG + 16 * PF_BLOCK,
					 32 * PF_BLOCK, NULL, &started, NULL,
					 &why),
			 0);
	assert_int_equal(started, 0);
	/* PrefetchData of the range: its own pull of all 32 blocks. */
	assert_int_equal(pf_core_request(e.c, &e.v, 2 * SEG + 16 * PF_BLOCK,
					 32 * PF_BLOCK, &waiter_a, &started,
					 &bytes, &why),
			 0);
	assert_int_equal(started, 1);
	assert_int_equal(bytes, 32 * PF_BLOCK);
	assert_int_equal(e.f.n_pulls, 2);
	assert_ptr_equal(e.f.pulls[1]->waiter, &waiter_a);
	assert_int_equal(e.f.pulls[1]->first, 16);
	assert_int_equal(e.f.pulls[1]->n, 32);
	assert_int_equal(e.f.pulls[1]->node, e.f.pulls[0]->node);
	/* Another waiter overlapping both: pulls again too. */
	started = 0;
	assert_int_equal(pf_core_request(e.c, &e.v, 2 * SEG + 40 * PF_BLOCK,
					 16 * PF_BLOCK, &waiter_b, &started,
					 NULL, &why),
			 0);
	assert_int_equal(started, 1);
	assert_int_equal(e.f.pulls[2]->first, 40);
	assert_int_equal(e.f.pulls[2]->n, 16);
	/* The unowned pull fails (node busy): the waited-for ones still
	 * cache the range. */
	pf_core_pull_done(e.c, e.f.pulls[0], false);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.cached_blocks, 0);
	pf_core_pull_done(e.c, e.f.pulls[1], true);
	pf_core_pull_done(e.c, e.f.pulls[2], true);
	pf_core_volume_stats(e.c, 7, &st);
	assert_int_equal(st.cached_blocks, 40);
	assert_int_equal(pf_core_inflight(e.c), 0);
	/* Cached now: a new request pulls nothing. */
	e.f.n_pulls = 0;
	started = 0;
	assert_int_equal(pf_core_request(e.c, &e.v, 2 * SEG + 16 * PF_BLOCK,
					 32 * PF_BLOCK, &waiter_b, &started,
					 NULL, &why),
			 0);
	assert_int_equal(started, 0);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sequential_pulls_and_hits),
	    cmocka_unit_test(test_stats_arithmetic),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_hints),
	    cmocka_unit_test(test_sequential_hint_window),
	    cmocka_unit_test(test_eviction),
	    cmocka_unit_test(test_dontneed_in_flight),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_request_not_held_by_other_pull),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
