/* test_size.c: size_parse() and size_format() against tables of accepted
 * and rejected inputs, exact outputs and parse(format(x)) == x round trips.
 * Fails (cmocka) on the first row that disagrees, naming the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "size.h"

#define KIB (UINT64_C(1) << 10)
#define MIB (UINT64_C(1) << 20)
#define GIB (UINT64_C(1) << 30)
#define TIB (UINT64_C(1) << 40)

struct parse_ok {
	const char *in;
	uint64_t want;
};

static const struct parse_ok parse_ok_rows[] = {
    {"0", 0},
    {"4096", 4096},
    {"4096B", 4096},
    {"1b", 1},
    {"2.0B", 2},
    {"64K", 64 * KIB},
    {"64k", 64 * KIB},
    {"512KiB", 512 * KIB},
    {"512kib", 512 * KIB},
    {"0.5K", 512},
    {"1M", MIB},
    {"1.25MiB", MIB + MIB / 4},
    {"10GiB", 10 * GIB},
    {"10gib", 10 * GIB},
    {"10G", 10 * GIB},
    {"1.5GiB", GIB + GIB / 2},
    {"1.5G", GIB + GIB / 2},
    {"1.000GiB", GIB},
    {"007G", 7 * GIB},
    {"1TiB", TIB},
    {"2t", 2 * TIB},
    /* 2^-40 TiB is exactly one byte. */
    {"0.0000000000009094947017729282379150390625TiB", 1},
    {"18446744073709551615", UINT64_MAX},
    {"18446744073709551615B", UINT64_MAX},
    {"16777215TiB", UINT64_MAX - TIB + 1},
    {"16777215.5TiB", UINT64_MAX - TIB + 1 + TIB / 2},
};

static const char *const parse_bad_rows[] = {
    "",
    "-1",
    "+1",
    "1.3B",
    "10XB",
    "99999999TiB",
    " 1",
    "1 ",
    "1 GiB",
    "GiB",
    ".5G",
    "1.",
    "1.G",
    "1..5G",
    "10KB",
    "10MB",
    "1GiBB",
    "1iB",
    "0x10",
    "1e3",
    "1.1K", /* 1126.4 bytes */
    "18446744073709551616",
    "16777216TiB",
    "16777216.0TiB",
    "0.00000000000090949470177292823791503906251TiB",
};

static void test_parse_ok(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parse_ok_rows) / sizeof(parse_ok_rows[0]); i++) {
		uint64_t got = 12345;
		int rv = size_parse(parse_ok_rows[i].in, &got);

		if (rv != 0 || got != parse_ok_rows[i].want) {
			fail_msg("size_parse(\"%s\"): rv %d value %llu, want "
				 "%llu",
				 parse_ok_rows[i].in, rv,
				 (unsigned long long)got,
				 (unsigned long long)parse_ok_rows[i].want);
		}
	}
}

static void test_parse_bad(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parse_bad_rows) / sizeof(parse_bad_rows[0]);
	     i++) {
		uint64_t got = 12345;
		int rv = size_parse(parse_bad_rows[i], &got);

		if (rv != OMBRA_EINVAL || got != 12345) {
			fail_msg("size_parse(\"%s\"): rv %d value %llu, want "
				 "OMBRA_EINVAL and no output",
				 parse_bad_rows[i], rv,
				 (unsigned long long)got);
		}
	}
}

static void test_parse_null(void **state)
{
	uint64_t got = 0;

	(void)state;
	assert_int_equal(size_parse(NULL, &got), OMBRA_EINVAL);
	assert_int_equal(size_parse("1G", NULL), OMBRA_EINVAL);
}

struct format_row {
	uint64_t in;
	const char *want;
};

static const struct format_row format_rows[] = {
    {0, "0B"},
    {1, "1B"},
    {1023, "1023B"},
    {1024, "1KiB"},
    {4096, "4KiB"},
    {4097, "4097B"},
    {65 * KIB, "65KiB"},
    {MIB, "1MiB"},
    {GIB + GIB / 2, "1536MiB"},
    {10 * GIB, "10GiB"},
    {TIB, "1TiB"},
    {3 * TIB + 512, "3298534883840B"},
    {UINT64_MAX - TIB + 1, "16777215TiB"},
    {UINT64_MAX, "18446744073709551615B"},
};

static void test_format(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(format_rows) / sizeof(format_rows[0]); i++) {
		char buf[32];
		uint64_t back = 0;

		assert_ptr_equal(
		    size_format(format_rows[i].in, buf, sizeof(buf)), buf);
		assert_string_equal(buf, format_rows[i].want);
		assert_int_equal(size_parse(buf, &back), 0);
		assert_true(back == format_rows[i].in);
	}
}

static void test_format_small_buffer(void **state)
{
	char buf[3];

	(void)state;
	size_format(10 * GIB, buf, sizeof(buf));
	assert_string_equal(buf, "10");
	/* A zero-length buffer is left alone, not written. */
	buf[0] = 'x';
	size_format(10 * GIB, buf, 0);
	assert_int_equal(buf[0], 'x');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ok),
	    cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_parse_null),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_format_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
