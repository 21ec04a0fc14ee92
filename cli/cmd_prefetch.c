/* cmd_prefetch.c: "ombractl volume prefetch-stats NAME --proxy HOST:PORT":
 * the prefetch engine's figures of one volume on one proxy
 * (VolumeService.GetPrefetchStats; docs/prediction.md "Online engine in
 * the proxy").  The figures live in the proxy that serves the reads, not
 * in metad, so the command asks the proxy given by --proxy (default
 * $OMBRA_PROXY) directly; the global TLS options apply to that call.
 *
 * Output: a summary line (hint, active predictor, threshold, reads, hit
 * ratios, cache bytes), then one row per predictor (predictions,
 * prefetched / used / wasted bytes, precision, coverage); --json prints
 * the response message.
 *
 * Failure: as every command (command.h): no proxy address or a bad one
 * exits 2 before anything is sent; an unknown volume, prefetching off on
 * the proxy or an unreachable proxy exits 1 with the proxy's message. */
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "format.h"
#include "parse.h"
#include "table.h"
#include "volume.pb-c.h"

#define PREFETCH_ENV "OMBRA_PROXY"

static int prefetch_print(const Ombra__V1__GetPrefetchStatsResponse *r)
{
	static const char *const headers[] = {
	    "PREDICTOR", "PREDICTED BLOCKS", "PREFETCHED", "USED",
	    "WASTED",	 "PRECISION",	     "COVERAGE",
	};
	char a[FMT_LEN], b[FMT_LEN];
	struct table t;

	printf("volume %s: hint %s, active predictor %s, threshold %.2f\n",
	       r->volume,
	       fmt_enum(&ombra__v1__prefetch_hint__descriptor, (int)r->hint,
			"PREFETCH_HINT_", a, sizeof(a)),
	       r->active_predictor[0] != '\0' ? r->active_predictor : "none",
	       r->threshold);
	printf("reads %llu (%llu blocks), hits %llu (%.1f%%), block hits "
	       "%llu (%.1f%%), cached %s\n",
	       (unsigned long long)r->read_requests,
	       (unsigned long long)r->reads, (unsigned long long)r->read_hits,
	       100.0 * r->hit_ratio, (unsigned long long)r->cache_hits,
	       100.0 * r->block_hit_ratio,
	       fmt_size(r->cache_bytes, b, sizeof(b)));
	table_init(&t, 7, headers,
		   (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) |
		       (1u << 6));
	for (size_t i = 0; i < r->n_predictors; i++) {
		const Ombra__V1__PredictorStats *p = r->predictors[i];

		table_cell(&t, p->name);
		table_cellf(&t, "%llu", (unsigned long long)p->predictions);
		table_cell(&t, fmt_size(p->prefetched_bytes, a, sizeof(a)));
		table_cell(&t, fmt_size(p->used_bytes, a, sizeof(a)));
		table_cell(&t, fmt_size(p->wasted_bytes, a, sizeof(a)));
		table_cellf(&t, "%.3f", p->precision);
		table_cellf(&t, "%.3f", p->coverage);
	}
	return cli_print_table(&t, "prefetch statistics");
}

/* After the common parsing: ask the proxy, print. */
static int prefetch_exec(struct cli_run *run)
{
	struct cli *cli = run->cli;
	const char *proxy = cli_run_option(run, "proxy");
	char errmsg[OMBRA_ERRMSG_LEN];
	struct rpc_client *client = NULL;
	ProtobufCMessage *resp = NULL;
	struct rpc_status st;
	int rc;

	if (proxy == NULL)
		proxy = getenv(PREFETCH_ENV);
	if (proxy == NULL || proxy[0] == '\0')
		return cli_usage(cli, "--proxy HOST:PORT is required (the "
				      "proxy whose engine to ask; default "
				      "$" PREFETCH_ENV ")");
	if (parse_hostport(proxy) != 0)
		return cli_usage(cli,
				 "--proxy '%s': expected HOST:PORT (port "
				 "1-65535)",
				 proxy);
	rc = cli_check_globals(cli);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (rpc_client_create(proxy,
			      cli->tls.ca_file != NULL ? &cli->tls : NULL,
			      &client, errmsg) != 0)
		return cli_usage(cli, "--proxy %s: %s", proxy, errmsg);
	rc = rpc_client_unary(client, &ombra__v1__volume_service__descriptor,
			      "GetPrefetchStats", run->req, &resp,
			      cli->timeout_ms, &st);
	if (rc != 0) {
		if (st.code == GRPC_STATUS_UNAVAILABLE ||
		    st.code == GRPC_STATUS_DEADLINE_EXCEEDED)
			rc = cli_fail("cannot reach the proxy at %s (%s: %s)",
				      proxy, rpc_status_name(st.code),
				      st.message);
		else
			rc = cli_report_rpc_error(cli, proxy, rc, &st);
	} else if (cli->json) {
		rc = cli_print_json(resp);
	} else {
		rc = prefetch_print(
		    (const Ombra__V1__GetPrefetchStatsResponse *)resp);
	}
	if (resp != NULL)
		protobuf_c_message_free_unpacked(resp, NULL);
	rpc_client_destroy(client);
	return rc;
}

static const struct cli_option cmd_prefetch_options[] = {
    {.name = "proxy", .value = {.kind = CLI_VALUE_HOSTPORT}},
    {0},
};

static const struct cli_arg cmd_prefetch_args[] = {
    {.name = "NAME", .value = {.kind = CLI_VALUE_STRING, .field = "volume"}},
    {0},
};

const struct cli_command cmd_volume_prefetch_stats = {
    .name = "prefetch-stats",
    .request = &ombra__v1__get_prefetch_stats_request__descriptor,
    .options = cmd_prefetch_options,
    .args = cmd_prefetch_args,
    .exec = prefetch_exec,
};
