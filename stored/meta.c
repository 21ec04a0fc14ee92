/* meta.c: ombra-stored's blocking calls to metad, made from the libuv
 * thread pool.  Three leader-following connections, each serialized by
 * its own mutex: heartbeats (so a slow map fetch never delays the node
 * lease), replica reports (which writes wait on), and everything else.
 *
 * Failure: the codes of rpc_cluster_unary() with the status message in
 * errmsg; a volume that no longer exists is OMBRA_ENOTFOUND. */
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "err.h"
#include "stored.h"
#include "volume.pb-c.h"

/* Largest page GetShardMap serves. */
#define MAP_PAGE 65536

static int conn_init(struct stored *sd, struct metaconn *mc, char *errmsg)
{
	pthread_mutex_init(&mc->mu, NULL);
	return rpc_cluster_create(sd->cfg.metad, sd->use_tls ? &sd->tls : NULL,
				  &mc->cl, errmsg);
}

int meta_init(struct stored *sd, char *errmsg)
{
	int rv = conn_init(sd, &sd->meta_main, errmsg);

	if (rv == 0) {
		rv = conn_init(sd, &sd->meta_hb, errmsg);
	}
	if (rv == 0) {
		rv = conn_init(sd, &sd->meta_report, errmsg);
	}
	if (rv != 0) {
		ombra_errmsg_wrapf(errmsg, "--metad '%s'", sd->cfg.metad);
	}
	return rv;
}

static void conn_fini(struct metaconn *mc)
{
	if (mc->cl != NULL) {
		rpc_cluster_destroy(mc->cl);
		mc->cl = NULL;
		pthread_mutex_destroy(&mc->mu);
	}
}

void meta_fini(struct stored *sd)
{
	conn_fini(&sd->meta_main);
	conn_fini(&sd->meta_hb);
	conn_fini(&sd->meta_report);
}

int meta_call(struct metaconn *mc, const ProtobufCServiceDescriptor *svc,
	      const char *method, const ProtobufCMessage *req,
	      ProtobufCMessage **resp, int timeout_ms, struct rpc_status *st)
{
	int rv;

	pthread_mutex_lock(&mc->mu);
	rv = rpc_cluster_unary(mc->cl, svc, method, req, resp, timeout_ms, st);
	pthread_mutex_unlock(&mc->mu);
	return rv;
}

/* The name of volume vol_id from ListVolumes, for metads that look shard
 * maps up by name only.  *out malloc'd. */
static int volume_name(struct stored *sd, uint64_t vol_id, char **out,
		       char *errmsg)
{
	Ombra__V1__ListVolumesRequest req =
	    OMBRA__V1__LIST_VOLUMES_REQUEST__INIT;
	Ombra__V1__ListVolumesResponse *resp = NULL;
	struct rpc_status st;
	int rv;

	rv = meta_call(&sd->meta_main, &ombra__v1__admin_service__descriptor,
		       "ListVolumes", &req.base, (ProtobufCMessage **)&resp,
		       STORED_META_TIMEOUT_MS, &st);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "ListVolumes: %s: %s",
				    rpc_status_name(st.code), st.message);
		return rv;
	}
	rv = OMBRA_ENOTFOUND;
	ombra_errmsg_printf(errmsg, "volume %llu does not exist",
			    (unsigned long long)vol_id);
	for (size_t i = 0; i < resp->n_volumes; i++) {
		if (resp->volumes[i]->id == vol_id) {
			*out = strdup(resp->volumes[i]->name);
			rv = *out != NULL ? 0 : OMBRA_ENOMEM;
			break;
		}
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rv;
}

static int fetch_pages(struct stored *sd, uint64_t vol_id, const char *name,
		       struct sm_volume **out, struct rpc_status *st,
		       char *errmsg)
{
	Ombra__V1__GetVolumeShardingInfoRequest req =
	    OMBRA__V1__GET_VOLUME_SHARDING_INFO_REQUEST__INIT;
	struct sm_volume *v = NULL;
	int rv;

	req.volume_id = vol_id;
	req.volume = (char *)(name != NULL ? name : "");
	req.max_segments = MAP_PAGE;
	do {
		Ombra__V1__GetVolumeShardingInfoResponse *resp = NULL;

		rv = meta_call(
		    &sd->meta_main, &ombra__v1__admin_service__descriptor,
		    "GetShardMap", &req.base, (ProtobufCMessage **)&resp,
		    STORED_META_TIMEOUT_MS, st);
		if (rv != 0) {
			ombra_errmsg_printf(errmsg, "GetShardMap: %s: %s",
					    rpc_status_name(st->code),
					    st->message);
			break;
		}
		if (resp->volume != NULL && resp->volume->id != vol_id) {
			ombra_errmsg_printf(
			    errmsg,
			    "GetShardMap answered volume %llu "
			    "for %llu",
			    (unsigned long long)resp->volume->id,
			    (unsigned long long)vol_id);
			rv = OMBRA_EPROTO;
		} else if (v == NULL) {
			rv = sm_volume_new(resp, &v, errmsg);
		}
		if (rv == 0) {
			rv = sm_volume_add_page(v, resp, errmsg);
		}
		req.first_segment = resp->next_segment;
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	} while (rv == 0 && req.first_segment != 0);
	if (rv != 0) {
		sm_volume_free(v);
		return rv;
	}
	*out = v;
	return 0;
}

int meta_fetch_volume(struct stored *sd, uint64_t vol_id, const char *name,
		      struct sm_volume **out, char *errmsg)
{
	struct rpc_status st = {0};
	char *found = NULL;
	int rv;

	rv = fetch_pages(sd, vol_id, name, out, &st, errmsg);
	if (rv == 0 || name != NULL ||
	    (st.code != GRPC_STATUS_INVALID_ARGUMENT &&
	     st.code != GRPC_STATUS_NOT_FOUND)) {
		if (rv != 0 && st.code == GRPC_STATUS_NOT_FOUND) {
			rv = OMBRA_ENOTFOUND;
		}
		return rv;
	}
	/* A metad that only looks volumes up by name: find it. */
	rv = volume_name(sd, vol_id, &found, errmsg);
	if (rv != 0) {
		return rv;
	}
	rv = fetch_pages(sd, vol_id, found, out, &st, errmsg);
	if (rv != 0 && st.code == GRPC_STATUS_NOT_FOUND) {
		rv = OMBRA_ENOTFOUND;
	}
	free(found);
	return rv;
}
