/* cmd_node.c: the "node" command group of ombractl: register a storage
 * node by hand (operators and tests; ombra-stored registers itself) and
 * list nodes with their health, capacity, usage (from the heartbeats the
 * metad leader keeps) and heartbeat age.
 *
 * Failure: malformed --address or --tier values exit 2 before anything is
 * sent; server refusals exit 1 with the gRPC code and message. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "format.h"
#include "parse.h"
#include "table.h"

#define CMD_NODE_MAX_TIERS 16

static const char cmd_node_help[] =
    "Usage: ombractl node COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Storage nodes (ombra-stored) hold segment data in one or more tiers\n"
    "(directories).  Nodes register themselves; 'register' is for\n"
    "operators and tests.\n"
    "\n"
    "Commands:\n"
    "  register NAME --region R --address HOST:PORT --tier "
    "NAME:PATH:CAPACITY\n"
    "           [--tier ...]\n"
    "      Register (or update, if NAME exists) a node in region R whose\n"
    "      StoreService listens on HOST:PORT, with up to 16 tiers, e.g.\n"
    "      --tier fast:/srv/nvme:100GiB --tier slow:/srv/hdd:4TiB.\n"
    "  list [--region R] [--stale]\n"
    "      Table of nodes: id, name, region, StoreService address, state\n"
    "      (up: heartbeating; down: silent for node_timeout_ms; draining),\n"
    "      capacity (sum of tiers), bytes used as of the last heartbeat and\n"
    "      its share of capacity, and the age of the last heartbeat the\n"
    "      leader saw ('-' = none since it became leader; ask the leader,\n"
    "      not --stale, for current usage and ages).\n"
    "\n"
    "  --stale  answer from the member asked, without a Raft barrier\n"
    "\n"
    "--json prints RegisterNodeResponse or ListNodesResponse as JSON.\n";

struct cmd_node_tiers {
	Ombra__V1__Tier tiers[CMD_NODE_MAX_TIERS];
	Ombra__V1__Tier *ptrs[CMD_NODE_MAX_TIERS];
	size_t n;
};

static void cmd_node_tiers_free(void *state)
{
	struct cmd_node_tiers *t = state;
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->tiers[i].name);
		free(t->tiers[i].path);
	}
	t->n = 0;
}

/* --tier NAME:PATH:CAPACITY, repeatable: appends to the request's tiers,
 * kept in the run's state. */
static int cmd_node_tier_add(struct cli_run *run, const char *shown, char *word)
{
	Ombra__V1__RegisterNodeRequest *req = (void *)run->req;
	struct cmd_node_tiers *t = run->state;
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Tier *tier;

	if (t->n == CMD_NODE_MAX_TIERS) {
		return cli_usage(run->cli, "at most %d %s options",
				 CMD_NODE_MAX_TIERS, shown);
	}
	tier = &t->tiers[t->n];
	ombra__v1__tier__init(tier);
	if (parse_tier(word, &tier->name, &tier->path, &tier->capacity_bytes,
		       errmsg) != 0) {
		return cli_usage(run->cli, "%s '%s': %s", shown, word, errmsg);
	}
	t->ptrs[t->n] = tier;
	t->n++;
	req->tiers = t->ptrs;
	req->n_tiers = t->n;
	return CLI_EXIT_OK;
}

static int cmd_node_registered(const struct cli_run *run,
			       const ProtobufCMessage *resp)
{
	const Ombra__V1__RegisterNodeResponse *r = (const void *)resp;
	char a[FMT_LEN];

	if (r->node != NULL) {
		printf("registered node '%s': id %" PRIu64 ", region %s, "
		       "address %s, capacity %s\n",
		       r->node->name, r->node->id, r->node->region,
		       r->node->address,
		       fmt_size(r->node->capacity_bytes, a, sizeof(a)));
	} else {
		printf("registered node '%s'\n", run->args[0]);
	}
	return CLI_EXIT_OK;
}

static int cmd_node_listed(const struct cli_run *run,
			   const ProtobufCMessage *resp)
{
	static const char *const headers[] = {
	    "ID",	"NAME", "REGION", "ADDRESS",   "STATE",
	    "CAPACITY", "USED", "USE%",	  "HEARTBEAT",
	};
	const Ombra__V1__ListNodesResponse *r = (const void *)resp;
	char a[FMT_LEN];
	struct table t;
	size_t i;

	table_init(&t, 9, headers,
		   (1u << 0) | (1u << 5) | (1u << 6) | (1u << 7) | (1u << 8));
	for (i = 0; i < r->n_nodes; i++) {
		const Ombra__V1__Node *n = r->nodes[i];

		table_cellf(&t, "%" PRIu64, n->id);
		table_cell(&t, n->name);
		table_cell(&t, n->region);
		table_cell(&t, n->address);
		table_cell(&t, fmt_enum(&ombra__v1__node_state__descriptor,
					n->state, "NODE_", a, sizeof(a)));
		table_cell(&t, fmt_size(n->capacity_bytes, a, sizeof(a)));
		table_cell(&t, fmt_size(n->used_bytes, a, sizeof(a)));
		if (n->capacity_bytes == 0) {
			table_cell(&t, "-");
		} else {
			table_cellf(&t, "%.1f%%",
				    100.0 * (double)n->used_bytes /
					(double)n->capacity_bytes);
		}
		if (n->last_heartbeat_ms_ago == 0) {
			table_cell(&t, "-");
		} else {
			table_cellf(&t, "%s ago",
				    fmt_duration_ms(n->last_heartbeat_ms_ago, a,
						    sizeof(a)));
		}
	}
	return cli_print_table(&t, "node");
}

static const struct cli_option cmd_node_register_opts[] = {
    {
	.name = "region",
	.flags = CLI_OPTION_REQUIRED,
	.value = {.kind = CLI_VALUE_STRING, .field = "region"},
    },
    {
	.name = "address",
	.flags = CLI_OPTION_REQUIRED,
	.value = {.kind = CLI_VALUE_HOSTPORT, .field = "address"},
    },
    {
	.name = "tier",
	.flags = CLI_OPTION_REQUIRED,
	.missing = "at least one --tier NAME:PATH:CAPACITY is required",
	.value = {.kind = CLI_VALUE_CUSTOM,
		  .field = "tiers",
		  .parse = cmd_node_tier_add},
    },
    {0},
};

static const struct cli_command cmd_node_register = {
    .name = "register",
    .method = "RegisterNode",
    .request = &ombra__v1__register_node_request__descriptor,
    .options = cmd_node_register_opts,
    .args = cli_args_name,
    .request_id = true,
    .state_size = sizeof(struct cmd_node_tiers),
    .state_free = cmd_node_tiers_free,
    .print = cmd_node_registered,
};

static const struct cli_option cmd_node_list_opts[] = {
    {
	.name = "region",
	.value = {.kind = CLI_VALUE_STRING, .field = "region"},
    },
    CLI_OPTION_STALE,
    {0},
};

static const struct cli_command cmd_node_list = {
    .name = "list",
    .method = "ListNodes",
    .request = &ombra__v1__list_nodes_request__descriptor,
    .options = cmd_node_list_opts,
    .print = cmd_node_listed,
};

static const struct cli_command *const cmd_node_commands[] = {
    &cmd_node_register,
    &cmd_node_list,
};

const struct cli_group cmd_node_group = {
    .name = "node",
    .summary = "register and list storage nodes",
    .help = cmd_node_help,
    .commands = cmd_node_commands,
    .n_commands = sizeof(cmd_node_commands) / sizeof(cmd_node_commands[0]),
};
