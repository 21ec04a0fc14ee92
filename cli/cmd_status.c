/* cmd_status.c: "ombractl cluster status": shows every metad member's own
 * view, asked directly rather than through the leader (the probes are in
 * status_probe.c): role, term, commit and applied index and a prefix of
 * its state hash, then the leader, the state counts and the membership as
 * the best-informed member sees them, or all answers as one JSON array.
 *
 * Failure: exit 1 when no member answers ("cannot reach any metad at
 * ..."); members that do not answer are shown as unreachable with their
 * error.  A state hash that differs between members at the same applied
 * index is printed as a warning: it means the replicas diverged. */
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "format.h"
#include "pbjson.h"
#include "status.h"
#include "table.h"

#define STATUS_HASH_PREFIX 12

/* The answer of the member that says it leads, highest term first; else
 * the first answer; NULL if none. */
static const Ombra__V1__GetClusterStatusResponse *
status_best(const struct status_run *r)
{
	const Ombra__V1__GetClusterStatusResponse *best = NULL;
	size_t i;

	for (i = 0; i < r->n; i++) {
		const Ombra__V1__GetClusterStatusResponse *s =
		    r->probes[i].resp;

		if (s == NULL) {
			continue;
		}
		if (best == NULL || (strcmp(s->state, "leader") == 0 &&
				     (strcmp(best->state, "leader") != 0 ||
				      s->term > best->term))) {
			best = s;
		}
	}
	return best;
}

static int status_print_json(const struct status_run *r)
{
	struct json_object *arr = json_object_new_array();
	int rc = CLI_EXIT_OK;
	size_t i;

	if (arr == NULL) {
		return cli_fail("out of memory while formatting JSON");
	}
	for (i = 0; i < r->n && rc == CLI_EXIT_OK; i++) {
		const struct status_probe *p = &r->probes[i];
		struct json_object *o = json_object_new_object();
		struct json_object *v = NULL;

		if (o == NULL || json_object_array_add(arr, o) != 0) {
			json_object_put(o);
			rc = cli_fail("out of memory while formatting JSON");
			break;
		}
		json_object_object_add(o, "endpoint",
				       json_object_new_string(p->target));
		if (p->resp != NULL) {
			v = pbjson_from_message(&p->resp->base);
			json_object_object_add(o, "status", v);
		} else {
			v = json_object_new_object();
			if (v != NULL) {
				json_object_object_add(
				    v, "code",
				    json_object_new_string(
					rpc_status_name(p->st.code)));
				json_object_object_add(
				    v, "message",
				    json_object_new_string(p->st.message));
			}
			json_object_object_add(o, "error", v);
		}
		if (v == NULL) {
			rc = cli_fail("out of memory while formatting JSON");
		}
	}
	if (rc == CLI_EXIT_OK) {
		/* Same layout as pbjson_to_string(). */
		puts(json_object_to_json_string_ext(
		    arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			     JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	json_object_put(arr);
	return rc;
}

static void status_probe_row(struct table *t, const struct status_probe *p)
{
	const Ombra__V1__GetClusterStatusResponse *s = p->resp;
	char h[FMT_LEN];

	table_cell(t, p->target);
	if (s == NULL) {
		table_cell(t, "-");
		table_cell(t, "unreachable");
		for (int i = 0; i < 6; i++) {
			table_cell(t, "-");
		}
		return;
	}
	table_cellf(t, "%" PRIu64, s->member_id);
	table_cell(t, s->state);
	table_cellf(t, "%" PRIu64, s->term);
	if (s->leader_id != 0) {
		table_cellf(t, "%" PRIu64, s->leader_id);
	} else {
		table_cell(t, "-");
	}
	table_cellf(t, "%" PRIu64, s->commit_index);
	table_cellf(t, "%" PRIu64, s->applied_index);
	table_cellf(t, "%" PRIu64, s->last_log_index);
	table_cell(t, fmt_hash_prefix(s->state_hash, STATUS_HASH_PREFIX, h,
				      sizeof(h)));
}

static int status_print_members(const Ombra__V1__GetClusterStatusResponse *s)
{
	static const char *const headers[] = {"ID", "ROLE", "RAFT", "GRPC",
					      "MATCH"};
	struct table t;
	size_t i;

	table_init(&t, 5, headers, (1u << 0) | (1u << 4));
	for (i = 0; i < s->n_members; i++) {
		const Ombra__V1__MetadMember *m = s->members[i];

		table_cellf(&t, "%" PRIu64, m->id);
		table_cell(&t, m->role);
		table_cell(&t, m->raft_address);
		table_cell(&t, m->grpc_address);
		table_cellf(&t, "%" PRIu64, m->match_index);
	}
	printf("\nmembers (as member %" PRIu64 " sees them):\n", s->member_id);
	return cli_print_table(&t, "status");
}

/* Warn about members whose state hash differs at equal applied index. */
static void status_check_hashes(const struct status_run *r)
{
	size_t i, j;

	for (i = 0; i < r->n; i++) {
		const Ombra__V1__GetClusterStatusResponse *a =
		    r->probes[i].resp;

		for (j = i + 1; a != NULL && j < r->n; j++) {
			const Ombra__V1__GetClusterStatusResponse *b =
			    r->probes[j].resp;

			if (b != NULL && a->applied_index == b->applied_index &&
			    a->state_hash[0] != '\0' &&
			    b->state_hash[0] != '\0' &&
			    strcmp(a->state_hash, b->state_hash) != 0) {
				printf("WARNING: members %" PRIu64
				       " and %" PRIu64 " have different state "
				       "hashes at applied index %" PRIu64 "\n",
				       a->member_id, b->member_id,
				       a->applied_index);
			}
		}
	}
}

/* The lines under the member table: errors of the members that did not
 * answer, the leader, the state counts and the version as best sees them,
 * hash warnings. */
static void
status_print_summary(const struct status_run *r,
		     const Ombra__V1__GetClusterStatusResponse *best)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct status_probe *p = &r->probes[i];

		if (p->resp == NULL) {
			printf("%s: %s: %s\n", p->target,
			       rpc_status_name(p->st.code), p->st.message);
		}
	}
	printf("\n");
	if (best->leader_id != 0) {
		printf("leader:  member %" PRIu64 " at %s (term %" PRIu64 ")\n",
		       best->leader_id,
		       best->leader_address[0] != '\0' ? best->leader_address
						       : "unknown address",
		       best->term);
	} else {
		printf("leader:  none known\n");
	}
	printf("state:   %" PRIu32 " regions, %" PRIu32 " nodes, %" PRIu32
	       " volumes (member %" PRIu64 ", applied index %" PRIu64 ")\n",
	       best->region_count, best->node_count, best->volume_count,
	       best->member_id, best->applied_index);
	printf("version: %s\n", best->version);
	status_check_hashes(r);
}

static int status_print_human(const struct status_run *r)
{
	static const char *const headers[] = {
	    "ENDPOINT", "ID",	   "STATE",    "TERM", "LEADER",
	    "COMMIT",	"APPLIED", "LAST-LOG", "HASH",
	};
	const Ombra__V1__GetClusterStatusResponse *best = status_best(r);
	struct table t;
	size_t i;
	int rc;

	table_init(&t, 9, headers,
		   (1u << 1) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) |
		       (1u << 7));
	for (i = 0; i < r->n; i++) {
		status_probe_row(&t, &r->probes[i]);
	}
	rc = cli_print_table(&t, "status");
	if (rc != CLI_EXIT_OK || best == NULL) {
		return rc;
	}
	status_print_summary(r, best);
	return status_print_members(best);
}

/* After the common parsing (no options, no arguments): probe, print. */
static int status_exec(struct cli_run *run)
{
	struct cli *cli = run->cli;
	struct status_run *r;
	size_t i;
	int rc;

	rc = cli_check_globals(cli);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		return cli_fail("out of memory");
	}
	rc = status_probe_all(cli, r);
	if (rc != CLI_EXIT_OK) {
		goto out;
	}
	for (i = 0; i < r->n && r->probes[i].resp == NULL; i++) {
	}
	if (i == r->n) {
		rc = cli_report_rpc_error(cli, cli->endpoints, r->probes[0].rc,
					  &r->probes[0].st);
		goto out;
	}
	rc = cli->json ? status_print_json(r) : status_print_human(r);
out:
	status_run_close(r);
	free(r);
	return rc;
}

const struct cli_command cmd_cluster_status = {
    .name = "status",
    .exec = status_exec,
};
