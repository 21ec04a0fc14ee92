/* cmd_volume.c: the "volume" command group of ombractl: create, get, list,
 * resize and delete volumes through metad's AdminService ("shards" lives in
 * cmd_shards.c).
 *
 * Failure: bad options or sizes exit 2 before anything is sent; server
 * refusals exit 1 with the gRPC code and the server's message; delete
 * without --yes asks on a terminal and refuses (exit 2) otherwise. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "format.h"
#include "parse.h"
#include "table.h"

#define CMD_VOLUME_RID_LEN 40

static const char cmd_volume_help[] =
    "Usage: ombractl volume COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Volumes are virtual disks with a home region.  Sizes take units: "
    "4096,\n512KiB, 10GiB, 1.5T (powers of 1024).\n"
    "\n"
    "Commands:\n"
    "  create NAME --size SIZE --region R [--segment-size SIZE] "
    "[--replicas N]\n"
    "      Create a volume in home region R.  SIZE is a multiple of 4 KiB;\n"
    "      --segment-size is a power of two in 64KiB..4MiB (default 1MiB);\n"
    "      --replicas is the number of copies in the home region, primary\n"
    "      included (default 2).\n"
    "  get NAME [--stale]\n"
    "      Show one volume.\n"
    "  list [--region R] [--stale]\n"
    "      Table of volumes, optionally only those homed in region R.\n"
    "  resize NAME --size SIZE\n"
    "      Grow a volume to SIZE (volumes never shrink).\n"
    "  delete NAME [--yes]\n"
    "      Delete a volume and its data.  Without --yes, asks for\n"
    "      confirmation on a terminal and refuses (exit 2) otherwise.\n"
    "  shards NAME [--first N] [--max N] [--stale]\n"
    "      Placement of segments N.. (at most --max, default 1024, limit\n"
    "      65536): primary, in-sync replicas and shadows as node@region,\n"
    "      block version as lease-epoch:sequence, tier override, and '*'\n"
    "      for a stored exception to the computed placement.\n"
    "\n"
    "  --stale  answer from the member asked, without a Raft barrier\n"
    "           (fast, works without a leader, may be out of date)\n"
    "\n"
    "--json prints the AdminService response message (CreateVolumeResponse,\n"
    "GetVolumeResponse, ListVolumesResponse, ResizeVolumeResponse,\n"
    "DeleteVolumeResponse, GetVolumeShardingInfoResponse) as JSON.\n";

static const struct option cmd_volume_stale_opt[] = {
    {"stale", no_argument, NULL, 'S'},
    {0},
};

static const char *cmd_volume_state(int state, char *buf, size_t len)
{
	return fmt_enum(&ombra__v1__volume_state__descriptor, state, "VOLUME_",
			buf, len);
}

void cmd_volume_print(const Ombra__V1__Volume *v)
{
	char a[FMT_LEN], b[FMT_LEN];

	printf("name:           %s\n", v->name);
	printf("id:             %" PRIu64 "\n", v->id);
	printf("size:           %s (%" PRIu64 " bytes)\n",
	       fmt_size(v->size_bytes, a, sizeof(a)), v->size_bytes);
	printf("segment size:   %s\n",
	       fmt_size(v->segment_size_bytes, a, sizeof(a)));
	printf("segments:       %" PRIu64 "\n", v->segment_count);
	printf("block size:     %s\n",
	       fmt_size(v->block_size_bytes, a, sizeof(a)));
	printf("home region:    %s\n", v->home_region);
	printf("replicas:       %" PRIu32 "\n", v->replicas);
	printf("state:          %s\n",
	       cmd_volume_state(v->state, a, sizeof(a)));
	printf("created:        %s\n",
	       fmt_time_ms(v->created_unix_ms, b, sizeof(b)));
	printf("modified index: %" PRIu64 "\n", v->modified_index);
}

/* Print resp as JSON, or v (which lives in resp) as "key: value" lines
 * after the line head (may be NULL); frees resp. */
static int cmd_volume_show(struct cli *cli, ProtobufCMessage *resp,
			   const Ombra__V1__Volume *v, const char *head)
{
	int rc = CLI_EXIT_OK;

	if (cli->json) {
		rc = cli_print_json(resp);
	} else if (v == NULL) {
		rc = cli_fail("server answered without a volume");
	} else {
		if (head != NULL) {
			printf("%s\n", head);
		}
		cmd_volume_print(v);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

static int cmd_volume_create(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"size", required_argument, NULL, 's'},
	    {"region", required_argument, NULL, 'r'},
	    {"segment-size", required_argument, NULL, 'g'},
	    {"replicas", required_argument, NULL, 'n'},
	    {0},
	};
	Ombra__V1__CreateVolumeRequest req =
	    OMBRA__V1__CREATE_VOLUME_REQUEST__INIT;
	Ombra__V1__CreateVolumeResponse *resp = NULL;
	const char *size = NULL;
	char rid[CMD_VOLUME_RID_LEN];
	char head[128];
	char *name;
	uint64_t n;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 's':
			size = optarg;
			break;
		case 'r':
			req.home_region = optarg;
			break;
		case 'g':
			if (parse_size(optarg, &req.segment_size_bytes) != 0) {
				return cli_usage(cli, "--segment-size '%s': %s",
						 optarg, parse_size_what);
			}
			break;
		case 'n':
			if (parse_u64(optarg, &n) != 0 || n == 0 ||
			    n > UINT32_MAX) {
				return cli_usage(cli,
						 "--replicas '%s': expected a "
						 "number of copies, 1 or more",
						 optarg);
			}
			req.replicas = (uint32_t)n;
			break;
		case CLI_OPT_HELP:
			return cli_help(&cmd_volume_group);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	rc = cli_args(cli, argc, argv, 1, "NAME", &name);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (size == NULL) {
		return cli_usage(cli, "--size is required");
	}
	if (parse_size(size, &req.size_bytes) != 0) {
		return cli_usage(cli, "--size '%s': %s", size, parse_size_what);
	}
	if (req.home_region[0] == '\0') {
		return cli_usage(cli, "--region is required");
	}
	req.name = name;
	rpc_request_id(rid, sizeof(rid));
	req.request_id = rid;

	rc = cli_call(cli, "CreateVolume", &req.base,
		      (ProtobufCMessage **)&resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	snprintf(head, sizeof(head), "created volume '%s'", name);
	return cmd_volume_show(cli, &resp->base, resp->volume, head);
}

static int cmd_volume_get(struct cli *cli, int argc, char **argv)
{
	Ombra__V1__GetVolumeRequest req = OMBRA__V1__GET_VOLUME_REQUEST__INIT;
	Ombra__V1__GetVolumeResponse *resp = NULL;
	char *name;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", cmd_volume_stale_opt)) !=
	       -1) {
		switch (c) {
		case 'S':
			req.allow_stale = true;
			break;
		case CLI_OPT_HELP:
			return cli_help(&cmd_volume_group);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	rc = cli_args(cli, argc, argv, 1, "NAME", &name);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	req.name = name;
	rc = cli_call(cli, "GetVolume", &req.base, (ProtobufCMessage **)&resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	return cmd_volume_show(cli, &resp->base, resp->volume, NULL);
}

static int cmd_volume_list_print(const Ombra__V1__ListVolumesResponse *r)
{
	static const char *const headers[] = {
	    "NAME",   "ID",	  "SIZE",  "SEGMENT", "SEGMENTS",
	    "REGION", "REPLICAS", "STATE", "CREATED",
	};
	struct table t;
	char a[FMT_LEN];
	size_t i;
	int rc;

	table_init(&t, 9, headers,
		   (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 6));
	for (i = 0; i < r->n_volumes; i++) {
		const Ombra__V1__Volume *v = r->volumes[i];

		table_cell(&t, v->name);
		table_cellf(&t, "%" PRIu64, v->id);
		table_cell(&t, fmt_size(v->size_bytes, a, sizeof(a)));
		table_cell(&t, fmt_size(v->segment_size_bytes, a, sizeof(a)));
		table_cellf(&t, "%" PRIu64, v->segment_count);
		table_cell(&t, v->home_region);
		table_cellf(&t, "%" PRIu32, v->replicas);
		table_cell(&t, cmd_volume_state(v->state, a, sizeof(a)));
		table_cell(&t, fmt_time_ms(v->created_unix_ms, a, sizeof(a)));
	}
	rc = table_print(&t, stdout);
	table_close(&t);
	if (rc != 0) {
		return cli_fail("formatting the volume table: %s",
				ombra_strerror(rc));
	}
	return CLI_EXIT_OK;
}

static int cmd_volume_list(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"region", required_argument, NULL, 'r'},
	    {"stale", no_argument, NULL, 'S'},
	    {0},
	};
	Ombra__V1__ListVolumesRequest req =
	    OMBRA__V1__LIST_VOLUMES_REQUEST__INIT;
	Ombra__V1__ListVolumesResponse *resp = NULL;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'r':
			req.home_region = optarg;
			break;
		case 'S':
			req.allow_stale = true;
			break;
		case CLI_OPT_HELP:
			return cli_help(&cmd_volume_group);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	rc = cli_args(cli, argc, argv, 0, "", NULL);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	rc =
	    cli_call(cli, "ListVolumes", &req.base, (ProtobufCMessage **)&resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	rc = cli->json ? cli_print_json(&resp->base)
		       : cmd_volume_list_print(resp);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int cmd_volume_resize(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"size", required_argument, NULL, 's'},
	    {0},
	};
	Ombra__V1__ResizeVolumeRequest req =
	    OMBRA__V1__RESIZE_VOLUME_REQUEST__INIT;
	Ombra__V1__ResizeVolumeResponse *resp = NULL;
	const char *size = NULL;
	char rid[CMD_VOLUME_RID_LEN];
	char head[128];
	char *name;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "", opts)) != -1) {
		switch (c) {
		case 's':
			size = optarg;
			break;
		case CLI_OPT_HELP:
			return cli_help(&cmd_volume_group);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	rc = cli_args(cli, argc, argv, 1, "NAME", &name);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (size == NULL) {
		return cli_usage(cli, "--size is required");
	}
	if (parse_size(size, &req.new_size_bytes) != 0) {
		return cli_usage(cli, "--size '%s': %s", size, parse_size_what);
	}
	req.name = name;
	rpc_request_id(rid, sizeof(rid));
	req.request_id = rid;
	rc = cli_call(cli, "ResizeVolume", &req.base,
		      (ProtobufCMessage **)&resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	snprintf(head, sizeof(head), "resized volume '%s'", name);
	return cmd_volume_show(cli, &resp->base, resp->volume, head);
}

/* Ask on the terminal; true only for "y" or "yes" (any case). */
static bool cmd_volume_confirm(const char *name)
{
	char line[64];
	size_t len;

	fprintf(stderr, "Delete volume '%s' and all of its data? [y/N] ", name);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		fputc('\n', stderr);
		return false;
	}
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

static int cmd_volume_delete(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"yes", no_argument, NULL, 'y'},
	    {0},
	};
	Ombra__V1__DeleteVolumeRequest req =
	    OMBRA__V1__DELETE_VOLUME_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char rid[CMD_VOLUME_RID_LEN];
	bool yes = false;
	char *name;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(cli, argc, argv, "y", opts)) != -1) {
		switch (c) {
		case 'y':
			yes = true;
			break;
		case CLI_OPT_HELP:
			return cli_help(&cmd_volume_group);
		default:
			return CLI_EXIT_USAGE;
		}
	}
	rc = cli_args(cli, argc, argv, 1, "NAME", &name);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (!yes) {
		if (!isatty(STDIN_FILENO)) {
			return cli_usage(cli,
					 "refusing to delete volume '%s' "
					 "without --yes (stdin is not a "
					 "terminal to confirm on)",
					 name);
		}
		if (!cmd_volume_confirm(name)) {
			return cli_fail("volume delete: not confirmed; volume "
					"'%s' was left alone",
					name);
		}
	}
	req.name = name;
	rpc_request_id(rid, sizeof(rid));
	req.request_id = rid;
	rc = cli_call(cli, "DeleteVolume", &req.base, &resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (cli->json) {
		rc = cli_print_json(resp);
	} else {
		printf("deleted volume '%s'\n", name);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

static const struct cli_command cmd_volume_commands[] = {
    {"create", cmd_volume_create}, {"get", cmd_volume_get},
    {"list", cmd_volume_list},	   {"resize", cmd_volume_resize},
    {"delete", cmd_volume_delete}, {"shards", cmd_volume_shards},
};

const struct cli_group cmd_volume_group = {
    .name = "volume",
    .summary = "create, inspect, resize and delete volumes; shard maps",
    .help = cmd_volume_help,
    .commands = cmd_volume_commands,
    .n_commands = sizeof(cmd_volume_commands) / sizeof(cmd_volume_commands[0]),
};
