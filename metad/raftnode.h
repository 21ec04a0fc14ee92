/* raftnode.h: this member's Raft instance (libraft + raft_uv over TCP) on
 * the daemon's libuv loop, and the three things the services need from it:
 * proposing commands, linearizable read barriers and membership changes.
 *
 * Threads: everything runs on the loop thread except raftnode_health(),
 * which the HTTP thread may call.  Callbacks never run from inside the call
 * that started them.  Failure: a call that cannot start returns OMBRA_E*
 * with errmsg and its callback is never called; one that started reports
 * through its callback exactly once, also when leadership is lost or the
 * node shuts down (OMBRA_EUNAVAIL). */
#ifndef OMBRA_METAD_RAFTNODE_H
#define OMBRA_METAD_RAFTNODE_H

#include <raft.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "fsm.h"
#include "meta.pb-c.h"

struct raftnode;
struct metrics_registry;

/* Leadership gained (true) or lost (false); loop thread. */
typedef void (*raftnode_leader_fn)(void *data, bool is_leader);

struct raftnode_options {
	uv_loop_t *loop;		  /* not owned */
	const struct metad_config *cfg;	  /* not owned; outlives the node */
	struct fsm *fsm;		  /* not owned; closed after the node */
	struct metrics_registry *metrics; /* not owned */
	raftnode_leader_fn on_leader;	  /* may be NULL */
	void *data;
};

/* Create the transport and raft_uv I/O in cfg->data_dir/raft (must exist),
 * bootstrap when cfg->bootstrap (an already initialized directory is not
 * an error), and start Raft.  On success *out is running.  On error
 * returns OMBRA_E* with errmsg; *out is then either NULL or a node that
 * must still be released with raftnode_close(). */
int raftnode_start(const struct raftnode_options *o, struct raftnode **out,
		   char *errmsg);

/* Stop Raft (pending proposals, barriers and changes fail with
 * OMBRA_EUNAVAIL), close the I/O, sync the FSM and free rn; cb (may be
 * NULL) runs on the loop thread when all of it is released. */
void raftnode_close(struct raftnode *rn, void (*cb)(void *data), void *data);

struct raft *raftnode_raft(struct raftnode *rn);
bool raftnode_is_leader(struct raftnode *rn);
/* uv_now() of the moment this member last became leader. */
uint64_t raftnode_leader_since(struct raftnode *rn);

/* Outcome of a proposal.  rv 0: committed and applied, res is the FSM's
 * result (valid only during the callback; its code may still be an error
 * of the command, e.g. ALREADY_EXISTS).  rv != 0: OMBRA_EUNAVAIL
 * (leadership lost or shutdown: the command may or may not have been
 * applied; retry with the same request_id) or OMBRA_EINTERNAL, errmsg
 * says which, res is NULL. */
typedef void (*raftnode_apply_fn)(void *data, int rv, const char *errmsg,
				  const struct fsm_result *res);

/* Leader only: stamp cmd->time_unix_ms with this member's wall clock,
 * encode cmd (not owned; serialized before return) and append it.
 * Returns 0 (cb will run), OMBRA_ENOTLEADER, OMBRA_ENOMEM or
 * OMBRA_EUNAVAIL with errmsg. */
int raftnode_propose(struct raftnode *rn, Ombra__V1__MetaCommand *cmd,
		     raftnode_apply_fn cb, void *data, char *errmsg);

/* rv 0: every entry committed before the read was requested is applied on
 * this member and it was still leader; read from the FSM now. */
typedef void (*raftnode_read_fn)(void *data, int rv, const char *errmsg);

/* Leader only: linearizable read point.  Reads are batched: one
 * raft_barrier() serves every read queued before it was issued; reads that
 * arrive while a barrier is in flight wait for the next one (the barrier
 * in flight may have been appended before their writes were acknowledged
 * elsewhere, so it would not order them).  Returns 0, OMBRA_ENOTLEADER or
 * OMBRA_ENOMEM. */
int raftnode_barrier(struct raftnode *rn, raftnode_read_fn cb, void *data,
		     char *errmsg);

/* Outcome of a membership change: 0 or OMBRA_E* with errmsg. */
typedef void (*raftnode_change_fn)(void *data, int rv, const char *errmsg);

/* Leader only: raft_add(id, raft_address) as a spare, then, if voter,
 * raft_assign(RAFT_VOTER), which first catches the new member up (by
 * snapshot when the log was compacted).  Errors: OMBRA_ENOTLEADER,
 * OMBRA_EEXIST (id or address in use), OMBRA_EUNAVAIL (another change in
 * progress, catch-up failed), OMBRA_ENOMEM. */
int raftnode_add(struct raftnode *rn, uint64_t id, const char *raft_address,
		 bool voter, raftnode_change_fn cb, void *data, char *errmsg);

/* Leader only: raft_assign(id, RAFT_VOTER) for a spare or standby already
 * in the configuration (libraft catches it up first).  Errors as
 * raftnode_add. */
int raftnode_promote(struct raftnode *rn, uint64_t id, raftnode_change_fn cb,
		     void *data, char *errmsg);

/* Leader only: raft_remove(id).  Errors as raftnode_add, plus
 * OMBRA_ENOTFOUND when id is not in the configuration. */
int raftnode_remove(struct raftnode *rn, uint64_t id, raftnode_change_fn cb,
		    void *data, char *errmsg);

/* Leader only: hand leadership to the most suitable voter (raft_transfer
 * with id 0); completion is observed through the leadership callback.
 * Returns 0, OMBRA_ENOTLEADER, OMBRA_EPRECOND (no other voter) or
 * OMBRA_EUNAVAIL (a transfer is already running). */
int raftnode_transfer(struct raftnode *rn, char *errmsg);

/* gRPC address of member id: from the members recorded in the FSM
 * (AddMetadMember), else from the configuration's [member.N].  Returns 0
 * or OMBRA_ENOTFOUND (buf set to ""). */
int raftnode_member_grpc(struct raftnode *rn, uint64_t id, char *buf,
			 size_t len);

/* Known leader: *id (0 if none) and its gRPC address in buf ("" if not
 * known).  Returns 0 when a leader is known, else OMBRA_EUNAVAIL. */
int raftnode_leader(struct raftnode *rn, uint64_t *id, char *buf, size_t len);

/* "leader" | "follower" | "candidate" | "unavailable". */
const char *raftnode_state_name(struct raftnode *rn);

/* Thread-safe: 0 when Raft runs and a leader is known, else non-zero
 * with the reason in msg. */
int raftnode_health(struct raftnode *rn, char *msg, size_t len);

/* "voter" | "standby" | "spare" for a RAFT_VOTER.. role. */
const char *raftnode_role_name(int role);

/* Map a libraft error code to an OMBRA_E* code. */
int raftnode_map_error(int raft_rv);

#endif
