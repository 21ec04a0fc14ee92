/* raft_guard.h: a raft_io wrapper that works around two log-matching
 * defects of libraft 0.15 (Debian's), used by ombra-metad around raft_uv and
 * by the Raft fixture tests around the fixture's in-memory I/O, so the tests
 * exercise exactly the code the daemon runs.
 *
 * 1. A follower answers an AppendEntries that brings no new entry with its
 *    last *stored* index and advances its commit index to min(leader
 *    commit, last stored index).  When it still holds a deposed leader's
 *    entries beyond prev_log_index, the leader counts a match the follower
 *    does not have (an entry can commit on a minority) and the follower may
 *    apply the deposed leader's entry.  Raft bounds both by the last entry
 *    *in the request* (Ongaro, "Consensus: Bridging Theory and Practice",
 *    2014, fig. 3.1 "AppendEntries RPC", receiver rule 5; the same bug class
 *    is etcd #1366, copycat #265, scylladb #9965).  The guard clamps a
 *    received AppendEntries' leader_commit to prev_log_index + n_entries,
 *    and the last_log_index of a success result sent while handling it to
 *    the same bound.
 * 2. A follower whose snapshot is newer than an AppendEntries'
 *    prev_log_index rejects it forever (the leader never finds a match).
 *    The guard drops the entries the local snapshot already covers and moves
 *    prev_log_index/term up to the snapshot, which is committed state.
 *
 * 3. A follower refuses every RequestVote (and pre-vote) while it still
 *    records a current leader, however long that leader has been silent,
 *    so after a leader crash the election only completes when the *last*
 *    follower's timer fires.  The thesis (section 4.2.3) ignores votes only
 *    "within the minimum election timeout of hearing from a current
 *    leader"; the guard restores that rule by marking an incoming vote
 *    request disrupt_leader once the follower's election timer has run for
 *    a full election timeout without news from the leader.
 *
 * 1 and 2 only ever lower what a follower claims, so they cannot make an
 * unsafe commit possible; 3 changes which elections can start, never the
 * one-vote-per-term and up-to-date-log checks that make them safe.  Requires:
 * the wrapped io copies (encodes) a message before send() returns, which
 * raft_uv and the fixture do.
 *
 * Threads: the loop thread that owns the raft instance.  Failure: install
 * fails with OMBRA_ENOMEM when RAFT_GUARD_MAX guards are in use. */
#ifndef OMBRA_METAD_RAFT_GUARD_H
#define OMBRA_METAD_RAFT_GUARD_H

#include <raft.h>
#include <stdbool.h>

#define RAFT_GUARD_MAX 16

struct raft_guard {
	struct raft_io *io;
	struct raft *raft;
	int (*start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		     raft_io_recv_cb recv);
	int (*send)(struct raft_io *io, struct raft_io_send *req,
		    const struct raft_message *message, raft_io_send_cb cb);
	raft_io_recv_cb recv;	/* raft's own receive callback */
	bool in_append;		/* inside recv of an AppendEntries */
	raft_index append_end;	/* its prev_log_index + n_entries */
	unsigned long adjusted; /* messages clamped or trimmed */
};

/* Wrap io's start and send for raft r.  g (caller-allocated, zeroed by
 * this call) must outlive io; call before raft_start() and
 * raft_guard_remove() once io is closed.  Returns 0 or OMBRA_ENOMEM. */
int raft_guard_install(struct raft_guard *g, struct raft_io *io,
		       struct raft *r);

/* Forget g.  The io is not touched (it may already be freed): call only
 * once the io is closed and will not call back again. */
void raft_guard_remove(struct raft_guard *g);

#endif
