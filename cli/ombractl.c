/* ombractl.c: entry point of ombractl, the Ombra admin CLI: reads the
 * global options before the command words, finds the group and command in
 * the command tables (cmd_*.c) and runs it (cli_command_run()) against
 * metad's AdminService.
 *
 * Failure: exit status 2 for a wrong command line (nothing sent), 1 when
 * the cluster refuses or cannot be reached, 0 on success; each failure is
 * one "ombractl: ..." line on stderr. */
#include <grpc/support/log.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "command.h"

static const struct cli_group *const ombractl_groups[] = {
    &cmd_cluster_group,
    &cmd_region_group,
    &cmd_node_group,
    &cmd_volume_group,
};

#define OMBRACTL_N_GROUPS (sizeof(ombractl_groups) / sizeof(ombractl_groups[0]))

static void ombractl_help(FILE *out)
{
	size_t i;

	fprintf(out,
		"Usage: %s [GLOBAL OPTIONS] GROUP COMMAND [ARGS] [OPTIONS]\n"
		"\n"
		"Administer an Ombra cluster through the AdminService of its "
		"metadata\nservice (ombra-metad).  Writes follow the Raft "
		"leader and are retried\nwith the same request id until "
		"--timeout-ms is spent.\n"
		"\n"
		"Groups:\n",
		CLI_PROG);
	for (i = 0; i < OMBRACTL_N_GROUPS; i++) {
		fprintf(out, "  %-9s %s\n", ombractl_groups[i]->name,
			ombractl_groups[i]->summary);
	}
	fprintf(out,
		"\nRun '%s GROUP --help' for the commands of a group.\n\n%s",
		CLI_PROG, cli_global_help);
}

static bool ombractl_is_help(const char *word)
{
	return strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0 ||
	       strcmp(word, "help") == 0;
}

/* Number of words of name ("member add" = 2) matching argv[0..], or 0. */
static int ombractl_match(const char *name, int argc, char **argv)
{
	int words = 0;

	while (*name != '\0') {
		size_t len = strcspn(name, " ");

		if (words >= argc || strlen(argv[words]) != len ||
		    strncmp(argv[words], name, len) != 0) {
			return 0;
		}
		words++;
		name += len;
		name += strspn(name, " ");
	}
	return words;
}

/* argv[0] is the group word. */
static int ombractl_run_group(struct cli *cli, const struct cli_group *g,
			      int argc, char **argv)
{
	const struct cli_command *best = NULL;
	int best_words = 0;
	size_t i;

	cli->group = g;
	snprintf(cli->cmd_name, sizeof(cli->cmd_name), "%s", g->name);
	if (argc < 2) {
		return cli_usage(cli, "missing command (see '%s %s --help')",
				 CLI_PROG, g->name);
	}
	if (ombractl_is_help(argv[1])) {
		return cli_help(g);
	}
	for (i = 0; i < g->n_commands; i++) {
		int words =
		    ombractl_match(g->commands[i]->name, argc - 1, argv + 1);

		if (words > best_words) {
			best = g->commands[i];
			best_words = words;
		}
	}
	if (best == NULL) {
		for (i = 0; i < g->n_commands; i++) {
			const char *name = g->commands[i]->name;
			size_t len = strcspn(name, " ");

			if (name[len] == ' ' && strlen(argv[1]) == len &&
			    strncmp(argv[1], name, len) == 0) {
				return cli_usage(cli,
						 "%s: missing or unknown "
						 "command (see '%s %s --help')",
						 argv[1], CLI_PROG, g->name);
			}
		}
		return cli_usage(cli,
				 "unknown command '%s' (see '%s %s --help')",
				 argv[1], CLI_PROG, g->name);
	}
	snprintf(cli->cmd_name, sizeof(cli->cmd_name), "%s %s", g->name,
		 best->name);
	/* The command sees its last word as argv[0], like a program name. */
	return cli_command_run(cli, best, argc - best_words, argv + best_words);
}

/* Global options before the group word; stops at the first non-option.
 * Returns CLI_EXIT_OK, CLI_EXIT_USAGE (reported), or -1 after --help. */
static int ombractl_globals(struct cli *cli, int argc, char **argv)
{
	int c;

	optind = 0;
	c = cli_getopt(cli, argc, argv, "+", NULL);
	if (c == -1) {
		return CLI_EXIT_OK;
	}
	if (c == CLI_OPT_HELP) {
		ombractl_help(stdout);
		return -1;
	}
	return CLI_EXIT_USAGE; /* '?': cli_getopt printed why */
}

/* gRPC's own log lines (handshake failures and the like) would break the
 * one-line error contract; the final status we print carries the cause.
 * Kept when GRPC_VERBOSITY is set, for debugging. */
static void ombractl_grpc_log_discard(gpr_log_func_args *args)
{
	(void)args;
}

int main(int argc, char **argv)
{
	struct cli cli;
	const char *env = getenv("OMBRA_ENDPOINTS");
	size_t i;
	int rc;

	memset(&cli, 0, sizeof(cli));
	cli.endpoints =
	    env != NULL && env[0] != '\0' ? env : CLI_DEFAULT_ENDPOINTS;
	cli.timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
	if (getenv("GRPC_VERBOSITY") == NULL) {
		gpr_set_log_function(ombractl_grpc_log_discard);
	}

	rc = ombractl_globals(&cli, argc, argv);
	if (rc != CLI_EXIT_OK) {
		return cli_finish_output(rc == -1 ? CLI_EXIT_OK : rc);
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		return cli_usage(
		    &cli, "missing command group (see '%s --help')", CLI_PROG);
	}
	if (ombractl_is_help(argv[0])) {
		ombractl_help(stdout);
		return cli_finish_output(CLI_EXIT_OK);
	}
	rc = -1;
	for (i = 0; i < OMBRACTL_N_GROUPS; i++) {
		if (strcmp(argv[0], ombractl_groups[i]->name) == 0) {
			rc = ombractl_run_group(&cli, ombractl_groups[i], argc,
						argv);
			break;
		}
	}
	if (rc == -1) {
		rc = cli_usage(&cli, "unknown group '%s' (see '%s --help')",
			       argv[0], CLI_PROG);
	}
	cli_close(&cli);
	return cli_finish_output(rc);
}
