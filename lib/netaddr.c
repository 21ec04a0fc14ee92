/* netaddr.c: parse and resolve "host:port" listen addresses (netaddr.h).
 *
 * Failure: OMBRA_EINVAL with the address and the reason in errmsg; nothing
 * is allocated on failure. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"

#define NETADDR_HOST_LEN 256

/* Split "host:port", "[v6]:port" or ":port" (all interfaces).  host gets
 * the host without brackets ("" for none); port must be 0..65535. */
static int netaddr_split(const char *listen, char *host, size_t host_len,
			 char *port, size_t port_len, char *errmsg)
{
	const char *colon;
	const char *h = listen;
	size_t hlen;
	size_t plen;
	unsigned long value = 0;
	size_t i;

	if (listen == NULL || (colon = strrchr(listen, ':')) == NULL) {
		ombra_errmsg_printf(errmsg,
				    "listen address %s: expected host:port",
				    listen != NULL ? listen : "(null)");
		return OMBRA_EINVAL;
	}
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	} else if (memchr(h, ':', hlen) != NULL) {
		ombra_errmsg_printf(errmsg,
				    "listen address %s: put an IPv6 host in "
				    "brackets, e.g. [::1]:9100",
				    listen);
		return OMBRA_EINVAL;
	}
	plen = strlen(colon + 1);
	if (hlen >= host_len || plen == 0 || plen >= port_len || plen > 5) {
		ombra_errmsg_printf(
		    errmsg, "listen address %s: bad host or port", listen);
		return OMBRA_EINVAL;
	}
	for (i = 0; i < plen; i++) {
		char c = colon[1 + i];

		if (c < '0' || c > '9') {
			break;
		}
		value = value * 10 + (unsigned long)(c - '0');
	}
	if (i != plen || value > 65535) {
		ombra_errmsg_printf(errmsg,
				    "listen address %s: port must be a number "
				    "0..65535",
				    listen);
		return OMBRA_EINVAL;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memcpy(port, colon + 1, plen + 1);
	return 0;
}

int netaddr_resolve_listen(const char *listen, struct addrinfo **res,
			   char *errmsg)
{
	char host[NETADDR_HOST_LEN];
	char port[8];
	struct addrinfo hints;
	int rv;

	rv = netaddr_split(listen, host, sizeof(host), port, sizeof(port),
			   errmsg);
	if (rv != 0) {
		return rv;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rv = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints, res);
	if (rv != 0) {
		ombra_errmsg_printf(errmsg, "listen address %s: %s", listen,
				    gai_strerror(rv));
		return OMBRA_EINVAL;
	}
	return 0;
}

int netaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	}
	if (sa->sa_family == AF_INET6) {
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	}
	return -1;
}
