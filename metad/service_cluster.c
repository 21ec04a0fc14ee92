/* service_cluster.c: AdminService methods about the metad Raft group:
 * GetClusterStatus, AddMetadMember, RemoveMetadMember.
 *
 * AddMetadMember (leader): CmdAddMember records the addresses in the
 * replicated state (so every member can redirect clients to the new one),
 * then raft_add() adds it as a spare and, for a voter, raft_assign()
 * promotes it once libraft has caught it up (by snapshot if the log was
 * compacted).  A retry after a failed raft_add() records the addresses
 * again (the state machine updates an existing record) and carries on; a
 * retry after raft_add() succeeded finds the member in the configuration
 * and finishes the promotion or answers OK (add_existing): the call is
 * idempotent for the same id and raft address.
 * RemoveMetadMember (leader): raft_remove(), then CmdRemoveMember.
 * Removing the leader itself starts a leadership transfer and answers
 * UNAVAILABLE so the client (rpc_cluster follows leader hints) retries on
 * the new leader, which then removes the old one; the last voter cannot be
 * removed (FAILED_PRECONDITION).
 * Failure: every call is answered once with a status that names the member
 * and says what to do. */
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "raftnode.h"
#include "service.h"

static const struct raft_server *conf_find(struct raft *r, uint64_t id)
{
	for (unsigned i = 0; i < r->configuration.n; i++) {
		if (r->configuration.servers[i].id == id) {
			return &r->configuration.servers[i];
		}
	}
	return NULL;
}

/* ------------------------------------------------------------ status */

void cluster_handle_status(struct rpc_call *call, const ProtobufCMessage *req,
			   void *data)
{
	struct metad *md = data;
	struct raft *r = raftnode_raft(md->rn);
	Ombra__V1__GetClusterStatusResponse resp =
	    OMBRA__V1__GET_CLUSTER_STATUS_RESPONSE__INIT;
	unsigned n = r->configuration.n;
	Ombra__V1__MetadMember *members = NULL;
	Ombra__V1__MetadMember **ptrs = NULL;
	char(*grpc)[METAD_ADDR_LEN] = NULL;
	char leader_addr[METAD_ADDR_LEN];
	char hash[65];
	uint64_t leader_id = 0;
	bool leader = raftnode_is_leader(md->rn);

	if (n > 0) {
		members = calloc(n, sizeof(*members));
		ptrs = calloc(n, sizeof(*ptrs));
		grpc = calloc(n, sizeof(*grpc));
		if (members == NULL || ptrs == NULL || grpc == NULL) {
			rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
				      "out of memory");
			goto out;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		const struct raft_server *s = &r->configuration.servers[i];

		ombra__v1__metad_member__init(&members[i]);
		members[i].id = s->id;
		members[i].raft_address = s->address;
		raftnode_member_grpc(md->rn, s->id, grpc[i], sizeof(grpc[i]));
		members[i].grpc_address = grpc[i];
		members[i].role = (char *)raftnode_role_name(s->role);
		if (leader) {
			members[i].match_index =
			    r->leader_state.progress[i].match_index;
		}
		ptrs[i] = &members[i];
	}
	raftnode_leader(md->rn, &leader_id, leader_addr, sizeof(leader_addr));
	resp.member_id = md->cfg->id;
	resp.state = (char *)raftnode_state_name(md->rn);
	resp.term = r->current_term;
	resp.leader_id = leader_id;
	resp.leader_address = leader_addr;
	resp.commit_index = r->commit_index;
	resp.applied_index = fsm_applied_index(md->fsm);
	resp.last_log_index = raft_last_index(r);
	resp.n_members = n;
	resp.members = ptrs;
	if (fsm_counts(md->fsm, &resp.region_count, &resp.node_count,
		       &resp.volume_count) != 0 ||
	    fsm_state_hash(md->fsm, hash) != 0) {
		rpc_call_fail(call, GRPC_STATUS_INTERNAL,
			      "cannot read the state of metad-%llu; see its "
			      "log",
			      (unsigned long long)md->cfg->id);
		goto out;
	}
	resp.state_hash = hash;
	resp.snapshots_taken = fsm_snapshots_taken(md->fsm);
	resp.snapshots_restored = fsm_snapshots_restored(md->fsm);
	resp.version = (char *)md->version;
	rpc_call_reply(call, &resp.base);
out:
	free(members);
	free(ptrs);
	free(grpc);
}

/* ------------------------------------------------------------ add */

struct member_op {
	struct metad *md;
	struct rpc_call *call;
	const Ombra__V1__AddMetadMemberRequest *add;
	uint64_t id;
};

static void member_added(void *data, int rv, const char *errmsg)
{
	struct member_op *op = data;
	const Ombra__V1__AddMetadMemberRequest *r = op->add;
	Ombra__V1__AddMetadMemberResponse resp =
	    OMBRA__V1__ADD_METAD_MEMBER_RESPONSE__INIT;
	Ombra__V1__MetadMember m = OMBRA__V1__METAD_MEMBER__INIT;

	if (rv != 0) {
		log_warn("membership: adding member %llu failed: %s",
			 (unsigned long long)r->id, errmsg);
		service_fail(op->md, op->call, rv, errmsg);
		free(op);
		return;
	}
	log_info("membership: member %llu added as %s (raft %s, grpc %s)",
		 (unsigned long long)r->id, r->voter ? "voter" : "spare",
		 r->raft_address, r->grpc_address);
	m.id = r->id;
	m.raft_address = r->raft_address;
	m.grpc_address = r->grpc_address;
	m.role = r->voter ? "voter" : "spare";
	resp.member = &m;
	rpc_call_reply(op->call, &resp.base);
	free(op);
}

/* Is the member recorded in the state with exactly these addresses? */
static bool member_recorded_same(struct metad *md,
				 const Ombra__V1__AddMetadMemberRequest *r)
{
	Ombra__V1__MetadMember **members = NULL;
	char errmsg[OMBRA_ERRMSG_LEN];
	size_t n = 0;
	bool same = false;

	if (fsm_list_members(md->fsm, &members, &n, errmsg) != 0) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (members[i]->id == r->id) {
			same = strcmp(members[i]->raft_address,
				      r->raft_address) == 0 &&
			       strcmp(members[i]->grpc_address,
				      r->grpc_address) == 0;
		}
	}
	fsm_free_list(members, n);
	return same;
}

static void member_recorded(void *data, int rv, const char *errmsg,
			    const struct fsm_result *res)
{
	struct member_op *op = data;
	const Ombra__V1__AddMetadMemberRequest *r = op->add;
	char msg[OMBRA_ERRMSG_LEN];

	if (rv != 0) {
		service_fail(op->md, op->call, rv, errmsg);
		free(op);
		return;
	}
	if (res->code != 0 && !(res->code == GRPC_STATUS_ALREADY_EXISTS &&
				member_recorded_same(op->md, r))) {
		rpc_call_fail(op->call, (grpc_status_code)res->code, "%s",
			      res->message);
		free(op);
		return;
	}
	rv = raftnode_add(op->md->rn, r->id, r->raft_address, r->voter,
			  member_added, op, msg);
	if (rv != 0) {
		member_added(op, rv, msg);
	}
}

/* A new add operation for call, or NULL after answering the call with
 * RESOURCE_EXHAUSTED. */
static struct member_op *
member_op_new(struct metad *md, struct rpc_call *call,
	      const Ombra__V1__AddMetadMemberRequest *r)
{
	struct member_op *op = calloc(1, sizeof(*op));

	if (op == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return NULL;
	}
	op->md = md;
	op->call = call;
	op->add = r;
	op->id = r->id;
	return op;
}

/* Adding a member that is already in the group: a retry of an add whose
 * answer was lost, or that a leader change interrupted.  Same id and raft
 * address: finish it (promote a spare when a voter is asked for) and answer
 * OK, so the call is idempotent; anything else is a conflict. */
static void add_existing(struct metad *md, struct rpc_call *call,
			 const Ombra__V1__AddMetadMemberRequest *r,
			 const struct raft_server *s)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	struct member_op *op;

	if (strcmp(s->address, r->raft_address) != 0) {
		rpc_call_fail(call, GRPC_STATUS_ALREADY_EXISTS,
			      "metad member %llu is already in the group with "
			      "raft address %s; remove it first to change its "
			      "address",
			      (unsigned long long)r->id, s->address);
		return;
	}
	if (!r->voter && s->role == RAFT_VOTER) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			      "metad member %llu is already a voter; demoting "
			      "a voter to a spare is not supported",
			      (unsigned long long)r->id);
		return;
	}
	if ((op = member_op_new(md, call, r)) == NULL)
		return;
	if (!r->voter || s->role == RAFT_VOTER) {
		member_added(op, 0, NULL);
		return;
	}
	int rv = raftnode_promote(md->rn, r->id, member_added, op, errmsg);
	if (rv != 0)
		member_added(op, rv, errmsg);
}

void cluster_handle_add_member(struct rpc_call *call,
			       const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__AddMetadMemberRequest *r =
	    (const Ombra__V1__AddMetadMemberRequest *)req;
	struct metad *md = data;
	struct raft *r_ = raftnode_raft(md->rn);
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdAddMember c = OMBRA__V1__CMD_ADD_MEMBER__INIT;
	const struct raft_server *s;
	char errmsg[OMBRA_ERRMSG_LEN];
	char request_id[64];
	struct member_op *op;
	int rv;

	if (r->id == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "id is required and must be >= 1");
		return;
	}
	if (metad_config_check_addr("raft_address", r->raft_address, errmsg) !=
		0 ||
	    metad_config_check_addr("grpc_address", r->grpc_address, errmsg) !=
		0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT, "%s", errmsg);
		return;
	}
	if (!raftnode_is_leader(md->rn)) {
		service_fail_not_leader(md, call);
		return;
	}
	if ((s = conf_find(r_, r->id)) != NULL) {
		add_existing(md, call, r, s);
		return;
	}
	for (unsigned i = 0; i < r_->configuration.n; i++) {
		s = &r_->configuration.servers[i];
		if (strcmp(s->address, r->raft_address) == 0) {
			rpc_call_fail(call, GRPC_STATUS_ALREADY_EXISTS,
				      "raft address %s is already used by "
				      "metad member %llu",
				      r->raft_address,
				      (unsigned long long)s->id);
			return;
		}
	}
	if ((op = member_op_new(md, call, r)) == NULL)
		return;
	c.id = r->id;
	c.raft_address = r->raft_address;
	c.grpc_address = r->grpc_address;
	rpc_request_id(request_id, sizeof(request_id));
	cmd.request_id = request_id;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_ADD_MEMBER;
	cmd.add_member = &c;
	rv = raftnode_propose(md->rn, &cmd, member_recorded, op, errmsg);
	if (rv != 0) {
		free(op);
		service_fail(md, call, rv, errmsg);
	}
}

/* ------------------------------------------------------------ remove */

static void member_forgotten(void *data, int rv, const char *errmsg,
			     const struct fsm_result *res)
{
	struct member_op *op = data;
	Ombra__V1__RemoveMetadMemberResponse resp =
	    OMBRA__V1__REMOVE_METAD_MEMBER_RESPONSE__INIT;

	if (rv != 0) {
		service_fail(op->md, op->call, rv, errmsg);
	} else if (res->code != 0 && res->code != GRPC_STATUS_NOT_FOUND) {
		/* NOT_FOUND: an initial member from the configuration file,
		 * never recorded by CmdAddMember; nothing to forget. */
		rpc_call_fail(op->call, (grpc_status_code)res->code, "%s",
			      res->message);
	} else {
		rpc_call_reply(op->call, &resp.base);
	}
	free(op);
}

static void member_removed(void *data, int rv, const char *errmsg)
{
	struct member_op *op = data;
	Ombra__V1__MetaCommand cmd = OMBRA__V1__META_COMMAND__INIT;
	Ombra__V1__CmdRemoveMember c = OMBRA__V1__CMD_REMOVE_MEMBER__INIT;
	char msg[OMBRA_ERRMSG_LEN];
	char request_id[64];

	if (rv != 0) {
		log_warn("membership: removing member %llu failed: %s",
			 (unsigned long long)op->id, errmsg);
		service_fail(op->md, op->call, rv, errmsg);
		free(op);
		return;
	}
	log_info("membership: member %llu removed from the group",
		 (unsigned long long)op->id);
	c.id = op->id;
	rpc_request_id(request_id, sizeof(request_id));
	cmd.request_id = request_id;
	cmd.cmd_case = OMBRA__V1__META_COMMAND__CMD_REMOVE_MEMBER;
	cmd.remove_member = &c;
	rv = raftnode_propose(op->md->rn, &cmd, member_forgotten, op, msg);
	if (rv != 0) {
		service_fail(op->md, op->call, rv, msg);
		free(op);
	}
}

static void remove_self(struct metad *md, struct rpc_call *call)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	rv = raftnode_transfer(md->rn, errmsg);
	if (rv == OMBRA_EPRECOND) {
		rpc_call_fail(call, GRPC_STATUS_FAILED_PRECONDITION,
			      "metad-%llu is the last voter of the group and "
			      "cannot be removed",
			      (unsigned long long)md->cfg->id);
		return;
	}
	if (rv != 0) {
		service_fail(md, call, rv, errmsg);
		return;
	}
	rpc_call_fail_md(call, GRPC_STATUS_UNAVAILABLE, RPC_LEADER_MD_KEY, "",
			 "metad-%llu is the leader: leadership transfer "
			 "started; retry on the new leader to remove it",
			 (unsigned long long)md->cfg->id);
}

void cluster_handle_remove_member(struct rpc_call *call,
				  const ProtobufCMessage *req, void *data)
{
	const Ombra__V1__RemoveMetadMemberRequest *r =
	    (const Ombra__V1__RemoveMetadMemberRequest *)req;
	struct metad *md = data;
	char errmsg[OMBRA_ERRMSG_LEN];
	struct member_op *op;
	int rv;

	if (r->id == 0) {
		rpc_call_fail(call, GRPC_STATUS_INVALID_ARGUMENT,
			      "id is required and must be >= 1");
		return;
	}
	if (!raftnode_is_leader(md->rn)) {
		service_fail_not_leader(md, call);
		return;
	}
	if (conf_find(raftnode_raft(md->rn), r->id) == NULL) {
		rpc_call_fail(call, GRPC_STATUS_NOT_FOUND,
			      "metad member %llu is not in the group",
			      (unsigned long long)r->id);
		return;
	}
	if (r->id == md->cfg->id) {
		remove_self(md, call);
		return;
	}
	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return;
	}
	op->md = md;
	op->call = call;
	op->id = r->id;
	rv = raftnode_remove(md->rn, r->id, member_removed, op, errmsg);
	if (rv != 0) {
		free(op);
		service_fail(md, call, rv, errmsg);
	}
}
