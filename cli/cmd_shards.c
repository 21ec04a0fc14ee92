/* cmd_shards.c: "ombractl volume shards NAME": one page of a volume's shard
 * map (AdminService.GetShardMap) as a table, one row per segment, with
 * nodes shown as name@region.
 *
 * Failure: bad --first/--max exit 2 before anything is sent; server errors
 * exit 1.  A node id the response does not describe is shown as "#ID"
 * rather than trusted; overlong cells are cut with "...". */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "format.h"
#include "table.h"

#define CMD_SHARDS_CELL_LEN 512
#define CMD_SHARDS_MAX_PAGE 65536
/* The limit as text, for the usage message. */
#define CMD_SHARDS_STR(x) #x
#define CMD_SHARDS_XSTR(x) CMD_SHARDS_STR(x)

/* Appends to a fixed cell buffer, remembering truncation. */
struct cmd_shards_cell {
	char buf[CMD_SHARDS_CELL_LEN];
	size_t len;
	bool cut;
};

static void cmd_shards_cell_add(struct cmd_shards_cell *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void cmd_shards_cell_add(struct cmd_shards_cell *c, const char *fmt, ...)
{
	size_t room = sizeof(c->buf) - c->len;
	va_list ap;
	int n;

	if (c->cut) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(c->buf + c->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		c->cut = true;
		c->len = sizeof(c->buf) - 1;
		memcpy(c->buf + c->len - 3, "...", 3);
		return;
	}
	c->len += (size_t)n;
}

static const char *cmd_shards_cell_str(const struct cmd_shards_cell *c)
{
	return c->len == 0 ? "-" : c->buf;
}

static const Ombra__V1__Node *
cmd_shards_node(const Ombra__V1__GetVolumeShardingInfoResponse *r, uint64_t id)
{
	size_t i;

	for (i = 0; i < r->n_nodes; i++) {
		if (r->nodes[i]->id == id) {
			return r->nodes[i];
		}
	}
	return NULL;
}

/* Append "name@region" (or "#id") for node id, preceded by sep. */
static void
cmd_shards_add_node(struct cmd_shards_cell *c,
		    const Ombra__V1__GetVolumeShardingInfoResponse *r,
		    uint64_t id, const char *sep)
{
	const Ombra__V1__Node *n = cmd_shards_node(r, id);

	if (n != NULL) {
		cmd_shards_cell_add(c, "%s%s@%s", sep, n->name, n->region);
	} else {
		cmd_shards_cell_add(c, "%s#%" PRIu64, sep, id);
	}
}

static void cmd_shards_row(struct table *t,
			   const Ombra__V1__GetVolumeShardingInfoResponse *r,
			   const Ombra__V1__SegmentPlacement *s)
{
	struct cmd_shards_cell primary = {.len = 0};
	struct cmd_shards_cell replicas = {.len = 0};
	struct cmd_shards_cell shadows = {.len = 0};
	char v[FMT_LEN];
	size_t i;

	if (s->primary_node_id != 0) {
		cmd_shards_add_node(&primary, r, s->primary_node_id, "");
	}
	for (i = 0; i < s->n_replica_node_ids; i++) {
		cmd_shards_add_node(&replicas, r, s->replica_node_ids[i],
				    i == 0 ? "" : ",");
	}
	for (i = 0; i < s->n_shadows; i++) {
		const Ombra__V1__ShadowCopy *sh = s->shadows[i];

		cmd_shards_add_node(&shadows, r, sh->node_id,
				    i == 0 ? "" : ",");
		cmd_shards_cell_add(&shadows, "(%s)",
				    fmt_version(sh->version, v, sizeof(v)));
	}
	table_cellf(t, "%" PRIu64, s->index);
	table_cell(t, cmd_shards_cell_str(&primary));
	table_cell(t, cmd_shards_cell_str(&replicas));
	table_cell(t, cmd_shards_cell_str(&shadows));
	table_cell(t, fmt_version(s->version, v, sizeof(v)));
	table_cellf(t, "%" PRIu64, s->lease_epoch);
	table_cell(t, s->tier[0] != '\0' ? s->tier : "-");
	table_cell(t, s->exception ? "*" : "");
}

static int cmd_shards_print(const struct cli_run *run,
			    const ProtobufCMessage *resp)
{
	static const char *const headers[] = {
	    "SEGMENT", "PRIMARY", "REPLICAS", "SHADOWS",
	    "VERSION", "EPOCH",	  "TIER",     "EXC",
	};
	const Ombra__V1__GetVolumeShardingInfoResponse *r = (const void *)resp;
	char a[FMT_LEN];
	struct table t;
	size_t i;
	int rc;

	if (r->volume != NULL) {
		printf("volume '%s': %" PRIu64 " segments of %s, home region "
		       "%s, %" PRIu32 " replicas\n",
		       r->volume->name, r->volume->segment_count,
		       fmt_size(r->volume->segment_size_bytes, a, sizeof(a)),
		       r->volume->home_region, r->volume->replicas);
	}
	table_init(&t, 8, headers, (1u << 0) | (1u << 5));
	for (i = 0; i < r->n_segments; i++) {
		cmd_shards_row(&t, r, r->segments[i]);
	}
	rc = cli_print_table(&t, "shard");
	if (rc == CLI_EXIT_OK && r->next_segment != 0) {
		printf("more segments follow: ombractl volume shards %s "
		       "--first %" PRIu64 "\n",
		       run->args[0], r->next_segment);
	}
	return rc;
}

static const struct cli_option cmd_shards_opts[] = {
    {
	.name = "first",
	.value = {.kind = CLI_VALUE_UINT,
		  .field = "first_segment",
		  .min = 0,
		  .max = UINT64_MAX,
		  .what = "expected a segment index (0 or more)"},
    },
    {
	.name = "max",
	.value = {.kind = CLI_VALUE_UINT,
		  .field = "max_segments",
		  .min = 1,
		  .max = CMD_SHARDS_MAX_PAGE,
		  .what = "expected a number of segments, 1.." CMD_SHARDS_XSTR(
		      CMD_SHARDS_MAX_PAGE)},
    },
    CLI_OPTION_STALE,
    {0},
};

static const struct cli_arg cmd_shards_args[] = {
    {.name = "NAME", .value = {.kind = CLI_VALUE_STRING, .field = "volume"}},
    {0},
};

const struct cli_command cmd_volume_shards = {
    .name = "shards",
    .method = "GetShardMap",
    .request = &ombra__v1__get_volume_sharding_info_request__descriptor,
    .options = cmd_shards_opts,
    .args = cmd_shards_args,
    .print = cmd_shards_print,
};
