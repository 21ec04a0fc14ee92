/* foreign.c: the table of foreign copies (shadows, cache entries) of
 * ombra-stored: lookup, creation, removal, the COPY_CACHE capacity with
 * least-recently-used eviction, and reclaiming a volume's space in the
 * store once its last foreign copy is gone (see foreign.h).
 *
 * The segment store has no call that frees one segment, so a dropped or
 * evicted copy's blocks stay in the store (never served: only records
 * make data servable) until the volume holds no foreign copy here and
 * this node holds no home copy of it; then segstore_delete_volume()
 * removes the volume's data.  While that deletion runs the store jobs of
 * the volume's foreign copies (foreign_apply(): pulled pieces, propagated
 * writes) wait, and start when it has ended, so nothing stored for a copy
 * made meanwhile is deleted after being marked present (blocks are marked
 * present only when their job is done).  Pulls and Replicates into the
 * volume are accepted meanwhile: refusing them UNAVAILABLE "being deleted"
 * (pulls used to) failed predicted pulls, which are never retried, and
 * made proxies take the node for unreachable.  The cache capacity
 * therefore bounds the bytes held by live cache entries, not the disk
 * space of their leftovers.
 *
 * Store jobs of foreign copies (pulled pieces, propagated writes) run one
 * at a time per segment (foreign_apply), and none of a volume being
 * reclaimed.  The per-segment order was added because the segment store's
 * first writes of a segment were not safe against each other (fixed in
 * seg_prepare(), segstore_index.c); it is kept as a bound on the
 * thread-pool jobs one busy foreign segment can hold.
 *
 * Failure: out of memory is reported to the caller (NULL / OMBRA_ENOMEM);
 * a failed volume deletion is logged (the data stays, nothing is
 * served from it). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "foreign.h"
#include "log.h"

static size_t bucket(uint64_t vol, uint64_t seg)
{
	uint64_t h =
	    vol * 0x9e3779b97f4a7c15ULL ^ (seg + 0x632be59bd9b4e019ULL);

	return (size_t)((h ^ (h >> 29)) % FOREIGN_BUCKETS);
}

uint64_t foreign_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void foreign_init(struct stored *sd)
{
	memset(&sd->fg, 0, sizeof(sd->fg));
	uv_timer_init(sd->loop, &sd->fg.timer);
	uv_timer_init(sd->loop, &sd->fg.fill_timer);
	sd->fg.timer.data = sd;
	sd->fg.fill_timer.data = sd;
	sd->fg.timer_open = true;
}

static void fg_timer_closed(uv_handle_t *h)
{
	(void)h;
}

void foreign_stop(struct stored *sd)
{
	if (sd->fg.timer_open) {
		sd->fg.timer_open = false;
		uv_close((uv_handle_t *)&sd->fg.timer, fg_timer_closed);
		uv_close((uv_handle_t *)&sd->fg.fill_timer, fg_timer_closed);
	}
	for (size_t i = 0; i < FOREIGN_BUCKETS; i++) {
		while (sd->fg.b[i] != NULL) {
			struct fcent *e = sd->fg.b[i];

			sd->fg.b[i] = e->hnext;
			free(e);
		}
	}
	sd->fg.count = 0;
}

struct fcent *foreign_find(struct stored *sd, uint64_t vol, uint64_t seg)
{
	for (struct fcent *e = sd->fg.b[bucket(vol, seg)]; e != NULL;
	     e = e->hnext) {
		if (e->c.vol == vol && e->c.seg == seg) {
			return e;
		}
	}
	return NULL;
}

struct fcent *foreign_get(struct stored *sd, uint64_t vol, uint64_t seg,
			  enum fc_kind kind, uint32_t n_blocks)
{
	struct fcent *e = foreign_find(sd, vol, seg);
	size_t b;

	if (e != NULL) {
		if (kind == FC_SHADOW) {
			e->c.kind = FC_SHADOW; /* a shadow is never evicted */
		}
		return e;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		return NULL;
	}
	fc_init(&e->c, vol, seg, kind, n_blocks, foreign_unix_ms());
	e->gen = ++sd->fg.next_gen;
	b = bucket(vol, seg);
	e->hnext = sd->fg.b[b];
	sd->fg.b[b] = e;
	sd->fg.count++;
	return e;
}

uint32_t foreign_seg_blocks(const struct sm_volume *v, uint64_t seg)
{
	uint64_t start = seg * v->segsize, end = start + v->segsize;

	if (seg >= v->n_segs) {
		return 0;
	}
	if (v->size != 0 && end > v->size) {
		end = v->size;
	}
	return end > start ? (uint32_t)((end - start) / SEGSTORE_BLOCK_SIZE)
			   : 0;
}

bool foreign_is_home(const struct sm_seg *s, uint64_t node)
{
	if (sm_seg_in_sync(s, node)) {
		return true;
	}
	for (unsigned i = 0; i < s->n_resync; i++) {
		if (s->resync[i] == node) {
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------ reclaiming space */

struct reclaim {
	struct stored *sd;
	uint64_t vol;
	int rv;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct reclaim *next; /* sd->fg.reclaims */
};

bool foreign_reclaiming(struct stored *sd, uint64_t vol)
{
	for (const struct reclaim *r = sd->fg.reclaims; r != NULL;
	     r = r->next) {
		if (r->vol == vol) {
			return true;
		}
	}
	return false;
}

static void reclaim_work(void *arg)
{
	struct reclaim *r = arg;

	r->rv = segstore_delete_volume(r->sd->ss, r->vol, r->errmsg);
}

static void fapply_resume(struct stored *sd, uint64_t vol);

static void reclaim_done(void *arg)
{
	struct reclaim *r = arg;

	for (struct reclaim **p = &r->sd->fg.reclaims; *p != NULL;
	     p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			break;
		}
	}
	if (r->rv != 0) {
		log_warn("volume %llu: deleting the data of dropped foreign "
			 "copies: %s",
			 (unsigned long long)r->vol, r->errmsg);
	} else {
		log_info("volume %llu: no foreign copy left here, its data "
			 "was deleted",
			 (unsigned long long)r->vol);
	}
	/* The store jobs of copies made meanwhile may run now. */
	fapply_resume(r->sd, r->vol);
	stored_call_end(r->sd);
	free(r);
}

static bool volume_has_copies(struct stored *sd, uint64_t vol)
{
	for (size_t i = 0; i < FOREIGN_BUCKETS; i++) {
		for (struct fcent *e = sd->fg.b[i]; e != NULL; e = e->hnext) {
			if (e->c.vol == vol) {
				return true;
			}
		}
	}
	return false;
}

bool foreign_maybe_reclaim(struct stored *sd, uint64_t vol)
{
	struct sm_volume *v = sm_find(&sd->maps, vol);
	struct reclaim *r;

	/* Only a volume homed elsewhere of which this node holds no home
	 * copy (a region failover may have made it one). */
	if (sd->stopping || v == NULL || volume_has_copies(sd, vol) ||
	    foreign_reclaiming(sd, vol) ||
	    sm_volume_has_home_role(v, sd->node_id) ||
	    strcmp(v->home_region, sd->cfg.region) == 0) {
		return false;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return false;
	}
	r->sd = sd;
	r->vol = vol;
	stored_call_begin(sd);
	if (work_submit(sd, reclaim_work, reclaim_done, r) != 0) {
		stored_call_end(sd);
		free(r);
		return false;
	}
	r->next = sd->fg.reclaims;
	sd->fg.reclaims = r;
	return true;
}

void foreign_remove(struct stored *sd, struct fcent *e)
{
	uint64_t vol = e->c.vol;

	for (struct fcent **p = &sd->fg.b[bucket(e->c.vol, e->c.seg)];
	     *p != NULL; p = &(*p)->hnext) {
		if (*p == e) {
			*p = e->hnext;
			sd->fg.count--;
			free(e);
			foreign_maybe_reclaim(sd, vol);
			return;
		}
	}
}

void foreign_each(struct stored *sd,
		  void (*fn)(struct stored *sd, struct fcent *e, void *arg),
		  void *arg)
{
	for (size_t i = 0; i < FOREIGN_BUCKETS; i++) {
		struct fcent *e = sd->fg.b[i];

		while (e != NULL) {
			struct fcent *next = e->hnext;

			fn(sd, e, arg);
			e = next;
		}
	}
}

uint64_t foreign_bytes(struct stored *sd, enum fc_kind kind)
{
	uint64_t n = 0;

	for (size_t i = 0; i < FOREIGN_BUCKETS; i++) {
		for (struct fcent *e = sd->fg.b[i]; e != NULL; e = e->hnext) {
			if (e->c.kind == kind) {
				n += (uint64_t)e->c.n_present *
				     SEGSTORE_BLOCK_SIZE;
			}
		}
	}
	return n;
}

/* The least recently used cache record that may be evicted, or NULL. */
static struct fcent *lru_victim(struct stored *sd, const struct fcent *keep)
{
	struct fcent *best = NULL;

	for (size_t i = 0; i < FOREIGN_BUCKETS; i++) {
		for (struct fcent *e = sd->fg.b[i]; e != NULL; e = e->hnext) {
			if (e->c.kind != FC_CACHE || e == keep ||
			    e->pulls > 0 || e->c.n_present == 0) {
				continue;
			}
			if (best == NULL ||
			    e->c.last_use_ms < best->c.last_use_ms) {
				best = e;
			}
		}
	}
	return best;
}

int foreign_cache_room(struct stored *sd, uint64_t add,
		       const struct fcent *keep)
{
	uint64_t cap = sd->cfg.cache_bytes;
	uint64_t used = foreign_bytes(sd, FC_CACHE);

	if (add > cap) {
		return OMBRA_ENOMEM;
	}
	while (used + add > cap) {
		struct fcent *v = lru_victim(sd, keep);

		if (v == NULL) {
			return OMBRA_ENOMEM;
		}
		used -= (uint64_t)v->c.n_present * SEGSTORE_BLOCK_SIZE;
		log_debug(
		    "cache full: evicting volume %llu segment %llu "
		    "(%u blocks, last used %llu ms ago)",
		    (unsigned long long)v->c.vol, (unsigned long long)v->c.seg,
		    v->c.n_present,
		    (unsigned long long)(foreign_unix_ms() - v->c.last_use_ms));
		metric_inc(sd->fg.m_evicted, 1.0);
		foreign_remove(sd, v);
	}
	return 0;
}

/* ------------------------------------------------ serialized applies */

/* One store job of a foreign copy, run after the jobs of its segment
 * queued before it. */
struct fapply {
	struct stored *sd;
	uint64_t vol, seg;
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
	bool started;	     /* submitted (or run): not waiting any more */
	struct fapply *next; /* sd->fg.applies, arrival order */
};

static void fapply_work(void *arg)
{
	struct fapply *a = arg;

	a->work(a->arg);
}

static void fapply_start(struct fapply *a);

static void fapply_done(void *arg)
{
	struct fapply *a = arg;
	struct stored *sd = a->sd;
	struct fapply *next = NULL;

	for (struct fapply **p = &sd->fg.applies; *p != NULL; p = &(*p)->next) {
		if (*p == a) {
			*p = a->next;
			break;
		}
	}
	for (struct fapply *w = sd->fg.applies; w != NULL; w = w->next) {
		if (w->vol == a->vol && w->seg == a->seg) {
			next = w; /* the oldest waiting one */
			break;
		}
	}
	a->done(a->arg);
	free(a);
	if (next != NULL) {
		fapply_start(next);
	}
}

/* Submit a, the oldest job of its segment, unless its volume's data is
 * being deleted: then it waits for fapply_resume(). */
static void fapply_start(struct fapply *a)
{
	if (foreign_reclaiming(a->sd, a->vol)) {
		return;
	}
	a->started = true;
	if (work_submit(a->sd, fapply_work, fapply_done, a) != 0) {
		/* Out of memory for the job: run it here rather than lose
		 * it (blocks the loop for one store call). */
		fapply_work(a);
		fapply_done(a);
	}
}

/* The deletion of vol's data ended: start the oldest job of each of its
 * segments (the later ones follow through fapply_done()).  The scan
 * starts over after each start: a job run at once (out of memory) changes
 * the list, and its done callback may start a new deletion of vol. */
static void fapply_resume(struct stored *sd, uint64_t vol)
{
	struct fapply *a = sd->fg.applies;

	while (a != NULL) {
		bool oldest = a->vol == vol && !a->started;

		for (const struct fapply *w = sd->fg.applies; oldest && w != a;
		     w = w->next) {
			oldest = !(w->vol == vol && w->seg == a->seg);
		}
		if (oldest) {
			if (foreign_reclaiming(sd, vol)) {
				return; /* a new deletion resumes them */
			}
			fapply_start(a);
			a = sd->fg.applies;
		} else {
			a = a->next;
		}
	}
}

int foreign_apply(struct stored *sd, uint64_t vol, uint64_t seg,
		  void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
	struct fapply *a = calloc(1, sizeof(*a)), **tail;
	bool busy = false;

	if (a == NULL) {
		return OMBRA_ENOMEM;
	}
	*a = (struct fapply){.sd = sd,
			     .vol = vol,
			     .seg = seg,
			     .work = work,
			     .done = done,
			     .arg = arg};
	for (tail = &sd->fg.applies; *tail != NULL; tail = &(*tail)->next) {
		busy = busy || ((*tail)->vol == vol && (*tail)->seg == seg);
	}
	*tail = a;
	if (!busy) {
		fapply_start(a);
	}
	return 0;
}

/* ------------------------------------------------ metrics */

void foreign_metrics_make(struct stored *sd)
{
	struct metrics_registry *r = sd->reg;
	struct foreign *f = &sd->fg;
	static const char *const kinds[2] = {"kind=\"shadow\"",
					     "kind=\"cache\""};

	if (r == NULL || f->m_capacity != NULL) {
		return;
	}
	for (int k = 0; k < 2; k++) {
		f->m_copies[k] = metrics_gauge(
		    r, "ombra_stored_foreign_copies",
		    "Foreign copies (segments) held here, by kind", kinds[k]);
		f->m_bytes[k] = metrics_gauge(
		    r, "ombra_stored_foreign_bytes",
		    "Bytes of present blocks of foreign copies, by kind",
		    kinds[k]);
	}
	f->m_capacity = metrics_gauge(r, "ombra_stored_cache_capacity_bytes",
				      "Capacity of the cache entries "
				      "(--cache-bytes)",
				      NULL);
	f->m_lag_ms =
	    metrics_gauge(r, "ombra_stored_shadow_max_lag_ms",
			  "Largest lag in ms of a shadow held here", NULL);
	f->m_reads = metrics_counter(r, "ombra_stored_foreign_reads_total",
				     "Reads served from foreign copies", NULL);
	f->m_refused = metrics_counter(
	    r, "ombra_stored_foreign_refused_reads_total",
	    "foreign_ok reads a foreign copy here could not serve", NULL);
	f->m_evicted = metrics_counter(
	    r, "ombra_stored_cache_evictions_total",
	    "Cache entries evicted to make room (least recently used)", NULL);
	f->m_pulled = metrics_counter(r, "ombra_stored_pulled_bytes_total",
				      "Bytes pulled into foreign copies "
				      "(Pull, fill, anti-entropy)",
				      NULL);
}

void foreign_metrics_update(struct stored *sd)
{
	uint64_t n[2] = {0, 0}, bytes[2] = {0, 0}, lag = 0,
		 now = foreign_unix_ms();

	for (size_t i = 0; i < FOREIGN_BUCKETS; i++) {
		for (struct fcent *e = sd->fg.b[i]; e != NULL; e = e->hnext) {
			int k = e->c.kind == FC_CACHE ? 1 : 0;
			uint64_t l = fc_lag_ms(&e->c, now);

			n[k]++;
			bytes[k] +=
			    (uint64_t)e->c.n_present * SEGSTORE_BLOCK_SIZE;
			if (k == 0 && !e->c.filling && l > lag) {
				lag = l;
			}
		}
	}
	for (int k = 0; k < 2; k++) {
		metric_set(sd->fg.m_copies[k], (double)n[k]);
		metric_set(sd->fg.m_bytes[k], (double)bytes[k]);
	}
	metric_set(sd->fg.m_capacity, (double)sd->cfg.cache_bytes);
	metric_set(sd->fg.m_lag_ms, (double)lag);
}
