# lib/: shared code linked into every daemon, the CLI and the tests.
noinst_LIBRARIES += libombra.a
libombra_a_SOURCES = \
	lib/err.c lib/err.h \
	lib/log.c lib/log.h \
	lib/audit.c lib/audit.h \
	lib/size.c lib/size.h \
	lib/fsutil.c lib/fsutil.h \
	lib/metrics.c lib/metrics.h \
	lib/http.c lib/http.h \
	lib/netaddr.c lib/netaddr.h \
	lib/pbjson.c lib/pbjson.h \
	lib/rpc.h lib/rpc_internal.h \
	lib/rpc_bridge.c lib/rpc_bridge.h \
	lib/rpc_common.c lib/rpc_call.c lib/rpc_server.c lib/rpc_client.c lib/rpc_cluster.c \
	lib/rpc_channel.c lib/rpc_creds.c
nodist_libombra_a_SOURCES = $(PROTO_GEN_C) $(PROTO_GEN_H)
