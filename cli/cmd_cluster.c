/* cmd_cluster.c: the "cluster" command group of ombractl: membership of
 * the metad Raft group (member add, member remove) and the group table
 * ("status" lives in cmd_status.c).
 *
 * Failure: bad IDs or addresses exit 2 before anything is sent; refusals
 * (unknown member, change already in progress) exit 1.  AddMetadMember and
 * RemoveMetadMember carry no request id in admin.proto, so a retry after a
 * lost answer may report ALREADY_EXISTS / NOT_FOUND for a change that was
 * in fact applied: check with "cluster status". */
#include <inttypes.h>
#include <stdio.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "parse.h"

static const char cmd_cluster_help[] =
    "Usage: ombractl cluster COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "The metadata service (ombra-metad) is one Raft group of 3 or 5 "
    "voters.\n"
    "\n"
    "Commands:\n"
    "  status\n"
    "      Ask every member (the --endpoints and every member they name)\n"
    "      for its own view: id, state, term, leader, commit, applied and\n"
    "      last log index, state hash prefix; then the leader, the counts\n"
    "      of regions, nodes and volumes, and the membership.  Members\n"
    "      that do not answer are shown as unreachable; exit 1 only when\n"
    "      none answers.  --json prints an array with one element per\n"
    "      endpoint: {\"endpoint\": E, \"status\": GetClusterStatusResponse}\n"
    "      or {\"endpoint\": E, \"error\": {\"code\": C, \"message\": M}}.\n"
    "  member add ID --raft HOST:PORT --grpc HOST:PORT [--spare]\n"
    "      Add member ID (> 0) whose Raft transport listens on --raft and\n"
    "      AdminService on --grpc.  It is promoted to voter once caught\n"
    "      up, unless --spare (kept as a non-voting spare).  Start the\n"
    "      new ombra-metad without bootstrap first.  The request has no\n"
    "      request id: if an attempt times out and is retried, the retry\n"
    "      may answer ALREADY_EXISTS for a member this command added;\n"
    "      'cluster status' shows the outcome.\n"
    "  member remove ID\n"
    "      Remove member ID from the Raft configuration.\n"
    "\n"
    "--json prints AddMetadMemberResponse or RemoveMetadMemberResponse\n"
    "for the member commands.\n";

/* A member id: a whole number > 0. */
static int cmd_cluster_id(struct cli *cli, const char *arg, uint64_t *id)
{
	if (parse_u64(arg, id) != 0 || *id == 0) {
		return cli_usage(cli,
				 "member ID '%s': expected a whole number "
				 "greater than 0",
				 arg);
	}
	return CLI_EXIT_OK;
}

static int cmd_cluster_member_add(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"raft", required_argument, NULL, 'r'},
	    {"grpc", required_argument, NULL, 'g'},
	    {"spare", no_argument, NULL, 's'},
	    {0},
	};
	Ombra__V1__AddMetadMemberRequest req =
	    OMBRA__V1__ADD_METAD_MEMBER_REQUEST__INIT;
	Ombra__V1__AddMetadMemberResponse *resp = NULL;
	bool spare = false;
	char *id;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'r':
		case 'g':
			if (parse_hostport(optarg) != 0) {
				return cli_usage(
				    cli, "--%s '%s': expected HOST:PORT",
				    c == 'r' ? "raft" : "grpc", optarg);
			}
			if (c == 'r') {
				req.raft_address = optarg;
			} else {
				req.grpc_address = optarg;
			}
			break;
		case 's':
			spare = true;
			break;
		case CLI_OPT_HELP:
			return cli_help(&cmd_cluster_group);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	rc = cli_args(cli, argc, argv, 1, "ID", &id);
	if (rc == CLI_EXIT_OK) {
		rc = cmd_cluster_id(cli, id, &req.id);
	}
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (req.raft_address[0] == '\0') {
		return cli_usage(cli, "--raft is required");
	}
	if (req.grpc_address[0] == '\0') {
		return cli_usage(cli, "--grpc is required");
	}
	req.voter = !spare;
	rc = cli_call(cli, "AddMetadMember", &req.base,
		      (ProtobufCMessage **)&resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (cli->json) {
		rc = cli_print_json(&resp->base);
	} else if (resp->member != NULL) {
		printf("added member %" PRIu64 " as %s (raft %s, grpc %s)\n",
		       resp->member->id,
		       resp->member->role[0] != '\0' ? resp->member->role
						     : "member",
		       resp->member->raft_address, resp->member->grpc_address);
	} else {
		printf("added member %" PRIu64 "\n", req.id);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int cmd_cluster_member_remove(struct cli *cli, int argc, char **argv)
{
	Ombra__V1__RemoveMetadMemberRequest req =
	    OMBRA__V1__REMOVE_METAD_MEMBER_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char *id;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", NULL)) != -1) {
		if (c == CLI_OPT_HELP) {
			return cli_help(&cmd_cluster_group);
		}
		return CLI_EXIT_USAGE;
	}
	rc = cli_args(cli, argc, argv, 1, "ID", &id);
	if (rc == CLI_EXIT_OK) {
		rc = cmd_cluster_id(cli, id, &req.id);
	}
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	rc = cli_call(cli, "RemoveMetadMember", &req.base, &resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (cli->json) {
		rc = cli_print_json(resp);
	} else {
		printf("removed member %" PRIu64 "\n", req.id);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

static const struct cli_command cmd_cluster_commands[] = {
    {"status", cmd_cluster_status},
    {"member add", cmd_cluster_member_add},
    {"member remove", cmd_cluster_member_remove},
};

const struct cli_group cmd_cluster_group = {
    .name = "cluster",
    .summary = "metad Raft group: status of every member, membership",
    .help = cmd_cluster_help,
    .commands = cmd_cluster_commands,
    .n_commands =
	sizeof(cmd_cluster_commands) / sizeof(cmd_cluster_commands[0]),
};
