/* err.h: Ombra's one error enum and its messages.
 *
 * Functions return 0 on success or a positive OMBRA_E* code.  Objects that
 * live long carry a char errmsg[OMBRA_ERRMSG_LEN] that every layer wraps
 * with its own context on the way up ("fsm_open(): mdb_env_open: No such
 * file or directory").  Codes map 1:1 onto gRPC status codes through
 * ombra_err_to_grpc(), so a handler never invents its own mapping. */
#ifndef OMBRA_ERR_H
#define OMBRA_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define OMBRA_ERRMSG_LEN 512

enum ombra_err {
	OMBRA_OK = 0,
	OMBRA_EINVAL,	  /* bad argument from the caller: INVALID_ARGUMENT */
	OMBRA_ENOTFOUND,  /* named object does not exist: NOT_FOUND */
	OMBRA_EEXIST,	  /* object already exists: ALREADY_EXISTS */
	OMBRA_ENOMEM,	  /* allocation failed: RESOURCE_EXHAUSTED */
	OMBRA_EIO,	  /* disk or LMDB failure: INTERNAL */
	OMBRA_ENOTLEADER, /* this member cannot serve it: UNAVAILABLE */
	OMBRA_EUNAVAIL,	  /* transient, retry later: UNAVAILABLE */
	OMBRA_ETIMEDOUT,  /* deadline passed: DEADLINE_EXCEEDED */
	OMBRA_ECANCELED,  /* caller gave up: CANCELLED */
	OMBRA_EPRECOND,	  /* state does not allow it: FAILED_PRECONDITION */
	OMBRA_EPROTO,	  /* malformed bytes on the wire: INVALID_ARGUMENT */
	OMBRA_ECONFIG,	  /* bad configuration file or flag: INVALID_ARGUMENT */
	OMBRA_EINTERNAL,  /* a bug: INTERNAL */
	OMBRA_EUNIMPL,	  /* not implemented: UNIMPLEMENTED */
	OMBRA_ERR_COUNT
};

/* Static, never NULL; "unknown error" for codes out of range. */
const char *ombra_strerror(int code);

/* gRPC status code (grpc_status_code value) for an ombra_err code. */
int ombra_err_to_grpc(int code);

/* Format into buf (size OMBRA_ERRMSG_LEN); always NUL-terminates. */
void ombra_errmsg_printf(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix buf's current message with "<prefix>: ", in place. */
void ombra_errmsg_wrapf(char *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
