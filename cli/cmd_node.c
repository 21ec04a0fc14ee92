/* cmd_node.c: the "node" command group of ombractl: register a storage
 * node by hand (operators and tests; ombra-stored registers itself) and
 * list nodes with their capacity and heartbeat age.
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
    "      Table of nodes: id, name, region, address, state, capacity,\n"
    "      used bytes and time since the last heartbeat the leader saw\n"
    "      ('-' = none since it became leader).\n"
    "\n"
    "  --stale  answer from the member asked, without a Raft barrier\n"
    "\n"
    "--json prints RegisterNodeResponse or ListNodesResponse as JSON.\n";

struct cmd_node_tiers {
	Ombra__V1__Tier tiers[CMD_NODE_MAX_TIERS];
	Ombra__V1__Tier *ptrs[CMD_NODE_MAX_TIERS];
	size_t n;
};

static void cmd_node_tiers_free(struct cmd_node_tiers *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->tiers[i].name);
		free(t->tiers[i].path);
	}
	t->n = 0;
}

static int cmd_node_tier_add(struct cli *cli, struct cmd_node_tiers *t,
			     const char *arg)
{
	char errmsg[OMBRA_ERRMSG_LEN];
	Ombra__V1__Tier *tier;

	if (t->n == CMD_NODE_MAX_TIERS) {
		return cli_usage(cli, "at most %d --tier options",
				 CMD_NODE_MAX_TIERS);
	}
	tier = &t->tiers[t->n];
	ombra__v1__tier__init(tier);
	if (parse_tier(arg, &tier->name, &tier->path, &tier->capacity_bytes,
		       errmsg) != 0) {
		return cli_usage(cli, "--tier '%s': %s", arg, errmsg);
	}
	t->ptrs[t->n] = tier;
	t->n++;
	return CLI_EXIT_OK;
}

static int cmd_node_register(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"region", required_argument, NULL, 'r'},
	    {"address", required_argument, NULL, 'a'},
	    {"tier", required_argument, NULL, 't'},
	    {0},
	};
	Ombra__V1__RegisterNodeRequest req =
	    OMBRA__V1__REGISTER_NODE_REQUEST__INIT;
	Ombra__V1__RegisterNodeResponse *resp = NULL;
	struct cmd_node_tiers tiers = {.n = 0};
	char rid[40];
	char a[FMT_LEN];
	char *name;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'r':
			req.region = optarg;
			break;
		case 'a':
			if (parse_hostport(optarg) != 0) {
				rc = cli_usage(cli,
					       "--address '%s': expected "
					       "HOST:PORT",
					       optarg);
				goto out;
			}
			req.address = optarg;
			break;
		case 't':
			rc = cmd_node_tier_add(cli, &tiers, optarg);
			if (rc != CLI_EXIT_OK) {
				goto out;
			}
			break;
		case CLI_OPT_HELP:
			rc = cli_help(&cmd_node_group);
			goto out;
		default:
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	rc = cli_args(cli, argc, argv, 1, "NAME", &name);
	if (rc != CLI_EXIT_OK) {
		goto out;
	}
	if (req.region[0] == '\0') {
		rc = cli_usage(cli, "--region is required");
		goto out;
	}
	if (req.address[0] == '\0') {
		rc = cli_usage(cli, "--address is required");
		goto out;
	}
	if (tiers.n == 0) {
		rc = cli_usage(cli, "at least one --tier NAME:PATH:CAPACITY "
				    "is required");
		goto out;
	}
	req.name = name;
	req.tiers = tiers.ptrs;
	req.n_tiers = tiers.n;
	rpc_request_id(rid, sizeof(rid));
	req.request_id = rid;
	rc = cli_call(cli, "RegisterNode", &req.base,
		      (ProtobufCMessage **)&resp);
	if (rc != CLI_EXIT_OK) {
		goto out;
	}
	if (cli->json) {
		rc = cli_print_json(&resp->base);
	} else if (resp->node != NULL) {
		printf("registered node '%s': id %" PRIu64 ", region %s, "
		       "address %s, capacity %s\n",
		       resp->node->name, resp->node->id, resp->node->region,
		       resp->node->address,
		       fmt_size(resp->node->capacity_bytes, a, sizeof(a)));
	} else {
		printf("registered node '%s'\n", name);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
	cmd_node_tiers_free(&tiers);
	return rc;
}

static int cmd_node_print(const Ombra__V1__ListNodesResponse *r)
{
	static const char *const headers[] = {
	    "ID",    "NAME",	 "REGION", "ADDRESS",
	    "STATE", "CAPACITY", "USED",   "HEARTBEAT",
	};
	char a[FMT_LEN];
	struct table t;
	size_t i;
	int rc;

	table_init(&t, 8, headers,
		   (1u << 0) | (1u << 5) | (1u << 6) | (1u << 7));
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
		if (n->last_heartbeat_ms_ago == 0) {
			table_cell(&t, "-");
		} else {
			table_cellf(&t, "%s ago",
				    fmt_duration_ms(n->last_heartbeat_ms_ago, a,
						    sizeof(a)));
		}
	}
	rc = table_print(&t, stdout);
	table_close(&t);
	if (rc != 0) {
		return cli_fail("formatting the node table: %s",
				ombra_strerror(rc));
	}
	return CLI_EXIT_OK;
}

static int cmd_node_list(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"region", required_argument, NULL, 'r'},
	    {"stale", no_argument, NULL, 'S'},
	    {0},
	};
	Ombra__V1__ListNodesRequest req = OMBRA__V1__LIST_NODES_REQUEST__INIT;
	Ombra__V1__ListNodesResponse *resp = NULL;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'r':
			req.region = optarg;
			break;
		case 'S':
			req.allow_stale = true;
			break;
		case CLI_OPT_HELP:
			return cli_help(&cmd_node_group);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	rc = cli_args(cli, argc, argv, 0, "", NULL);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	rc = cli_call(cli, "ListNodes", &req.base, (ProtobufCMessage **)&resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	rc = cli->json ? cli_print_json(&resp->base) : cmd_node_print(resp);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static const struct cli_command cmd_node_commands[] = {
    {"register", cmd_node_register},
    {"list", cmd_node_list},
};

const struct cli_group cmd_node_group = {
    .name = "node",
    .summary = "register and list storage nodes",
    .help = cmd_node_help,
    .commands = cmd_node_commands,
    .n_commands = sizeof(cmd_node_commands) / sizeof(cmd_node_commands[0]),
};
