/* cmd.h: command functions and printers shared between ombractl's
 * command files (cmd_*.c).  Each command takes the invocation context and
 * its own argv (argv[0] = its last word) and returns a CLI_EXIT_* code
 * after printing its result or one error line. */
#ifndef OMBRA_CLI_CMD_H
#define OMBRA_CLI_CMD_H

#include "cli.h"
#include "common.pb-c.h"

/* cmd_status.c: "cluster status". */
int cmd_cluster_status(struct cli *cli, int argc, char **argv);

/* cmd_shards.c: "volume shards". */
int cmd_volume_shards(struct cli *cli, int argc, char **argv);

/* cmd_volume.c: a volume's fields as "key: value" lines on stdout. */
void cmd_volume_print(const Ombra__V1__Volume *v);

#endif
