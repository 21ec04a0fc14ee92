/* service.c: what ombra-metad's gRPC handlers share: building handler
 * tables from method names, mapping errors to gRPC statuses, redirecting
 * followers' callers to the leader, linearizable reads through read
 * barriers, and proposals that answer the call once applied.
 *
 * Failure: every path answers its call exactly once; out-of-memory while
 * answering becomes RESOURCE_EXHAUSTED, never an abort. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "raftnode.h"
#include "service.h"

/* One registered service: its handlers indexed like desc->methods. */
struct service_table {
	struct metad *md;
	const ProtobufCServiceDescriptor *desc;
	rpc_handler_fn *fns;
	struct service_table *next;
};

/* Every method of every service enters here: once the daemon is stopping
 * (calls accepted before the gRPC server stopped may still be delivered),
 * answer UNAVAILABLE instead of touching state being torn down. */
static void service_dispatch(struct rpc_call *call, const ProtobufCMessage *req,
			     void *data)
{
	struct service_table *t = data;
	const ProtobufCMethodDescriptor *m;

	if (t->md->stopping) {
		rpc_call_fail(call, GRPC_STATUS_UNAVAILABLE,
			      "metad-%llu is shutting down; retry on another "
			      "member",
			      (unsigned long long)t->md->cfg->id);
		return;
	}
	m = protobuf_c_service_descriptor_get_method_by_name(
	    t->desc, rpc_call_method(call));
	if (m == NULL || t->fns[m - t->desc->methods] == NULL) {
		rpc_call_fail(call, GRPC_STATUS_UNIMPLEMENTED,
			      "%s.%s is not implemented by ombra-metad",
			      t->desc->name, rpc_call_method(call));
		return;
	}
	t->fns[m - t->desc->methods](call, req, t->md);
}

int service_register_table(struct rpc_server *srv,
			   const ProtobufCServiceDescriptor *desc,
			   const struct service_method *table, size_t n,
			   struct metad *md, char *errmsg)
{
	const ProtobufCMethodDescriptor *m;
	rpc_handler_fn *dispatch = NULL;
	struct service_table *t;
	int rv = OMBRA_ENOMEM;

	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		ombra_errmsg_printf(errmsg, "%s: out of memory", desc->name);
		return OMBRA_ENOMEM;
	}
	t->md = md;
	t->desc = desc;
	t->fns = calloc(desc->n_methods, sizeof(*t->fns));
	dispatch = calloc(desc->n_methods, sizeof(*dispatch));
	if (t->fns == NULL || dispatch == NULL) {
		ombra_errmsg_printf(errmsg, "%s: out of memory", desc->name);
		goto err;
	}
	for (size_t i = 0; i < n; i++) {
		m = protobuf_c_service_descriptor_get_method_by_name(
		    desc, table[i].name);
		if (m == NULL) {
			ombra_errmsg_printf(errmsg,
					    "%s has no method %s (handler "
					    "table out of date)",
					    desc->name, table[i].name);
			rv = OMBRA_EINTERNAL;
			goto err;
		}
		t->fns[m - desc->methods] = table[i].fn;
		dispatch[m - desc->methods] = service_dispatch;
	}
	rv = rpc_server_add_service(srv, desc, dispatch, t);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "register %s: %s", desc->name,
				    ombra_strerror(rv));
		goto err;
	}
	free(dispatch);
	t->next = md->services;
	md->services = t;
	return 0;
err:
	free(dispatch);
	free(t->fns);
	free(t);
	return rv;
}

void service_free_tables(struct metad *md)
{
	struct service_table *t;

	while ((t = md->services) != NULL) {
		md->services = t->next;
		free(t->fns);
		free(t);
	}
}

void service_fail_not_leader(struct metad *md, struct rpc_call *call)
{
	char addr[METAD_ADDR_LEN];
	uint64_t id = 0;

	if (raftnode_leader(md->rn, &id, addr, sizeof(addr)) != 0 ||
	    id == md->cfg->id) {
		/* No leader, or this member was leader a moment ago and is
		 * stepping down: nothing useful to point at. */
		rpc_call_fail_md(call, GRPC_STATUS_UNAVAILABLE,
				 RPC_LEADER_MD_KEY, "",
				 "no leader elected yet; retry");
		return;
	}
	rpc_call_fail_md(call, GRPC_STATUS_UNAVAILABLE, RPC_LEADER_MD_KEY, addr,
			 "not the leader; leader is metad-%llu at %s",
			 (unsigned long long)id,
			 addr[0] != '\0' ? addr : "an unknown address");
}

void service_fail(struct metad *md, struct rpc_call *call, int rv,
		  const char *errmsg)
{
	if (rv == OMBRA_ENOTLEADER) {
		service_fail_not_leader(md, call);
		return;
	}
	rpc_call_fail(call, (grpc_status_code)ombra_err_to_grpc(rv), "%s",
		      errmsg != NULL && errmsg[0] != '\0' ? errmsg
							  : ombra_strerror(rv));
}

/* ------------------------------------------------------------ reads */

struct read_op {
	struct metad *md;
	struct rpc_call *call;
	const ProtobufCMessage *req;
	service_read_fn read;
};

static void read_ready(void *data, int rv, const char *errmsg)
{
	struct read_op *op = data;

	if (rv != 0) {
		service_fail(op->md, op->call, rv, errmsg);
	} else {
		op->read(op->md, op->call, op->req);
	}
	free(op);
}

void service_read(struct metad *md, struct rpc_call *call,
		  const ProtobufCMessage *req, bool allow_stale,
		  service_read_fn read)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	struct read_op *op;
	int rv;

	if (allow_stale) {
		read(md, call, req);
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
	op->req = req;
	op->read = read;
	rv = raftnode_barrier(md->rn, read_ready, op, errmsg);
	if (rv != 0) {
		free(op);
		service_fail(md, call, rv, errmsg);
	}
}

/* ------------------------------------------------------------ writes */

struct write_op {
	struct metad *md;
	struct rpc_call *call;
	const ProtobufCMessage *req;
	service_written_fn written;
};

static void write_applied(void *data, int rv, const char *errmsg,
			  const struct fsm_result *res)
{
	struct write_op *op = data;

	if (rv != 0) {
		service_fail(op->md, op->call, rv, errmsg);
	} else if (res->code != 0) {
		rpc_call_fail(op->call, (grpc_status_code)res->code, "%s",
			      res->message);
	} else {
		op->written(op->md, op->call, res, op->req);
	}
	free(op);
}

void service_propose(struct metad *md, struct rpc_call *call,
		     Ombra__V1__MetaCommand *cmd, const ProtobufCMessage *req,
		     service_written_fn written)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	char request_id[64];
	struct write_op *op;
	int rv;

	if (!raftnode_is_leader(md->rn)) {
		service_fail_not_leader(md, call);
		return;
	}
	if (cmd->request_id == NULL || cmd->request_id[0] == '\0') {
		/* The client gave none: at least a proposal retried inside
		 * the log is applied once. */
		rpc_request_id(request_id, sizeof(request_id));
		cmd->request_id = request_id;
	}
	op = calloc(1, sizeof(*op));
	if (op == NULL) {
		rpc_call_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
			      "out of memory");
		return;
	}
	op->md = md;
	op->call = call;
	op->req = req;
	op->written = written;
	rv = raftnode_propose(md->rn, cmd, write_applied, op, errmsg);
	if (rv != 0) {
		free(op);
		service_fail(md, call, rv, errmsg);
	}
}
