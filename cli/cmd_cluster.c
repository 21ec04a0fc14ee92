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
    "      new ombra-metad without bootstrap first.  Adding the same\n"
    "      ID with the same --raft again is safe (it finishes an\n"
    "      interrupted add); another address is ALREADY_EXISTS.\n"
    "  member remove ID\n"
    "      Remove member ID from the Raft configuration.\n"
    "\n"
    "--json prints AddMetadMemberResponse or RemoveMetadMemberResponse\n"
    "for the member commands.\n";

static int cmd_cluster_member_added(const struct cli_run *run,
				    const ProtobufCMessage *resp)
{
	const Ombra__V1__AddMetadMemberResponse *r = (const void *)resp;
	const Ombra__V1__AddMetadMemberRequest *req = (const void *)run->req;
	const Ombra__V1__MetadMember *m = r->member;

	if (m != NULL) {
		printf("added member %" PRIu64 " as %s (raft %s, grpc %s)\n",
		       m->id, m->role[0] != '\0' ? m->role : "member",
		       m->raft_address, m->grpc_address);
	} else {
		printf("added member %" PRIu64 "\n", req->id);
	}
	return CLI_EXIT_OK;
}

static int cmd_cluster_member_removed(const struct cli_run *run,
				      const ProtobufCMessage *resp)
{
	const Ombra__V1__RemoveMetadMemberRequest *req = (const void *)run->req;

	printf("removed member %" PRIu64 "\n", req->id);
	return CLI_EXIT_OK;
}

/* A member id: a whole number > 0. */
static const struct cli_arg cmd_cluster_id_arg[] = {
    {
	.name = "ID",
	.label = "member ID",
	.value = {.kind = CLI_VALUE_UINT,
		  .field = "id",
		  .min = 1,
		  .max = UINT64_MAX,
		  .what = "expected a whole number greater than 0"},
    },
    {0},
};

static const struct cli_option cmd_cluster_member_add_opts[] = {
    {
	.name = "raft",
	.flags = CLI_OPTION_REQUIRED,
	.value = {.kind = CLI_VALUE_HOSTPORT, .field = "raft_address"},
    },
    {
	.name = "grpc",
	.flags = CLI_OPTION_REQUIRED,
	.value = {.kind = CLI_VALUE_HOSTPORT, .field = "grpc_address"},
    },
    {
	.name = "spare",
	.value = {.kind = CLI_VALUE_FLAG_CLEAR, .field = "voter"},
    },
    {0},
};

static const struct cli_command cmd_cluster_member_add = {
    .name = "member add",
    .method = "AddMetadMember",
    .request = &ombra__v1__add_metad_member_request__descriptor,
    .options = cmd_cluster_member_add_opts,
    .args = cmd_cluster_id_arg,
    .print = cmd_cluster_member_added,
};

static const struct cli_command cmd_cluster_member_remove = {
    .name = "member remove",
    .method = "RemoveMetadMember",
    .request = &ombra__v1__remove_metad_member_request__descriptor,
    .args = cmd_cluster_id_arg,
    .print = cmd_cluster_member_removed,
};

static const struct cli_command *const cmd_cluster_commands[] = {
    &cmd_cluster_status,
    &cmd_cluster_member_add,
    &cmd_cluster_member_remove,
};

const struct cli_group cmd_cluster_group = {
    .name = "cluster",
    .summary = "metad Raft group: status of every member, membership",
    .help = cmd_cluster_help,
    .commands = cmd_cluster_commands,
    .n_commands =
	sizeof(cmd_cluster_commands) / sizeof(cmd_cluster_commands[0]),
};
