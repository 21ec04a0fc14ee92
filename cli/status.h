/* status.h: the probes behind "ombractl cluster status": one
 * GetClusterStatus per metad member, asked directly (not through the
 * leader) and in parallel, one thread per member.
 *
 * Failure: a member that cannot be asked or does not answer keeps its
 * error in its probe (rc, st); only a malformed --endpoints list fails
 * status_probe_all() itself (usage error, printed). */
#ifndef OMBRA_CLI_STATUS_H
#define OMBRA_CLI_STATUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "admin.pb-c.h"
#include "cli.h"

#define STATUS_MAX_PROBES 32

struct status_probe {
	char target[128]; /* HOST:PORT asked */
	const struct cli *cli;
	struct rpc_client *client;
	Ombra__V1__GetClusterStatusResponse *resp; /* NULL unless OK */
	struct rpc_status st;			   /* why resp is NULL */
	int rc;					   /* OMBRA_E* of the call */
	pthread_t thread;
	bool started;
};

struct status_run {
	struct status_probe probes[STATUS_MAX_PROBES];
	size_t n;
};

/* Ask every endpoint of cli->endpoints (r zeroed by the caller), then
 * every member their answers name that was not asked yet: at most two
 * rounds of cli->timeout_ms.  Returns CLI_EXIT_OK (look at each probe's
 * resp) or CLI_EXIT_USAGE for a malformed endpoint list.  Release r with
 * status_run_close() in either case. */
int status_probe_all(struct cli *cli, struct status_run *r);

/* Free the answers and clients of r; r may be reused once zeroed. */
void status_run_close(struct status_run *r);

#endif
