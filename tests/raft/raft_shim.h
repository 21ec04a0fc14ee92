/* raft_shim.h: a raft_io wrapper for the Raft fixture tests, included by
 * test_raft_fixture.c only (static functions, one translation unit).  It
 * wraps each member's in-memory fixture I/O before raft_start() to work
 * around defects of Debian's libraft 0.15 and to inject disk faults.
 *
 * Failure: the wrappers pass libraft's and the fixture's return codes
 * through; an injected fault returns RAFT_IOERR.  A lookup of an io that
 * was never wrapped is a harness bug and aborts. */
#ifndef OMBRA_TESTS_RAFT_SHIM_H
#define OMBRA_TESTS_RAFT_SHIM_H

#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "metad/raft_guard.h"

/* What the shim does:
 *
 * 1. Log-matching guard: the daemon's own metad/raft_guard.c (two
 *    libraft 0.15 defects, described there) is installed on top of the
 *    shim, so the tests run the exact code ombra-metad runs.
 *    OMBRA_RAFT_NO_GUARD=1 runs without it, to reproduce the defects.
 *
 * 2. Fixture truncate offset (a bug of the in-memory raft_fixture I/O
 *    only).  After an installed snapshot the fixture drops its persisted
 *    entries, so its array starts at snapshot index + 1, but its truncate
 *    still assumes the array starts at index 1 and copies past its end.
 *    The shim tracks the first persisted index and translates truncate().
 *
 * 3. Disk faults (a workaround too: libraft 0.15 crashes on some of the
 *    fixture's own).  raft_fixture_io_fault() fails whichever I/O call comes
 *    next, and libraft 0.15 double-frees the entries of an AppendEntries
 *    whose follower-side append() fails synchronously (recvCb frees the
 *    batch that replicationAppend's error path already released).  The shim
 *    injects the same countdown/repeat faults itself, into the calls whose
 *    failure libraft handles: append on a leader (raft_apply() then fails:
 *    a transient fault), and set_term, set_vote and truncate (libraft then
 *    turns unavailable for good: a crash without restart).  Follower
 *    appends are left alone.
 */

struct trf_shim {
	struct raft_io *io; /* wrapped, owned by the fixture */
	bool guarded;	    /* workaround 1 installed */
	struct raft_guard guard;
	int (*truncate)(struct raft_io *io, raft_index index);
	int (*snapshot_put)(struct raft_io *io, unsigned trailing,
			    struct raft_io_snapshot_put *req,
			    const struct raft_snapshot *snapshot,
			    raft_io_snapshot_put_cb cb);
	int (*append)(struct raft_io *io, struct raft_io_append *req,
		      const struct raft_entry entries[], unsigned n,
		      raft_io_append_cb cb);
	int (*set_term)(struct raft_io *io, raft_term term);
	int (*set_vote)(struct raft_io *io, raft_id server_id);
	struct raft *raft;   /* the member whose io this is */
	int fault_countdown; /* calls left before failing; -1 = off */
	int fault_repeat;    /* failures left once triggered */
	bool fault_any;	     /* false: only leader appends fail */
	raft_index first;    /* index of the fixture's first stored entry */
	struct raft_io_snapshot_put *install; /* pending install, or NULL */
	raft_index install_index;
	raft_io_snapshot_put_cb install_cb; /* raft's */
};

/* The io callbacks only get the raft_io, whose data and impl belong to raft
 * and the fixture: find our shim by address (one cluster at a time). */
static struct trf_shim *trf_shims[RAFT_FIXTURE_MAX_SERVERS];

static struct trf_shim *trf_shim_of(const struct raft_io *io)
{
	unsigned i;

	for (i = 0; i < RAFT_FIXTURE_MAX_SERVERS; i++) {
		if (trf_shims[i] != NULL && trf_shims[i]->io == io) {
			return trf_shims[i];
		}
	}
	abort(); /* a raft_io we never wrapped: harness bug */
}

/* Arm a fault: the call after `countdown` more fault-able calls fails,
 * and so do the `repeat` - 1 after it; any: also the calls whose failure
 * makes libraft unavailable.  countdown -1 disarms. */
static void trf_shim_fault_arm(struct trf_shim *g, int countdown, int repeat,
			       bool any)
{
	g->fault_countdown = countdown;
	g->fault_repeat = repeat;
	g->fault_any = any;
}

/* Same semantics as the fixture's own fault counter. */
static bool trf_shim_fault_tick(struct trf_shim *g)
{
	if (g->fault_countdown < 0) {
		return false;
	}
	if (g->fault_countdown > 0) {
		g->fault_countdown--;
		return false;
	}
	if (g->fault_repeat > 0) {
		g->fault_repeat--;
		return true;
	}
	g->fault_countdown = -1;
	return false;
}

static int trf_shim_append(struct raft_io *io, struct raft_io_append *req,
			   const struct raft_entry entries[], unsigned n,
			   raft_io_append_cb cb)
{
	struct trf_shim *g = trf_shim_of(io);

	if (raft_state(g->raft) == RAFT_LEADER && trf_shim_fault_tick(g)) {
		return RAFT_IOERR;
	}
	return g->append(io, req, entries, n, cb);
}

static int trf_shim_set_term(struct raft_io *io, raft_term term)
{
	struct trf_shim *g = trf_shim_of(io);

	if (g->fault_any && trf_shim_fault_tick(g)) {
		return RAFT_IOERR;
	}
	return g->set_term(io, term);
}

static int trf_shim_set_vote(struct raft_io *io, raft_id server_id)
{
	struct trf_shim *g = trf_shim_of(io);

	if (g->fault_any && trf_shim_fault_tick(g)) {
		return RAFT_IOERR;
	}
	return g->set_vote(io, server_id);
}

/* raft asks to drop entries >= index; the fixture counts from 1. */
static int trf_shim_truncate(struct raft_io *io, raft_index index)
{
	struct trf_shim *g = trf_shim_of(io);

	if (g->install == NULL && g->fault_any && trf_shim_fault_tick(g)) {
		return RAFT_IOERR;
	}
	if (g->install != NULL || index < g->first) {
		/* The fixture's own "drop everything" while installing. */
		return g->truncate(io, index);
	}
	return g->truncate(io, index - g->first + 1);
}

static void trf_shim_install_cb(struct raft_io_snapshot_put *req, int status)
{
	struct trf_shim *g = NULL;
	raft_io_snapshot_put_cb cb;
	unsigned i;

	for (i = 0; i < RAFT_FIXTURE_MAX_SERVERS && g == NULL; i++) {
		if (trf_shims[i] != NULL && trf_shims[i]->install == req) {
			g = trf_shims[i];
		}
	}
	if (g == NULL) {
		abort(); /* a request we never wrapped: harness bug */
	}
	if (status == 0) {
		g->first = g->install_index + 1;
	}
	cb = g->install_cb;
	g->install = NULL;
	cb(req, status);
}

static int trf_shim_snapshot_put(struct raft_io *io, unsigned trailing,
				 struct raft_io_snapshot_put *req,
				 const struct raft_snapshot *snapshot,
				 raft_io_snapshot_put_cb cb)
{
	struct trf_shim *g = trf_shim_of(io);
	int rv;

	if (trailing != 0) {
		/* A local snapshot: the fixture keeps its entries. */
		return g->snapshot_put(io, trailing, req, snapshot, cb);
	}
	g->install = req;
	g->install_index = snapshot->index;
	g->install_cb = cb;
	rv = g->snapshot_put(io, trailing, req, snapshot, trf_shim_install_cb);
	if (rv != 0) {
		g->install = NULL;
	}
	return rv;
}

/* Wrap r's io in g (caller storage that must outlive r; before
 * raft_start()).  slot: the member's index, < RAFT_FIXTURE_MAX_SERVERS.
 * guard: enable the log-matching guard. */
static void trf_shim_install(struct trf_shim *g, unsigned slot, struct raft *r,
			     bool guard)
{
	struct raft_io *io = r->io;

	memset(g, 0, sizeof *g);
	g->io = io;
	g->raft = r;
	g->fault_countdown = -1;
	g->append = io->append;
	g->set_term = io->set_term;
	g->set_vote = io->set_vote;
	io->append = trf_shim_append;
	io->set_term = trf_shim_set_term;
	io->set_vote = trf_shim_set_vote;
	g->first = 1;
	g->truncate = io->truncate;
	g->snapshot_put = io->snapshot_put;
	io->truncate = trf_shim_truncate;
	io->snapshot_put = trf_shim_snapshot_put;
	trf_shims[slot] = g;
	if (guard && raft_guard_install(&g->guard, io, r) == 0)
		g->guarded = true;
}

/* Forget g (after raft_fixture_close()); the io it wrapped is gone. */
static void trf_shim_remove(struct trf_shim *g)
{
	unsigned i;

	for (i = 0; i < RAFT_FIXTURE_MAX_SERVERS; i++) {
		if (trf_shims[i] == g) {
			trf_shims[i] = NULL;
		}
	}
	if (g->guarded)
		raft_guard_remove(&g->guard);
}

#endif
