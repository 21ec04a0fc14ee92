/* propq.c: the propagation queue (propagate.h "queue"): pure logic, no
 * sockets, no clocks of its own.
 *
 * Shapes: a target (node id) has chains, one per (volume, segment); a
 * chain holds its entries in the order they were added, which is the
 * order the primary acknowledged them for this proxy (chain order).  One
 * batch per chain is in flight at a time, so a chain is delivered in
 * order.  A batch is the chain's head entry plus the following entries
 * that continue it (entry.prev_version == previous entry's version, same
 * lease epoch) up to max_batch_writes / max_batch_bytes: a gap (a write by
 * another proxy, a dropped entry) never gets folded into one
 * prev -> version claim.  Blocks are merged in write order: a block
 * wholly written by a later write carries that write's data and version;
 * a block partially written later is invalidated.
 *
 * Every entry is also on its target's age list (oldest first, in flight
 * included) for the oldest-age metric and the drop policy: above
 * max_bytes, the oldest entry not in flight of the target with the most
 * queued bytes goes (as docs/shadows.md says: anti-entropy repairs).
 *
 * A write's data is copied once and shared by its entries (reference
 * count); each entry is charged the data bytes plus PROPQ_ENTRY_COST, so
 * the charged total bounds real memory from above.  CRCs are computed
 * when a batch is built (after the client's acknowledgement) and kept.
 *
 * Lookups are linear scans over targets and a target's chains: the number
 * of chains is bounded by max_bytes / PROPQ_ENTRY_COST, and the common
 * case is a handful of shadow nodes.  Failure: out of memory drops the
 * write (counted). */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "propagate.h"
#include "stored/crc.h"

/* Fixed cost charged per entry besides its data (structs, lists). */
#define PROPQ_ENTRY_COST 256u

struct pq_write {
	unsigned refs;
	struct propq_write w;	     /* data points at copy below */
	uint64_t first_full, n_full; /* whole blocks, volume numbering */
	uint64_t inval[2];
	unsigned n_inval;
	uint8_t *copy;	/* n_full * PROPQ_BLOCK bytes; NULL for zeros */
	uint32_t *crcs; /* n_full, computed on first use */
	uint64_t bytes; /* charged per entry */
};

struct pq_chain;
struct pq_target;

struct pq_entry {
	struct pq_write *w;
	struct pq_chain *c;
	struct pq_entry *next; /* chain order */
	struct pq_entry *age_prev, *age_next;
	uint64_t t_ms;
	bool in_flight;
};

struct pq_chain {
	struct pq_target *t;
	uint64_t volume_id, seg;
	struct pq_entry *head, *tail;
	struct propq_batch *flight; /* batch in flight, or NULL */
	unsigned attempt;
	uint64_t due_ms;
	struct pq_chain *next;
};

struct pq_target {
	struct propq_target_stats s;
	struct pq_chain *chains;
	struct pq_entry *age_head, *age_tail;
	struct pq_target *next;
};

struct pq_flight {
	struct pq_chain *c;
	struct pq_entry *first; /* the batch's entries: first and n after */
	unsigned n;
};

struct propq {
	struct propq_config cfg;
	propq_send_fn send;
	void *ctx;
	struct pq_target *targets;
	uint64_t bytes, entries;
};

/* ------------------------------------------------------------ writes */

static void write_unref(struct pq_write *w)
{
	if (w == NULL || --w->refs > 0)
		return;
	free(w->copy);
	free(w->crcs);
	free(w);
}

/* Copy the whole blocks of the write; note its partial blocks. */
static struct pq_write *write_new(const struct propq_write *in)
{
	struct pq_write *w = calloc(1, sizeof(*w));
	uint64_t end = in->off + in->len;
	uint64_t a0 = (in->off + PROPQ_BLOCK - 1) / PROPQ_BLOCK; /* 1st full */
	uint64_t a1 = end / PROPQ_BLOCK; /* past the last full */

	if (w == NULL)
		return NULL;
	w->refs = 1;
	w->w = *in;
	w->w.data = NULL;
	if (in->len == 0)
		return w;
	if (in->off % PROPQ_BLOCK != 0)
		w->inval[w->n_inval++] = in->off / PROPQ_BLOCK;
	if (end % PROPQ_BLOCK != 0 &&
	    (w->n_inval == 0 || w->inval[0] != end / PROPQ_BLOCK))
		w->inval[w->n_inval++] = end / PROPQ_BLOCK;
	if (a1 > a0) {
		w->first_full = a0;
		w->n_full = a1 - a0;
	}
	if (in->data != NULL && w->n_full > 0) {
		size_t n = (size_t)w->n_full * PROPQ_BLOCK;

		w->copy = malloc(n);
		if (w->copy == NULL) {
			free(w);
			return NULL;
		}
		memcpy(w->copy, in->data + (a0 * PROPQ_BLOCK - in->off), n);
	}
	w->bytes =
	    (w->copy != NULL ? w->n_full * PROPQ_BLOCK : 0) + PROPQ_ENTRY_COST;
	return w;
}

static bool write_crcs(struct pq_write *w)
{
	if (w->crcs != NULL || w->n_full == 0)
		return true;
	w->crcs = malloc(w->n_full * sizeof(*w->crcs));
	if (w->crcs == NULL)
		return false;
	for (uint64_t i = 0; i < w->n_full; i++)
		w->crcs[i] = crc_block(
		    w->copy != NULL ? w->copy + i * PROPQ_BLOCK : NULL,
		    w->w.volume_id, w->first_full + i, w->w.version);
	return true;
}

/* ------------------------------------------------------------ lookup */

static struct pq_target *target_get(struct propq *q, uint64_t node)
{
	struct pq_target *t;

	for (t = q->targets; t != NULL; t = t->next)
		if (t->s.node == node)
			return t;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->s.node = node;
	t->next = q->targets;
	q->targets = t;
	return t;
}

static struct pq_chain *chain_get(struct pq_target *t, uint64_t vol,
				  uint64_t seg)
{
	struct pq_chain *c;

	for (c = t->chains; c != NULL; c = c->next)
		if (c->volume_id == vol && c->seg == seg)
			return c;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->t = t;
	c->volume_id = vol;
	c->seg = seg;
	c->next = t->chains;
	t->chains = c;
	return c;
}

/* node's chain of (volume_id, seg), or NULL. */
static struct pq_chain *chain_find(const struct propq *q, uint64_t node,
				   uint64_t volume_id, uint64_t seg)
{
	const struct pq_target *t;
	struct pq_chain *c;

	for (t = q->targets; t != NULL && t->s.node != node; t = t->next)
		;
	for (c = t != NULL ? t->chains : NULL; c != NULL; c = c->next)
		if (c->volume_id == volume_id && c->seg == seg)
			return c;
	return NULL;
}

bool propq_pending(const struct propq *q, uint64_t node, uint64_t volume_id,
		   uint64_t seg, uint64_t version, uint64_t now_ms)
{
	const struct pq_chain *c = chain_find(q, node, volume_id, seg);

	if (c == NULL)
		return false;
	if (c->flight == NULL && c->attempt > 0 && c->due_ms > now_ms)
		return false; /* backing off: not soon */
	for (const struct pq_entry *e = c->head; e != NULL; e = e->next)
		if (e->w->w.version >= version)
			return true;
	return false;
}

bool propq_hurry(struct propq *q, uint64_t node, uint64_t volume_id,
		 uint64_t seg, uint64_t now_ms)
{
	struct pq_chain *c = chain_find(q, node, volume_id, seg);

	if (c == NULL || c->flight != NULL || c->attempt > 0 ||
	    c->head == NULL || c->due_ms <= now_ms)
		return false;
	c->due_ms = now_ms;
	return true;
}

/* Free a chain with nothing queued and nothing in flight. */
static void chain_maybe_free(struct pq_chain *c)
{
	struct pq_chain **pp;

	if (c->head != NULL || c->flight != NULL)
		return;
	for (pp = &c->t->chains; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	free(c);
}

/* ------------------------------------------------------------ entries */

static void age_unlink(struct pq_target *t, struct pq_entry *e)
{
	if (e->age_prev != NULL)
		e->age_prev->age_next = e->age_next;
	else
		t->age_head = e->age_next;
	if (e->age_next != NULL)
		e->age_next->age_prev = e->age_prev;
	else
		t->age_tail = e->age_prev;
	t->s.oldest_ms = t->age_head != NULL ? t->age_head->t_ms : 0;
}

/* Remove e (queued or in flight) from every list and free it; the chain
 * list must have been fixed by the caller. */
static void entry_free(struct propq *q, struct pq_entry *e, bool sent)
{
	struct pq_target *t = e->c->t;

	age_unlink(t, e);
	t->s.queued_writes--;
	t->s.queued_bytes -= e->w->bytes;
	if (sent)
		t->s.sent_writes++;
	else
		t->s.dropped_writes++;
	q->bytes -= e->w->bytes;
	q->entries--;
	write_unref(e->w);
	free(e);
}

/* Drop the oldest queued entry of the target with the most queued bytes
 * not in flight.  Returns false if nothing can be dropped. */
static bool drop_one(struct propq *q)
{
	struct pq_target *best = NULL;
	struct pq_entry *victim = NULL;

	for (struct pq_target *t = q->targets; t != NULL; t = t->next) {
		struct pq_entry *e = t->age_head;

		while (e != NULL && e->in_flight)
			e = e->age_next;
		if (e == NULL)
			continue;
		if (best == NULL || t->s.queued_bytes > best->s.queued_bytes) {
			best = t;
			victim = e;
		}
	}
	if (victim == NULL)
		return false;
	/* Unlink from its chain (not in flight: somewhere in the queued
	 * part of the chain). */
	{
		struct pq_chain *c = victim->c;
		struct pq_entry **pp = &c->head, *prev = NULL;

		while (*pp != victim) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = victim->next;
		if (c->tail == victim)
			c->tail = prev;
		entry_free(q, victim, false);
		chain_maybe_free(c);
	}
	return true;
}

static void enforce_bound(struct propq *q)
{
	while (q->bytes > q->cfg.max_bytes && drop_one(q))
		;
}

unsigned propq_add(struct propq *q, const struct propq_write *in,
		   const uint64_t *targets, unsigned n, uint64_t now_ms)
{
	struct pq_write *w;
	unsigned queued = 0;

	if (n == 0)
		return 0;
	w = write_new(in);
	for (unsigned i = 0; i < n; i++) {
		struct pq_target *t;
		struct pq_chain *c;
		struct pq_entry *e;
		unsigned j;

		for (j = 0; j < i && targets[j] != targets[i]; j++)
			;
		if (j < i || targets[i] == 0)
			continue;
		t = target_get(q, targets[i]);
		if (t == NULL)
			continue;
		if (w == NULL) {
			t->s.dropped_writes++;
			continue;
		}
		c = chain_get(t, in->volume_id, in->seg);
		e = c != NULL ? calloc(1, sizeof(*e)) : NULL;
		if (e == NULL) {
			t->s.dropped_writes++;
			continue;
		}
		e->w = w;
		w->refs++;
		e->c = c;
		e->t_ms = now_ms;
		if (c->tail != NULL) {
			c->tail->next = e;
		} else {
			c->head = e;
			/* Linger (not over a backoff, not behind a flight:
			 * what queues during a flight goes when it ends). */
			if (c->flight == NULL &&
			    c->due_ms < now_ms + q->cfg.linger_ms)
				c->due_ms = now_ms + q->cfg.linger_ms;
		}
		c->tail = e;
		e->age_prev = t->age_tail;
		if (t->age_tail != NULL)
			t->age_tail->age_next = e;
		else
			t->age_head = e;
		t->age_tail = e;
		t->s.oldest_ms = t->age_head->t_ms;
		t->s.queued_writes++;
		t->s.queued_bytes += w->bytes;
		q->bytes += w->bytes;
		q->entries++;
		queued++;
	}
	write_unref(w);
	enforce_bound(q);
	return queued;
}

/* ------------------------------------------------------------ batches */

static void batch_free(struct propq_batch *b)
{
	if (b == NULL)
		return;
	free(b->priv);
	free(b->blocks);
	free(b->invalidate);
	free(b);
}

/* How many entries from the chain's head go into one batch. */
static unsigned batch_span(const struct propq *q, const struct pq_chain *c)
{
	const struct pq_entry *e = c->head;
	uint64_t bytes = e->w->bytes;
	unsigned n = 1;

	for (const struct pq_entry *x = e->next; x != NULL; x = x->next) {
		const struct pq_write *p = e->w, *w = x->w;

		if (n >= q->cfg.max_batch_writes ||
		    bytes + w->bytes > q->cfg.max_batch_bytes ||
		    w->w.prev_version == 0 ||
		    w->w.prev_version != p->w.version ||
		    w->w.lease_epoch != p->w.lease_epoch)
			break;
		bytes += w->bytes;
		n++;
		e = x;
	}
	return n;
}

/* Build the merged batch of the chain's first n entries. */
static struct propq_batch *batch_build(struct pq_chain *c, unsigned n)
{
	struct propq_batch *b = calloc(1, sizeof(*b));
	struct pq_flight *f = calloc(1, sizeof(*f));
	const struct pq_write *w0 = c->head->w, *wl = w0;
	uint64_t seg_blocks = w0->w.seg_size / PROPQ_BLOCK;
	uint64_t base = c->seg * seg_blocks; /* first block of the segment */
	/* per block of the segment: 0 untouched, -1 invalidated, k+1 =
	 * wholly written by the batch's k-th write */
	int32_t *own = NULL;
	const struct pq_write **ws = NULL;
	const struct pq_entry *e;
	unsigned k;
	size_t nb = 0, ni = 0;

	if (b == NULL || f == NULL || seg_blocks == 0 ||
	    (own = calloc(seg_blocks, sizeof(*own))) == NULL)
		goto oom;
	for (e = c->head, k = 0; k < n; e = e->next, k++) {
		struct pq_write *w = e->w;

		if (!write_crcs(w))
			goto oom;
		for (uint64_t i = 0; i < w->n_full; i++) {
			uint64_t bi = w->first_full + i - base;

			if (bi < seg_blocks)
				own[bi] = (int32_t)k + 1;
		}
		for (unsigned i = 0; i < w->n_inval; i++) {
			uint64_t bi = w->inval[i] - base;

			if (bi < seg_blocks)
				own[bi] = -1;
		}
		b->bytes += w->bytes;
		wl = w;
	}
	for (uint64_t i = 0; i < seg_blocks; i++) {
		if (own[i] > 0)
			nb++;
		else if (own[i] < 0)
			ni++;
	}
	b->blocks = nb ? calloc(nb, sizeof(*b->blocks)) : NULL;
	b->invalidate = ni ? calloc(ni, sizeof(*b->invalidate)) : NULL;
	if ((nb && b->blocks == NULL) || (ni && b->invalidate == NULL))
		goto oom;
	/* The writes of the batch, by position. */
	ws = calloc(n, sizeof(*ws));
	if (ws == NULL)
		goto oom;
	for (e = c->head, k = 0; k < n; e = e->next, k++)
		ws[k] = e->w;
	{
		for (uint64_t i = 0; i < seg_blocks; i++) {
			if (own[i] > 0) {
				const struct pq_write *w = ws[own[i] - 1];
				uint64_t j = base + i - w->first_full;
				struct propq_block *pb =
				    &b->blocks[b->n_blocks++];

				pb->index = base + i;
				pb->version = w->w.version;
				pb->data = w->copy != NULL
					       ? w->copy + j * PROPQ_BLOCK
					       : NULL;
				pb->crc32c = w->crcs[j];
			} else if (own[i] < 0) {
				b->invalidate[b->n_invalidate++] = base + i;
			}
		}
	}
	free(own);
	free(ws);
	b->node = c->t->s.node;
	b->volume_id = c->volume_id;
	b->seg = c->seg;
	b->seg_size = w0->w.seg_size;
	b->lease_epoch = wl->w.lease_epoch;
	b->primary_node_id = wl->w.primary_node_id;
	b->version = wl->w.version;
	b->prev_version =
	    w0->w.prev_version != 0 ? w0->w.prev_version : wl->w.version;
	b->acked_unix_ms = wl->w.acked_unix_ms;
	b->n_writes = n;
	f->c = c;
	f->first = c->head;
	f->n = n;
	b->priv = f;
	return b;
oom:
	free(own);
	free(ws);
	free(f);
	if (b != NULL)
		b->priv = NULL;
	batch_free(b);
	return NULL;
}

static uint64_t backoff_ms(const struct propq *q, unsigned attempt)
{
	uint64_t d = q->cfg.backoff_min_ms;

	for (unsigned i = 1; i < attempt && d < q->cfg.backoff_max_ms; i++)
		d *= 2;
	return d < q->cfg.backoff_max_ms ? d : q->cfg.backoff_max_ms;
}

static void flight_end(struct propq *q, struct propq_batch *b,
		       enum propq_outcome o, uint64_t now_ms);

/* Start the chain's next batch (chain idle, head != NULL, due). */
static void chain_send(struct propq *q, struct pq_chain *c, uint64_t now_ms)
{
	unsigned n = batch_span(q, c);
	struct propq_batch *b = batch_build(c, n);
	struct pq_entry *e;
	unsigned k;

	if (b == NULL) {
		/* Out of memory now: try again after a backoff. */
		c->attempt++;
		c->due_ms = now_ms + backoff_ms(q, c->attempt);
		return;
	}
	for (e = c->head, k = 0; k < n; e = e->next, k++)
		e->in_flight = true;
	c->flight = b;
	c->t->s.inflight_batches++;
	if (q->send(q->ctx, b) != 0)
		flight_end(q, b, PROPQ_RETRY, now_ms);
}

uint64_t propq_kick(struct propq *q, uint64_t now_ms)
{
	uint64_t next = UINT64_MAX;

	for (struct pq_target *t = q->targets; t != NULL; t = t->next) {
		struct pq_chain *c, *cn;

		for (c = t->chains; c != NULL; c = cn) {
			cn = c->next;
			if (c->flight != NULL || c->head == NULL)
				continue;
			if (c->due_ms > now_ms) {
				if (c->due_ms < next)
					next = c->due_ms;
				continue;
			}
			chain_send(q, c, now_ms);
			/* Could not build (out of memory) or failed to start
			 * and was put back: it waits for its backoff. */
			if (c->flight == NULL && c->head != NULL &&
			    c->due_ms < next)
				next = c->due_ms;
		}
	}
	return next;
}

/* End b's flight: the outcome applied to its chain (no drops here, so a
 * caller walking chains keeps valid pointers except to this chain). */
static void flight_end(struct propq *q, struct propq_batch *b,
		       enum propq_outcome o, uint64_t now_ms)
{
	struct pq_flight *f = b->priv;
	struct pq_chain *c = f->c;

	c->flight = NULL;
	c->t->s.inflight_batches--;
	if (o == PROPQ_RETRY) {
		struct pq_entry *e = c->head;

		for (unsigned k = 0; k < f->n && e != NULL; k++, e = e->next)
			e->in_flight = false;
		c->attempt++;
		c->due_ms = now_ms + backoff_ms(q, c->attempt);
	} else {
		/* The batch's entries are the chain's first n (drops never
		 * touch entries in flight). */
		for (unsigned k = 0; k < f->n && c->head != NULL; k++) {
			struct pq_entry *e = c->head;

			c->head = e->next;
			if (c->tail == e)
				c->tail = NULL;
			entry_free(q, e, o == PROPQ_OK);
		}
		c->attempt = 0;
		c->due_ms = 0;
	}
	batch_free(b);
	chain_maybe_free(c);
}

void propq_done(struct propq *q, struct propq_batch *b, enum propq_outcome o,
		uint64_t now_ms)
{
	flight_end(q, b, o, now_ms);
	/* Retried entries may be dropped now if the bound was passed while
	 * they were in flight. */
	enforce_bound(q);
}

/* ------------------------------------------------------------ life */

int propq_create(const struct propq_config *cfg, propq_send_fn send, void *ctx,
		 struct propq **out)
{
	struct propq *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return OMBRA_ENOMEM;
	q->cfg = *cfg;
	if (q->cfg.max_batch_writes == 0)
		q->cfg.max_batch_writes = 1;
	if (q->cfg.backoff_min_ms == 0)
		q->cfg.backoff_min_ms = 1;
	if (q->cfg.backoff_max_ms < q->cfg.backoff_min_ms)
		q->cfg.backoff_max_ms = q->cfg.backoff_min_ms;
	q->send = send;
	q->ctx = ctx;
	*out = q;
	return 0;
}

void propq_destroy(struct propq *q)
{
	struct pq_target *t, *tn;

	if (q == NULL)
		return;
	for (t = q->targets; t != NULL; t = tn) {
		struct pq_chain *c, *cn;
		struct pq_entry *e, *en;

		tn = t->next;
		for (e = t->age_head; e != NULL; e = en) {
			en = e->age_next;
			write_unref(e->w);
			free(e);
		}
		for (c = t->chains; c != NULL; c = cn) {
			cn = c->next;
			batch_free(c->flight);
			free(c);
		}
		free(t);
	}
	free(q);
}

/* ------------------------------------------------------------ stats */

void propq_targets(const struct propq *q,
		   void (*fn)(void *arg, const struct propq_target_stats *s),
		   void *arg)
{
	for (const struct pq_target *t = q->targets; t != NULL; t = t->next)
		fn(arg, &t->s);
}

void propq_volumes(const struct propq *q,
		   void (*fn)(void *arg, uint64_t volume_id,
			      uint64_t oldest_ms),
		   void *arg)
{
	/* Few volumes are written at once: collect (volume, oldest) pairs
	 * in a small growing array. */
	struct {
		uint64_t vol, oldest;
	} *v = NULL;
	size_t n = 0, cap = 0;

	for (const struct pq_target *t = q->targets; t != NULL; t = t->next)
		for (const struct pq_chain *c = t->chains; c != NULL;
		     c = c->next) {
			size_t i;

			if (c->head == NULL)
				continue;
			for (i = 0; i < n && v[i].vol != c->volume_id; i++)
				;
			if (i == n) {
				if (n == cap) {
					size_t nc = cap ? cap * 2 : 8;
					void *nv = realloc(v, nc * sizeof(*v));

					if (nv == NULL)
						continue;
					v = nv;
					cap = nc;
				}
				v[n].vol = c->volume_id;
				v[n].oldest = c->head->t_ms;
				n++;
			} else if (c->head->t_ms < v[i].oldest) {
				v[i].oldest = c->head->t_ms;
			}
		}
	for (size_t i = 0; i < n; i++)
		fn(arg, v[i].vol, v[i].oldest);
	free(v);
}

uint64_t propq_bytes(const struct propq *q)
{
	return q->bytes;
}

uint64_t propq_entries(const struct propq *q)
{
	return q->entries;
}
