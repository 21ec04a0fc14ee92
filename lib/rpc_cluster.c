/* rpc_cluster.c: a blocking client for a Raft-replicated service (metad)
 * that finds and follows the leader.
 *
 * Each attempt goes to the last endpoint that answered, or the leader a
 * follower named in its "ombra-leader" trailing metadata (added to the list
 * if it was not given).  UNAVAILABLE, connection failures and per-attempt
 * timeouts move on to the next endpoint; after a full round without an
 * answer it sleeps with exponential backoff (50 ms doubling to 1 s).  Every
 * other status is the answer.  Retrying is only safe for requests that carry
 * a request id (writes) or are reads; callers set one on every write.
 *
 * Failure: when the overall deadline passes, the last status seen is
 * returned, with the endpoints tried named in its message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc_internal.h"

/* Longest single attempt, so a hung member cannot eat the whole budget. */
#define CLUSTER_ATTEMPT_MS 5000
#define CLUSTER_MAX_ENDPOINTS 32

struct rpc_cluster {
	char *endpoints[CLUSTER_MAX_ENDPOINTS];
	struct rpc_client *clients[CLUSTER_MAX_ENDPOINTS];
	size_t n;
	size_t current;
	struct rpc_tls tls;
	char *tls_strings[4];
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int endpoint_add(struct rpc_cluster *cl, const char *ep, size_t len)
{
	for (size_t i = 0; i < cl->n; i++)
		if (strlen(cl->endpoints[i]) == len &&
		    memcmp(cl->endpoints[i], ep, len) == 0)
			return (int)i;
	if (cl->n == CLUSTER_MAX_ENDPOINTS)
		return -1;
	cl->endpoints[cl->n] = strndup(ep, len);
	return (int)cl->n++;
}

int rpc_cluster_create(const char *endpoints, const struct rpc_tls *tls,
		       struct rpc_cluster **out, char *errmsg)
{
	struct rpc_cluster *cl = calloc(1, sizeof(*cl));
	if (cl == NULL) {
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	const char *p = endpoints ? endpoints : "";
	while (*p) {
		size_t len = strcspn(p, ",");
		const char *colon = memchr(p, ':', len);
		if (len == 0 || colon == NULL || colon == p ||
		    colon == p + len - 1) {
			ombra_errmsg_printf(errmsg,
					    "bad endpoint '%.*s' in '%s': want "
					    "HOST:PORT[,HOST:PORT...]",
					    (int)len, p, endpoints);
			rpc_cluster_destroy(cl);
			return OMBRA_EINVAL;
		}
		if (endpoint_add(cl, p, len) < 0) {
			ombra_errmsg_printf(errmsg, "more than %d endpoints",
					    CLUSTER_MAX_ENDPOINTS);
			rpc_cluster_destroy(cl);
			return OMBRA_EINVAL;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	if (cl->n == 0) {
		ombra_errmsg_printf(errmsg, "no endpoints given");
		rpc_cluster_destroy(cl);
		return OMBRA_EINVAL;
	}
	if (tls) {
		const char *src[4] = {tls->ca_file, tls->cert_file,
				      tls->key_file, tls->server_name_override};
		for (int i = 0; i < 4; i++)
			cl->tls_strings[i] = src[i] ? strdup(src[i]) : NULL;
		cl->tls.ca_file = cl->tls_strings[0];
		cl->tls.cert_file = cl->tls_strings[1];
		cl->tls.key_file = cl->tls_strings[2];
		cl->tls.server_name_override = cl->tls_strings[3];
	}
	*out = cl;
	return 0;
}

void rpc_cluster_destroy(struct rpc_cluster *cl)
{
	if (cl == NULL)
		return;
	for (size_t i = 0; i < cl->n; i++) {
		rpc_client_destroy(cl->clients[i]);
		free(cl->endpoints[i]);
	}
	for (int i = 0; i < 4; i++)
		free(cl->tls_strings[i]);
	free(cl);
}

static struct rpc_client *client_at(struct rpc_cluster *cl, size_t i,
				    struct rpc_status *st)
{
	if (cl->clients[i] == NULL) {
		char errmsg[OMBRA_ERRMSG_LEN];
		if (rpc_client_create(cl->endpoints[i], &cl->tls,
				      &cl->clients[i], errmsg) != 0) {
			st->code = GRPC_STATUS_INVALID_ARGUMENT;
			snprintf(st->message, sizeof(st->message), "%s",
				 errmsg);
			st->leader[0] = '\0';
			return NULL;
		}
	}
	return cl->clients[i];
}

static bool retryable(grpc_status_code code)
{
	return code == GRPC_STATUS_UNAVAILABLE ||
	       code == GRPC_STATUS_DEADLINE_EXCEEDED;
}

int rpc_cluster_unary(struct rpc_cluster *cl,
		      const ProtobufCServiceDescriptor *svc, const char *method,
		      const ProtobufCMessage *req, ProtobufCMessage **resp,
		      int timeout_ms, struct rpc_status *st)
{
	if (timeout_ms <= 0)
		timeout_ms = 30000;
	int64_t deadline = mono_ms() + timeout_ms;
	int64_t backoff = 50;
	size_t tried_in_round = 0;
	int rv = OMBRA_EUNAVAIL;
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			break;
		struct rpc_client *c = client_at(cl, cl->current, st);
		if (c == NULL)
			return OMBRA_ECONFIG;
		int attempt =
		    (int)(left < CLUSTER_ATTEMPT_MS ? left
						    : CLUSTER_ATTEMPT_MS);
		rv = rpc_client_unary(c, svc, method, req, resp, attempt, st);
		if (!retryable(st->code))
			return rv;
		if (st->leader[0] != '\0') {
			int idx =
			    endpoint_add(cl, st->leader, strlen(st->leader));
			if (idx >= 0 && (size_t)idx != cl->current) {
				cl->current = (size_t)idx;
				continue; /* go straight to the leader */
			}
		}
		cl->current = (cl->current + 1) % cl->n;
		if (++tried_in_round >= cl->n) {
			tried_in_round = 0;
			left = deadline - mono_ms();
			sleep_ms(backoff < left ? backoff
						: (left > 0 ? left : 0));
			backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
		}
	}
	char last[OMBRA_ERRMSG_LEN];
	snprintf(last, sizeof(last), "%s", st->message);
	snprintf(st->message, sizeof(st->message),
		 "no metad answered within %d ms (tried %zu endpoint%s; last: "
		 "%s: %.300s)",
		 timeout_ms, cl->n, cl->n == 1 ? "" : "s",
		 rpc_status_name(st->code), last);
	return rv ? rv : OMBRA_EUNAVAIL;
}
