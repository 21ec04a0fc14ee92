/* seginfo.c: per-segment version and tier from each segment's primary
 * (StoreService.GetSegmentInfo) and the state of its shadows
 * (StoreService.ListCopies of their nodes) for "ombractl volume shards";
 * see seginfo.h.
 *
 * Failure: never fatal; per-segment error texts, and a node that does not
 * answer at all is marked dead after its first failure so the rest of its
 * segments are reported without further calls. */
#include <grpc/status.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seginfo.h"
#include "store.pb-c.h"

/* One storage node of the page and the connection to it. */
struct seginfo_conn {
	const Ombra__V1__Node *node;
	struct rpc_client *client;
	bool dead;		     /* do not ask again */
	char error[SEGINFO_ERR_LEN]; /* why, when dead */
};

static struct seginfo_conn *seginfo_conn_find(struct seginfo_conn *conns,
					      size_t n, uint64_t id)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (conns[i].node->id == id) {
			return &conns[i];
		}
	}
	return NULL;
}

static void seginfo_conn_fail(struct seginfo_conn *c, const char *what,
			      const char *detail)
{
	c->dead = true;
	snprintf(c->error, sizeof(c->error), "%.48s (%.48s): %.24s: %.140s",
		 c->node->name, c->node->address, what, detail);
}

/* One StoreService call to c's node (connecting on first use), at most
 * SEGINFO_TIMEOUT_MS.  0 with *resp (caller frees), or -1 with the reason
 * in err; UNAVAILABLE, a deadline or UNIMPLEMENTED mark the node dead. */
static int seginfo_call(const struct cli *cli, struct seginfo_conn *c,
			const char *method, const ProtobufCMessage *req,
			ProtobufCMessage **resp, char *err, size_t err_len)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	struct rpc_status st;
	int timeout = cli->timeout_ms;

	if (c->client == NULL && !c->dead &&
	    rpc_client_create(c->node->address,
			      cli->tls.ca_file != NULL ? &cli->tls : NULL,
			      &c->client, errmsg) != 0) {
		seginfo_conn_fail(c, "cannot connect", errmsg);
	}
	if (c->dead) {
		snprintf(err, err_len, "%s", c->error);
		return -1;
	}
	if (timeout <= 0 || timeout > SEGINFO_TIMEOUT_MS) {
		timeout = SEGINFO_TIMEOUT_MS;
	}
	if (rpc_client_unary(c->client, &ombra__v1__store_service__descriptor,
			     method, req, resp, timeout, &st) == 0)
		return 0;
	if (st.code == GRPC_STATUS_UNAVAILABLE ||
	    st.code == GRPC_STATUS_DEADLINE_EXCEEDED ||
	    st.code == GRPC_STATUS_UNIMPLEMENTED) {
		seginfo_conn_fail(c, rpc_status_name(st.code), st.message);
		snprintf(err, err_len, "%s", c->error);
	} else {
		snprintf(err, err_len, "%.48s (%.48s): %.24s: %.140s",
			 c->node->name, c->node->address,
			 rpc_status_name(st.code), st.message);
	}
	return -1;
}

/* Ask c's node about one segment; fills out. */
static void seginfo_ask(const struct cli *cli, struct seginfo_conn *c,
			uint64_t volume_id, uint64_t index, struct seginfo *out)
{
	Ombra__V1__SegmentInfoRequest req =
	    OMBRA__V1__SEGMENT_INFO_REQUEST__INIT;
	Ombra__V1__SegmentInfoResponse *resp;
	ProtobufCMessage *msg = NULL;

	req.volume_id = volume_id;
	req.segment_index = index;
	if (seginfo_call(cli, c, "GetSegmentInfo", &req.base, &msg, out->error,
			 sizeof(out->error)) != 0)
		return;
	resp = (Ombra__V1__SegmentInfoResponse *)msg;
	out->ok = true;
	out->version = resp->version;
	snprintf(out->tier, sizeof(out->tier), "%s",
		 resp->tier != NULL ? resp->tier : "");
	protobuf_c_message_free_unpacked(msg, NULL);
}

/* Fill the copies of every segment whose shadows are on c's node from one
 * ListCopies(volume) call; a node that does not answer leaves them !ok. */
static void seginfo_copies(const struct cli *cli, struct seginfo_conn *c,
			   const Ombra__V1__GetVolumeShardingInfoResponse *r,
			   uint64_t volume_id, struct seginfo *out)
{
	Ombra__V1__ListCopiesRequest req = OMBRA__V1__LIST_COPIES_REQUEST__INIT;
	const Ombra__V1__ListCopiesResponse *resp;
	ProtobufCMessage *msg = NULL;
	char err[SEGINFO_ERR_LEN];
	size_t i, j, k;

	req.volume_id = volume_id;
	if (seginfo_call(cli, c, "ListCopies", &req.base, &msg, err,
			 sizeof(err)) != 0)
		return;
	resp = (const Ombra__V1__ListCopiesResponse *)msg;
	for (i = 0; i < r->n_segments; i++) {
		const Ombra__V1__SegmentPlacement *s = r->segments[i];

		for (j = 0; out[i].copies != NULL && j < s->n_shadows; j++) {
			struct seginfo_copy *sc = &out[i].copies[j];

			if (s->shadows[j]->node_id != c->node->id)
				continue;
			sc->ok = true;
			for (k = 0; k < resp->n_copies; k++) {
				const Ombra__V1__CopyInfo *ci = resp->copies[k];

				if (ci->volume_id != volume_id ||
				    ci->segment_index != s->index)
					continue;
				sc->found = true;
				sc->filling = ci->filling;
				sc->present_blocks = ci->present_blocks;
				sc->total_blocks = ci->total_blocks;
				sc->lag_versions = ci->lag_versions;
				sc->lag_ms = ci->lag_ms;
				break;
			}
		}
	}
	protobuf_c_message_free_unpacked(msg, NULL);
}

/* For every node holding a shadow of the page: its copies. */
static void
seginfo_fetch_copies(const struct cli *cli, struct seginfo_conn *conns,
		     const Ombra__V1__GetVolumeShardingInfoResponse *r,
		     uint64_t volume_id, struct seginfo *out)
{
	size_t i, j, n;

	for (i = 0; i < r->n_segments; i++) {
		n = r->segments[i]->n_shadows;
		if (n > 0)
			out[i].copies = calloc(n, sizeof(*out[i].copies));
		out[i].n_copies = out[i].copies != NULL ? n : 0;
	}
	for (j = 0; j < r->n_nodes; j++) {
		bool holds = false;

		for (i = 0; i < r->n_segments && !holds; i++) {
			const Ombra__V1__SegmentPlacement *s = r->segments[i];

			for (n = 0; n < s->n_shadows; n++)
				holds |=
				    s->shadows[n]->node_id == conns[j].node->id;
		}
		if (holds)
			seginfo_copies(cli, &conns[j], r, volume_id, out);
	}
}

void seginfo_free(struct seginfo *out, size_t n)
{
	for (size_t i = 0; out != NULL && i < n; i++) {
		free(out[i].copies);
		out[i].copies = NULL;
		out[i].n_copies = 0;
	}
}

size_t seginfo_fetch(const struct cli *cli,
		     const Ombra__V1__GetVolumeShardingInfoResponse *r,
		     struct seginfo *out)
{
	uint64_t volume_id = r->volume != NULL ? r->volume->id : 0;
	struct seginfo_conn *conns;
	size_t i, failed = 0;

	conns = calloc(r->n_nodes + 1, sizeof(*conns));
	if (conns == NULL) {
		for (i = 0; i < r->n_segments; i++) {
			out[i].asked = r->segments[i]->primary_node_id != 0;
			snprintf(out[i].error, sizeof(out[i].error),
				 "out of memory");
			failed += out[i].asked ? 1 : 0;
		}
		return failed;
	}
	for (i = 0; i < r->n_nodes; i++) {
		conns[i].node = r->nodes[i];
	}
	for (i = 0; i < r->n_segments; i++) {
		const Ombra__V1__SegmentPlacement *s = r->segments[i];
		struct seginfo_conn *c;

		if (s->primary_node_id == 0) {
			continue;
		}
		out[i].asked = true;
		c = seginfo_conn_find(conns, r->n_nodes, s->primary_node_id);
		if (c == NULL) {
			snprintf(out[i].error, sizeof(out[i].error),
				 "primary #%llu is not in the node list",
				 (unsigned long long)s->primary_node_id);
		} else {
			seginfo_ask(cli, c, volume_id, s->index, &out[i]);
		}
		failed += out[i].ok ? 0 : 1;
	}
	seginfo_fetch_copies(cli, conns, r, volume_id, out);
	for (i = 0; i < r->n_nodes; i++) {
		if (conns[i].client != NULL) {
			rpc_client_destroy(conns[i].client);
		}
	}
	free(conns);
	return failed;
}
