/* tlscheck.c: load ombractl's --tls-ca/--tls-cert/--tls-key with OpenSSL
 * before any connection is made and check that the key belongs to the
 * certificate (see tlscheck.h).
 *
 * Failure: OMBRA_ECONFIG naming the option, the file and OpenSSL's reason;
 * every OpenSSL object is freed on every path. */
#include "tlscheck.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

/* OpenSSL's last queued reason, or fallback; clears the queue. */
static const char *tlscheck_reason(const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r != NULL ? r : fallback;
}

static int tlscheck_read_cert(const char *opt, const char *path, X509 **out,
			      char *errmsg)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		ombra_errmsg_printf(errmsg, "%s %s: %s", opt, path,
				    strerror(errno));
		return OMBRA_ECONFIG;
	}
	*out = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (*out == NULL) {
		ombra_errmsg_printf(errmsg, "%s %s: not a PEM certificate (%s)",
				    opt, path, tlscheck_reason("no data"));
		return OMBRA_ECONFIG;
	}
	return 0;
}

static int tlscheck_read_key(const char *path, EVP_PKEY **out, char *errmsg)
{
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		ombra_errmsg_printf(errmsg, "--tls-key %s: %s", path,
				    strerror(errno));
		return OMBRA_ECONFIG;
	}
	*out = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (*out == NULL) {
		ombra_errmsg_printf(errmsg,
				    "--tls-key %s: not a PEM private key (%s)",
				    path, tlscheck_reason("no data"));
		return OMBRA_ECONFIG;
	}
	return 0;
}

int tlscheck_files(const struct rpc_tls *tls, char *errmsg)
{
	X509 *ca = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int rc;

	rc = tlscheck_read_cert("--tls-ca", tls->ca_file, &ca, errmsg);
	if (rc != 0) {
		goto out;
	}
	rc = tlscheck_read_cert("--tls-cert", tls->cert_file, &cert, errmsg);
	if (rc != 0) {
		goto out;
	}
	rc = tlscheck_read_key(tls->key_file, &key, errmsg);
	if (rc != 0) {
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ombra_errmsg_printf(errmsg,
				    "--tls-key %s does not match the "
				    "certificate in --tls-cert %s (%s)",
				    tls->key_file, tls->cert_file,
				    tlscheck_reason("key mismatch"));
		rc = OMBRA_ECONFIG;
	}
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_free(ca);
	return rc;
}
