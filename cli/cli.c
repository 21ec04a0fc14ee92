/* cli.c: ombractl's one-line messages (usage errors, failures, gRPC
 * errors) and the AdminService call wrapper over the leader-following
 * cluster client (lib/rpc.h).
 *
 * Failure: nothing here exits; every function returns a CLI_EXIT_* code
 * after printing one "ombractl: ..." line on stderr, and main turns that
 * code into the process exit status. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "admin.pb-c.h"

int cli_usage(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", CLI_PROG);
	if (cli->cmd_name[0] != '\0') {
		fprintf(stderr, "%s: ", cli->cmd_name);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_EXIT_USAGE;
}

int cli_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", CLI_PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_EXIT_FAIL;
}

int cli_report_rpc_error(const struct cli *cli, const char *target, int rc,
			 const struct rpc_status *st)
{
	const char *name = rpc_status_name(st->code);
	const char *msg =
	    st->message[0] != '\0' ? st->message : ombra_strerror(rc);

	switch (st->code) {
	case GRPC_STATUS_OK:
		/* The call succeeded on the wire but the client layer failed
		 * (undecodable response, out of memory). */
		return cli_fail("%s: %s", ombra_strerror(rc), msg);
	case GRPC_STATUS_UNAVAILABLE:
		return cli_fail("cannot reach any metad at %s (%s: %s)", target,
				name, msg);
	case GRPC_STATUS_DEADLINE_EXCEEDED:
		return cli_fail("no answer from metad at %s within %d ms "
				"(%s: %s)",
				target, cli->timeout_ms, name, msg);
	default:
		return cli_fail("%s: %s", name, msg);
	}
}

int cli_call(struct cli *cli, const char *method, const ProtobufCMessage *req,
	     ProtobufCMessage **resp)
{
	char errmsg[OMBRA_ERRMSG_LEN] = "";
	struct rpc_status st;
	int rc;

	*resp = NULL;
	if (cli->cluster == NULL) {
		rc = cli_check_globals(cli);
		if (rc != CLI_EXIT_OK) {
			return rc;
		}
		rc = rpc_cluster_create(
		    cli->endpoints, cli->tls.ca_file != NULL ? &cli->tls : NULL,
		    &cli->cluster, errmsg);
		if (rc != 0) {
			cli->cluster = NULL;
			if (rc == OMBRA_EINVAL || rc == OMBRA_ECONFIG) {
				return cli_usage(cli, "--endpoints: %s",
						 errmsg);
			}
			return cli_fail("cannot set up a client for %s: %s",
					cli->endpoints, errmsg);
		}
	}
	memset(&st, 0, sizeof(st));
	rc = rpc_cluster_unary(cli->cluster,
			       &ombra__v1__admin_service__descriptor, method,
			       req, resp, cli->timeout_ms, &st);
	if (rc != 0 || *resp == NULL) {
		if (*resp != NULL) {
			protobuf_c_message_free_unpacked(*resp, NULL);
			*resp = NULL;
		}
		if (rc == 0) {
			rc = OMBRA_EINTERNAL;
		}
		return cli_report_rpc_error(cli, cli->endpoints, rc, &st);
	}
	return CLI_EXIT_OK;
}

void cli_close(struct cli *cli)
{
	if (cli->cluster != NULL) {
		rpc_cluster_destroy(cli->cluster);
		cli->cluster = NULL;
	}
}
