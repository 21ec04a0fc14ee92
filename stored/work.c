/* work.c: small shared pieces of the ombra-stored daemon: thread-pool
 * jobs, the per-segment state table, the cache of channels to other
 * storage nodes, and the in-flight call count that shutdown waits on.
 * All loop-thread only except the job body.  Failure: OMBRA_ENOMEM or a
 * NULL result with a message; never aborts. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "stored.h"

struct job {
	uv_work_t w;
	void (*fn)(void *arg);
	void (*done)(void *arg);
	void *arg;
};

static void job_run(uv_work_t *w)
{
	struct job *j = w->data;

	j->fn(j->arg);
}

static void job_done(uv_work_t *w, int status)
{
	struct job *j = w->data;

	(void)status; /* never cancelled: uv_cancel is not used */
	j->done(j->arg);
	free(j);
}

int work_submit(struct stored *sd, void (*fn)(void *arg),
		void (*done)(void *arg), void *arg)
{
	struct job *j = malloc(sizeof(*j));

	if (j == NULL) {
		return OMBRA_ENOMEM;
	}
	j->w.data = j;
	j->fn = fn;
	j->done = done;
	j->arg = arg;
	if (uv_queue_work(sd->loop, &j->w, job_run, job_done) != 0) {
		free(j);
		return OMBRA_ENOMEM;
	}
	return 0;
}

/* ------------------------------------------------ segment table */

static size_t seg_hash(uint64_t vol, uint64_t seg, size_t nb)
{
	uint64_t h =
	    vol * 0x9E3779B97F4A7C15ULL ^ (seg + 0x632BE59BD9B4E019ULL);

	h ^= h >> 29;
	return (size_t)(h % nb);
}

struct segstate *segtab_find(struct segtab *t, uint64_t vol, uint64_t seg)
{
	if (t->nb == 0) {
		return NULL;
	}
	for (struct segstate *s = t->b[seg_hash(vol, seg, t->nb)]; s != NULL;
	     s = s->hnext) {
		if (s->vol == vol && s->seg == seg) {
			return s;
		}
	}
	return NULL;
}

static int segtab_grow(struct segtab *t)
{
	size_t nb = t->nb == 0 ? 256 : t->nb * 2;
	struct segstate **b = calloc(nb, sizeof(*b));

	if (b == NULL) {
		return OMBRA_ENOMEM;
	}
	for (size_t i = 0; i < t->nb; i++) {
		while (t->b[i] != NULL) {
			struct segstate *s = t->b[i];
			size_t h = seg_hash(s->vol, s->seg, nb);

			t->b[i] = s->hnext;
			s->hnext = b[h];
			b[h] = s;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
	return 0;
}

struct segstate *segtab_get(struct segtab *t, uint64_t vol, uint64_t seg)
{
	struct segstate *s = segtab_find(t, vol, seg);
	size_t h;

	if (s != NULL) {
		return s;
	}
	if (t->count >= t->nb && segtab_grow(t) != 0) {
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return NULL;
	}
	s->vol = vol;
	s->seg = seg;
	h = seg_hash(vol, seg, t->nb);
	s->hnext = t->b[h];
	t->b[h] = s;
	t->count++;
	return s;
}

void segtab_drop_volume(struct segtab *t, uint64_t vol)
{
	for (size_t i = 0; i < t->nb; i++) {
		struct segstate **p = &t->b[i];

		while (*p != NULL) {
			struct segstate *s = *p;

			if (s->vol == vol && !s->busy && s->q_head == NULL) {
				*p = s->hnext;
				free(s);
				t->count--;
			} else {
				p = &s->hnext;
			}
		}
	}
}

void segtab_free(struct segtab *t)
{
	for (size_t i = 0; i < t->nb; i++) {
		while (t->b[i] != NULL) {
			struct segstate *s = t->b[i];

			t->b[i] = s->hnext;
			free(s);
		}
	}
	free(t->b);
	*t = (struct segtab){0};
}

/* ------------------------------------------------ peers */

struct rpc_channel *peer_channel(struct stored *sd, const char *address,
				 char *errmsg)
{
	struct peer *p;

	if (sd->stopping) {
		ombra_errmsg_printf(errmsg, "shutting down");
		return NULL;
	}
	if (address == NULL || address[0] == '\0') {
		ombra_errmsg_printf(errmsg, "node has no address");
		return NULL;
	}
	for (p = sd->peers; p != NULL; p = p->next) {
		if (strcmp(p->address, address) == 0) {
			return p->ch;
		}
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL || (p->address = strdup(address)) == NULL) {
		free(p);
		ombra_errmsg_printf(errmsg, "out of memory");
		return NULL;
	}
	if (rpc_channel_create(sd->loop, address, sd->use_tls ? &sd->tls : NULL,
			       &p->ch, errmsg) != 0) {
		free(p->address);
		free(p);
		return NULL;
	}
	p->created_ms = stored_now(sd);
	p->next = sd->peers;
	sd->peers = p;
	return p->ch;
}

void peer_failed(struct stored *sd, uint64_t id, grpc_status_code code)
{
	const char *addr = stored_node_address(sd, id);

	if (code != GRPC_STATUS_UNAVAILABLE || addr == NULL) {
		return;
	}
	for (struct peer **pp = &sd->peers; *pp != NULL; pp = &(*pp)->next) {
		struct peer *p = *pp;

		if (strcmp(p->address, addr) != 0) {
			continue;
		}
		if (stored_now(sd) - p->created_ms >= STORED_RECONNECT_MS) {
			*pp = p->next;
			rpc_channel_close(p->ch, NULL, NULL);
			free(p->address);
			free(p);
		}
		return;
	}
}

void peers_close(struct stored *sd)
{
	while (sd->peers != NULL) {
		struct peer *p = sd->peers;

		sd->peers = p->next;
		rpc_channel_close(p->ch, NULL, NULL);
		free(p->address);
		free(p);
	}
}

const char *stored_node_address(struct stored *sd, uint64_t id)
{
	for (struct sm_volume *v = sd->maps.head; v != NULL; v = v->next) {
		const struct sm_node *n = sm_volume_node(v, id);

		if (n != NULL && n->address[0] != '\0') {
			return n->address;
		}
	}
	return NULL;
}

/* ------------------------------------------------ in-flight calls */

void stored_call_begin(struct stored *sd)
{
	sd->inflight++;
}

void stored_call_end(struct stored *sd)
{
	if (--sd->inflight == 0 && sd->on_drained != NULL) {
		void (*cb)(struct stored *) = sd->on_drained;

		sd->on_drained = NULL;
		cb(sd);
	}
}
