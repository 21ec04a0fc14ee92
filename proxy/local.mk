# proxy/: ombra-proxy (gRPC VolumeService, NBD export, I/O engine).
bin_PROGRAMS += proxy/ombra-proxy
proxy_ombra_proxy_SOURCES = \
	proxy/proxy.h proxy/proxy_io.h \
	proxy/args.c proxy/args.h \
	proxy/main.c \
	proxy/defer.c \
	proxy/busypoll.c proxy/busypoll.h \
	proxy/metad_client.c \
	proxy/volcache.c \
	proxy/nodes.c proxy/route_lat.c proxy/route_lat.h \
	proxy/route.c proxy/route.h proxy/segver.c proxy/segver.h \
	proxy/watch.c \
	proxy/io.c \
	proxy/io_internal.h \
	proxy/io_read.c \
	proxy/wtrack.c proxy/wtrack.h proxy/wflight.c proxy/wflight.h \
	proxy/pcache.c proxy/pcache.h \
	proxy/vlease.c proxy/vlease.h \
	proxy/prefetch.c proxy/prefetch.h proxy/prefetch_rpc.c \
	proxy/prefetch_core.c proxy/prefetch_core.h metad/placement.c \
	proxy/propq.c proxy/propagate.c proxy/propagate.h \
	proxy/access.c proxy/access_table.c proxy/access.h \
	stored/crc.c stored/crc.h \
	proxy/service_volume.c
# NBD server (proxy/nbd*.c, its own author): sources listed in proxy/nbd.mk.
proxy_ombra_proxy_SOURCES += $(NBD_SERVER_SOURCES)
# stored/crc.c (block checksums of propagated blocks) needs ISA-L.
proxy_ombra_proxy_LDADD = $(OMBRA_BASE_LIBS) $(ISAL_LIBS)
# The prefetch engine's predictors (predict/) and placement_pick().
proxy_ombra_proxy_LDADD += libpredict.a -lm

# Unit tests of the proxy's pure parts.
PROXY_UNIT_TESTS = tests/unit/test_wtrack tests/unit/test_pcache \
	tests/unit/test_propq tests/unit/test_access \
	tests/unit/test_route_lat tests/unit/test_prefetch_core \
	tests/unit/test_route tests/unit/test_segver tests/unit/test_wflight \
	tests/unit/test_busypoll
check_PROGRAMS += $(PROXY_UNIT_TESTS)
TESTS += $(PROXY_UNIT_TESTS)
tests_unit_test_wtrack_SOURCES = tests/unit/test_wtrack.c proxy/wtrack.c
tests_unit_test_wtrack_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_wtrack_LDADD = $(CMOCKA_LIBS)
tests_unit_test_pcache_SOURCES = tests/unit/test_pcache.c proxy/pcache.c
tests_unit_test_pcache_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_pcache_LDADD = $(CMOCKA_LIBS)
tests_unit_test_propq_SOURCES = tests/unit/test_propq.c proxy/propq.c \
	stored/crc.c
tests_unit_test_propq_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_propq_LDADD = $(CMOCKA_LIBS) $(ISAL_LIBS)
tests_unit_test_access_SOURCES = tests/unit/test_access.c \
	proxy/access_table.c
tests_unit_test_access_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_access_LDADD = $(CMOCKA_LIBS)
tests_unit_test_route_lat_SOURCES = tests/unit/test_route_lat.c \
	proxy/route_lat.c
tests_unit_test_route_lat_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_route_lat_LDADD = $(CMOCKA_LIBS) -lm
tests_unit_test_prefetch_core_SOURCES = tests/unit/test_prefetch_core.c \
	proxy/prefetch_core.c proxy/pcache.c metad/placement.c
tests_unit_test_prefetch_core_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_prefetch_core_LDADD = libpredict.a libombra.a $(CMOCKA_LIBS) -lm
tests_unit_test_route_SOURCES = tests/unit/test_route.c proxy/route.c
tests_unit_test_route_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_route_LDADD = $(CMOCKA_LIBS)
tests_unit_test_segver_SOURCES = tests/unit/test_segver.c proxy/segver.c
tests_unit_test_segver_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_segver_LDADD = $(CMOCKA_LIBS)
tests_unit_test_wflight_SOURCES = tests/unit/test_wflight.c proxy/wflight.c
tests_unit_test_wflight_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_wflight_LDADD = $(CMOCKA_LIBS)
tests_unit_test_busypoll_SOURCES = tests/unit/test_busypoll.c proxy/busypoll.c
tests_unit_test_busypoll_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_busypoll_LDADD = $(OMBRA_BASE_LIBS) $(CMOCKA_LIBS)
