/* parse.h: strict parsing of ombractl's option values: whole numbers, sizes
 * ("10GiB", via lib/size.h), HOST:PORT addresses and node tier specs.
 *
 * Failure: every parser returns 0 or OMBRA_EINVAL and leaves its outputs
 * untouched on error; the caller prints the usage message (the *_what
 * helpers say what was expected). */
#ifndef OMBRA_CLI_PARSE_H
#define OMBRA_CLI_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Decimal digits only (no sign, no spaces, no hex), fits in 64 bits. */
int parse_u64(const char *s, uint64_t *out);

/* Human-readable list of the accepted size forms, for error messages. */
extern const char parse_size_what[];

/* A size in bytes as size_parse() accepts it ("10GiB", "1.5G", "4096"). */
int parse_size(const char *s, uint64_t *out);

/* "host:port" or "[v6addr]:port": non-empty host without spaces, port
 * 1..65535.  Only checks the shape; nothing is resolved. */
int parse_hostport(const char *s);

/* A storage tier "NAME:PATH:CAPACITY" (PATH may itself contain ':').  On
 * success *name and *path are new strings the caller frees, *capacity the
 * size in bytes (> 0).  errmsg (OMBRA_ERRMSG_LEN) says what was wrong. */
int parse_tier(const char *s, char **name, char **path, uint64_t *capacity,
	       char *errmsg);

#endif
