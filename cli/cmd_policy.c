/* cmd_policy.c: "ombractl volume policy NAME [options]": show or change a
 * volume's shadow policy (docs/shadows.md "Shadow policy", docs/metad.md
 * "Shadow policy and access statistics").
 *
 * Without options it shows the policy (GetVolume).  With options it reads
 * the current policy, changes only the fields given and writes the result
 * with AdminService.SetShadowPolicy (one request id, so a retry is not
 * applied twice); --clear removes the policy (and with it the volume's
 * shadows).  The printed policy shows each field's effective value, the
 * defaults of metad for fields left at 0.
 *
 * Failure: bad option values exit 2 before anything is sent (a number, a
 * size, on|off, region names); the ranges are metad's to enforce, and its
 * refusal (INVALID_ARGUMENT naming the field) exits 1, as does an unknown
 * volume.  Read-modify-write is not atomic: two operators changing the
 * same volume's policy at once get the last one's fields. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.pb-c.h"
#include "cmd.h"
#include "format.h"
#include "parse.h"

#define POLICY_MAX_REGIONS 16

/* Parsed option values (run->state). */
struct policy_state {
	double create_reads_per_s;
	bool auto_promote; /* --auto-promote on */
	char *regions[POLICY_MAX_REGIONS];
	size_t n_regions;
	bool regions_given;
};

static int policy_parse_rate(struct cli_run *run, const char *shown, char *word)
{
	struct policy_state *s = run->state;
	char *end;
	double v;

	errno = 0;
	v = strtod(word, &end);
	if (errno != 0 || end == word || *end != '\0' || !isfinite(v) ||
	    v <= 0) {
		return cli_usage(run->cli,
				 "%s '%s': expected reads per second, a "
				 "number above 0 (e.g. 0.5)",
				 shown, word);
	}
	s->create_reads_per_s = v;
	return CLI_EXIT_OK;
}

static int policy_parse_onoff(struct cli_run *run, const char *shown,
			      char *word)
{
	struct policy_state *s = run->state;

	if (strcmp(word, "on") == 0 || strcmp(word, "off") == 0) {
		s->auto_promote = strcmp(word, "on") == 0;
	} else {
		return cli_usage(run->cli, "%s '%s': expected on or off", shown,
				 word);
	}
	return CLI_EXIT_OK;
}

/* "a,b,c" split in place; "" (or "all") = no list: every region but the
 * home one. */
static int policy_parse_regions(struct cli_run *run, const char *shown,
				char *word)
{
	struct policy_state *s = run->state;
	char *save = NULL, *tok;

	s->regions_given = true;
	s->n_regions = 0;
	if (strcmp(word, "all") == 0) {
		return CLI_EXIT_OK;
	}
	for (tok = strtok_r(word, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (s->n_regions == POLICY_MAX_REGIONS) {
			return cli_usage(run->cli, "%s: at most %d regions",
					 shown, POLICY_MAX_REGIONS);
		}
		s->regions[s->n_regions++] = tok;
	}
	return CLI_EXIT_OK;
}

/* Effective values: metad's defaults for 0 (proto/common.proto). */
static void policy_print(const Ombra__V1__Volume *v)
{
	const Ombra__V1__ShadowPolicy *p = v->shadow_policy;
	char a[FMT_LEN];

	printf("volume:              %s (home region %s)\n", v->name,
	       v->home_region);
	if (p == NULL) {
		printf("shadow policy:       none (no shadows are made)\n");
		return;
	}
	printf("regions:             ");
	if (p->n_regions == 0) {
		printf("all but %s", v->home_region);
	}
	for (size_t i = 0; i < p->n_regions; i++) {
		printf("%s%s", i > 0 ? "," : "", p->regions[i]);
	}
	printf("\nmax shadows:         %" PRIu32 " per segment\n",
	       p->max_shadows != 0 ? p->max_shadows : 1);
	printf("create at:           %g reads/s of a segment in a region\n",
	       p->create_reads_per_s != 0 ? p->create_reads_per_s : 1.0);
	printf("drop when idle for:  %s\n",
	       fmt_duration_ms(p->idle_ms != 0 ? p->idle_ms : 300000, a,
			       sizeof(a)));
	if (p->budget_bytes != 0) {
		printf("budget per region:   %s\n",
		       fmt_size(p->budget_bytes, a, sizeof(a)));
	} else {
		printf("budget per region:   unlimited\n");
	}
	printf("fill rate:           %s/s per node\n",
	       fmt_size(p->fill_bytes_per_s != 0 ? p->fill_bytes_per_s
						 : 64ull << 20,
			a, sizeof(a)));
	printf("auto promote:        %s\n",
	       p->auto_promote_shadows ? "on" : "off");
}

/* True if an option that sets a policy field was given. */
static bool policy_fields_given(const struct cli_run *run)
{
	static const char *const names[] = {
	    "regions", "max-shadows", "create-reads-per-s", "idle-ms",
	    "budget",  "fill-rate",   "auto-promote",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (cli_run_option(run, names[i]) != NULL) {
			return true;
		}
	}
	return false;
}

/* Apply the given options onto p (the current policy or a fresh one). */
static void policy_merge(const struct cli_run *run, Ombra__V1__ShadowPolicy *p)
{
	const struct policy_state *s = run->state;
	const char *w;

	if (s->regions_given) {
		p->regions = (char **)s->regions;
		p->n_regions = s->n_regions;
	}
	if ((w = cli_run_option(run, "max-shadows")) != NULL) {
		p->max_shadows = (uint32_t)strtoul(w, NULL, 10);
	}
	if (cli_run_option(run, "create-reads-per-s") != NULL) {
		p->create_reads_per_s = s->create_reads_per_s;
	}
	if ((w = cli_run_option(run, "idle-ms")) != NULL) {
		p->idle_ms = strtoull(w, NULL, 10);
	}
	if ((w = cli_run_option(run, "budget")) != NULL) {
		(void)parse_size(w, &p->budget_bytes);
	}
	if ((w = cli_run_option(run, "fill-rate")) != NULL) {
		(void)parse_size(w, &p->fill_bytes_per_s);
	}
	if (cli_run_option(run, "auto-promote") != NULL) {
		p->auto_promote_shadows = s->auto_promote;
	}
}

static int policy_show(const struct cli_run *run, const ProtobufCMessage *resp,
		       const char *verb)
{
	const Ombra__V1__GetVolumeResponse *r = (const void *)resp;

	if (run->cli->json) {
		return cli_print_json(resp);
	}
	if (r->volume == NULL) {
		return cli_fail("server answered without a volume");
	}
	if (verb != NULL) {
		printf("%s shadow policy of volume '%s'\n", verb,
		       r->volume->name);
	}
	policy_print(r->volume);
	return CLI_EXIT_OK;
}

static int policy_exec(struct cli_run *run)
{
	Ombra__V1__GetVolumeRequest get = OMBRA__V1__GET_VOLUME_REQUEST__INIT;
	Ombra__V1__SetShadowPolicyRequest set =
	    OMBRA__V1__SET_SHADOW_POLICY_REQUEST__INIT;
	Ombra__V1__ShadowPolicy fresh = OMBRA__V1__SHADOW_POLICY__INIT;
	ProtobufCMessage *cur = NULL, *resp = NULL;
	const Ombra__V1__Volume *v;
	bool clear = cli_run_option(run, "clear") != NULL;
	char rid[64];
	int rc;

	if (clear && policy_fields_given(run)) {
		return cli_usage(run->cli,
				 "--clear removes the whole policy; it takes "
				 "no other policy option");
	}
	get.name = run->args[0];
	rc = cli_call(run->cli, "GetVolume", &get.base, &cur);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	if (!clear && !policy_fields_given(run)) {
		rc = policy_show(run, cur, NULL);
		protobuf_c_message_free_unpacked(cur, NULL);
		return rc;
	}
	v = ((const Ombra__V1__GetVolumeResponse *)(void *)cur)->volume;
	if (!clear) {
		/* Merge into a copy: the response keeps owning its strings. */
		if (v != NULL && v->shadow_policy != NULL) {
			fresh = *v->shadow_policy;
		}
		policy_merge(run, &fresh);
		set.policy = &fresh;
	}
	set.name = run->args[0];
	rpc_request_id(rid, sizeof(rid));
	set.request_id = rid;
	rc = cli_call(run->cli, "SetShadowPolicy", &set.base, &resp);
	if (rc == CLI_EXIT_OK) {
		/* SetShadowPolicyResponse has GetVolumeResponse's layout. */
		rc = policy_show(run, resp, clear ? "cleared" : "set");
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	protobuf_c_message_free_unpacked(cur, NULL);
	return rc;
}

static const struct cli_option policy_opts[] = {
    {.name = "regions",
     .value = {.kind = CLI_VALUE_CUSTOM, .parse = policy_parse_regions}},
    {.name = "max-shadows",
     .value = {.kind = CLI_VALUE_UINT,
	       .min = 1,
	       .max = 8,
	       .what = "expected shadows per segment, 1..8"}},
    {.name = "create-reads-per-s",
     .value = {.kind = CLI_VALUE_CUSTOM, .parse = policy_parse_rate}},
    {.name = "idle-ms",
     .value = {.kind = CLI_VALUE_UINT,
	       .min = 1,
	       .max = UINT64_MAX,
	       .what = "expected milliseconds (e.g. 300000)"}},
    {.name = "budget", .value = {.kind = CLI_VALUE_SIZE}},
    {.name = "fill-rate", .value = {.kind = CLI_VALUE_SIZE}},
    {.name = "auto-promote",
     .value = {.kind = CLI_VALUE_CUSTOM, .parse = policy_parse_onoff}},
    {.name = "clear", .value = {.kind = CLI_VALUE_FLAG}},
    {0},
};

/* NAME only recorded (run->args[0]): both requests are built here. */
static const struct cli_arg policy_args[] = {
    {.name = "NAME", .value = {.kind = CLI_VALUE_STRING}},
    {0},
};

const struct cli_command cmd_volume_policy = {
    .name = "policy",
    .options = policy_opts,
    .args = policy_args,
    .state_size = sizeof(struct policy_state),
    .exec = policy_exec,
};
