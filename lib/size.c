/* size.c: parse human sizes ("10GiB", "1.5G", "4096") into bytes and print
 * bytes back in the shortest exact form.
 *
 * Parsing is exact integer arithmetic, never floating point, so "1.1GiB"
 * is either an exact number of bytes or rejected; every malformed input
 * gives OMBRA_EINVAL (no sign, no whitespace, no exponent, no hex). */
#include "size.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"

struct size_unit {
	const char *name;
	unsigned shift; /* bytes = value << shift */
};

/* Accepted suffixes (compared case-insensitively).  Decimal units (KB, MB)
 * are deliberately absent: "10KB" is ambiguous and rejected. */
static const struct size_unit size_units[] = {
    {"", 0},	 {"B", 0},  {"K", 10},	 {"KiB", 10}, {"M", 20},
    {"MiB", 20}, {"G", 30}, {"GiB", 30}, {"T", 40},   {"TiB", 40},
};

/* Units size_format() may print, largest first. */
static const struct size_unit size_format_units[] = {
    {"TiB", 40},
    {"GiB", 30},
    {"MiB", 20},
    {"KiB", 10},
};

/* More fraction digits than this cannot be exact: a fraction with d
 * significant decimal digits times 2^shift is whole only if d <= shift,
 * and shift <= 40. */
#define SIZE_MAX_FRAC_DIGITS 40

static bool size_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int size_lookup_unit(const char *suffix, unsigned *shift)
{
	size_t i;

	for (i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
		if (strcasecmp(suffix, size_units[i].name) == 0) {
			*shift = size_units[i].shift;
			return 0;
		}
	}
	return OMBRA_EINVAL;
}

/* Exact value of 0.<digits> * 2^shift, where digits holds n decimal digit
 * values (0..9) with no trailing zeros.  Doubling the decimal fraction
 * shift times moves one binary digit at a time into the integer part (the
 * schoolbook decimal-to-binary conversion); the result is exact only if the
 * fraction is zero afterwards.  Returns 0 and *out, or OMBRA_EINVAL if the
 * product is not a whole number. */
static int size_fraction_bytes(unsigned char *digits, size_t n, unsigned shift,
			       uint64_t *out)
{
	uint64_t whole = 0;
	unsigned step;
	size_t i;

	for (step = 0; step < shift; step++) {
		unsigned carry = 0;

		for (i = n; i-- > 0;) {
			unsigned d = digits[i] * 2u + carry;

			digits[i] = (unsigned char)(d % 10u);
			carry = d / 10u;
		}
		whole = (whole << 1) | carry;
	}
	for (i = 0; i < n; i++) {
		if (digits[i] != 0) {
			return OMBRA_EINVAL;
		}
	}
	*out = whole;
	return 0;
}

int size_parse(const char *s, uint64_t *out)
{
	unsigned char frac[SIZE_MAX_FRAC_DIGITS];
	size_t frac_len = 0;
	uint64_t whole = 0;
	uint64_t frac_bytes = 0;
	unsigned shift = 0;
	const char *p = s;
	int rv;

	if (s == NULL || out == NULL || !size_is_digit(*p)) {
		return OMBRA_EINVAL; /* empty, sign, space or no digits */
	}
	for (; size_is_digit(*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (whole > (UINT64_MAX - d) / 10u) {
			return OMBRA_EINVAL;
		}
		whole = whole * 10u + d;
	}
	if (*p == '.') {
		const char *start = ++p;
		const char *end;

		while (size_is_digit(*p)) {
			p++;
		}
		if (p == start) {
			return OMBRA_EINVAL; /* "1." or "1.G" */
		}
		end = p;
		while (end > start && end[-1] == '0') {
			end--;
		}
		if ((size_t)(end - start) > SIZE_MAX_FRAC_DIGITS) {
			return OMBRA_EINVAL; /* a fraction of a byte */
		}
		for (frac_len = 0; start + frac_len < end; frac_len++) {
			frac[frac_len] = (unsigned char)(start[frac_len] - '0');
		}
	}
	if (size_lookup_unit(p, &shift) != 0) {
		return OMBRA_EINVAL;
	}
	if (frac_len > 0) {
		rv = size_fraction_bytes(frac, frac_len, shift, &frac_bytes);
		if (rv != 0) {
			return rv;
		}
	}
	if (shift > 0 && whole > (UINT64_MAX >> shift)) {
		return OMBRA_EINVAL;
	}
	whole <<= shift;
	if (whole > UINT64_MAX - frac_bytes) {
		return OMBRA_EINVAL;
	}
	*out = whole + frac_bytes;
	return 0;
}

char *size_format(uint64_t bytes, char *buf, size_t len)
{
	size_t i;

	if (buf == NULL || len == 0) {
		return buf;
	}
	for (i = 0; bytes != 0 && i < sizeof(size_format_units) /
					  sizeof(size_format_units[0]);
	     i++) {
		const struct size_unit *u = &size_format_units[i];
		uint64_t mask = (UINT64_C(1) << u->shift) - 1;

		if ((bytes & mask) == 0) {
			snprintf(buf, len, "%llu%s",
				 (unsigned long long)(bytes >> u->shift),
				 u->name);
			return buf;
		}
	}
	snprintf(buf, len, "%lluB", (unsigned long long)bytes);
	return buf;
}
