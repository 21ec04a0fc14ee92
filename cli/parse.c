/* parse.c: strict parsing of ombractl's option values (see parse.h).
 *
 * Failure: OMBRA_EINVAL on anything that is not exactly the expected form
 * (trailing garbage, signs, overflow), OMBRA_ENOMEM when a copy cannot be
 * made; outputs are written only on success. */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "size.h"

const char parse_size_what[] =
    "expected a whole number of bytes with an optional unit B, KiB, MiB, "
    "GiB or TiB (K/M/G/T also accepted), e.g. 10GiB or 1.5G";

int parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || !isdigit((unsigned char)s[0])) {
		return OMBRA_EINVAL;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		return OMBRA_EINVAL;
	}
	*out = (uint64_t)v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	if (s == NULL || s[0] == '\0') {
		return OMBRA_EINVAL;
	}
	return size_parse(s, out) == 0 ? 0 : OMBRA_EINVAL;
}

int parse_hostport(const char *s)
{
	const char *colon;
	uint64_t port;

	if (s == NULL || s[0] == '\0' || strpbrk(s, " \t\n,") != NULL) {
		return OMBRA_EINVAL;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close == s + 1 || close[1] != ':') {
			return OMBRA_EINVAL;
		}
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s ||
		    memchr(s, ':', (size_t)(colon - s)) != NULL) {
			return OMBRA_EINVAL;
		}
	}
	if (parse_u64(colon + 1, &port) != 0 || port == 0 || port > 65535) {
		return OMBRA_EINVAL;
	}
	return 0;
}

int parse_tier(const char *s, char **name, char **path, uint64_t *capacity,
	       char *errmsg)
{
	const char *first = strchr(s, ':');
	const char *last = strrchr(s, ':');
	char *n = NULL;
	char *p = NULL;
	uint64_t cap = 0;

	if (first == NULL || first == last) {
		ombra_errmsg_printf(errmsg, "expected NAME:PATH:CAPACITY, "
					    "e.g. fast:/srv/ombra/nvme:100GiB");
		return OMBRA_EINVAL;
	}
	if (first == s) {
		ombra_errmsg_printf(errmsg, "tier name is empty");
		return OMBRA_EINVAL;
	}
	if (last == first + 1) {
		ombra_errmsg_printf(errmsg, "tier path is empty");
		return OMBRA_EINVAL;
	}
	if (parse_size(last + 1, &cap) != 0) {
		ombra_errmsg_printf(errmsg, "capacity '%s': %s", last + 1,
				    parse_size_what);
		return OMBRA_EINVAL;
	}
	if (cap == 0) {
		ombra_errmsg_printf(errmsg,
				    "capacity must be more than 0 bytes");
		return OMBRA_EINVAL;
	}
	n = strndup(s, (size_t)(first - s));
	p = strndup(first + 1, (size_t)(last - first - 1));
	if (n == NULL || p == NULL) {
		free(n);
		free(p);
		ombra_errmsg_printf(errmsg, "out of memory");
		return OMBRA_ENOMEM;
	}
	*name = n;
	*path = p;
	*capacity = cap;
	return 0;
}
