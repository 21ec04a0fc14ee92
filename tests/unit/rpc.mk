# tests/unit/rpc.mk: the RPC layer over real loopback sockets.
check_PROGRAMS += tests/unit/test_rpc
TESTS += tests/unit/test_rpc
tests_unit_test_rpc_SOURCES = tests/unit/test_rpc.c
tests_unit_test_rpc_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_rpc_LDADD = $(OMBRA_BASE_LIBS) $(CMOCKA_LIBS)
