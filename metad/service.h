/* service.h: ombra-metad's gRPC services (AdminService, MetaService), the
 * helpers they share (handler tables, error replies, leader redirection)
 * and the Watch event hub.
 *
 * Threads: loop thread only.  Failure: registration returns OMBRA_E* with
 * errmsg; handlers always answer the call, with a gRPC status that says
 * what was wrong and what to do. */
#ifndef OMBRA_METAD_SERVICE_H
#define OMBRA_METAD_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "fsm.h"
#include "metad.h"
#include "rpc.h"

/* One row of a service's handler table: method name -> handler. */
struct service_method {
	const char *name; /* as in the .proto ("CreateVolume") */
	rpc_handler_fn fn;
};

/* Build the handler array of desc (indexed like desc->methods, looked up
 * by name) from a name table and register it with rpc_server_add_service().
 * Every row must name a method of desc (OMBRA_EINTERNAL otherwise: the
 * table and the .proto disagree); methods without a row answer
 * UNIMPLEMENTED.  Handlers get md as data, and once md->stopping is set
 * every call is answered UNAVAILABLE without reaching them.  The table
 * memory is kept in md->services until service_free_tables(), which must
 * run after the server stopped. */
int service_register_table(struct rpc_server *srv,
			   const ProtobufCServiceDescriptor *desc,
			   const struct service_method *table, size_t n,
			   struct metad *md, char *errmsg);
void service_free_tables(struct metad *md);

/* AdminService (service_admin.c) and MetaService (service_meta.c). */
int service_admin_register(struct metad *md, struct rpc_server *srv,
			   char *errmsg);
int service_meta_register(struct metad *md, struct rpc_server *srv,
			  char *errmsg);

/* Answer UNAVAILABLE "not the leader; leader is metad-<id> at <addr>" (or
 * "no leader elected yet; retry") with the leader's gRPC address in the
 * RPC_LEADER_MD_KEY trailing metadata. */
void service_fail_not_leader(struct metad *md, struct rpc_call *call);

/* Answer with the gRPC status of an OMBRA_E* code and errmsg;
 * OMBRA_ENOTLEADER becomes service_fail_not_leader(). */
void service_fail(struct metad *md, struct rpc_call *call, int rv,
		  const char *errmsg);

/* Linearizable read: when allow_stale, run read(md, call, req) now from
 * the local state machine; else require leadership, wait for a read
 * barrier and run it then (or answer the error).  req: the call's request,
 * valid until the call is answered. */
typedef void (*service_read_fn)(struct metad *md, struct rpc_call *call,
				const ProtobufCMessage *req);
void service_read(struct metad *md, struct rpc_call *call,
		  const ProtobufCMessage *req, bool allow_stale,
		  service_read_fn read);

/* Reply builder after a successful proposal: res->code is 0; req is the
 * call's request. */
typedef void (*service_written_fn)(struct metad *md, struct rpc_call *call,
				   const struct fsm_result *res,
				   const ProtobufCMessage *req);

/* Propose cmd (request_id "" -> a generated one) and, once applied, answer
 * the call: errors and command refusals (res->code != 0) are answered
 * here, success by written(md, call, res, req). */
void service_propose(struct metad *md, struct rpc_call *call,
		     Ombra__V1__MetaCommand *cmd, const ProtobufCMessage *req,
		     service_written_fn written);

/* ---- service_cluster.c: AdminService methods about the Raft group. */
void cluster_handle_status(struct rpc_call *call, const ProtobufCMessage *req,
			   void *data);
void cluster_handle_add_member(struct rpc_call *call,
			       const ProtobufCMessage *req, void *data);
void cluster_handle_remove_member(struct rpc_call *call,
				  const ProtobufCMessage *req, void *data);

/* ---- service_vlease.c: MetaService.VolumeLease and
 * AdminService.ListFailovers (contract in that file). */
void vlease_handle(struct rpc_call *call, const ProtobufCMessage *req,
		   void *data);
void vlease_handle_list_failovers(struct rpc_call *call,
				  const ProtobufCMessage *req, void *data);

/* ---- watch.c: fan-out of state-machine change events to Watch streams. */

/* Create the hub and register it as the fsm's change listener. */
int watch_hub_create(struct metad *md, struct watch_hub **out, char *errmsg);

/* End every stream (UNAVAILABLE: shutting down) and free the hub. */
void watch_hub_destroy(struct watch_hub *hub);

/* Handler of AdminService.Watch. */
void watch_handle(struct rpc_call *call, const ProtobufCMessage *req,
		  void *data);

#endif
