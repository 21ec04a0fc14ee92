/* tlscheck.h: early sanity check of ombractl's TLS files, so a wrong file
 * is named in one clear line instead of surfacing later as an opaque
 * handshake failure ("empty address list") from gRPC.
 *
 * Failure: OMBRA_ECONFIG with errmsg naming the option and file. */
#ifndef OMBRA_CLI_TLSCHECK_H
#define OMBRA_CLI_TLSCHECK_H

#include "rpc.h"

/* tls->ca_file: PEM with at least one certificate; cert_file: PEM
 * certificate; key_file: PEM private key matching cert_file.  Files are
 * only read.  Returns 0 or OMBRA_ECONFIG (errmsg, OMBRA_ERRMSG_LEN). */
int tlscheck_files(const struct rpc_tls *tls, char *errmsg);

#endif
