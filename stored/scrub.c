/* scrub.c: the background scrub of ombra-stored: every 100 ms a thread-pool
 * job verifies up to --scrub-rate/10 blocks (segstore_scrub_step) and each
 * bad block found is repaired from another copy like a bad block met by a
 * read.  Metrics: ombra_stored_scrub_blocks_total, _bad_blocks_total,
 * _passes_total.
 *
 * Failure: an index error is logged and the next tick tries again; a block
 * no copy can repair is logged and counted (repair_failed) and found again
 * on the next pass. */
#include <stdlib.h>

#include "err.h"
#include "log.h"
#include "stored.h"

#define TICK_MS 100
#define MAX_BAD_PER_STEP 64

struct bad {
	uint64_t vol, block;
};

struct step {
	struct stored *sd;
	struct segstore_scrub_cursor cur;
	size_t max, n_checked;
	struct bad bad[MAX_BAD_PER_STEP];
	size_t n_bad;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
};

static void on_bad(void *arg, uint64_t volume_id, uint64_t block,
		   uint64_t version)
{
	struct step *st = arg;

	(void)version;
	if (st->n_bad < MAX_BAD_PER_STEP) {
		st->bad[st->n_bad++] = (struct bad){volume_id, block};
	}
}

static void step_work(void *arg)
{
	struct step *st = arg;

	st->rv = segstore_scrub_step(st->sd->ss, &st->cur, st->max, on_bad, st,
				     &st->n_checked, st->errmsg);
}

static void scrub_repaired(void *arg, int rv, const char *errmsg)
{
	(void)arg;
	if (rv != 0) {
		log_error("scrub: %s", errmsg);
	}
}

static void step_done(void *arg)
{
	struct step *st = arg;
	struct stored *sd = st->sd;

	sd->scrub_running = false;
	if (st->rv != 0) {
		log_warn("scrub: %s", st->errmsg);
		free(st);
		return;
	}
	metric_inc(sd->m.scrub_checked, (double)st->n_checked);
	if (st->cur.passes > sd->scrub_cursor.passes) {
		metric_inc(sd->m.scrub_passes,
			   (double)(st->cur.passes - sd->scrub_cursor.passes));
	}
	sd->scrub_cursor = st->cur;
	for (size_t i = 0; i < st->n_bad; i++) {
		struct sm_volume *v = sm_find(&sd->maps, st->bad[i].vol);
		uint64_t seg;

		metric_inc(sd->m.scrub_bad, 1.0);
		log_warn("scrub: volume %llu block %llu failed its checksum",
			 (unsigned long long)st->bad[i].vol,
			 (unsigned long long)st->bad[i].block);
		if (v == NULL || sd->stopping) {
			continue; /* not in the cache: found again later */
		}
		seg = st->bad[i].block * SEGSTORE_BLOCK_SIZE / v->segsize;
		repair_blocks(sd, v->id, seg, &st->bad[i].block, 1,
			      scrub_repaired, NULL);
	}
	free(st);
}

static void scrub_tick(uv_timer_t *t)
{
	struct stored *sd = t->data;
	struct step *st;

	if (sd->scrub_running || sd->stopping) {
		return;
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		return;
	}
	st->sd = sd;
	st->cur = sd->scrub_cursor;
	st->max = (size_t)(sd->cfg.scrub_rate * TICK_MS / 1000);
	if (st->max == 0) {
		st->max = 1;
	}
	if (work_submit(sd, step_work, step_done, st) != 0) {
		free(st);
		return;
	}
	sd->scrub_running = true;
}

void scrub_start(struct stored *sd)
{
	if (sd->cfg.scrub_rate == 0) {
		log_info("scrub: off (--scrub-rate 0)");
		return;
	}
	/* Below 10 blocks/s, one block per tick at a longer period. */
	uint64_t period = sd->cfg.scrub_rate >= 1000 / TICK_MS
			      ? TICK_MS
			      : 1000 / sd->cfg.scrub_rate;
	uv_timer_start(&sd->scrub_timer, scrub_tick, period, period);
	log_info("scrub: %llu blocks per second",
		 (unsigned long long)sd->cfg.scrub_rate);
}
