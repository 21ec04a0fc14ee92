/* cmd_region.c: the "region" command group of ombractl: add a region and
 * list regions through metad's AdminService.
 *
 * Failure: usage errors exit 2 before anything is sent; server refusals
 * (ALREADY_EXISTS, INVALID_ARGUMENT for a bad name) exit 1. */
#include <inttypes.h>
#include <stdio.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "format.h"
#include "table.h"

static const char cmd_region_help[] =
    "Usage: ombractl region COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Regions group storage nodes; every volume has a home region.\n"
    "\n"
    "Commands:\n"
    "  add NAME\n"
    "      Create a region.  NAME: 1..64 of [A-Za-z0-9._-].\n"
    "  list [--stale]\n"
    "      Table of regions with their node counts.\n"
    "\n"
    "  --stale  answer from the member asked, without a Raft barrier\n"
    "\n"
    "--json prints AddRegionResponse or ListRegionsResponse as JSON.\n";

static int cmd_region_add(struct cli *cli, int argc, char **argv)
{
	Ombra__V1__AddRegionRequest req = OMBRA__V1__ADD_REGION_REQUEST__INIT;
	Ombra__V1__AddRegionResponse *resp = NULL;
	char rid[40];
	char *name;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", NULL)) != -1) {
		if (c == CLI_OPT_HELP) {
			return cli_help(&cmd_region_group);
		}
		return CLI_EXIT_USAGE;
	}
	rc = cli_args(cli, argc, argv, 1, "NAME", &name);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	req.name = name;
	rpc_request_id(rid, sizeof(rid));
	req.request_id = rid;
	rc = cli_call(cli, "AddRegion", &req.base, (ProtobufCMessage **)&resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (cli->json) {
		rc = cli_print_json(&resp->base);
	} else {
		printf("added region '%s'\n",
		       resp->region != NULL ? resp->region->name : name);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int cmd_region_print(const Ombra__V1__ListRegionsResponse *r)
{
	static const char *const headers[] = {"NAME", "NODES", "CREATED"};
	char a[FMT_LEN];
	struct table t;
	size_t i;
	int rc;

	table_init(&t, 3, headers, 1u << 1);
	for (i = 0; i < r->n_regions; i++) {
		table_cell(&t, r->regions[i]->name);
		table_cellf(&t, "%" PRIu32, r->regions[i]->node_count);
		table_cell(&t, fmt_time_ms(r->regions[i]->created_unix_ms, a,
					   sizeof(a)));
	}
	rc = table_print(&t, stdout);
	table_close(&t);
	if (rc != 0) {
		return cli_fail("formatting the region table: %s",
				ombra_strerror(rc));
	}
	return CLI_EXIT_OK;
}

static int cmd_region_list(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"stale", no_argument, NULL, 'S'},
	    {0},
	};
	Ombra__V1__ListRegionsRequest req =
	    OMBRA__V1__LIST_REGIONS_REQUEST__INIT;
	Ombra__V1__ListRegionsResponse *resp = NULL;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'S':
			req.allow_stale = true;
			break;
		case CLI_OPT_HELP:
			return cli_help(&cmd_region_group);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	rc = cli_args(cli, argc, argv, 0, "", NULL);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	rc =
	    cli_call(cli, "ListRegions", &req.base, (ProtobufCMessage **)&resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	rc = cli->json ? cli_print_json(&resp->base) : cmd_region_print(resp);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static const struct cli_command cmd_region_commands[] = {
    {"add", cmd_region_add},
    {"list", cmd_region_list},
};

const struct cli_group cmd_region_group = {
    .name = "region",
    .summary = "add and list regions",
    .help = cmd_region_help,
    .commands = cmd_region_commands,
    .n_commands = sizeof(cmd_region_commands) / sizeof(cmd_region_commands[0]),
};
