/* args.h: ombra-proxy's command line.
 *
 * Failure: proxy_args_parse() returns OMBRA_EINVAL with a message naming
 * the bad flag or value; main exits 2 on it. */
#ifndef OMBRA_PROXY_ARGS_H
#define OMBRA_PROXY_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#include "rpc.h"

enum proxy_args_action { PROXY_ARGS_RUN, PROXY_ARGS_HELP, PROXY_ARGS_VERSION };

/* Strings point into argv (not owned). */
struct proxy_args {
	const char *region;
	const char *listen; /* gRPC VolumeService */
	const char *metad;  /* host:port[,...] */
	const char *nbd;    /* host:port, or NULL when "off" */
	const char *http;   /* host:port, or NULL */
	enum log_level log_level;
	uint64_t propagate_max_bytes; /* queue bound, bytes */
	uint64_t propagate_linger_ms; /* wait before sending to shadows */
	uint64_t read_poll_us;	      /* busypoll.h budget, 0 = off */
	uint64_t access_max_segments; /* per access report */
	uint64_t pcache_segments;     /* prefetch cache entries tracked */
	bool single_writer;	      /* --single-writer on|off (vlease.h) */
	uint64_t writer_lease_ms;     /* lease duration asked of metad */
	uint64_t writer_idle_ms;      /* release after this long unused */
	/* --nbd-consistency strong|eventual|bounded:MS: NBD reads'
	 * consistency (ombra.v1.Consistency value) and staleness bound. */
	int nbd_consistency;
	uint64_t nbd_staleness_ms;
	bool prefetch;		  /* --prefetch on|off (default on) */
	uint64_t prefetch_budget; /* bytes/s of predicted pulls, 0 = no limit */
	uint64_t prefetch_cache;  /* bytes of cache entries */
	const char *prefetch_model; /* LSTM weights file or NULL */
	struct rpc_tls tls;
	bool use_tls;
};

/* Parse argv into a (zeroed by the call).  Returns 0 and *action, or
 * OMBRA_EINVAL with errmsg (size OMBRA_ERRMSG_LEN). */
int proxy_args_parse(struct proxy_args *a, int argc, char **argv,
		     enum proxy_args_action *action, char *errmsg);

/* The --help text (static). */
const char *proxy_args_usage(void);

#endif
