/* netaddr.h: listen addresses of the daemons' TCP endpoints ("host:port",
 * "[v6]:port", ":port" for all interfaces), parsed and resolved the same
 * way by every server (HTTP, NBD).
 *
 * Failure: OMBRA_EINVAL with a message that names the address and what is
 * wrong with it ("listen address x: port must be a number 0..65535"). */
#ifndef OMBRA_NETADDR_H
#define OMBRA_NETADDR_H

#include <netdb.h>

/* Parse listen and resolve its host (numeric or a name, looked up with
 * getaddrinfo(), so it may block: call it before the loop runs or off the
 * loop).  *res: the getaddrinfo() list on success, freed by the caller
 * with freeaddrinfo(); its first entry is the address to bind. */
int netaddr_resolve_listen(const char *listen, struct addrinfo **res,
			   char *errmsg);

/* The port of an AF_INET or AF_INET6 address (host order); -1 for other
 * families. */
int netaddr_port(const struct sockaddr *sa);

#endif
