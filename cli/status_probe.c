/* status_probe.c: the parallel GetClusterStatus probes of "ombractl
 * cluster status" (see status.h): endpoint list parsing, one thread per
 * member, discovery of the members the answers name.
 *
 * Failure: per member, kept in its probe (client creation failures are
 * recorded as UNAVAILABLE with the reason); a thread that cannot be
 * started is replaced by asking from the calling thread. */
#include "status.h"

#include <stdio.h>
#include <string.h>

#include "parse.h"

static bool status_has(const struct status_run *r, const char *target)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (strcmp(r->probes[i].target, target) == 0) {
			return true;
		}
	}
	return false;
}

/* Add target unless known; false when the table is full. */
static bool status_add(struct status_run *r, const struct cli *cli,
		       const char *target, size_t len)
{
	struct status_probe *p;
	char t[128];

	if (len >= sizeof(t)) {
		len = sizeof(t) - 1;
	}
	memcpy(t, target, len);
	t[len] = '\0';
	if (status_has(r, t)) {
		return true;
	}
	if (r->n == STATUS_MAX_PROBES) {
		return false;
	}
	p = &r->probes[r->n++];
	memset(p, 0, sizeof(*p));
	memcpy(p->target, t, len + 1);
	p->cli = cli;
	return true;
}

static void *status_probe_main(void *arg)
{
	struct status_probe *p = arg;
	Ombra__V1__GetClusterStatusRequest req =
	    OMBRA__V1__GET_CLUSTER_STATUS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;

	p->rc = rpc_client_unary(
	    p->client, &ombra__v1__admin_service__descriptor,
	    "GetClusterStatus", &req.base, &resp, p->cli->timeout_ms, &p->st);
	if (p->rc == 0 && resp != NULL) {
		p->resp = (Ombra__V1__GetClusterStatusResponse *)resp;
	} else if (resp != NULL) {
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	if (p->rc == 0 && p->resp == NULL) {
		p->rc = OMBRA_EINTERNAL;
	}
	return NULL;
}

/* Run probes [from, r->n): clients are created here, on this thread, and
 * kept until status_run_close() so gRPC stays initialised throughout. */
static void status_run_round(struct status_run *r, size_t from)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	const struct rpc_tls *tls;
	size_t i;

	for (i = from; i < r->n; i++) {
		struct status_probe *p = &r->probes[i];

		tls = p->cli->tls.ca_file != NULL ? &p->cli->tls : NULL;
		errmsg[0] = '\0';
		p->rc = rpc_client_create(p->target, tls, &p->client, errmsg);
		if (p->rc != 0) {
			p->client = NULL;
			p->st.code = GRPC_STATUS_UNAVAILABLE;
			snprintf(p->st.message, sizeof(p->st.message), "%s",
				 errmsg);
			continue;
		}
		if (pthread_create(&p->thread, NULL, status_probe_main, p) ==
		    0) {
			p->started = true;
		} else {
			/* No thread to spare: ask from here instead. */
			status_probe_main(p);
		}
	}
	for (i = from; i < r->n; i++) {
		if (r->probes[i].started) {
			pthread_join(r->probes[i].thread, NULL);
			r->probes[i].started = false;
		}
	}
}

void status_run_close(struct status_run *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (r->probes[i].resp != NULL) {
			protobuf_c_message_free_unpacked(
			    &r->probes[i].resp->base, NULL);
		}
		if (r->probes[i].client != NULL) {
			rpc_client_destroy(r->probes[i].client);
		}
	}
	r->n = 0;
}

/* Split cli->endpoints into probes; usage error if malformed. */
static int status_parse_endpoints(struct cli *cli, struct status_run *r)
{
	const char *s = cli->endpoints;

	while (*s != '\0') {
		size_t len = strcspn(s, ",");
		char one[128];

		if (len == 0 || len >= sizeof(one)) {
			return cli_usage(cli,
					 "--endpoints '%s': expected "
					 "HOST:PORT,HOST:PORT,...",
					 cli->endpoints);
		}
		memcpy(one, s, len);
		one[len] = '\0';
		if (parse_hostport(one) != 0) {
			return cli_usage(cli,
					 "--endpoints: '%s' is not "
					 "HOST:PORT",
					 one);
		}
		if (!status_add(r, cli, one, len)) {
			return cli_usage(cli,
					 "--endpoints: more than %d "
					 "endpoints",
					 STATUS_MAX_PROBES);
		}
		s += len;
		if (*s == ',') {
			s++;
			if (*s == '\0') {
				return cli_usage(cli,
						 "--endpoints '%s': "
						 "trailing comma",
						 cli->endpoints);
			}
		}
	}
	return CLI_EXIT_OK;
}

/* Queue the members named in the answers that were not asked yet. */
static void status_discover(struct status_run *r, const struct cli *cli)
{
	size_t i, j, n = r->n;

	for (i = 0; i < n; i++) {
		const Ombra__V1__GetClusterStatusResponse *s =
		    r->probes[i].resp;

		for (j = 0; s != NULL && j < s->n_members; j++) {
			const char *g = s->members[j]->grpc_address;

			if (g[0] != '\0' && parse_hostport(g) == 0) {
				status_add(r, cli, g, strlen(g));
			}
		}
	}
}

int status_probe_all(struct cli *cli, struct status_run *r)
{
	size_t first_round;
	int rc;

	rc = status_parse_endpoints(cli, r);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	status_run_round(r, 0);
	first_round = r->n;
	status_discover(r, cli);
	status_run_round(r, first_round);
	return CLI_EXIT_OK;
}
