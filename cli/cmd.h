/* cmd.h: ombractl commands whose table lives in a file of its own but
 * belongs to another file's group (cmd_*.c; tables per command.h). */
#ifndef OMBRA_CLI_CMD_H
#define OMBRA_CLI_CMD_H

#include "command.h"

/* cmd_status.c: "cluster status". */
extern const struct cli_command cmd_cluster_status;

/* cmd_shards.c: "volume shards". */
extern const struct cli_command cmd_volume_shards;

/* cmd_failovers.c: "volume failovers". */
extern const struct cli_command cmd_volume_failovers;

/* cmd_policy.c: "volume policy". */
extern const struct cli_command cmd_volume_policy;

/* cmd_prefetch.c: "volume prefetch-stats" (asks a proxy). */
extern const struct cli_command cmd_volume_prefetch_stats;

#endif
