/* nbd_option.c: the NBD handshake (fixed newstyle) and option haggling:
 * NBD_OPT_GO, INFO, LIST, ABORT, EXPORT_NAME; every other option is
 * answered NBD_REP_ERR_UNSUP (structured replies included: the server
 * uses simple replies).  Export name = volume name, opened through the
 * engine (proxy_volume_open) while the connection waits for the answer.
 *
 * Failure: a malformed option gets NBD_REP_ERR_INVALID with a message,
 * an unknown or empty export name NBD_REP_ERR_UNKNOWN with a message, an
 * engine error NBD_REP_ERR_SHUTDOWN (retry later) with the engine's
 * message; the client may send further options.  Unknown client flags,
 * a bad option magic, an option longer than NBD_OPT_MAX_DISCARD and a
 * failed NBD_OPT_EXPORT_NAME (which has no error reply) close the
 * connection. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "nbd.h"
#include "nbd_internal.h"

#define NBD_NO_DEFAULT_EXPORT                                                  \
	"there is no default export: name a volume as the export name "        \
	"(e.g. nbd://HOST:PORT/VOLUME, or nbd-client -N VOLUME); "             \
	"nbdinfo --list nbd://HOST:PORT lists the volumes"

void nbd_opt_greet(struct nbd_conn *c)
{
	uint8_t g[NBD_GREETING_LEN];
	uv_buf_t buf = uv_buf_init((char *)g, sizeof(g));

	nbd_put64(g, NBD_INIT_MAGIC);
	nbd_put64(g + 8, NBD_OPTS_MAGIC);
	nbd_put16(g + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
	nbd_conn_set_state(c, NBD_CONN_CFLAGS);
	nbd_conn_send_copy(c, &buf, 1);
}

void nbd_opt_on_cflags(struct nbd_conn *c)
{
	uint32_t flags = nbd_get32(c->hdr);

	if ((flags & ~(uint32_t)(NBD_FLAG_C_FIXED_NEWSTYLE |
				 NBD_FLAG_C_NO_ZEROES)) != 0) {
		nbd_conn_proto_error(c, "unknown client flags 0x%08x", flags);
		return;
	}
	c->no_zeroes = (flags & NBD_FLAG_C_NO_ZEROES) != 0;
	nbd_conn_set_state(c, NBD_CONN_OPT_HDR);
}

/* One option reply with data. */
static void nbd_opt_reply(struct nbd_conn *c, uint32_t type, const void *data,
			  uint32_t len)
{
	uint8_t hdr[NBD_REP_HDR_LEN];
	uv_buf_t bufs[2];

	nbd_opt_reply_encode(hdr, c->opt, type, len);
	bufs[0] = uv_buf_init((char *)hdr, sizeof(hdr));
	bufs[1] = uv_buf_init((char *)data, len);
	nbd_conn_send_copy(c, bufs, len > 0 ? 2 : 1);
}

/* An error reply whose data is a message for the user (also logged). */
static void nbd_opt_error(struct nbd_conn *c, uint32_t type, const char *fmt,
			  ...) __attribute__((format(printf, 3, 4)));

static void nbd_opt_error(struct nbd_conn *c, uint32_t type, const char *fmt,
			  ...)
{
	char msg[OMBRA_ERRMSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("nbd %s: option %u (%s) refused: %s", c->peer, c->opt,
		 nbd_opt_name(c->opt), msg);
	nbd_opt_reply(c, type, msg, (uint32_t)strlen(msg));
}

/* Back to waiting for the next option, picking up buffered input. */
static void nbd_opt_next(struct nbd_conn *c)
{
	free(c->opt_data);
	c->opt_data = NULL;
	nbd_conn_set_state(c, NBD_CONN_OPT_HDR);
}

static void nbd_opt_send_info(struct nbd_conn *c, struct proxy_volume *vol)
{
	uint8_t info[14];
	const char *name = proxy_volume_name(vol);

	nbd_put16(info, NBD_INFO_EXPORT);
	nbd_put64(info + 2, proxy_volume_size(vol));
	nbd_put16(info + 10, NBD_TRANSMISSION_FLAGS);
	nbd_opt_reply(c, NBD_REP_INFO, info, 12);
	if (c->want_name) {
		size_t n = strlen(name);
		uint8_t *p = malloc(2 + n);

		if (p == NULL) {
			log_error("nbd %s: out of memory", c->peer);
			nbd_conn_close(c);
			return;
		}
		nbd_put16(p, NBD_INFO_NAME);
		memcpy(p + 2, name, n);
		nbd_opt_reply(c, NBD_REP_INFO, p, (uint32_t)(2 + n));
		free(p);
	}
	if (c->want_block_size) {
		nbd_put16(info, NBD_INFO_BLOCK_SIZE);
		nbd_put32(info + 2, NBD_BLOCK_MIN);
		nbd_put32(info + 6, NBD_BLOCK_PREFERRED);
		nbd_put32(info + 10, NBD_BLOCK_MAX);
		nbd_opt_reply(c, NBD_REP_INFO, info, 14);
	}
	nbd_opt_reply(c, NBD_REP_ACK, NULL, 0);
}

/* The old way into transmission: size, flags and maybe 124 zeros. */
static void nbd_opt_send_export_name(struct nbd_conn *c,
				     struct proxy_volume *vol)
{
	static const uint8_t zeros[NBD_EXPORT_NAME_PAD];
	uint8_t r[NBD_EXPORT_NAME_REPLY_LEN];
	uv_buf_t bufs[2];

	nbd_put64(r, proxy_volume_size(vol));
	nbd_put16(r + 8, NBD_TRANSMISSION_FLAGS);
	bufs[0] = uv_buf_init((char *)r, sizeof(r));
	bufs[1] = uv_buf_init((char *)zeros, sizeof(zeros));
	nbd_conn_send_copy(c, bufs, c->no_zeroes ? 1 : 2);
}

static void nbd_opt_open_cb(void *arg, const struct proxy_status *st,
			    struct proxy_volume *vol)
{
	struct nbd_conn *c = arg;

	if (c->state == NBD_CONN_CLOSED) {
		if (vol != NULL) {
			proxy_volume_release(vol);
		}
		nbd_conn_unref(c);
		return;
	}
	if (st->code != GRPC_STATUS_OK || vol == NULL) {
		if (c->opt == NBD_OPT_EXPORT_NAME) {
			nbd_conn_proto_error(c,
					     "NBD_OPT_EXPORT_NAME %s: %s (this "
					     "option has no error reply)",
					     c->export_name, st->message);
		} else if (st->code == GRPC_STATUS_NOT_FOUND) {
			nbd_opt_error(c, NBD_REP_ERR_UNKNOWN, "export %s: %s",
				      c->export_name, st->message);
		} else if (st->code == GRPC_STATUS_INVALID_ARGUMENT) {
			nbd_opt_error(c, NBD_REP_ERR_INVALID, "export %s: %s",
				      c->export_name, st->message);
		} else {
			nbd_opt_error(c, NBD_REP_ERR_SHUTDOWN,
				      "export %s: %s (try again later)",
				      c->export_name, st->message);
		}
		if (vol != NULL) {
			proxy_volume_release(vol);
		}
		nbd_opt_next(c);
	} else if (c->opt == NBD_OPT_INFO) {
		nbd_opt_send_info(c, vol);
		proxy_volume_release(vol);
		nbd_opt_next(c);
	} else {
		if (c->opt == NBD_OPT_GO) {
			nbd_opt_send_info(c, vol);
		} else {
			nbd_opt_send_export_name(c, vol);
		}
		free(c->opt_data);
		c->opt_data = NULL;
		c->vol = vol;
		/* Read-write attach: the volume's writer lease (vlease.h). */
		proxy_volume_attach(vol, +1);
		log_info("nbd %s: export %s (%llu bytes) attached", c->peer,
			 c->export_name,
			 (unsigned long long)proxy_volume_size(vol));
		nbd_conn_set_state(c, NBD_CONN_REQ_HDR);
	}
	nbd_conn_kick(c);
	nbd_conn_unref(c);
}

/* Ask the engine for the export c->export_name; the answer continues in
 * nbd_opt_open_cb(). */
static void nbd_opt_open(struct nbd_conn *c)
{
	nbd_conn_set_state(c, NBD_CONN_OPT_WAIT);
	nbd_conn_ref(c);
	proxy_volume_open(c->srv->proxy, c->volume_name, nbd_opt_open_cb, c);
}

int nbd_consistency_parse(const char *word, struct proxy_read_opts *o)
{
	char *end;
	unsigned long long ms;

	if (strcmp(word, "strong") == 0 || strcmp(word, "eventual") == 0) {
		o->consistency = word[0] == 's' ? 1 : 3; /* ombra.v1 values */
		o->max_staleness_ms = 0;
		o->min_version = 0;
		return 0;
	}
	if (strncmp(word, "bounded:", 8) != 0 || word[8] < '0' || word[8] > '9')
		return -1;
	errno = 0;
	ms = strtoull(word + 8, &end, 10);
	if (errno != 0 || *end != '\0' || ms == 0 || ms > 86400000ull)
		return -1;
	o->consistency = 2;
	o->max_staleness_ms = ms;
	o->min_version = 0;
	return 0;
}

/* Split c->export_name into the volume name and an optional "@LEVEL"
 * suffix (volume names never hold '@'); false (after the error reply or
 * close) for a suffix that is not a level. */
static bool nbd_opt_split_name(struct nbd_conn *c)
{
	const char *at = strrchr(c->export_name, '@');
	size_t n =
	    at != NULL ? (size_t)(at - c->export_name) : strlen(c->export_name);

	c->read_opts_set = false;
	if (at != NULL &&
	    (n == 0 || nbd_consistency_parse(at + 1, &c->read_opts) != 0)) {
		if (c->opt == NBD_OPT_EXPORT_NAME) {
			nbd_conn_proto_error(c,
					     "export %s: expected VOLUME@LEVEL "
					     "with LEVEL strong, eventual or "
					     "bounded:MS",
					     c->export_name);
		} else {
			nbd_opt_error(c, NBD_REP_ERR_INVALID,
				      "export %s: expected VOLUME@LEVEL with "
				      "LEVEL strong, eventual or bounded:MS "
				      "(MS 1 to 86400000)",
				      c->export_name);
		}
		return false;
	}
	c->read_opts_set = at != NULL;
	free(c->volume_name);
	c->volume_name = strndup(c->export_name, n);
	if (c->volume_name == NULL) {
		log_error("nbd %s: out of memory", c->peer);
		nbd_conn_close(c);
		return false;
	}
	return true;
}

/* Take name (len bytes, not NUL-terminated) as the export name; false
 * (after the error reply or close) when it cannot be. */
static bool nbd_opt_set_name(struct nbd_conn *c, const uint8_t *name,
			     uint32_t len)
{
	if (len > 0 && memchr(name, '\0', len) != NULL) {
		if (c->opt == NBD_OPT_EXPORT_NAME) {
			nbd_conn_proto_error(c, "export name contains a NUL "
						"byte");
		} else {
			nbd_opt_error(c, NBD_REP_ERR_INVALID,
				      "export name contains a NUL byte");
		}
		return false;
	}
	if (len == 0) {
		if (c->opt == NBD_OPT_EXPORT_NAME) {
			nbd_conn_proto_error(c, "NBD_OPT_EXPORT_NAME: %s",
					     NBD_NO_DEFAULT_EXPORT);
		} else {
			nbd_opt_error(c, NBD_REP_ERR_UNKNOWN, "%s",
				      NBD_NO_DEFAULT_EXPORT);
		}
		return false;
	}
	free(c->export_name);
	c->export_name = malloc(len + 1);
	if (c->export_name == NULL) {
		log_error("nbd %s: out of memory", c->peer);
		nbd_conn_close(c);
		return false;
	}
	memcpy(c->export_name, name, len);
	c->export_name[len] = '\0';
	return nbd_opt_split_name(c);
}

/* NBD_OPT_INFO / NBD_OPT_GO data: name length (32), name, number of
 * information requests (16), requests (16 each). */
static void nbd_opt_info_go(struct nbd_conn *c)
{
	const uint8_t *d = c->opt_data;
	uint32_t len = c->opt_len;
	uint32_t name_len;
	uint16_t nreq;
	uint16_t i;

	if (len < 6 || (name_len = nbd_get32(d)) > len - 6) {
		nbd_opt_error(c, NBD_REP_ERR_INVALID,
			      "%u bytes of data do not hold an export name "
			      "and its information requests",
			      len);
		nbd_opt_next(c);
		return;
	}
	nreq = nbd_get16(d + 4 + name_len);
	if ((uint64_t)6 + name_len + 2u * (uint64_t)nreq != len) {
		nbd_opt_error(c, NBD_REP_ERR_INVALID,
			      "%u information requests do not match the "
			      "option length %u",
			      nreq, len);
		nbd_opt_next(c);
		return;
	}
	c->want_name = false;
	c->want_block_size = false;
	for (i = 0; i < nreq; i++) {
		uint16_t type = nbd_get16(d + 6 + name_len + 2u * i);

		if (type == NBD_INFO_NAME) {
			c->want_name = true;
		} else if (type == NBD_INFO_BLOCK_SIZE) {
			c->want_block_size = true;
		}
	}
	if (!nbd_opt_set_name(c, d + 4, name_len)) {
		nbd_opt_next(c);
		return;
	}
	nbd_opt_open(c);
}

static void nbd_opt_list_cb(void *arg, const struct proxy_status *st,
			    const char *const *names, const uint64_t *sizes,
			    size_t n)
{
	struct nbd_conn *c = arg;
	size_t i;

	(void)sizes;
	if (c->state == NBD_CONN_CLOSED) {
		nbd_conn_unref(c);
		return;
	}
	if (st->code != GRPC_STATUS_OK) {
		nbd_opt_error(c, NBD_REP_ERR_SHUTDOWN,
			      "cannot list the volumes: %s (try again later)",
			      st->message);
	} else {
		for (i = 0; i < n; i++) {
			size_t len = strlen(names[i]);
			uint8_t hdr[NBD_REP_HDR_LEN + 4];
			uv_buf_t bufs[2];

			nbd_opt_reply_encode(hdr, c->opt, NBD_REP_SERVER,
					     (uint32_t)(4 + len));
			nbd_put32(hdr + NBD_REP_HDR_LEN, (uint32_t)len);
			bufs[0] = uv_buf_init((char *)hdr, sizeof(hdr));
			bufs[1] = uv_buf_init((char *)names[i], (unsigned)len);
			nbd_conn_send_copy(c, bufs, 2);
		}
		nbd_opt_reply(c, NBD_REP_ACK, NULL, 0);
	}
	nbd_opt_next(c);
	nbd_conn_kick(c);
	nbd_conn_unref(c);
}

static void nbd_opt_dispatch(struct nbd_conn *c)
{
	switch (c->opt) {
	case NBD_OPT_EXPORT_NAME:
		if (nbd_opt_set_name(c, c->opt_data, c->opt_len)) {
			nbd_opt_open(c);
		}
		return;
	case NBD_OPT_ABORT:
		nbd_opt_reply(c, NBD_REP_ACK, NULL, 0);
		free(c->opt_data);
		c->opt_data = NULL;
		nbd_conn_set_state(c, NBD_CONN_DRAIN);
		return;
	case NBD_OPT_LIST:
		if (c->opt_len != 0) {
			nbd_opt_error(c, NBD_REP_ERR_INVALID,
				      "NBD_OPT_LIST takes no data (got %u "
				      "bytes)",
				      c->opt_len);
			break;
		}
		nbd_conn_set_state(c, NBD_CONN_OPT_WAIT);
		nbd_conn_ref(c);
		proxy_volume_list(c->srv->proxy, nbd_opt_list_cb, c);
		return;
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		nbd_opt_info_go(c);
		return;
	case NBD_OPT_STRUCTURED_REPLY:
		nbd_opt_error(c, NBD_REP_ERR_UNSUP,
			      "structured replies are not supported; the "
			      "server sends simple replies");
		break;
	default:
		nbd_opt_error(c, NBD_REP_ERR_UNSUP,
			      "option %u (%s) is not supported", c->opt,
			      nbd_opt_name(c->opt));
		break;
	}
	nbd_opt_next(c);
}

void nbd_opt_on_header(struct nbd_conn *c)
{
	uint64_t magic = nbd_get64(c->hdr);

	if (magic != NBD_OPTS_MAGIC) {
		nbd_conn_proto_error(c,
				     "bad option magic 0x%016llx (expected "
				     "IHAVEOPT)",
				     (unsigned long long)magic);
		return;
	}
	c->opt = nbd_get32(c->hdr + 8);
	c->opt_len = nbd_get32(c->hdr + 12);
	c->opt_got = 0;
	if (c->opt_len > NBD_OPT_MAX_DISCARD ||
	    (c->opt_len > NBD_OPT_MAX_LEN && c->opt == NBD_OPT_EXPORT_NAME)) {
		nbd_conn_proto_error(c, "%s with %u bytes of data",
				     nbd_opt_name(c->opt), c->opt_len);
		return;
	}
	if (c->opt_len > NBD_OPT_MAX_LEN) {
		c->skip_left = c->opt_len;
		nbd_conn_set_state(c, NBD_CONN_OPT_SKIP);
		return;
	}
	if (c->opt_len == 0) {
		nbd_opt_dispatch(c);
		return;
	}
	c->opt_data = malloc(c->opt_len);
	if (c->opt_data == NULL) {
		log_error("nbd %s: out of memory for %u bytes of option data",
			  c->peer, c->opt_len);
		nbd_conn_close(c);
		return;
	}
	nbd_conn_set_state(c, NBD_CONN_OPT_DATA);
}

void nbd_opt_on_data(struct nbd_conn *c)
{
	nbd_opt_dispatch(c);
}

void nbd_opt_on_skipped(struct nbd_conn *c)
{
	nbd_opt_error(c, NBD_REP_ERR_TOO_BIG,
		      "%u bytes of option data is more than the %u this "
		      "server accepts",
		      c->opt_len, NBD_OPT_MAX_LEN);
	nbd_opt_next(c);
}
