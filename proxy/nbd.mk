# proxy/nbd.mk: the proxy's NBD server as a library (libnbd_server.a) so
# that ombra-proxy and the protocol tests link the same code.  It calls
# the engine interface proxy/proxy_io.h, which the linking program
# provides (the proxy's engine, or the tests' memory backend).
# proxy/local.mk adds $(NBD_SERVER_SOURCES) to ombra-proxy's sources.
NBD_SERVER_SOURCES = \
	proxy/nbd.h proxy/nbd_internal.h \
	proxy/nbd_proto.c proxy/nbd_proto.h \
	proxy/nbd_server.c proxy/nbd_conn.c \
	proxy/nbd_option.c proxy/nbd_cmd.c
noinst_LIBRARIES += libnbd_server.a
libnbd_server_a_SOURCES = $(NBD_SERVER_SOURCES)
