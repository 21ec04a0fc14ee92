/* config.h: ombra-metad configuration: embedded defaults, an INI file
 * (libinih) and command-line flags, in that order of precedence (flags win).
 *
 * Every key has a default, so `ombra-metad` with no file runs a one-member
 * cluster on 127.0.0.1:7100-7102.  Failure: unknown sections or keys, bad
 * values and inconsistent member lists return OMBRA_ECONFIG with a message
 * naming file:line and key (or the flag); nothing is half-applied that the
 * caller would use, since the caller exits on any error. */
#ifndef OMBRA_METAD_CONFIG_H
#define OMBRA_METAD_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define METAD_ADDR_LEN 128

/* One [member.N] section: an initial member of the Raft group. */
struct metad_member_cfg {
	uint64_t id;
	char raft[METAD_ADDR_LEN]; /* host:port of the Raft transport */
	char grpc[METAD_ADDR_LEN]; /* host:port of AdminService */
};

struct metad_config {
	uint64_t id;
	char data_dir[PATH_MAX];
	char grpc_listen[METAD_ADDR_LEN];
	char raft_listen[METAD_ADDR_LEN];
	char http_listen[METAD_ADDR_LEN];
	enum log_level log_level;
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	unsigned snapshot_threshold; /* entries */
	unsigned snapshot_trailing;  /* entries */
	unsigned node_timeout_ms;
	bool bootstrap;
	char tls_ca[PATH_MAX]; /* all three empty: insecure */
	char tls_cert[PATH_MAX];
	char tls_key[PATH_MAX];
	char audit_log[PATH_MAX]; /* JSON-lines audit record; "" = off */
	struct metad_member_cfg *members; /* owned; sorted by id */
	size_t n_members;
	/* Which keys were given explicitly (file or flag), for defaults that
	 * depend on other keys. */
	bool data_dir_set, grpc_set, raft_set;
};

/* What metad_config_from_args() asks the caller to do. */
enum metad_config_action {
	METAD_CONFIG_RUN,
	METAD_CONFIG_HELP,    /* print metad_config_usage() and exit 0 */
	METAD_CONFIG_VERSION, /* print the version and exit 0 */
};

/* Build c from defaults, the file named by --config (if any) and the
 * flags in argv.  c is overwritten; release with metad_config_free() even
 * on error.  Returns 0 and sets *action, or OMBRA_ECONFIG / OMBRA_ENOMEM
 * with errmsg (OMBRA_ERRMSG_LEN) naming file:line and key or the flag. */
int metad_config_from_args(struct metad_config *c, int argc, char **argv,
			   enum metad_config_action *action, char *errmsg);

/* Lower-level steps (used by metad_config_from_args and by tests). */
void metad_config_defaults(struct metad_config *c);
/* Parse an INI file into c (on top of what c holds). */
int metad_config_load(struct metad_config *c, const char *path, char *errmsg);
/* Fill the defaults that depend on other keys (data_dir from id, the
 * member list from the listen addresses) and check consistency. */
int metad_config_finish(struct metad_config *c, char *errmsg);

void metad_config_free(struct metad_config *c);

/* The member with this id among the [member.N] sections, or NULL. */
const struct metad_member_cfg *metad_config_member(const struct metad_config *c,
						   uint64_t id);

/* Check "host:port" (non-empty host, port 1..65535).  Returns 0 or
 * OMBRA_ECONFIG with errmsg "<what>: ...". */
int metad_config_check_addr(const char *what, const char *addr, char *errmsg);

/* Full --help text (static string). */
const char *metad_config_usage(void);

/* Log the effective configuration at info level, one line per group. */
void metad_config_log(const struct metad_config *c);

#endif
