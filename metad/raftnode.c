/* raftnode.c: the Raft instance of one ombra-metad member.
 *
 * libraft 0.15 has no state-change callback, so the state is polled: a
 * uv_check handle after every loop iteration notices leadership, leader
 * and membership changes at once (logs them, publishes the health summary
 * for the HTTP thread, calls the leadership callback); a 100 ms tick logs
 * snapshot events, refreshes the Raft gauges and syncs LMDB in the thread
 * pool (the state machine runs with MDB_NOSYNC; the Raft log is the
 * durable record, so a crash loses nothing, a sync only shortens replay).
 *
 * libraft 0.15 workarounds: entries are padded to 8 bytes (cmd_encode),
 * raft_guard.h wraps raft_uv's receive and send (log-matching and vote
 * defects) and raft_async.h gives raft_uv the async_work snapshots use.
 *
 * Linearizable reads: libraft 0.15 has no ReadIndex, so reads go through
 * raft_barrier() (DESIGN.md, metadata service).  One barrier serves a batch
 * of reads; a read that arrives while a barrier is in flight waits for the
 * next one: the barrier in flight may commit although this member was
 * deposed before the read arrived and a new leader committed writes the
 * read must see, so only a barrier appended after the read arrived proves
 * the read is up to date.  raft_barrier() is only ever called from the
 * uv_check handler, never from inside a libraft callback: when a leader is
 * deposed, libraft fails its pending barriers from inside its state
 * change, and a barrier requested from that callback (the member still
 * counts as leader there) corrupted its request queue and crashed
 * ombra-metad (found by partitioning the leader in deploy/testbed).
 *
 * Failure: setup errors are returned with libraft's message; runtime
 * failures of requests reach their callbacks as OMBRA_EUNAVAIL. */
#include <raft/uv.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "metrics.h"
#include "raftnode.h"

#include "cmd.h"
#include "raft_async.h"
#include "raft_guard.h"

#define TICK_MS 100
#define SYNC_EVERY_TICKS 2 /* fsm_sync every 200 ms when state changed */

struct read_waiter {
	raftnode_read_fn cb;
	void *data;
	struct read_waiter *next;
};

struct propose_req {
	struct raft_apply req;
	struct raftnode *rn;
	raftnode_apply_fn cb;
	void *data;
	uint64_t start_ns;
};

struct change_req {
	struct raft_change req;
	struct raftnode *rn;
	raftnode_change_fn cb;
	void *data;
	uint64_t id;
	bool assign_voter; /* after raft_add: promote to voter */
};

struct raftnode {
	uv_loop_t *loop;
	const struct metad_config *cfg;
	struct fsm *fsm;
	raftnode_leader_fn on_leader;
	void *data;

	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_fsm rfsm;
	struct raft_guard guard; /* libraft 0.15 workarounds around io */
	bool guard_ok;
	struct raft raft;
	bool transport_ok, io_ok, raft_ok;

	uv_timer_t tick;
	uv_check_t check;
	bool tick_ok;
	unsigned ticks;

	/* Read barriers (see the top of the file). */
	struct raft_barrier barrier;
	bool barrier_inflight;
	struct read_waiter *inflight;
	struct read_waiter *pending_head, *pending_tail;

	struct raft_transfer transfer;
	bool transfer_inflight;

	/* Last observed state, for the tick's change detection. */
	int last_state;
	raft_id last_leader;
	raft_index last_conf_index;
	uint64_t last_snap_taken, last_snap_restored;
	uint64_t synced_index;
	uv_work_t sync_req; /* periodic fsm_sync in the thread pool */
	bool sync_inflight;
	bool close_waits_sync;
	uint64_t sync_target;
	int sync_rv;
	uint64_t leader_since;

	/* Read by the HTTP thread. */
	atomic_int health_state;
	atomic_ullong health_leader;

	struct metric *m_term, *m_is_leader, *m_commit, *m_applied, *m_last;
	struct metric *m_apply_latency, *m_snap_taken, *m_snap_restored;

	/* Close. */
	int closing; /* handles and raft still closing */
	void (*close_cb)(void *data);
	void *close_data;
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int raftnode_map_error(int raft_rv)
{
	switch (raft_rv) {
	case 0:
		return 0;
	case RAFT_NOMEM:
		return OMBRA_ENOMEM;
	case RAFT_NOTLEADER:
		return OMBRA_ENOTLEADER;
	case RAFT_LEADERSHIPLOST:
	case RAFT_SHUTDOWN:
	case RAFT_CANTCHANGE:
	case RAFT_NOCONNECTION:
	case RAFT_BUSY:
	case RAFT_CANCELED:
		return OMBRA_EUNAVAIL;
	case RAFT_DUPLICATEID:
	case RAFT_DUPLICATEADDRESS:
		return OMBRA_EEXIST;
	case RAFT_BADID:
	case RAFT_NOTFOUND:
		return OMBRA_ENOTFOUND;
	case RAFT_BADROLE:
		return OMBRA_EPRECOND;
	case RAFT_IOERR:
	case RAFT_NOSPACE:
	case RAFT_CORRUPT:
		return OMBRA_EIO;
	default:
		return OMBRA_EINTERNAL;
	}
}

/* errmsg for a failed libraft request: what it means for the client. */
static void raft_error_msg(struct raftnode *rn, int rv, const char *what,
			   char *errmsg)
{
	switch (rv) {
	case RAFT_LEADERSHIPLOST:
		ombra_errmsg_printf(errmsg,
				    "%s: leadership lost before it completed; "
				    "it may or may not have taken effect, "
				    "retry on the new leader",
				    what);
		break;
	case RAFT_SHUTDOWN:
		ombra_errmsg_printf(errmsg,
				    "%s: metad member %llu is shutting down; "
				    "retry on another member",
				    what, (unsigned long long)rn->cfg->id);
		break;
	case RAFT_CANTCHANGE:
		ombra_errmsg_printf(errmsg,
				    "%s: another membership change is in "
				    "progress; retry when it is done",
				    what);
		break;
	default:
		ombra_errmsg_printf(errmsg, "%s: %s (%s)", what,
				    raft_strerror(rv), raft_errmsg(&rn->raft));
		break;
	}
}

static void not_leader_msg(struct raftnode *rn, char *errmsg)
{
	ombra_errmsg_printf(errmsg, "metad member %llu is not the leader",
			    (unsigned long long)rn->cfg->id);
}

struct raft *raftnode_raft(struct raftnode *rn)
{
	return &rn->raft;
}

bool raftnode_is_leader(struct raftnode *rn)
{
	return rn->raft_ok && !rn->closing &&
	       raft_state(&rn->raft) == RAFT_LEADER;
}

uint64_t raftnode_leader_since(struct raftnode *rn)
{
	return rn->leader_since;
}

const char *raftnode_state_name(struct raftnode *rn)
{
	if (!rn->raft_ok) {
		return "unavailable";
	}
	switch (raft_state(&rn->raft)) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	default:
		return "unavailable";
	}
}

/* ------------------------------------------------------------ addresses */

int raftnode_member_grpc(struct raftnode *rn, uint64_t id, char *buf,
			 size_t len)
{
	Ombra__V1__MetadMember **members = NULL;
	const struct metad_member_cfg *m;
	char errmsg[OMBRA_ERRMSG_LEN];
	size_t n = 0;
	int rv = OMBRA_ENOTFOUND;

	buf[0] = '\0';
	if (fsm_list_members(rn->fsm, &members, &n, errmsg) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (members[i]->id == id &&
			    members[i]->grpc_address[0] != '\0') {
				snprintf(buf, len, "%s",
					 members[i]->grpc_address);
				rv = 0;
				break;
			}
		}
		fsm_free_list(members, n);
	} else {
		log_warn("member lookup: %s", errmsg);
	}
	if (rv != 0 && (m = metad_config_member(rn->cfg, id)) != NULL) {
		snprintf(buf, len, "%s", m->grpc);
		rv = 0;
	}
	return rv;
}

int raftnode_leader(struct raftnode *rn, uint64_t *id, char *buf, size_t len)
{
	raft_id lid = 0;
	const char *addr = NULL;

	buf[0] = '\0';
	*id = 0;
	if (!rn->raft_ok) {
		return OMBRA_EUNAVAIL;
	}
	raft_leader(&rn->raft, &lid, &addr);
	if (lid == 0) {
		return OMBRA_EUNAVAIL;
	}
	*id = lid;
	raftnode_member_grpc(rn, lid, buf, len);
	return 0;
}

int raftnode_health(struct raftnode *rn, char *msg, size_t len)
{
	int state = atomic_load(&rn->health_state);
	unsigned long long leader = atomic_load(&rn->health_leader);

	if (state == RAFT_UNAVAILABLE) {
		snprintf(msg, len, "raft is not running");
		return 1;
	}
	if (leader == 0) {
		snprintf(msg, len, "no leader elected yet");
		return 1;
	}
	snprintf(msg, len, "ok: leader is metad-%llu", leader);
	return 0;
}

/* ------------------------------------------------------------ propose */

static void propose_done(struct raft_apply *req, int status, void *result)
{
	struct propose_req *p = req->data;
	struct raftnode *rn = p->rn;
	struct fsm_result *res = result;
	char errmsg[OMBRA_ERRMSG_LEN];

	metric_observe(rn->m_apply_latency,
		       (double)(uv_hrtime() - p->start_ns) / 1e9);
	if (status != 0) {
		raft_error_msg(rn, status, "proposal", errmsg);
		p->cb(p->data, raftnode_map_error(status), errmsg, NULL);
	} else if (res == NULL) {
		ombra_errmsg_printf(errmsg,
				    "proposal: state machine returned no "
				    "result for index %llu",
				    (unsigned long long)req->index);
		p->cb(p->data, OMBRA_EINTERNAL, errmsg, NULL);
	} else {
		p->cb(p->data, 0, NULL, res);
	}
	free(res);
	free(p);
}

int raftnode_propose(struct raftnode *rn, Ombra__V1__MetaCommand *cmd,
		     raftnode_apply_fn cb, void *data, char *errmsg)
{
	struct propose_req *p;
	struct raft_buffer buf;
	int rv;

	if (!raftnode_is_leader(rn)) {
		not_leader_msg(rn, errmsg);
		return OMBRA_ENOTLEADER;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		ombra_errmsg_printf(errmsg, "proposal: out of memory");
		return OMBRA_ENOMEM;
	}
	cmd->time_unix_ms = wall_ms();
	rv = cmd_encode(cmd, &buf);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "proposal: cannot encode %s: %s",
				    cmd_kind(cmd), ombra_strerror(rv));
		free(p);
		return rv;
	}
	p->req.data = p;
	p->rn = rn;
	p->cb = cb;
	p->data = data;
	p->start_ns = uv_hrtime();
	rv = raft_apply(&rn->raft, &p->req, &buf, 1, propose_done);
	if (rv != 0) {
		raft_free(buf.base);
		free(p);
		raft_error_msg(rn, rv, "raft_apply", errmsg);
		return raftnode_map_error(rv);
	}
	log_debug("proposed %s (request_id '%s')", cmd_kind(cmd),
		  cmd->request_id);
	return 0;
}

/* ------------------------------------------------------------ barriers */

static void barrier_done(struct raft_barrier *req, int status);

/* Run and free every waiter of list with rv/errmsg. */
static void waiters_complete(struct read_waiter *list, int rv,
			     const char *errmsg)
{
	struct read_waiter *w;

	while ((w = list) != NULL) {
		list = w->next;
		w->cb(w->data, rv, errmsg);
		free(w);
	}
}

/* Issue one barrier for every pending read.  On failure the pending reads
 * are failed.  Only called from on_check (see the top of the file). */
static void barrier_issue(struct raftnode *rn)
{
	struct read_waiter *list;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	if (rn->pending_head == NULL ||
	    (rn->barrier_inflight && !rn->closing)) {
		return;
	}
	list = rn->pending_head;
	rn->pending_head = rn->pending_tail = NULL;
	if (rn->closing) {
		raft_error_msg(rn, RAFT_SHUTDOWN, "read barrier", errmsg);
		waiters_complete(list, OMBRA_EUNAVAIL, errmsg);
		return;
	}
	rn->inflight = list;
	rn->barrier.data = rn;
	rv = raft_barrier(&rn->raft, &rn->barrier, barrier_done);
	if (rv == 0) {
		rn->barrier_inflight = true;
		return;
	}
	rn->inflight = NULL;
	raft_error_msg(rn, rv, "read barrier", errmsg);
	waiters_complete(list, raftnode_map_error(rv), errmsg);
}

static void barrier_done(struct raft_barrier *req, int status)
{
	struct raftnode *rn = req->data;
	struct read_waiter *list = rn->inflight;
	char errmsg[OMBRA_ERRMSG_LEN] = "";

	rn->inflight = NULL;
	rn->barrier_inflight = false;
	if (status != 0) {
		raft_error_msg(rn, status, "read barrier", errmsg);
	}
	waiters_complete(list, raftnode_map_error(status),
			 status != 0 ? errmsg : NULL);
	/* Reads that arrived meanwhile get the next barrier from on_check. */
}

int raftnode_barrier(struct raftnode *rn, raftnode_read_fn cb, void *data,
		     char *errmsg)
{
	struct read_waiter *w;

	if (!raftnode_is_leader(rn)) {
		not_leader_msg(rn, errmsg);
		return OMBRA_ENOTLEADER;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		ombra_errmsg_printf(errmsg, "read barrier: out of memory");
		return OMBRA_ENOMEM;
	}
	w->cb = cb;
	w->data = data;
	/* The next barrier, issued by on_check at the end of this loop
	 * iteration (see the top of the file). */
	if (rn->pending_tail != NULL) {
		rn->pending_tail->next = w;
	} else {
		rn->pending_head = w;
	}
	rn->pending_tail = w;
	return 0;
}

/* ------------------------------------------------------------ membership */

static void change_done(struct raft_change *req, int status)
{
	struct change_req *c = req->data;
	struct raftnode *rn = c->rn;
	char errmsg[OMBRA_ERRMSG_LEN];
	int rv;

	if (status != 0) {
		raft_error_msg(rn, status, "membership change", errmsg);
		c->cb(c->data, raftnode_map_error(status), errmsg);
		free(c);
		return;
	}
	if (c->assign_voter) {
		c->assign_voter = false;
		log_info("membership: member %llu added as spare; promoting "
			 "to voter once caught up",
			 (unsigned long long)c->id);
		rv = raft_assign(&rn->raft, &c->req, c->id, RAFT_VOTER,
				 change_done);
		if (rv == 0) {
			return;
		}
		raft_error_msg(rn, rv, "raft_assign(voter)", errmsg);
		c->cb(c->data, raftnode_map_error(rv), errmsg);
		free(c);
		return;
	}
	c->cb(c->data, 0, NULL);
	free(c);
}

static struct change_req *change_new(struct raftnode *rn, uint64_t id,
				     raftnode_change_fn cb, void *data)
{
	struct change_req *c = calloc(1, sizeof(*c));

	if (c != NULL) {
		c->req.data = c;
		c->rn = rn;
		c->cb = cb;
		c->data = data;
		c->id = id;
	}
	return c;
}

enum change_kind { CHANGE_ADD, CHANGE_PROMOTE, CHANGE_REMOVE };

/* Start one membership change on the leader; the shared path of
 * raftnode_add, raftnode_promote and raftnode_remove. */
static int change_start(struct raftnode *rn, enum change_kind kind, uint64_t id,
			const char *raft_address, bool voter,
			raftnode_change_fn cb, void *data, char *errmsg)
{
	static const char *const names[] = {"raft_add", "raft_assign(voter)",
					    "raft_remove"};
	struct change_req *c;
	int rv;

	if (!raftnode_is_leader(rn)) {
		not_leader_msg(rn, errmsg);
		return OMBRA_ENOTLEADER;
	}
	c = change_new(rn, id, cb, data);
	if (c == NULL) {
		ombra_errmsg_printf(errmsg, "%s: out of memory", names[kind]);
		return OMBRA_ENOMEM;
	}
	switch (kind) {
	case CHANGE_ADD:
		c->assign_voter = voter;
		rv =
		    raft_add(&rn->raft, &c->req, id, raft_address, change_done);
		break;
	case CHANGE_PROMOTE:
		rv = raft_assign(&rn->raft, &c->req, id, RAFT_VOTER,
				 change_done);
		break;
	default:
		rv = raft_remove(&rn->raft, &c->req, id, change_done);
		break;
	}
	if (rv != 0) {
		free(c);
		raft_error_msg(rn, rv, names[kind], errmsg);
		return raftnode_map_error(rv);
	}
	return 0;
}

int raftnode_add(struct raftnode *rn, uint64_t id, const char *raft_address,
		 bool voter, raftnode_change_fn cb, void *data, char *errmsg)
{
	return change_start(rn, CHANGE_ADD, id, raft_address, voter, cb, data,
			    errmsg);
}

int raftnode_promote(struct raftnode *rn, uint64_t id, raftnode_change_fn cb,
		     void *data, char *errmsg)
{
	return change_start(rn, CHANGE_PROMOTE, id, NULL, true, cb, data,
			    errmsg);
}

int raftnode_remove(struct raftnode *rn, uint64_t id, raftnode_change_fn cb,
		    void *data, char *errmsg)
{
	return change_start(rn, CHANGE_REMOVE, id, NULL, false, cb, data,
			    errmsg);
}

static void transfer_done(struct raft_transfer *req)
{
	struct raftnode *rn = req->data;
	raft_id lid = 0;
	const char *addr = NULL;

	rn->transfer_inflight = false;
	raft_leader(&rn->raft, &lid, &addr);
	log_info("leadership transfer finished: leader is now %llu",
		 (unsigned long long)lid);
}

int raftnode_transfer(struct raftnode *rn, char *errmsg)
{
	int rv;

	if (!raftnode_is_leader(rn)) {
		not_leader_msg(rn, errmsg);
		return OMBRA_ENOTLEADER;
	}
	if (rn->transfer_inflight) {
		ombra_errmsg_printf(errmsg, "a leadership transfer is already "
					    "running; retry shortly");
		return OMBRA_EUNAVAIL;
	}
	memset(&rn->transfer, 0, sizeof(rn->transfer));
	rn->transfer.data = rn;
	rv = raft_transfer(&rn->raft, &rn->transfer, 0, transfer_done);
	if (rv == RAFT_NOTFOUND) {
		ombra_errmsg_printf(errmsg,
				    "no other voter to transfer leadership "
				    "to");
		return OMBRA_EPRECOND;
	}
	if (rv != 0) {
		raft_error_msg(rn, rv, "raft_transfer", errmsg);
		return raftnode_map_error(rv);
	}
	rn->transfer_inflight = true;
	log_info("leadership transfer started");
	return 0;
}

/* ------------------------------------------------------------ tick */

const char *raftnode_role_name(int role)
{
	switch (role) {
	case RAFT_VOTER:
		return "voter";
	case RAFT_STANDBY:
		return "standby";
	case RAFT_SPARE:
		return "spare";
	default:
		return "unknown";
	}
}

static void tick_log_membership(struct raftnode *rn)
{
	const struct raft_configuration *conf = &rn->raft.configuration;
	char line[OMBRA_ERRMSG_LEN];
	size_t off = 0;

	line[0] = '\0';
	for (unsigned i = 0; i < conf->n && off < sizeof(line); i++) {
		off += (size_t)snprintf(
		    line + off, sizeof(line) - off, "%s%llu=%s(%s)",
		    i == 0 ? "" : " ", (unsigned long long)conf->servers[i].id,
		    conf->servers[i].address,
		    raftnode_role_name(conf->servers[i].role));
	}
	log_info("membership: configuration at index %llu: %s",
		 (unsigned long long)rn->last_conf_index,
		 line[0] != '\0' ? line : "(empty)");
}

/* Leadership, leader and membership changes; runs after every loop
 * iteration (uv_check), so /healthz and the leadership callback see a
 * change as soon as libraft made it. */
static void observe_state(struct raftnode *rn)
{
	struct raft *r = &rn->raft;
	int state = raft_state(r);
	raft_id lid = 0;
	const char *laddr = NULL;
	raft_index conf_index;
	char grpc[METAD_ADDR_LEN];

	raft_leader(r, &lid, &laddr);
	if (state != rn->last_state) {
		bool was = rn->last_state == RAFT_LEADER;
		bool is = state == RAFT_LEADER;

		log_info("raft: %s -> %s (term %llu)",
			 rn->last_state == RAFT_LEADER	    ? "leader"
			 : rn->last_state == RAFT_FOLLOWER  ? "follower"
			 : rn->last_state == RAFT_CANDIDATE ? "candidate"
							    : "unavailable",
			 raftnode_state_name(rn),
			 (unsigned long long)r->current_term);
		rn->last_state = state;
		if (is) {
			rn->leader_since = uv_now(rn->loop);
		}
		if (was != is && rn->on_leader != NULL) {
			rn->on_leader(rn->data, is);
		}
	}
	if (lid != rn->last_leader) {
		rn->last_leader = lid;
		if (lid == 0) {
			log_info("leader: none known");
		} else {
			raftnode_member_grpc(rn, lid, grpc, sizeof(grpc));
			log_info("leader: metad-%llu (raft %s, grpc %s), term "
				 "%llu",
				 (unsigned long long)lid,
				 laddr != NULL ? laddr : "?",
				 grpc[0] != '\0' ? grpc : "unknown",
				 (unsigned long long)r->current_term);
		}
	}
	atomic_store(&rn->health_state, state);
	atomic_store(&rn->health_leader, (unsigned long long)lid);

	conf_index = r->configuration_uncommitted_index != 0
			 ? r->configuration_uncommitted_index
			 : r->configuration_index;
	if (conf_index != rn->last_conf_index) {
		rn->last_conf_index = conf_index;
		tick_log_membership(rn);
	}
}

/* Snapshot events and gauges; every tick. */
static void tick_observe(struct raftnode *rn)
{
	struct raft *r = &rn->raft;
	int state = raft_state(r);
	uint64_t taken, restored;

	taken = fsm_snapshots_taken(rn->fsm);
	restored = fsm_snapshots_restored(rn->fsm);
	if (taken != rn->last_snap_taken) {
		metric_inc(rn->m_snap_taken,
			   (double)(taken - rn->last_snap_taken));
		rn->last_snap_taken = taken;
		log_info("snapshot: taken (%llu since start), applied index "
			 "%llu",
			 (unsigned long long)taken,
			 (unsigned long long)fsm_applied_index(rn->fsm));
	}
	if (restored != rn->last_snap_restored) {
		metric_inc(rn->m_snap_restored,
			   (double)(restored - rn->last_snap_restored));
		rn->last_snap_restored = restored;
		log_info("snapshot: restored (%llu since start), applied "
			 "index %llu",
			 (unsigned long long)restored,
			 (unsigned long long)fsm_applied_index(rn->fsm));
	}

	metric_set(rn->m_term, (double)r->current_term);
	metric_set(rn->m_is_leader, state == RAFT_LEADER ? 1.0 : 0.0);
	metric_set(rn->m_commit, (double)r->commit_index);
	metric_set(rn->m_applied, (double)fsm_applied_index(rn->fsm));
	metric_set(rn->m_last, (double)raft_last_index(r));
}

/* Worker thread: flush LMDB.  fsm_sync() is mdb_env_sync(), an
 * fdatasync of the data file that is safe beside the loop's transactions;
 * the environment stays open until the work's after-callback ran (see
 * raftnode_close). */
static void sync_work(uv_work_t *w)
{
	struct raftnode *rn = w->data;

	rn->sync_rv = fsm_sync(rn->fsm);
}

static void close_step_done(struct raftnode *rn);

static void sync_done(uv_work_t *w, int status)
{
	struct raftnode *rn = w->data;

	rn->sync_inflight = false;
	if (status != 0) {
		log_error("fsm_sync: %s", uv_strerror(status));
	} else if (rn->sync_rv != 0) {
		log_error("fsm_sync: %s", ombra_strerror(rn->sync_rv));
	} else {
		rn->synced_index = rn->sync_target;
	}
	if (rn->close_waits_sync) {
		rn->close_waits_sync = false;
		close_step_done(rn);
	}
}

/* Flush LMDB in the thread pool when the applied index moved, so the
 * fdatasync (several ms) never stalls the loop. */
static void tick_sync(struct raftnode *rn)
{
	uint64_t applied = fsm_applied_index(rn->fsm);
	int rv;

	if (rn->sync_inflight || applied == rn->synced_index) {
		return;
	}
	rn->sync_target = applied;
	rn->sync_req.data = rn;
	rv = uv_queue_work(rn->loop, &rn->sync_req, sync_work, sync_done);
	if (rv != 0) {
		log_error("fsm_sync: uv_queue_work: %s", uv_strerror(rv));
		return;
	}
	rn->sync_inflight = true;
}

static void on_check(uv_check_t *c)
{
	observe_state(c->data);
	barrier_issue(c->data);
}

static void on_tick(uv_timer_t *t)
{
	struct raftnode *rn = t->data;

	tick_observe(rn);
	if (++rn->ticks % SYNC_EVERY_TICKS == 0) {
		tick_sync(rn);
	}
}

/* ------------------------------------------------------------ start */

static int metrics_create(struct raftnode *rn, struct metrics_registry *reg)
{
	static const double lat_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
					    0.025,  0.05,  0.1,	   0.25,  0.5,
					    1.0,    2.5,   5.0};

	rn->m_term = metrics_gauge(reg, "ombra_metad_raft_term",
				   "Current Raft term of this member", NULL);
	rn->m_is_leader =
	    metrics_gauge(reg, "ombra_metad_is_leader",
			  "1 if this member is the Raft leader", NULL);
	rn->m_commit =
	    metrics_gauge(reg, "ombra_metad_commit_index",
			  "Highest Raft index known committed", NULL);
	rn->m_applied =
	    metrics_gauge(reg, "ombra_metad_applied_index",
			  "Last command index applied to LMDB", NULL);
	rn->m_last =
	    metrics_gauge(reg, "ombra_metad_last_log_index",
			  "Index of the last entry in the local log", NULL);
	rn->m_apply_latency = metrics_histogram(
	    reg, "ombra_metad_apply_latency_seconds",
	    "Time from proposing a command to its apply callback", NULL,
	    lat_bounds, sizeof(lat_bounds) / sizeof(lat_bounds[0]));
	rn->m_snap_taken =
	    metrics_counter(reg, "ombra_metad_snapshots_taken_total",
			    "Raft snapshots taken by this member", NULL);
	rn->m_snap_restored =
	    metrics_counter(reg, "ombra_metad_snapshots_restored_total",
			    "Raft snapshots installed on this member", NULL);
	if (rn->m_term == NULL || rn->m_is_leader == NULL ||
	    rn->m_commit == NULL || rn->m_applied == NULL ||
	    rn->m_last == NULL || rn->m_apply_latency == NULL ||
	    rn->m_snap_taken == NULL || rn->m_snap_restored == NULL) {
		return OMBRA_ENOMEM;
	}
	return 0;
}

static int bootstrap(struct raftnode *rn, char *errmsg)
{
	struct raft_configuration conf;
	const struct metad_config *cfg = rn->cfg;
	int rv = 0;

	raft_configuration_init(&conf);
	for (size_t i = 0; i < cfg->n_members; i++) {
		rv = raft_configuration_add(&conf, cfg->members[i].id,
					    cfg->members[i].raft, RAFT_VOTER);
		if (rv != 0) {
			ombra_errmsg_printf(
			    errmsg, "bootstrap: member %llu: %s",
			    (unsigned long long)cfg->members[i].id,
			    raft_strerror(rv));
			rv = raftnode_map_error(rv);
			goto out;
		}
	}
	rv = raft_bootstrap(&rn->raft, &conf);
	if (rv == RAFT_CANTBOOTSTRAP) {
		log_info("raft: existing state found, not bootstrapping");
		rv = 0;
	} else if (rv != 0) {
		ombra_errmsg_printf(errmsg, "raft_bootstrap: %s",
				    raft_errmsg(&rn->raft));
		rv = raftnode_map_error(rv);
	} else {
		log_info("raft: bootstrapped a new group with %zu voter(s)",
			 cfg->n_members);
	}
out:
	raft_configuration_close(&conf);
	return rv;
}

static int raft_setup(struct raftnode *rn, char *errmsg)
{
	const struct metad_config *cfg = rn->cfg;
	char dir[PATH_MAX + 8];
	int rv;

	snprintf(dir, sizeof(dir), "%s/raft", cfg->data_dir);
	rv = raft_uv_tcp_init(&rn->transport, rn->loop);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "raft_uv_tcp_init: %s",
				    raft_strerror(rv));
		return raftnode_map_error(rv);
	}
	rn->transport_ok = true;
	rv = raft_uv_init(&rn->io, rn->loop, dir, &rn->transport);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "raft_uv_init(%s): %s", dir,
				    rn->io.errmsg);
		return raftnode_map_error(rv);
	}
	rn->io_ok = true;
	/* raft_uv has no async_work: snapshots copy LMDB in the pool. */
	raft_async_install(&rn->io, rn->loop);
	rv = raft_guard_install(&rn->guard, &rn->io, &rn->raft);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "raft_guard_install: %s",
				    ombra_strerror(rv));
		return rv;
	}
	rn->guard_ok = true;
	rv =
	    raft_init(&rn->raft, &rn->io, &rn->rfsm, cfg->id, cfg->raft_listen);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "raft_init: %s",
				    raft_errmsg(&rn->raft));
		return raftnode_map_error(rv);
	}
	rn->raft_ok = true;
	rn->raft.data = rn;
	raft_set_election_timeout(&rn->raft, cfg->election_timeout_ms);
	raft_set_heartbeat_timeout(&rn->raft, cfg->heartbeat_timeout_ms);
	raft_set_snapshot_threshold(&rn->raft, cfg->snapshot_threshold);
	raft_set_snapshot_trailing(&rn->raft, cfg->snapshot_trailing);
	/* The LMDB copy is already compact; LZ4 over the whole state on every
	 * snapshot cost ~5% of the leader's CPU under write load (bench). */
	rv = raft_uv_set_snapshot_compression(&rn->io, false);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg,
				    "raft_uv_set_snapshot_compression: %s",
				    raft_strerror(rv));
		return raftnode_map_error(rv);
	}
	raft_set_pre_vote(&rn->raft, true);
	if (cfg->bootstrap) {
		rv = bootstrap(rn, errmsg);
		if (rv != 0) {
			return rv;
		}
	}
	rv = raft_start(&rn->raft);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg,
				    "raft_start on %s: %s: %s (is the address "
				    "already in use, or %s unreadable?)",
				    cfg->raft_listen, raft_strerror(rv),
				    raft_errmsg(&rn->raft)[0] != '\0'
					? raft_errmsg(&rn->raft)
					: rn->io.errmsg,
				    cfg->data_dir);
		return raftnode_map_error(rv);
	}
	return 0;
}

int raftnode_start(const struct raftnode_options *o, struct raftnode **out,
		   char *errmsg)
{
	struct raftnode *rn;
	int rv;

	*out = NULL;
	rn = calloc(1, sizeof(*rn));
	if (rn == NULL) {
		ombra_errmsg_printf(errmsg, "raftnode: out of memory");
		return OMBRA_ENOMEM;
	}
	rn->loop = o->loop;
	rn->cfg = o->cfg;
	rn->fsm = o->fsm;
	rn->on_leader = o->on_leader;
	rn->data = o->data;
	rn->last_state = RAFT_UNAVAILABLE;
	rn->synced_index = fsm_applied_index(o->fsm);
	rn->last_snap_taken = fsm_snapshots_taken(o->fsm);
	rn->last_snap_restored = fsm_snapshots_restored(o->fsm);
	atomic_init(&rn->health_state, RAFT_UNAVAILABLE);
	atomic_init(&rn->health_leader, 0);
	*out = rn;

	rv = metrics_create(rn, o->metrics);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "raftnode: metrics: out of memory");
		return rv;
	}
	uv_timer_init(rn->loop, &rn->tick);
	uv_check_init(rn->loop, &rn->check);
	rn->tick.data = rn;
	rn->check.data = rn;
	rn->tick_ok = true;
	/* raft_init() keeps the raft_fsm pointer: fill it first. */
	fsm_bind_raft(rn->fsm, &rn->raft, &rn->rfsm);
	rv = raft_setup(rn, errmsg);
	if (rv != 0) {
		return rv;
	}
	uv_timer_start(&rn->tick, on_tick, TICK_MS, TICK_MS);
	uv_check_start(&rn->check, on_check);
	log_info("raft: member %llu started on %s (applied index %llu)",
		 (unsigned long long)rn->cfg->id, rn->cfg->raft_listen,
		 (unsigned long long)fsm_applied_index(rn->fsm));
	return 0;
}

/* ------------------------------------------------------------ close */

static void close_step_done(struct raftnode *rn)
{
	void (*cb)(void *data) = rn->close_cb;
	void *data = rn->close_data;
	int rv;

	if (--rn->closing > 0) {
		return;
	}
	if (rn->guard_ok) {
		raft_guard_remove(&rn->guard);
	}
	if (rn->io_ok) {
		raft_uv_close(&rn->io);
	}
	if (rn->transport_ok) {
		raft_uv_tcp_close(&rn->transport);
	}
	rv = fsm_sync(rn->fsm);
	if (rv != 0) {
		log_error("fsm_sync at shutdown: %s", ombra_strerror(rv));
	}
	free(rn);
	if (cb != NULL) {
		cb(data);
	}
}

static void on_raft_closed(struct raft *r)
{
	struct raftnode *rn = r->data;

	log_info("raft: closed (raft_guard adjusted %lu messages)",
		 rn->guard.adjusted);
	close_step_done(rn);
}

static void on_tick_closed(uv_handle_t *h)
{
	close_step_done(h->data);
}

void raftnode_close(struct raftnode *rn, void (*cb)(void *data), void *data)
{
	rn->close_cb = cb;
	rn->close_data = data;
	rn->closing = 1; /* released by the final close_step_done below */
	atomic_store(&rn->health_state, RAFT_UNAVAILABLE);
	barrier_issue(rn); /* fails the reads waiting for a barrier */
	if (rn->tick_ok) {
		rn->closing += 2;
		uv_timer_stop(&rn->tick);
		uv_close((uv_handle_t *)&rn->tick, on_tick_closed);
		uv_check_stop(&rn->check);
		uv_close((uv_handle_t *)&rn->check, on_tick_closed);
	}
	if (rn->raft_ok) {
		rn->closing++;
		rn->raft.data = rn;
		raft_close(&rn->raft, on_raft_closed);
	}
	if (rn->sync_inflight) {
		/* The FSM must stay open until the worker is done with it. */
		rn->closing++;
		rn->close_waits_sync = true;
	}
	close_step_done(rn);
}
