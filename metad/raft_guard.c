/* raft_guard.c: the libraft 0.15 log-matching workarounds described in
 * raft_guard.h.  The io callbacks only carry the raft_io (whose data and
 * impl belong to raft and the io), so guards are found through a small
 * registry keyed by the io's address.
 *
 * Failure: a receive for an io without a guard cannot happen (start is only
 * wrapped through install); it is forwarded nowhere and aborts, as a bug. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "metad/raft_guard.h"

static struct raft_guard *guards[RAFT_GUARD_MAX];

static struct raft_guard *guard_of(const struct raft_io *io)
{
	for (int i = 0; i < RAFT_GUARD_MAX; i++)
		if (guards[i] != NULL && guards[i]->io == io)
			return guards[i];
	abort(); /* an io we never wrapped: a bug */
}

/* Workaround 2: trim what the local snapshot already covers.  Received
 * entries share one batch (entries[0].batch), owned with the array by
 * whoever handles the message. */
static void skip_snapshotted(struct raft_guard *g,
			     struct raft_append_entries *ae)
{
	raft_index snap = g->raft->log.snapshot.last_index;
	if (snap == 0 || ae->prev_log_index >= snap)
		return;
	raft_index covered = snap - ae->prev_log_index;
	if (covered >= ae->n_entries) {
		if (ae->n_entries > 0) {
			raft_free(ae->entries[0].batch);
			raft_free(ae->entries);
		}
		ae->entries = NULL;
		ae->n_entries = 0;
	} else {
		unsigned n_rest = ae->n_entries - (unsigned)covered;
		struct raft_entry *rest = raft_malloc(n_rest * sizeof(*rest));
		if (rest == NULL)
			return; /* libraft rejects it; the leader retries */
		memcpy(rest, ae->entries + covered, n_rest * sizeof(*rest));
		raft_free(ae->entries);
		ae->entries = rest;
		ae->n_entries = n_rest;
	}
	ae->prev_log_index = snap;
	ae->prev_log_term = g->raft->log.snapshot.last_term;
	g->adjusted++;
}

/* Workaround 3: a follower that has not heard from its leader for a whole
 * election timeout treats a vote request as allowed to disrupt it. */
static void allow_vote_after_silence(struct raft_guard *g,
				     struct raft_request_vote *rv)
{
	struct raft *r = g->raft;
	if (rv->disrupt_leader || raft_state(r) != RAFT_FOLLOWER)
		return;
	raft_time now = r->io->time(r->io);
	if (now - r->election_timer_start >= r->election_timeout) {
		rv->disrupt_leader = true;
		g->adjusted++;
	}
}

static void guard_recv(struct raft_io *io, struct raft_message *m)
{
	struct raft_guard *g = guard_of(io);
	if (m->type == RAFT_IO_REQUEST_VOTE)
		allow_vote_after_silence(g, &m->request_vote);
	if (m->type == RAFT_IO_APPEND_ENTRIES) {
		struct raft_append_entries *ae = &m->append_entries;
		skip_snapshotted(g, ae);
		raft_index end = ae->prev_log_index + ae->n_entries;
		if (ae->leader_commit > end) { /* workaround 1, commit side */
			ae->leader_commit = end;
			g->adjusted++;
		}
		g->in_append = true;
		g->append_end = end;
	}
	g->recv(io, m);
	g->in_append = false;
}

static int guard_send(struct raft_io *io, struct raft_io_send *req,
		      const struct raft_message *m, raft_io_send_cb cb)
{
	struct raft_guard *g = guard_of(io);
	/* Workaround 1, result side: libraft answers an AppendEntries
	 * synchronously from inside recv. */
	if (g->in_append && m->type == RAFT_IO_APPEND_ENTRIES_RESULT &&
	    m->append_entries_result.rejected == 0 &&
	    m->append_entries_result.last_log_index > g->append_end) {
		struct raft_message copy = *m;
		copy.append_entries_result.last_log_index = g->append_end;
		g->adjusted++;
		return g->send(io, req, &copy, cb);
	}
	return g->send(io, req, m, cb);
}

static int guard_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		       raft_io_recv_cb recv)
{
	struct raft_guard *g = guard_of(io);
	g->recv = recv;
	return g->start(io, msecs, tick, guard_recv);
}

int raft_guard_install(struct raft_guard *g, struct raft_io *io, struct raft *r)
{
	int slot = -1;
	for (int i = 0; i < RAFT_GUARD_MAX && slot < 0; i++)
		if (guards[i] == NULL)
			slot = i;
	if (slot < 0)
		return OMBRA_ENOMEM;
	memset(g, 0, sizeof(*g));
	g->io = io;
	g->raft = r;
	g->start = io->start;
	g->send = io->send;
	io->start = guard_start;
	io->send = guard_send;
	guards[slot] = g;
	return 0;
}

void raft_guard_remove(struct raft_guard *g)
{
	for (int i = 0; i < RAFT_GUARD_MAX; i++)
		if (guards[i] == g)
			guards[i] = NULL;
}
