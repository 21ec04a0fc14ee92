/* test_audit.c: the JSON-lines audit log (lib/audit.c) and the state
 * machine's records (metad/fsm_audit.c): line shape and time stamps,
 * deferred records written on flush and dropped on discard, JSON string
 * escaping, NULL audits doing nothing, and through the FSM: a volume
 * creation, a node set DOWN (node_state plus the promotion's placement
 * with the next epoch), a refused command writing nothing.  Fails (cmocka)
 * naming the record or line that differed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "fsm_testlib.h"

/* The whole file at path (malloc'd, NUL-terminated). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static unsigned count_lines(const char *s)
{
	unsigned n = 0;

	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

static void test_lines(void **state)
{
	struct fixture *fx = *state;
	struct audit_pending p = {0};
	char path[160], errmsg[OMBRA_ERRMSG_LEN];
	struct audit *a = NULL;
	uint64_t t0, t1, t;
	char *text, *line;

	snprintf(path, sizeof(path), "%s/audit.jsonl", fx->root);
	assert_int_equal(audit_open(path, &a, errmsg), 0);
	t0 = audit_now_ms();
	audit_log(a, "\"ev\":\"x\",\"n\":%d", 7);
	audit_defer(&p, "\"ev\":\"dropped\"");
	audit_discard(&p);
	audit_flush(a, &p); /* nothing queued */
	audit_defer(&p, "\"ev\":\"a\",\"i\":%d", 1);
	audit_defer(&p, "\"ev\":\"b\",\"i\":%d", 2);
	audit_flush(a, &p);
	assert_int_equal(p.len, 0);
	t1 = audit_now_ms();
	audit_close(a);
	audit_pending_free(&p);

	text = slurp(path);
	assert_int_equal(count_lines(text), 3);
	assert_null(strstr(text, "dropped"));
	line = text;
	for (int i = 0; i < 3; i++) {
		char *nl = strchr(line, '\n');

		assert_non_null(nl);
		assert_int_equal(sscanf(line, "{\"t_ms\":%" SCNu64 ",", &t), 1);
		assert_true(t >= t0 && t <= t1);
		assert_true(nl[-1] == '}');
		line = nl + 1;
	}
	assert_non_null(strstr(text, ",\"ev\":\"x\",\"n\":7}\n"));
	assert_non_null(strstr(text, ",\"ev\":\"a\",\"i\":1}\n"));
	assert_non_null(strstr(text, ",\"ev\":\"b\",\"i\":2}\n"));
	assert_true(strstr(text, "\"a\"") < strstr(text, "\"b\""));
	free(text);

	/* Appends: a second open adds to the same file. */
	assert_int_equal(audit_open(path, &a, errmsg), 0);
	audit_log(a, "\"ev\":\"again\"");
	audit_close(a);
	text = slurp(path);
	assert_int_equal(count_lines(text), 4);
	free(text);

	/* A directory cannot be opened: OMBRA_EIO naming it. */
	assert_int_equal(audit_open(fx->root, &a, errmsg), OMBRA_EIO);
	assert_non_null(strstr(errmsg, fx->root));
}

static void test_null_audit(void **state)
{
	struct audit_pending p = {0};

	(void)state;
	audit_log(NULL, "\"ev\":\"x\"");
	audit_defer(&p, "\"ev\":\"x\"");
	assert_true(p.len > 0);
	audit_flush(NULL, &p); /* empties p */
	assert_int_equal(p.len, 0);
	audit_close(NULL);
	audit_pending_free(&p);
}

static void test_json_str(void **state)
{
	char out[32];

	(void)state;
	assert_string_equal(audit_json_str(out, sizeof(out), "r1/h:1"),
			    "\"r1/h:1\"");
	assert_string_equal(audit_json_str(out, sizeof(out), "a\"b\\c\n"),
			    "\"a\\\"b\\\\c\\u000a\"");
	assert_string_equal(audit_json_str(out, 8, "abcdefghij"), "\"abcde\"");
	assert_string_equal(audit_json_str(out, sizeof(out), ""), "\"\"");
}

/* The primary of segment 0 of volume "v". */
static uint64_t primary_of(struct fsm *f)
{
	Ombra__V1__GetVolumeShardingInfoResponse r =
	    OMBRA__V1__GET_VOLUME_SHARDING_INFO_RESPONSE__INIT;
	char errmsg[OMBRA_ERRMSG_LEN];
	uint64_t p;

	assert_int_equal(fsm_shard_map(f, "v", 0, 1, &r, errmsg), 0);
	assert_int_equal(r.n_segments, 1);
	p = r.segments[0]->primary_node_id;
	fsm_free_shard_map(&r);
	return p;
}

static void test_fsm_records(void **state)
{
	struct fixture *fx = *state;
	char path[160], errmsg[OMBRA_ERRMSG_LEN], want[256];
	struct audit *a = NULL;
	uint64_t p;
	char *text;

	snprintf(path, sizeof(path), "%s/metad.audit.jsonl", fx->root);
	assert_int_equal(audit_open(path, &a, errmsg), 0);
	fsm_set_audit(fx->f, a);
	build_cluster(fx->f);
	assert_int_equal(
	    create_volume(fx->f, 5, "v", "r1", 1 << 20, 1 << 20, 2, NULL).code,
	    0);
	/* Refused (duplicate name): no record. */
	assert_int_not_equal(
	    create_volume(fx->f, 6, "v", "r1", 1 << 20, 1 << 20, 2, NULL).code,
	    0);
	p = primary_of(fx->f);
	assert_int_equal(
	    set_node_state(fx->f, 7, p, OMBRA__V1__NODE_STATE__NODE_DOWN).code,
	    0);
	assert_int_not_equal(primary_of(fx->f), p);
	/* Replayed index: no record. */
	assert_int_equal(
	    set_node_state(fx->f, 7, p, OMBRA__V1__NODE_STATE__NODE_UP).code,
	    0);
	fsm_set_audit(fx->f, NULL);
	audit_close(a);

	text = slurp(path);
	assert_int_equal(count_lines(text), 3);
	assert_non_null(strstr(text, "\"index\":5,\"cmd_ms\":1005,\"ev\":"
				     "\"volume_created\",\"volume\":1,\"name\":"
				     "\"v\",\"region\":\"r1\",\"segments\":1,"
				     "\"epoch\":1}\n"));
	assert_null(strstr(text, "\"index\":6,"));
	snprintf(want, sizeof(want),
		 "\"index\":7,\"cmd_ms\":1007,\"ev\":\"node_state\",\"node\":"
		 "%" PRIu64 ",\"state\":\"DOWN\"}\n",
		 p);
	assert_non_null(strstr(text, want));
	snprintf(
	    want, sizeof(want),
	    "\"index\":7,\"cmd_ms\":1007,\"ev\":\"placement\",\"volume\":1,"
	    "\"segment\":0,\"epoch\":2,\"primary\":%" PRIu64 ",",
	    primary_of(fx->f));
	assert_non_null(strstr(text, want));
	snprintf(want, sizeof(want), "\"resync\":[%" PRIu64 "]}\n", p);
	assert_non_null(strstr(text, want));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lines, setup, teardown),
	    cmocka_unit_test(test_null_audit),
	    cmocka_unit_test(test_json_str),
	    cmocka_unit_test_setup_teardown(test_fsm_records, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
