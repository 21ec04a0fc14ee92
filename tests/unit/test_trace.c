/* test_trace.c: predict/trace readers on files written here byte by byte:
 * vscsi v1 and v2 records (opcodes, sector offsets, relative times,
 * skipped commands, truncation), ARC .lis lines, MSR CSV lines (volumes
 * per host and disk, filetime to us), .zst through zstd (skipped when
 * zstd is missing) and the errors of each.  Files live in a temporary
 * directory removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "predict/trace.h"

static char dir[] = "/tmp/ombra-test-trace-XXXXXX";

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void write_file(const char *name, const void *data, size_t len)
{
	char p[256];
	FILE *f;

	path_of(p, sizeof(p), name);
	f = fopen(p, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void put(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void v1(unsigned char *r, unsigned cmd, uint32_t len, uint64_t lbn,
	       uint64_t ts)
{
	memset(r, 0, 32);
	put(r, 7, 4);	    /* sn */
	put(r + 4, len, 4); /* len */
	put(r + 8, 1, 4);   /* nSG */
	put(r + 12, cmd, 2);
	put(r + 14, 0x100, 2);
	put(r + 16, lbn, 8);
	put(r + 24, ts, 8);
}

static struct trace *open_ok(const char *name, enum trace_format fmt)
{
	char p[256], err[OMBRA_ERRMSG_LEN];
	struct trace *t;

	path_of(p, sizeof(p), name);
	t = trace_open(p, fmt, err);
	if (t == NULL)
		fail_msg("%s", err);
	return t;
}

static void next_ok(struct trace *t, struct trace_req *r)
{
	int rc = trace_next(t, r);

	if (rc != 1)
		fail_msg("trace_next: %d %s", rc, trace_error(t));
}

static void test_vscsi_v1(void **state)
{
	unsigned char buf[4 * 32];
	struct trace_req r;
	struct trace *t;

	(void)state;
	v1(buf, 0x2a, 512, 42932745, 5633898368802ULL);
	v1(buf + 32, 0x12, 36, 0, 5633898368900ULL); /* INQUIRY: skipped */
	v1(buf + 64, 0x28, 65536, 15943, 5633898611441ULL);
	v1(buf + 96, 0x88, 4096, 1ULL << 33, 5633898611442ULL);
	write_file("a.vscsi", buf, sizeof(buf));
	t = open_ok("a.vscsi", TRACE_AUTO);
	assert_int_equal(trace_get_format(t), TRACE_VSCSI);
	next_ok(t, &r);
	assert_true(r.write);
	assert_int_equal(r.offset, 42932745ULL * 512);
	assert_int_equal(r.length, 512);
	assert_int_equal(r.time_us, 0);
	next_ok(t, &r);
	assert_false(r.write);
	assert_int_equal(r.offset, 15943ULL * 512);
	assert_int_equal(r.length, 65536);
	assert_int_equal(r.time_us, 5633898611441ULL - 5633898368802ULL);
	next_ok(t, &r);
	assert_false(r.write);
	assert_int_equal(r.offset, (1ULL << 33) * 512);
	assert_int_equal(trace_next(t, &r), 0);
	trace_close(t);

	/* A truncated last record is an error naming it. */
	write_file("b.vscsi", buf, 32 + 10);
	t = open_ok("b.vscsi", TRACE_VSCSI);
	next_ok(t, &r);
	assert_int_equal(trace_next(t, &r), -1);
	assert_non_null(strstr(trace_error(t), "truncated"));
	assert_non_null(strstr(trace_error(t), "record 2"));
	trace_close(t);

	/* Not vscsi at all. */
	memset(buf, 0xee, 32);
	write_file("c.vscsi", buf, 32);
	t = open_ok("c.vscsi", TRACE_VSCSI);
	assert_int_equal(trace_next(t, &r), -1);
	assert_non_null(strstr(trace_error(t), "not a vscsi"));
	trace_close(t);
}

static void test_vscsi_v2(void **state)
{
	unsigned char buf[80];
	struct trace_req r;
	struct trace *t;

	(void)state;
	memset(buf, 0, sizeof(buf));
	for (int i = 0; i < 2; i++) {
		unsigned char *p = buf + 40 * i;

		put(p, i ? 0x28 : 0x2a, 2);    /* cmd */
		put(p + 2, 0x200, 2);	       /* ver 2 */
		put(p + 4, 99, 4);	       /* sn */
		put(p + 8, 8192 * (i + 1), 4); /* len */
		put(p + 12, 2, 4);	       /* nSG */
		put(p + 16, 1000 + i, 8);      /* lbn */
		put(p + 24, 500 + 10 * i, 8);  /* ts */
		put(p + 32, 77, 8);	       /* rt */
	}
	write_file("v2.bin", buf, sizeof(buf));
	t = open_ok("v2.bin", TRACE_VSCSI);
	next_ok(t, &r);
	assert_true(r.write);
	assert_int_equal(r.offset, 1000 * 512);
	assert_int_equal(r.length, 8192);
	next_ok(t, &r);
	assert_false(r.write);
	assert_int_equal(r.offset, 1001 * 512);
	assert_int_equal(r.length, 16384);
	assert_int_equal(r.time_us, 10);
	assert_int_equal(trace_next(t, &r), 0);
	trace_close(t);
}

static const char lis[] = "1 1 0 0\n110765 64 0 1\n\n7 2 3 2\n";

static void check_lis(struct trace *t)
{
	struct trace_req r;

	next_ok(t, &r);
	assert_int_equal(r.offset, 512);
	assert_int_equal(r.length, 512);
	assert_false(r.write);
	next_ok(t, &r);
	assert_int_equal(r.offset, 110765ULL * 512);
	assert_int_equal(r.length, 64 * 512);
	assert_int_equal(r.time_us, 1);
	next_ok(t, &r);
	assert_int_equal(r.offset, 7 * 512);
	assert_int_equal(r.length, 1024);
	assert_int_equal(r.time_us, 2);
	assert_int_equal(trace_next(t, &r), 0);
}

static void test_lis(void **state)
{
	struct trace_req r;
	struct trace *t;
	static const char bad[] = "1 1 0 0\n2 0 0 1\n";

	(void)state;
	write_file("a.lis", lis, strlen(lis));
	t = open_ok("a.lis", TRACE_AUTO);
	assert_int_equal(trace_get_format(t), TRACE_LIS);
	check_lis(t);
	trace_close(t);

	write_file("bad.lis", bad, strlen(bad));
	t = open_ok("bad.lis", TRACE_AUTO);
	next_ok(t, &r);
	assert_int_equal(trace_next(t, &r), -1);
	assert_non_null(strstr(trace_error(t), "record 2"));
	assert_non_null(strstr(trace_error(t), "count"));
	trace_close(t);
}

static void test_msr(void **state)
{
	static const char csv[] =
	    "128166372003061629,hm,0,Read,383266816,4096,1331\n"
	    "128166372003081629,web,1,Write,8192,512,100\n"
	    "128166372003091629,hm,0,Write,0,65536,10\n"
	    "128166372003101629,hm,1,Read,4096,0,10\n"
	    "128166372003111629,hm,1,read,4096,1024,10\n";
	static const char bad[] =
	    "128166372003061629,hm,0,Trim,383266816,4096,1331\n";
	struct trace_req r;
	struct trace *t;

	(void)state;
	write_file("hm_0.csv", csv, strlen(csv));
	t = open_ok("hm_0.csv", TRACE_AUTO);
	assert_int_equal(trace_get_format(t), TRACE_MSR);
	next_ok(t, &r);
	assert_false(r.write);
	assert_int_equal(r.volume, 0);
	assert_int_equal(r.offset, 383266816);
	assert_int_equal(r.length, 4096);
	assert_int_equal(r.time_us, 0);
	next_ok(t, &r);
	assert_true(r.write);
	assert_int_equal(r.volume, 1);
	assert_int_equal(r.time_us, 2000); /* 20000 ticks of 100 ns */
	next_ok(t, &r);
	assert_int_equal(r.volume, 0);
	assert_int_equal(r.length, 65536);
	next_ok(t, &r); /* the zero-size request is skipped */
	assert_int_equal(r.volume, 2);
	assert_false(r.write);
	assert_int_equal(r.length, 1024);
	assert_int_equal(trace_next(t, &r), 0);
	trace_close(t);

	write_file("bad.csv", bad, strlen(bad));
	t = open_ok("bad.csv", TRACE_MSR);
	assert_int_equal(trace_next(t, &r), -1);
	assert_non_null(strstr(trace_error(t), "Read nor Write"));
	trace_close(t);
}

static void test_zst(void **state)
{
	char p[256], cmd[600], err[OMBRA_ERRMSG_LEN];
	struct trace_req r;
	struct trace *t;

	(void)state;
	if (system("zstd --version >/dev/null 2>&1") != 0)
		skip();
	write_file("z.lis", lis, strlen(lis));
	path_of(p, sizeof(p), "z.lis");
	snprintf(cmd, sizeof(cmd), "zstd -q -f '%s' -o '%s.zst'", p, p);
	assert_int_equal(system(cmd), 0);
	t = open_ok("z.lis.zst", TRACE_AUTO);
	assert_int_equal(trace_get_format(t), TRACE_LIS);
	check_lis(t);
	trace_close(t);

	/* Closing before the end stops the decompressor. */
	t = open_ok("z.lis.zst", TRACE_AUTO);
	next_ok(t, &r);
	trace_close(t);

	/* Not zstd data: the reader reports the decompressor's failure. */
	write_file("junk.lis.zst", "this is not zstd\n", 17);
	t = open_ok("junk.lis.zst", TRACE_AUTO);
	assert_int_equal(trace_next(t, &r), -1);
	assert_non_null(strstr(trace_error(t), "zstd"));
	trace_close(t);

	/* Missing file: trace_open() fails at once. */
	path_of(p, sizeof(p), "missing.lis.zst");
	assert_null(trace_open(p, TRACE_AUTO, err));
	assert_non_null(strstr(err, "missing.lis.zst"));
}

static void test_names(void **state)
{
	char p[256], err[OMBRA_ERRMSG_LEN];
	enum trace_format f;

	(void)state;
	write_file("x.dat", "1 1 0 0\n", 8);
	path_of(p, sizeof(p), "x.dat");
	assert_null(trace_open(p, TRACE_AUTO, err));
	assert_non_null(strstr(err, "--format"));
	assert_int_equal(trace_format_parse("msr", &f), 0);
	assert_int_equal(f, TRACE_MSR);
	assert_int_equal(trace_format_parse("blktrace", &f), -1);
	assert_string_equal(trace_format_name(TRACE_LIS), "lis");
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vscsi_v1), cmocka_unit_test(test_vscsi_v2),
	    cmocka_unit_test(test_lis),	     cmocka_unit_test(test_msr),
	    cmocka_unit_test(test_zst),	     cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
