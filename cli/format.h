/* format.h: short human renderings of values in ombractl's tables: sizes,
 * enum names, ages, timestamps and block versions.
 *
 * Failure: none; every function writes a NUL-terminated string (truncated
 * if buf is too small; FMT_LEN always suffices) and returns buf. */
#ifndef OMBRA_CLI_FORMAT_H
#define OMBRA_CLI_FORMAT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define FMT_LEN 48

/* "10GiB" (size_format). */
char *fmt_size(uint64_t bytes, char *buf, size_t len);

/* Enum value name without prefix, lower-cased: (VolumeState, 2,
 * "VOLUME_") -> "active".  Unknown values: "unknown(N)". */
char *fmt_enum(const ProtobufCEnumDescriptor *desc, int value,
	       const char *prefix, char *buf, size_t len);

/* Duration in ms: "850ms", "12.3s", "5m03s", "2h05m", "3d04h". */
char *fmt_duration_ms(uint64_t ms, char *buf, size_t len);

/* Unix time in ms as UTC "2026-11-22 03:10:36Z"; 0 -> "-". */
char *fmt_time_ms(uint64_t unix_ms, char *buf, size_t len);

/* Block version as "epoch:sequence" (DESIGN.md: epoch is the high 24 bits,
 * sequence the low 40); 0 -> "-". */
char *fmt_version(uint64_t version, char *buf, size_t len);

/* First n hex digits of a hash, "-" when empty. */
char *fmt_hash_prefix(const char *hex, size_t n, char *buf, size_t len);

#endif
