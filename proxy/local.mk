# proxy/: ombra-proxy (gRPC VolumeService, NBD export, I/O engine).
bin_PROGRAMS += proxy/ombra-proxy
proxy_ombra_proxy_SOURCES = \
	proxy/proxy.h proxy/proxy_io.h \
	proxy/args.c proxy/args.h \
	proxy/main.c \
	proxy/defer.c \
	proxy/metad_client.c \
	proxy/volcache.c \
	proxy/nodes.c \
	proxy/watch.c \
	proxy/io.c \
	proxy/service_volume.c
# NBD server (proxy/nbd*.c, its own author) adds its sources here:
# proxy_ombra_proxy_SOURCES += proxy/nbd.c proxy/nbd.h ...
proxy_ombra_proxy_LDADD = $(OMBRA_BASE_LIBS)
