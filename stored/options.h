/* options.h: the command line of ombra-stored, parsed into a struct with no
 * side effects (nothing is opened or created), so it can be unit-tested.
 *
 * Failure: stored_config_parse() returns OMBRA_ECONFIG with a message that
 * names the bad flag; main prints it with the usage hint and exits 2. */
#ifndef OMBRA_STORED_OPTIONS_H
#define OMBRA_STORED_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "segstore.h"

#define STORED_DEFAULT_SCRUB_RATE 2000
#define STORED_DEFAULT_CACHE_BYTES (UINT64_C(256) << 20)
#define STORED_DEFAULT_SHADOW_CHECK_MS 5000
/* Default tier capacity when the free space cannot be measured. */
#define STORED_DEFAULT_TIER_BYTES (UINT64_C(10) << 30)

struct stored_tier {
	char *name;
	char *dir;
	uint64_t capacity; /* bytes; 0 = free space of dir (or 10 GiB) */
};

struct stored_config {
	const char *name;     /* node name, unique in the cluster */
	const char *region;   /* home region of the node */
	const char *listen;   /* StoreService host:port, also advertised */
	const char *metad;    /* host:port[,host:port...] */
	const char *data_dir; /* index in DATA/index */
	const char *http;     /* NULL = no HTTP endpoint */
	uint64_t scrub_rate;  /* blocks per second; 0 = off */
	uint64_t cache_bytes; /* COPY_CACHE capacity, bytes (default 256 MiB) */
	uint64_t shadow_check_ms; /* shadow anti-entropy period (default 5 s) */
	enum log_level log_level;
	const char *audit_log; /* JSON-lines audit of accepted writes; NULL */
	const char *tls_ca, *tls_cert, *tls_key; /* all or none */
	struct stored_tier tiers[SEGSTORE_MAX_TIERS];
	size_t n_tiers; /* 0 = the default tier "fast:DATA/fast" */
	bool help;
};

/* Parse argv into *cfg (strings point into argv, tier strings are
 * allocated and released by stored_config_free()).  Returns 0 (also for
 * --help, with cfg->help set) or OMBRA_ECONFIG with errmsg
 * (OMBRA_ERRMSG_LEN) naming the flag.  Resets getopt's state first, so it
 * may be called several times in one process. */
int stored_config_parse(struct stored_config *cfg, int argc, char **argv,
			char *errmsg);

/* Fill in the default tier when none was given (DATA/fast) and the
 * capacity of tiers given as 0 from the free space of their directory's
 * file system (10 GiB when unknown).  Returns 0 or OMBRA_ENOMEM. */
int stored_config_finish(struct stored_config *cfg, char *errmsg);

void stored_config_free(struct stored_config *cfg);

/* The --help text (static). */
const char *stored_config_usage(void);

#endif
