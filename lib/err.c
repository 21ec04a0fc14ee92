/* err.c: messages for Ombra's error enum, the enum -> gRPC status mapping,
 * and the errmsg buffer helpers every layer uses to add context.
 *
 * Nothing here can fail: unknown codes get "unknown error" and map to
 * GRPC_STATUS_UNKNOWN; messages that do not fit in OMBRA_ERRMSG_LEN bytes
 * are truncated, always NUL-terminated. */
#include "err.h"

#include <grpc/status.h>
#include <stdio.h>
#include <string.h>

/* One row per code, indexed by the code itself, so the message and the
 * gRPC status can never drift apart from the enum order. */
struct err_row {
	const char *msg;
	grpc_status_code grpc;
};

static const struct err_row err_table[OMBRA_ERR_COUNT] = {
    [OMBRA_OK] = {"success", GRPC_STATUS_OK},
    [OMBRA_EINVAL] = {"invalid argument", GRPC_STATUS_INVALID_ARGUMENT},
    [OMBRA_ENOTFOUND] = {"not found", GRPC_STATUS_NOT_FOUND},
    [OMBRA_EEXIST] = {"already exists", GRPC_STATUS_ALREADY_EXISTS},
    [OMBRA_ENOMEM] = {"out of memory", GRPC_STATUS_RESOURCE_EXHAUSTED},
    [OMBRA_EIO] = {"I/O error", GRPC_STATUS_INTERNAL},
    [OMBRA_ENOTLEADER] = {"not the leader", GRPC_STATUS_UNAVAILABLE},
    [OMBRA_EUNAVAIL] = {"temporarily unavailable", GRPC_STATUS_UNAVAILABLE},
    [OMBRA_ETIMEDOUT] = {"timed out", GRPC_STATUS_DEADLINE_EXCEEDED},
    [OMBRA_ECANCELED] = {"canceled", GRPC_STATUS_CANCELLED},
    [OMBRA_EPRECOND] = {"failed precondition", GRPC_STATUS_FAILED_PRECONDITION},
    [OMBRA_EPROTO] = {"malformed message", GRPC_STATUS_INVALID_ARGUMENT},
    [OMBRA_ECONFIG] = {"invalid configuration", GRPC_STATUS_INVALID_ARGUMENT},
    [OMBRA_EINTERNAL] = {"internal error", GRPC_STATUS_INTERNAL},
    [OMBRA_EUNIMPL] = {"not implemented", GRPC_STATUS_UNIMPLEMENTED},
};

static const struct err_row *err_row_get(int code)
{
	if (code < 0 || code >= OMBRA_ERR_COUNT) {
		return NULL;
	}
	return &err_table[code];
}

const char *ombra_strerror(int code)
{
	const struct err_row *row = err_row_get(code);

	/* A code added to the enum without a row has no message yet. */
	return row != NULL && row->msg != NULL ? row->msg : "unknown error";
}

int ombra_err_to_grpc(int code)
{
	const struct err_row *row = err_row_get(code);

	return row != NULL ? (int)row->grpc : (int)GRPC_STATUS_UNKNOWN;
}

/* A message cut at OMBRA_ERRMSG_LEN ends in "..." so that a reader knows
 * it was cut.  n: what the formatting call returned. */
static void err_mark_truncated(char *buf, int n)
{
	if (n >= OMBRA_ERRMSG_LEN) {
		memcpy(buf + OMBRA_ERRMSG_LEN - 4, "...", 4);
	}
}

void ombra_errmsg_printf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, OMBRA_ERRMSG_LEN, fmt, ap);
	va_end(ap);
	err_mark_truncated(buf, n);
}

/* The old message is copied aside first because the result overwrites the
 * buffer it lives in.  An empty old message leaves just the prefix, so a
 * wrap never produces a dangling ": ". */
void ombra_errmsg_wrapf(char *buf, const char *fmt, ...)
{
	char old[OMBRA_ERRMSG_LEN];
	char prefix[OMBRA_ERRMSG_LEN];
	size_t len = strnlen(buf, OMBRA_ERRMSG_LEN - 1);
	va_list ap;
	int n;

	memcpy(old, buf, len);
	old[len] = '\0';

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);

	if (old[0] == '\0') {
		n = snprintf(buf, OMBRA_ERRMSG_LEN, "%s", prefix);
	} else {
		n = snprintf(buf, OMBRA_ERRMSG_LEN, "%s: %s", prefix, old);
	}
	err_mark_truncated(buf, n);
}
