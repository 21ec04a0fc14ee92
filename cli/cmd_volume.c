/* cmd_volume.c: the "volume" command group of ombractl: create, get, list,
 * resize and delete volumes through metad's AdminService ("shards" lives in
 * cmd_shards.c).
 *
 * Failure: bad options or sizes exit 2 before anything is sent; server
 * refusals exit 1 with the gRPC code and the server's message; delete
 * without --yes asks on a terminal and refuses (exit 2) otherwise. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "format.h"
#include "table.h"

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
    "  shards NAME [--first N] [--max N] [--no-versions] [--stale]\n"
    "      Placement of segments N.. (at most --max, default 1024, limit\n"
    "      65536): primary, in-sync replicas, nodes waiting for a re-sync,\n"
    "      shadows (node@region(state): current, lag Nv T, filling P%,\n"
    "      not held, or ? when the node does not answer ListCopies; with\n"
    "      --no-versions metad's version), write-lease epoch, and the\n"
    "      version (lease-epoch:sequence) and tier the primary holds, asked\n"
    "      from the primary itself ('?' and a note if it does not answer).\n"
    "      --no-versions asks only metad (VERSION/TIER: metad's record).\n"
    "      EXC '*' marks a stored exception to the computed placement.\n"
    "  failovers NAME\n"
    "      Region failovers of the volume (shadows promoted because every\n"
    "      home copy of a segment was DOWN), oldest first: old and new\n"
    "      primary node, new lease epoch, the shadow's watermark, the last\n"
    "      version metad knew, and the loss (RPO) in versions and time.\n"
    "  policy NAME [--regions R1,R2|all] [--max-shadows N]\n"
    "         [--create-reads-per-s X] [--idle-ms MS] [--budget SIZE]\n"
    "         [--fill-rate SIZE] [--auto-promote on|off] [--clear]\n"
    "      Show the volume's shadow policy, or change the fields given\n"
    "      (the others keep their values): regions that may hold shadows\n"
    "      (all = every region but home), shadows per segment (1..8), the\n"
    "      read rate of a segment in a region that makes a shadow there,\n"
    "      the idle time after which a shadow is dropped, shadow bytes per\n"
    "      region, background fill rate per node (bytes/s), promotion of\n"
    "      the freshest shadow when the home region is lost.  --clear\n"
    "      removes the policy and the volume's shadows.\n"
    "  prefetch-stats NAME --proxy HOST:PORT\n"
    "      The prefetch engine of one proxy (default $OMBRA_PROXY) on the\n"
    "      volume: hint, active predictor, threshold, read hit ratios,\n"
    "      cached bytes, then per predictor the blocks predicted, bytes\n"
    "      prefetched, used and wasted, precision and coverage.  Asks the\n"
    "      proxy's VolumeService.GetPrefetchStats (--json prints its\n"
    "      GetPrefetchStatsResponse).\n"
    "\n"
    "  --stale  answer from the member asked, without a Raft barrier\n"
    "           (fast, works without a leader, may be out of date)\n"
    "\n"
    "--json prints the AdminService response message (CreateVolumeResponse,\n"
    "GetVolumeResponse, ListVolumesResponse, ResizeVolumeResponse,\n"
    "DeleteVolumeResponse, GetVolumeShardingInfoResponse,\n"
    "ListFailoversResponse, GetVolumeResponse or SetShadowPolicyResponse\n"
    "for policy) as JSON; for\n"
    "shards each asked segment also gets \"primary_info\": {\"version\",\n"
    "\"tier\"} or {\"error\"}.\n";

static const char *cmd_volume_state(int state, char *buf, size_t len)
{
	return fmt_enum(&ombra__v1__volume_state__descriptor, state, "VOLUME_",
			buf, len);
}

static void cmd_volume_print(const Ombra__V1__Volume *v)
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

/* v (in a response) as "key: value" lines after "<verb> volume 'NAME'"
 * (no head line when verb is NULL). */
static int cmd_volume_show(const Ombra__V1__Volume *v, const char *verb,
			   const char *name)
{
	if (v == NULL) {
		return cli_fail("server answered without a volume");
	}
	if (verb != NULL) {
		printf("%s volume '%s'\n", verb, name);
	}
	cmd_volume_print(v);
	return CLI_EXIT_OK;
}

static int cmd_volume_created(const struct cli_run *run,
			      const ProtobufCMessage *resp)
{
	const Ombra__V1__CreateVolumeResponse *r = (const void *)resp;

	return cmd_volume_show(r->volume, "created", run->args[0]);
}

static int cmd_volume_got(const struct cli_run *run,
			  const ProtobufCMessage *resp)
{
	const Ombra__V1__GetVolumeResponse *r = (const void *)resp;

	return cmd_volume_show(r->volume, NULL, run->args[0]);
}

static int cmd_volume_resized(const struct cli_run *run,
			      const ProtobufCMessage *resp)
{
	const Ombra__V1__ResizeVolumeResponse *r = (const void *)resp;

	return cmd_volume_show(r->volume, "resized", run->args[0]);
}

static int cmd_volume_deleted(const struct cli_run *run,
			      const ProtobufCMessage *resp)
{
	printf("deleted volume '%s'\n", run->args[0]);
	return CLI_EXIT_OK;
}

static int cmd_volume_listed(const struct cli_run *run,
			     const ProtobufCMessage *resp)
{
	static const char *const headers[] = {
	    "NAME",   "ID",	  "SIZE",  "SEGMENT", "SEGMENTS",
	    "REGION", "REPLICAS", "STATE", "CREATED",
	};
	const Ombra__V1__ListVolumesResponse *r = (const void *)resp;
	struct table t;
	char a[FMT_LEN];
	size_t i;

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
	return cli_print_table(&t, "volume");
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

/* Without --yes: confirmation on a terminal, refusal elsewhere. */
static int cmd_volume_delete_check(struct cli_run *run)
{
	const char *name = run->args[0];

	if (cli_run_option(run, "yes") != NULL) {
		return CLI_EXIT_OK;
	}
	if (!isatty(STDIN_FILENO)) {
		return cli_usage(run->cli,
				 "refusing to delete volume '%s' without "
				 "--yes (stdin is not a terminal to confirm "
				 "on)",
				 name);
	}
	if (!cmd_volume_confirm(name)) {
		return cli_fail("volume delete: not confirmed; volume '%s' was "
				"left alone",
				name);
	}
	return CLI_EXIT_OK;
}

static const struct cli_option cmd_volume_create_opts[] = {
    {
	.name = "size",
	.flags = CLI_OPTION_REQUIRED | CLI_OPTION_LATE,
	.value = {.kind = CLI_VALUE_SIZE, .field = "size_bytes"},
    },
    {
	.name = "region",
	.flags = CLI_OPTION_REQUIRED,
	.value = {.kind = CLI_VALUE_STRING, .field = "home_region"},
    },
    {
	.name = "segment-size",
	.value = {.kind = CLI_VALUE_SIZE, .field = "segment_size_bytes"},
    },
    {
	.name = "replicas",
	.value = {.kind = CLI_VALUE_UINT,
		  .field = "replicas",
		  .min = 1,
		  .max = UINT32_MAX,
		  .what = "expected a number of copies, 1 or more"},
    },
    {0},
};

static const struct cli_command cmd_volume_create = {
    .name = "create",
    .method = "CreateVolume",
    .request = &ombra__v1__create_volume_request__descriptor,
    .options = cmd_volume_create_opts,
    .args = cli_args_name,
    .request_id = true,
    .print = cmd_volume_created,
};

static const struct cli_command cmd_volume_get = {
    .name = "get",
    .method = "GetVolume",
    .request = &ombra__v1__get_volume_request__descriptor,
    .options = cli_options_stale,
    .args = cli_args_name,
    .print = cmd_volume_got,
};

static const struct cli_option cmd_volume_list_opts[] = {
    {
	.name = "region",
	.value = {.kind = CLI_VALUE_STRING, .field = "home_region"},
    },
    CLI_OPTION_STALE,
    {0},
};

static const struct cli_command cmd_volume_list = {
    .name = "list",
    .method = "ListVolumes",
    .request = &ombra__v1__list_volumes_request__descriptor,
    .options = cmd_volume_list_opts,
    .print = cmd_volume_listed,
};

static const struct cli_option cmd_volume_resize_opts[] = {
    {
	.name = "size",
	.flags = CLI_OPTION_REQUIRED | CLI_OPTION_LATE,
	.value = {.kind = CLI_VALUE_SIZE, .field = "new_size_bytes"},
    },
    {0},
};

static const struct cli_command cmd_volume_resize = {
    .name = "resize",
    .method = "ResizeVolume",
    .request = &ombra__v1__resize_volume_request__descriptor,
    .options = cmd_volume_resize_opts,
    .args = cli_args_name,
    .request_id = true,
    .print = cmd_volume_resized,
};

static const struct cli_option cmd_volume_delete_opts[] = {
    {.name = "yes", .short_name = 'y', .value = {.kind = CLI_VALUE_FLAG}},
    {0},
};

static const struct cli_command cmd_volume_delete = {
    .name = "delete",
    .method = "DeleteVolume",
    .request = &ombra__v1__delete_volume_request__descriptor,
    .options = cmd_volume_delete_opts,
    .args = cli_args_name,
    .request_id = true,
    .check = cmd_volume_delete_check,
    .print = cmd_volume_deleted,
};

static const struct cli_command *const cmd_volume_commands[] = {
    &cmd_volume_create,	   &cmd_volume_get,    &cmd_volume_list,
    &cmd_volume_resize,	   &cmd_volume_delete, &cmd_volume_shards,
    &cmd_volume_failovers, &cmd_volume_policy, &cmd_volume_prefetch_stats,
};

const struct cli_group cmd_volume_group = {
    .name = "volume",
    .summary = "create, inspect, resize and delete volumes; shard maps",
    .help = cmd_volume_help,
    .commands = cmd_volume_commands,
    .n_commands = sizeof(cmd_volume_commands) / sizeof(cmd_volume_commands[0]),
};
