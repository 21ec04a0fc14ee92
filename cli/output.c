/* output.c: what ombractl writes on stdout: help screens, JSON documents
 * (lib/pbjson.h), tables (table.h), and the final flush that turns a
 * failed write (EPIPE, full disk) into an error.
 *
 * Failure: out-of-memory and write errors print one "ombractl: ..." line
 * and return CLI_EXIT_FAIL; nothing here exits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pbjson.h"
#include "table.h"

int cli_help(const struct cli_group *g)
{
	fprintf(stdout, "%s\n%s", g->help, cli_global_help);
	return CLI_EXIT_OK;
}

int cli_print_json(const ProtobufCMessage *msg)
{
	char *text = pbjson_to_string(msg);

	if (text == NULL) {
		return cli_fail("out of memory while formatting JSON");
	}
	fputs(text, stdout);
	fputc('\n', stdout);
	free(text);
	return CLI_EXIT_OK;
}

int cli_print_table(struct table *t, const char *what)
{
	int rc = table_print(t, stdout);

	table_close(t);
	if (rc != 0) {
		return cli_fail("formatting the %s table: %s", what,
				ombra_strerror(rc));
	}
	return CLI_EXIT_OK;
}

int cli_finish_output(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		return cli_fail("writing to stdout: %s", strerror(errno));
	}
	return rc;
}
