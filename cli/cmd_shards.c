/* cmd_shards.c: "ombractl volume shards NAME": one page of a volume's shard
 * map (AdminService.GetShardMap) as a table, one row per segment: primary,
 * in-sync replicas, nodes waiting for a re-sync, shadows (with their fill
 * progress and lag as their nodes report it, StoreService.ListCopies), the
 * write-lease epoch, and the version and tier the primary holds (asked
 * from the primary's StoreService.GetSegmentInfo, seginfo.h; --no-versions
 * skips those calls and shows metad's record instead).  --json prints the
 * GetVolumeShardingInfoResponse with a "primary_info" object added to each
 * segment that was asked and a "shadow_info" array to each with shadows.
 *
 * Failure: bad --first/--max exit 2 before anything is sent; metad errors
 * exit 1.  A primary that cannot answer does not fail the command: its
 * cells show "?" and a note after the table says why.  A node id the
 * response does not describe is shown as "#ID" rather than trusted;
 * overlong cells are cut with "...". */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "format.h"
#include "pbjson.h"
#include "seginfo.h"
#include "table.h"

#define CMD_SHARDS_CELL_LEN 512
#define CMD_SHARDS_MAX_PAGE 65536
#define CMD_SHARDS_MAX_NOTES 5
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

/* Append the node's name (or "#id"), preceded by sep; with_region adds
 * "@region" (shadows live outside the home region). */
static void
cmd_shards_add_node(struct cmd_shards_cell *c,
		    const Ombra__V1__GetVolumeShardingInfoResponse *r,
		    uint64_t id, const char *sep, bool with_region)
{
	const Ombra__V1__Node *n = cmd_shards_node(r, id);

	if (n == NULL) {
		cmd_shards_cell_add(c, "%s#%" PRIu64, sep, id);
	} else if (with_region) {
		cmd_shards_cell_add(c, "%s%s@%s", sep, n->name, n->region);
	} else {
		cmd_shards_cell_add(c, "%s%s", sep, n->name);
	}
}

/* Append every id of ids as a comma-separated node list. */
static void
cmd_shards_add_nodes(struct cmd_shards_cell *c,
		     const Ombra__V1__GetVolumeShardingInfoResponse *r,
		     const uint64_t *ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		cmd_shards_add_node(c, r, ids[i], i == 0 ? "" : ",", false);
	}
}

/* A shadow's state as its node reported it: "(lag 3v 120ms)", "(current)",
 * "(filling 40%)", "(not held)" (placed, not yet created there) or "(?)"
 * (the node did not answer; the note after the table says why). */
static void cmd_shards_add_copy(struct cmd_shards_cell *c,
				const struct seginfo_copy *sc)
{
	char a[FMT_LEN];

	if (!sc->ok) {
		cmd_shards_cell_add(c, "(?)");
	} else if (!sc->found) {
		cmd_shards_cell_add(c, "(not held)");
	} else if (sc->filling || sc->present_blocks < sc->total_blocks) {
		cmd_shards_cell_add(c, "(filling %" PRIu64 "%%)",
				    sc->total_blocks == 0
					? 0
					: sc->present_blocks * 100 /
					      sc->total_blocks);
	} else if (sc->lag_versions == 0 && sc->lag_ms == 0) {
		cmd_shards_cell_add(c, "(current)");
	} else {
		cmd_shards_cell_add(c, "(lag %" PRIu64 "v %s)",
				    sc->lag_versions,
				    fmt_duration_ms(sc->lag_ms, a, sizeof(a)));
	}
}

/* One table row.  info: what the primary said, NULL with --no-versions
 * (then metad's version and tier override are shown). */
static void cmd_shards_row(struct table *t,
			   const Ombra__V1__GetVolumeShardingInfoResponse *r,
			   const Ombra__V1__SegmentPlacement *s,
			   const struct seginfo *info)
{
	struct cmd_shards_cell primary = {.len = 0};
	struct cmd_shards_cell replicas = {.len = 0};
	struct cmd_shards_cell resync = {.len = 0};
	struct cmd_shards_cell shadows = {.len = 0};
	char v[FMT_LEN];
	size_t i;

	if (s->primary_node_id != 0) {
		cmd_shards_add_node(&primary, r, s->primary_node_id, "", false);
	}
	cmd_shards_add_nodes(&replicas, r, s->replica_node_ids,
			     s->n_replica_node_ids);
	cmd_shards_add_nodes(&resync, r, s->resync_node_ids,
			     s->n_resync_node_ids);
	for (i = 0; i < s->n_shadows; i++) {
		const Ombra__V1__ShadowCopy *sh = s->shadows[i];

		cmd_shards_add_node(&shadows, r, sh->node_id, i == 0 ? "" : ",",
				    true);
		if (info != NULL && info->copies != NULL)
			cmd_shards_add_copy(&shadows, &info->copies[i]);
		else
			cmd_shards_cell_add(
			    &shadows, "(%s)",
			    fmt_version(sh->version, v, sizeof(v)));
	}
	table_cellf(t, "%" PRIu64, s->index);
	table_cell(t, cmd_shards_cell_str(&primary));
	table_cell(t, cmd_shards_cell_str(&replicas));
	table_cell(t, cmd_shards_cell_str(&resync));
	table_cell(t, cmd_shards_cell_str(&shadows));
	table_cellf(t, "%" PRIu64, s->lease_epoch);
	if (info == NULL) {
		table_cell(t, fmt_version(s->version, v, sizeof(v)));
		table_cell(t, s->tier[0] != '\0' ? s->tier : "-");
	} else if (!info->asked) {
		table_cell(t, "-");
		table_cell(t, "-");
	} else if (!info->ok) {
		table_cell(t, "?");
		table_cell(t, "?");
	} else {
		table_cell(t, fmt_version(info->version, v, sizeof(v)));
		table_cell(t, info->tier[0] != '\0' ? info->tier : "-");
	}
	table_cell(t, s->exception ? "*" : "");
}

/* After the table: why some cells show "?", one line per distinct reason
 * (at most CMD_SHARDS_MAX_NOTES). */
static void cmd_shards_notes(const struct seginfo *info, size_t n)
{
	const char *seen[CMD_SHARDS_MAX_NOTES];
	size_t i, j, n_seen = 0, failed = 0;

	for (i = 0; i < n; i++) {
		if (!info[i].asked || info[i].ok) {
			continue;
		}
		failed++;
		for (j = 0; j < n_seen; j++) {
			if (strcmp(seen[j], info[i].error) == 0) {
				break;
			}
		}
		if (j == n_seen && n_seen < CMD_SHARDS_MAX_NOTES) {
			seen[n_seen++] = info[i].error;
		}
	}
	for (i = 0; i < n; i++) {
		for (j = 0; info[i].copies != NULL && j < info[i].n_copies;
		     j++) {
			if (!info[i].copies[j].ok) {
				printf(
				    "note: '(?)' after a shadow: its node did "
				    "not answer ListCopies\n");
				i = n;
				break;
			}
		}
	}
	if (failed == 0) {
		return;
	}
	printf("note: VERSION and TIER of %zu segment(s) unknown ('?'): the "
	       "primary did not answer GetSegmentInfo:\n",
	       failed);
	for (j = 0; j < n_seen; j++) {
		printf("  %s\n", seen[j]);
	}
}

static int cmd_shards_print(const struct cli_run *run,
			    const Ombra__V1__GetVolumeShardingInfoResponse *r,
			    const struct seginfo *info)
{
	static const char *const headers[] = {
	    "SEGMENT", "PRIMARY", "IN-SYNC", "RESYNC", "SHADOWS",
	    "EPOCH",   "VERSION", "TIER",    "EXC",
	};
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
	table_init(&t, 9, headers, (1u << 0) | (1u << 5));
	for (i = 0; i < r->n_segments; i++) {
		cmd_shards_row(&t, r, r->segments[i],
			       info != NULL ? &info[i] : NULL);
	}
	rc = cli_print_table(&t, "shard");
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (info != NULL) {
		cmd_shards_notes(info, r->n_segments);
	} else {
		printf("(--no-versions: VERSION and TIER are metad's record, "
		       "the primaries were not asked)\n");
	}
	if (r->next_segment != 0) {
		printf("more segments follow: ombractl volume shards %s "
		       "--first %" PRIu64 "\n",
		       run->args[0], r->next_segment);
	}
	return CLI_EXIT_OK;
}

/* {"version": N, "tier": "fast"} or {"error": "..."}; NULL on ENOMEM. */
static struct json_object *cmd_shards_info_json(const struct seginfo *info)
{
	struct json_object *o = json_object_new_object();

	if (o == NULL) {
		return NULL;
	}
	if (info->ok) {
		json_object_object_add(o, "version",
				       json_object_new_uint64(info->version));
		json_object_object_add(o, "tier",
				       json_object_new_string(info->tier));
	} else {
		json_object_object_add(o, "error",
				       json_object_new_string(info->error));
	}
	return o;
}

/* seg["shadow_info"] = [{"present_blocks", "total_blocks", "filling",
 * "lag_versions", "lag_ms"} or {"error": "..."}], one per shadow in the
 * order of "shadows"; nothing when the segment has none.  -1 on ENOMEM. */
static int cmd_shards_copies_json(struct json_object *seg,
				  const struct seginfo *info)
{
	struct json_object *arr;

	if (info->copies == NULL)
		return 0;
	arr = json_object_new_array();
	if (arr == NULL)
		return -1;
	for (size_t j = 0; j < info->n_copies; j++) {
		const struct seginfo_copy *sc = &info->copies[j];
		struct json_object *o = json_object_new_object();

		if (o == NULL) {
			json_object_put(arr);
			return -1;
		}
		if (!sc->ok || !sc->found) {
			json_object_object_add(
			    o, "error",
			    json_object_new_string(
				!sc->ok ? "node did not answer ListCopies"
					: "not held by the node"));
		} else {
			json_object_object_add(
			    o, "present_blocks",
			    json_object_new_uint64(sc->present_blocks));
			json_object_object_add(
			    o, "total_blocks",
			    json_object_new_uint64(sc->total_blocks));
			json_object_object_add(
			    o, "filling", json_object_new_boolean(sc->filling));
			json_object_object_add(
			    o, "lag_versions",
			    json_object_new_uint64(sc->lag_versions));
			json_object_object_add(
			    o, "lag_ms", json_object_new_uint64(sc->lag_ms));
		}
		json_object_array_add(arr, o);
	}
	json_object_object_add(seg, "shadow_info", arr);
	return 0;
}

static int cmd_shards_json(const Ombra__V1__GetVolumeShardingInfoResponse *r,
			   const struct seginfo *info)
{
	struct json_object *root = pbjson_from_message(&r->base);
	struct json_object *segs = NULL;
	int rc = CLI_EXIT_OK;
	size_t i;

	if (root == NULL) {
		return cli_fail("out of memory while formatting JSON");
	}
	json_object_object_get_ex(root, "segments", &segs);
	for (i = 0; info != NULL && segs != NULL && i < r->n_segments; i++) {
		struct json_object *seg = json_object_array_get_idx(segs, i);
		struct json_object *o;

		if (seg == NULL || !info[i].asked) {
			continue;
		}
		o = cmd_shards_info_json(&info[i]);
		if (o == NULL || cmd_shards_copies_json(seg, &info[i]) != 0) {
			json_object_put(o);
			rc = cli_fail("out of memory while formatting JSON");
			break;
		}
		json_object_object_add(seg, "primary_info", o);
	}
	if (rc == CLI_EXIT_OK) {
		/* Same layout as pbjson_to_string(). */
		puts(json_object_to_json_string_ext(
		    root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			      JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	json_object_put(root);
	return rc;
}

static int cmd_shards_exec(struct cli_run *run)
{
	const Ombra__V1__GetVolumeShardingInfoResponse *r;
	ProtobufCMessage *resp = NULL;
	struct seginfo *info = NULL;
	int rc;

	rc = cli_call(run->cli, "GetShardMap", run->req, &resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	r = (const void *)resp;
	if (cli_run_option(run, "no-versions") == NULL) {
		info = calloc(r->n_segments + 1, sizeof(*info));
		if (info == NULL) {
			protobuf_c_message_free_unpacked(resp, NULL);
			return cli_fail("out of memory for %zu segments",
					r->n_segments);
		}
		seginfo_fetch(run->cli, r, info);
	}
	rc = run->cli->json ? cmd_shards_json(r, info)
			    : cmd_shards_print(run, r, info);
	seginfo_free(info, r->n_segments);
	free(info);
	protobuf_c_message_free_unpacked(resp, NULL);
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
    {
	.name = "no-versions",
	.value = {.kind = CLI_VALUE_FLAG},
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
    .request = &ombra__v1__get_volume_sharding_info_request__descriptor,
    .options = cmd_shards_opts,
    .args = cmd_shards_args,
    .exec = cmd_shards_exec,
};
