/* rpc_creds.c: gRPC credentials from struct rpc_tls: insecure, or mutual
 * TLS from PEM files (gRPC's SSL credentials, built on OpenSSL here).
 *
 * Failure: a missing or unreadable file, or a partial configuration (some
 * of ca/cert/key but not all), returns OMBRA_ECONFIG with a message naming
 * what is wrong; gRPC itself validates the PEM contents when the first
 * handshake happens and logs why it failed. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

static int tls_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static int tls_enabled(const struct rpc_tls *tls, char *errmsg)
{
	if (tls == NULL)
		return 0;
	int n = tls_set(tls->ca_file) + tls_set(tls->cert_file) +
		tls_set(tls->key_file);
	if (n == 0)
		return 0;
	if (n != 3) {
		ombra_errmsg_printf(errmsg,
				    "TLS needs all of ca, cert and key (mutual "
				    "TLS); only %d of 3 given",
				    n);
		return -1;
	}
	return 1;
}

/* Read a whole PEM file into a malloc'd NUL-terminated string. */
static char *read_pem(const char *path, char *errmsg)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		ombra_errmsg_printf(errmsg, "open %s: %s", path,
				    strerror(errno));
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, cap);
			if (nb == NULL) {
				free(buf);
				fclose(f);
				ombra_errmsg_printf(errmsg, "read %s: %s", path,
						    strerror(ENOMEM));
				return NULL;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, 4096, f);
		len += n;
		if (n < 4096)
			break;
	}
	int err = ferror(f);
	fclose(f);
	if (err || len == 0) {
		free(buf);
		ombra_errmsg_printf(errmsg, "read %s: %s", path,
				    err ? "I/O error" : "file is empty");
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

struct pem_set {
	char *ca, *cert, *key;
};

static void pem_free(struct pem_set *p)
{
	free(p->ca);
	free(p->cert);
	free(p->key);
}

static int pem_load(const struct rpc_tls *tls, struct pem_set *p, char *errmsg)
{
	memset(p, 0, sizeof(*p));
	if ((p->ca = read_pem(tls->ca_file, errmsg)) == NULL ||
	    (p->cert = read_pem(tls->cert_file, errmsg)) == NULL ||
	    (p->key = read_pem(tls->key_file, errmsg)) == NULL) {
		pem_free(p);
		return OMBRA_ECONFIG;
	}
	return 0;
}

/* Both sides: insecure when tls is off, else mutual TLS from the PEM
 * files; exactly one of server_out / channel_out is non-NULL. */
static int creds_make(const struct rpc_tls *tls,
		      grpc_server_credentials **server_out,
		      grpc_channel_credentials **channel_out, char *errmsg)
{
	int on = tls_enabled(tls, errmsg);
	if (on < 0)
		return OMBRA_ECONFIG;
	if (on == 0) {
		if (server_out)
			*server_out = grpc_insecure_server_credentials_create();
		else
			*channel_out = grpc_insecure_credentials_create();
		return 0;
	}
	struct pem_set p;
	if (pem_load(tls, &p, errmsg) != 0)
		return OMBRA_ECONFIG;
	grpc_ssl_pem_key_cert_pair pair = {.private_key = p.key,
					   .cert_chain = p.cert};
	bool made;
	if (server_out) {
		*server_out = grpc_ssl_server_credentials_create_ex(
		    p.ca, &pair, 1,
		    GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY,
		    NULL);
		made = *server_out != NULL;
	} else {
		*channel_out =
		    grpc_ssl_credentials_create(p.ca, &pair, NULL, NULL);
		made = *channel_out != NULL;
	}
	pem_free(&p);
	if (!made) {
		ombra_errmsg_printf(errmsg,
				    "gRPC refused the TLS %s credentials "
				    "(check the PEM files)",
				    server_out ? "server" : "client");
		return OMBRA_ECONFIG;
	}
	return 0;
}

int rpc_creds_server(const struct rpc_tls *tls, grpc_server_credentials **out,
		     char *errmsg)
{
	return creds_make(tls, out, NULL, errmsg);
}

int rpc_creds_channel(const struct rpc_tls *tls, grpc_channel_credentials **out,
		      char *errmsg)
{
	return creds_make(tls, NULL, out, errmsg);
}
