/* size.h: human sizes ("10GiB", "512KiB", "4096") to bytes and back.
 *
 * Accepted suffixes: none or B, KiB, MiB, GiB, TiB (powers of 1024), and
 * K/M/G/T as the same binary units; case-insensitive.  Decimal fractions
 * are accepted when the result is a whole number of bytes ("1.5GiB"). */
#ifndef OMBRA_SIZE_H
#define OMBRA_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* 0 and *out set on success; OMBRA_EINVAL on empty, negative, unknown
 * suffix, trailing garbage, fraction of a byte or overflow of 64 bits. */
int size_parse(const char *s, uint64_t *out);

/* Shortest exact form ("10GiB", "1536MiB", "4097B") into buf of len bytes;
 * returns buf. */
char *size_format(uint64_t bytes, char *buf, size_t len);

#endif
