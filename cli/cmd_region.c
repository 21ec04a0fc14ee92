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

static int cmd_region_added(const struct cli_run *run,
			    const ProtobufCMessage *resp)
{
	const Ombra__V1__AddRegionResponse *r = (const void *)resp;

	printf("added region '%s'\n",
	       r->region != NULL ? r->region->name : run->args[0]);
	return CLI_EXIT_OK;
}

static int cmd_region_listed(const struct cli_run *run,
			     const ProtobufCMessage *resp)
{
	static const char *const headers[] = {"NAME", "NODES", "CREATED"};
	const Ombra__V1__ListRegionsResponse *r = (const void *)resp;
	char a[FMT_LEN];
	struct table t;
	size_t i;

	table_init(&t, 3, headers, 1u << 1);
	for (i = 0; i < r->n_regions; i++) {
		table_cell(&t, r->regions[i]->name);
		table_cellf(&t, "%" PRIu32, r->regions[i]->node_count);
		table_cell(&t, fmt_time_ms(r->regions[i]->created_unix_ms, a,
					   sizeof(a)));
	}
	return cli_print_table(&t, "region");
}

static const struct cli_command cmd_region_add = {
    .name = "add",
    .method = "AddRegion",
    .request = &ombra__v1__add_region_request__descriptor,
    .args = cli_args_name,
    .request_id = true,
    .print = cmd_region_added,
};

static const struct cli_command cmd_region_list = {
    .name = "list",
    .method = "ListRegions",
    .request = &ombra__v1__list_regions_request__descriptor,
    .options = cli_options_stale,
    .print = cmd_region_listed,
};

static const struct cli_command *const cmd_region_commands[] = {
    &cmd_region_add,
    &cmd_region_list,
};

const struct cli_group cmd_region_group = {
    .name = "region",
    .summary = "add and list regions",
    .help = cmd_region_help,
    .commands = cmd_region_commands,
    .n_commands = sizeof(cmd_region_commands) / sizeof(cmd_region_commands[0]),
};
