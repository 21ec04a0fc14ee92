/* format.c: human renderings for ombractl's tables (see format.h).
 *
 * Failure: none; out-of-range input is shown as such ("unknown(7)"),
 * never trusted as an index. */
#include "format.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "size.h"

#define FMT_VERSION_SEQ_BITS 40

char *fmt_size(uint64_t bytes, char *buf, size_t len)
{
	return size_format(bytes, buf, len);
}

char *fmt_enum(const ProtobufCEnumDescriptor *desc, int value,
	       const char *prefix, char *buf, size_t len)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(desc, value);
	const char *name;
	size_t i;

	if (v == NULL) {
		snprintf(buf, len, "unknown(%d)", value);
		return buf;
	}
	name = v->name;
	if (strncmp(name, prefix, strlen(prefix)) == 0) {
		name += strlen(prefix);
	}
	snprintf(buf, len, "%s", name);
	for (i = 0; buf[i] != '\0'; i++) {
		buf[i] = (char)tolower((unsigned char)buf[i]);
	}
	return buf;
}

char *fmt_duration_ms(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (ms < 1000) {
		snprintf(buf, len, "%" PRIu64 "ms", ms);
	} else if (s < 60) {
		snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "s", s,
			 (ms % 1000) / 100);
	} else if (s < 3600) {
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60,
			 s % 60);
	} else if (s < 86400) {
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
			 (s % 3600) / 60);
	} else {
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400,
			 (s % 86400) / 3600);
	}
	return buf;
}

char *fmt_time_ms(uint64_t unix_ms, char *buf, size_t len)
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;

	if (unix_ms == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0) {
		snprintf(buf, len, "-");
	}
	return buf;
}

char *fmt_version(uint64_t version, char *buf, size_t len)
{
	uint64_t mask = (UINT64_C(1) << FMT_VERSION_SEQ_BITS) - 1;

	if (version == 0) {
		snprintf(buf, len, "-");
	} else {
		snprintf(buf, len, "%" PRIu64 ":%" PRIu64,
			 version >> FMT_VERSION_SEQ_BITS, version & mask);
	}
	return buf;
}

char *fmt_hash_prefix(const char *hex, size_t n, char *buf, size_t len)
{
	if (hex == NULL || hex[0] == '\0') {
		snprintf(buf, len, "-");
	} else {
		snprintf(buf, len, "%.*s", (int)n, hex);
	}
	return buf;
}
