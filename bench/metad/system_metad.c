/* system_metad.c: ombra-bench-metad's operations against ombra-metad's
 * AdminService: AddRegion (prepare), CreateVolume with a unique name and a
 * fresh request id (write), GetVolume without allow_stale, which metad
 * serves after raft_barrier() (read), and GetClusterStatus (leader).
 *
 * Every call goes through rpc_cluster_unary(), which follows the leader via
 * the "ombra-leader" trailing metadata, so clients talk to the leader as
 * ombractl and the proxies do.
 *
 * Failure: the server's status is passed back in struct rpc_status; a
 * reply that names another volume than the one asked for is reported as
 * OMBRA_EINTERNAL ("GetVolume answered ..."). */
#include <stdio.h>
#include <string.h>

#include "admin.pb-c.h"
#include "bench.h"

static int bench_metad_prepare(struct rpc_cluster *cl, int timeout_ms,
			       struct rpc_status *st)
{
	Ombra__V1__AddRegionRequest req = OMBRA__V1__ADD_REGION_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char rid[40];
	int rv;

	rpc_request_id(rid, sizeof(rid));
	req.name = (char *)BENCH_REGION;
	req.request_id = rid;
	rv = rpc_cluster_unary(cl, &ombra__v1__admin_service__descriptor,
			       "AddRegion", &req.base, &resp, timeout_ms, st);
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	if (rv == OMBRA_EEXIST)
		return 0; /* left by an earlier phase: what we want */
	return rv;
}

static int bench_metad_write(struct rpc_cluster *cl, const char *name,
			     uint64_t seq, int timeout_ms, size_t *value_bytes,
			     struct rpc_status *st)
{
	Ombra__V1__CreateVolumeRequest req =
	    OMBRA__V1__CREATE_VOLUME_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	Ombra__V1__CreateVolumeResponse *cv;
	char rid[40];
	int rv;

	(void)seq; /* metad assigns the id itself */
	rpc_request_id(rid, sizeof(rid));
	req.name = (char *)name;
	req.size_bytes = BENCH_VOLUME_BYTES;
	req.segment_size_bytes = BENCH_SEGMENT_BYTES;
	req.home_region = (char *)BENCH_REGION;
	req.replicas = 2;
	req.request_id = rid;
	rv =
	    rpc_cluster_unary(cl, &ombra__v1__admin_service__descriptor,
			      "CreateVolume", &req.base, &resp, timeout_ms, st);
	if (rv != 0)
		return rv;
	cv = (Ombra__V1__CreateVolumeResponse *)resp;
	if (value_bytes != NULL)
		*value_bytes =
		    cv->volume
			? protobuf_c_message_get_packed_size(&cv->volume->base)
			: 0;
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

static int bench_metad_read(struct rpc_cluster *cl, const char *name,
			    int timeout_ms, struct rpc_status *st)
{
	Ombra__V1__GetVolumeRequest req = OMBRA__V1__GET_VOLUME_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	Ombra__V1__GetVolumeResponse *gv;
	int rv;

	req.name = (char *)name;
	req.allow_stale = false; /* linearizable: barrier on the leader */
	rv = rpc_cluster_unary(cl, &ombra__v1__admin_service__descriptor,
			       "GetVolume", &req.base, &resp, timeout_ms, st);
	if (rv != 0)
		return rv;
	gv = (Ombra__V1__GetVolumeResponse *)resp;
	if (gv->volume == NULL || gv->volume->name == NULL ||
	    strcmp(gv->volume->name, name) != 0) {
		st->code = GRPC_STATUS_INTERNAL;
		snprintf(st->message, sizeof(st->message),
			 "GetVolume(%s) answered volume '%s'", name,
			 gv->volume && gv->volume->name ? gv->volume->name
							: "(none)");
		rv = OMBRA_EINTERNAL;
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rv;
}

int bench_metad_leader(const char *endpoints, int timeout_ms, char *leader_addr,
		       size_t len, uint64_t *leader_id, uint64_t *term,
		       struct rpc_status *st, char *errmsg)
{
	Ombra__V1__GetClusterStatusRequest req =
	    OMBRA__V1__GET_CLUSTER_STATUS_REQUEST__INIT;
	const char *p = endpoints;
	int rv = OMBRA_EUNAVAIL;

	st->code = GRPC_STATUS_UNAVAILABLE;
	snprintf(st->message, sizeof(st->message), "no endpoint given");
	st->leader[0] = '\0';
	while (*p) {
		size_t n = strcspn(p, ",");
		char target[128];
		struct rpc_client *c;
		ProtobufCMessage *resp = NULL;
		Ombra__V1__GetClusterStatusResponse *cs;

		if (n == 0 || n >= sizeof(target)) {
			ombra_errmsg_printf(errmsg, "bad endpoint list '%s'",
					    endpoints);
			return OMBRA_EINVAL;
		}
		memcpy(target, p, n);
		target[n] = '\0';
		p += n;
		if (*p == ',')
			p++;
		rv = rpc_client_create(target, NULL, &c, errmsg);
		if (rv != 0)
			return rv;
		rv = rpc_client_unary(c, &ombra__v1__admin_service__descriptor,
				      "GetClusterStatus", &req.base, &resp,
				      timeout_ms, st);
		rpc_client_destroy(c);
		if (rv != 0)
			continue;
		cs = (Ombra__V1__GetClusterStatusResponse *)resp;
		if (cs->leader_id != 0 && cs->leader_address != NULL &&
		    cs->leader_address[0] != '\0') {
			snprintf(leader_addr, len, "%s", cs->leader_address);
			*leader_id = cs->leader_id;
			*term = cs->term;
			protobuf_c_message_free_unpacked(resp, NULL);
			return 0;
		}
		snprintf(st->message, sizeof(st->message),
			 "%s knows no leader (state %s)", target,
			 cs->state ? cs->state : "?");
		protobuf_c_message_free_unpacked(resp, NULL);
		rv = OMBRA_EUNAVAIL;
	}
	return rv ? rv : OMBRA_EUNAVAIL;
}

const struct bench_system bench_metad = {
    .name = "metad",
    .prepare = bench_metad_prepare,
    .write = bench_metad_write,
    .read = bench_metad_read,
};
