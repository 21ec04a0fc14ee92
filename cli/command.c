/* command.c: cli_command_run(), the one way every ombractl command runs:
 * option loop, --help, positional words, required and late options, the
 * command's check, the AdminService call and its output (the steps are
 * listed in command.h).  Commands are tables; this file holds no
 * knowledge of any particular one.
 *
 * Failure: every step stops the run at its first error with one
 * "ombractl: ..." line and its exit code (2 usage, 1 server or cluster);
 * a command table that does not fit its request type is refused up front
 * as "internal error: ..." before anything is parsed or sent. */
#include "command.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "value.h"

/* getopt code of option i without a short name (below CLI_OPT_ENDPOINTS,
 * above every character). */
#define COMMAND_CODE_BASE 256
/* Internal result of the option loop: --help was asked for. */
#define COMMAND_HELP (-1)
#define COMMAND_RID_LEN 40

const struct cli_arg cli_args_name[] = {
    {.name = "NAME", .value = {.kind = CLI_VALUE_STRING, .field = "name"}},
    {0},
};

const struct cli_option cli_options_stale[] = {
    CLI_OPTION_STALE,
    {0},
};

static const struct cli_value command_rid = {
    .kind = CLI_VALUE_STRING,
    .field = "request_id",
};

/* What given[i] holds for a flag that was given. */
static char command_flag_given[] = "";

static size_t command_n_options(const struct cli_command *cmd)
{
	size_t n = 0;

	while (cmd->options != NULL && cmd->options[n].name != NULL) {
		n++;
	}
	return n;
}

static size_t command_n_args(const struct cli_command *cmd)
{
	size_t n = 0;

	while (cmd->args != NULL && cmd->args[n].name != NULL) {
		n++;
	}
	return n;
}

static bool command_is_flag(const struct cli_option *o)
{
	return o->value.kind == CLI_VALUE_FLAG ||
	       o->value.kind == CLI_VALUE_FLAG_CLEAR;
}

static const char *command_arg_label(const struct cli_arg *a)
{
	return a->label != NULL ? a->label : a->name;
}

/* "--NAME" of option o, for messages. */
static const char *command_shown(const struct cli_option *o, char *buf,
				 size_t len)
{
	snprintf(buf, len, "--%s", o->name);
	return buf;
}

/* Does cmd fit its request type?  errmsg says what does not. */
static int command_check(const struct cli_command *cmd, char *errmsg)
{
	size_t n_opts = command_n_options(cmd);
	size_t n_args = command_n_args(cmd);
	char shown[64];
	size_t i;

	if (n_opts > CLI_MAX_OPTIONS || n_args > CLI_MAX_ARGS) {
		ombra_errmsg_printf(errmsg, "too many options or arguments");
		return OMBRA_EINTERNAL;
	}
	if (cmd->exec == NULL && (cmd->method == NULL || cmd->request == NULL ||
				  cmd->print == NULL)) {
		ombra_errmsg_printf(errmsg, "no method, request or printer");
		return OMBRA_EINTERNAL;
	}
	for (i = 0; i < n_opts; i++) {
		const struct cli_option *o = &cmd->options[i];

		command_shown(o, shown, sizeof(shown));
		if (o->short_name != 0 &&
		    (o->short_name == 'h' ||
		     !isalpha((unsigned char)o->short_name))) {
			ombra_errmsg_printf(errmsg, "%s: bad short name",
					    shown);
			return OMBRA_EINTERNAL;
		}
		if (cli_value_check(cmd->request, &o->value, shown, errmsg) !=
		    0) {
			return OMBRA_EINTERNAL;
		}
	}
	for (i = 0; i < n_args; i++) {
		if (cli_value_check(cmd->request, &cmd->args[i].value,
				    command_arg_label(&cmd->args[i]),
				    errmsg) != 0) {
			return OMBRA_EINTERNAL;
		}
	}
	if (cmd->request_id && cli_value_check(cmd->request, &command_rid,
					       "request id", errmsg) != 0) {
		return OMBRA_EINTERNAL;
	}
	return 0;
}

/* getopt's view of cmd's options (checked): longopts gets one entry per
 * option and a terminator, shorts (2 * CLI_MAX_OPTIONS + 1 bytes) the
 * short names, with ':' after those that take a value. */
static void command_getopt_tables(const struct cli_command *cmd,
				  struct option *longopts, char *shorts)
{
	size_t i, n = command_n_options(cmd), s = 0;

	for (i = 0; i < n; i++) {
		const struct cli_option *o = &cmd->options[i];

		longopts[i].name = o->name;
		longopts[i].has_arg =
		    command_is_flag(o) ? no_argument : required_argument;
		longopts[i].flag = NULL;
		longopts[i].val = o->short_name != 0
				      ? o->short_name
				      : COMMAND_CODE_BASE + (int)i;
		if (o->short_name != 0) {
			shorts[s++] = o->short_name;
			if (!command_is_flag(o)) {
				shorts[s++] = ':';
			}
		}
	}
	memset(&longopts[n], 0, sizeof(longopts[n]));
	shorts[s] = '\0';
}

/* Allocate the request (protobuf defaults, flag-clear fields true) and
 * the hooks' state. */
static int command_start(struct cli_run *run)
{
	const struct cli_command *cmd = run->cmd;
	size_t i, n = command_n_options(cmd);

	if (cmd->request != NULL) {
		run->req = calloc(1, cmd->request->sizeof_message);
		if (run->req == NULL) {
			return cli_fail("out of memory");
		}
		protobuf_c_message_init(cmd->request, run->req);
		for (i = 0; i < n; i++) {
			cli_value_preset(run->req, &cmd->options[i].value);
		}
	}
	if (cmd->state_size != 0) {
		run->state = calloc(1, cmd->state_size);
		if (run->state == NULL) {
			return cli_fail("out of memory");
		}
	}
	return CLI_EXIT_OK;
}

/* Only the request struct is ours: its strings point into argv or into
 * the state, which state_free releases. */
static void command_end(struct cli_run *run)
{
	if (run->state != NULL && run->cmd->state_free != NULL) {
		run->cmd->state_free(run->state);
	}
	free(run->state);
	free(run->req);
}

/* Index of the option getopt returned as code; false if none. */
static bool command_option_index(const struct cli_command *cmd, int code,
				 size_t *index)
{
	size_t i, n = command_n_options(cmd);

	if (code >= COMMAND_CODE_BASE && code < COMMAND_CODE_BASE + (int)n) {
		*index = (size_t)(code - COMMAND_CODE_BASE);
		return true;
	}
	for (i = 0; i < n; i++) {
		if (cmd->options[i].short_name != 0 &&
		    cmd->options[i].short_name == code) {
			*index = i;
			return true;
		}
	}
	return false;
}

static int command_set_option(struct cli_run *run, size_t i)
{
	const struct cli_option *o = &run->cmd->options[i];
	char shown[64];

	return cli_value_set(run, &o->value,
			     command_shown(o, shown, sizeof(shown)),
			     run->given[i]);
}

/* Step 1.  Returns CLI_EXIT_OK at the end of the options, COMMAND_HELP,
 * or the exit code of the first bad option (already reported). */
static int command_options(struct cli_run *run, int argc, char **argv,
			   const struct option *longopts, const char *shorts)
{
	size_t i;
	int c, rc;

	optind = 0;
	while ((c = cli_getopt(run->cli, argc, argv, shorts, longopts)) != -1) {
		if (c == CLI_OPT_HELP) {
			return COMMAND_HELP;
		}
		if (!command_option_index(run->cmd, c, &i)) {
			return CLI_EXIT_USAGE; /* '?': cli_getopt said why */
		}
		run->given[i] = command_is_flag(&run->cmd->options[i])
				    ? command_flag_given
				    : optarg;
		if ((run->cmd->options[i].flags & CLI_OPTION_LATE) != 0) {
			continue;
		}
		rc = command_set_option(run, i);
		if (rc != CLI_EXIT_OK) {
			return rc;
		}
	}
	return CLI_EXIT_OK;
}

/* Step 2: argv[optind..argc) must be exactly the declared words. */
static int command_args(struct cli_run *run, int argc, char **argv)
{
	const struct cli_arg *args = run->cmd->args;
	size_t i, n = command_n_args(run->cmd);
	size_t have = argc > optind ? (size_t)(argc - optind) : 0;
	int rc;

	if (have > n) {
		return cli_usage(run->cli, "unexpected argument '%s'",
				 argv[optind + (int)n]);
	}
	if (have < n) {
		return cli_usage(run->cli, "missing %s", args[have].name);
	}
	for (i = 0; i < n; i++) {
		run->args[i] = argv[optind + (int)i];
		rc = cli_value_set(run, &args[i].value,
				   command_arg_label(&args[i]), run->args[i]);
		if (rc != CLI_EXIT_OK) {
			return rc;
		}
	}
	return CLI_EXIT_OK;
}

/* Step 3: required options present, late options parsed, in order. */
static int command_late(struct cli_run *run)
{
	size_t i, n = command_n_options(run->cmd);

	for (i = 0; i < n; i++) {
		const struct cli_option *o = &run->cmd->options[i];
		bool late = (o->flags & CLI_OPTION_LATE) != 0;
		bool present = (late || o->value.field == NULL)
				   ? run->given[i] != NULL
				   : cli_value_present(run->req, &o->value);
		int rc;

		if ((o->flags & CLI_OPTION_REQUIRED) != 0 && !present) {
			if (o->missing != NULL) {
				return cli_usage(run->cli, "%s", o->missing);
			}
			return cli_usage(run->cli, "--%s is required", o->name);
		}
		if (late && run->given[i] != NULL) {
			rc = command_set_option(run, i);
			if (rc != CLI_EXIT_OK) {
				return rc;
			}
		}
	}
	return CLI_EXIT_OK;
}

/* Steps 5 and 6. */
static int command_call(struct cli_run *run)
{
	ProtobufCMessage *resp = NULL;
	char rid[COMMAND_RID_LEN];
	int rc;

	if (run->cmd->request_id) {
		rpc_request_id(rid, sizeof(rid));
		rc = cli_value_set(run, &command_rid, "request id", rid);
		if (rc != CLI_EXIT_OK) {
			return rc;
		}
	}
	rc = cli_call(run->cli, run->cmd->method, run->req, &resp);
	if (rc != CLI_EXIT_OK) {
		return rc;
	}
	rc = run->cli->json ? cli_print_json(resp) : run->cmd->print(run, resp);
	protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}

int cli_command_run(struct cli *cli, const struct cli_command *cmd, int argc,
		    char **argv)
{
	struct option longopts[CLI_MAX_OPTIONS + 1];
	char shorts[2 * CLI_MAX_OPTIONS + 1];
	char errmsg[OMBRA_ERRMSG_LEN];
	struct cli_run run;
	int rc;

	if (command_check(cmd, errmsg) != 0) {
		return cli_usage(cli, "internal error: %s", errmsg);
	}
	command_getopt_tables(cmd, longopts, shorts);
	memset(&run, 0, sizeof(run));
	run.cli = cli;
	run.cmd = cmd;
	rc = command_start(&run);
	if (rc != CLI_EXIT_OK) {
		goto out;
	}
	rc = command_options(&run, argc, argv, longopts, shorts);
	if (rc == COMMAND_HELP) {
		rc = cli_help(cli->group);
		goto out;
	}
	if (rc == CLI_EXIT_OK) {
		rc = command_args(&run, argc, argv);
	}
	if (rc == CLI_EXIT_OK) {
		rc = command_late(&run);
	}
	if (rc == CLI_EXIT_OK && cmd->check != NULL) {
		rc = cmd->check(&run);
	}
	if (rc == CLI_EXIT_OK) {
		rc = cmd->exec != NULL ? cmd->exec(&run) : command_call(&run);
	}
out:
	command_end(&run);
	return rc;
}

const char *cli_run_option(const struct cli_run *run, const char *name)
{
	size_t i, n = command_n_options(run->cmd);

	for (i = 0; i < n; i++) {
		if (strcmp(run->cmd->options[i].name, name) == 0) {
			return run->given[i];
		}
	}
	return NULL;
}
