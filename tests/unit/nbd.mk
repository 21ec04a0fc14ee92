# tests/unit/nbd.mk: protocol-layer tests of the proxy's NBD server
# (libnbd_server.a) over loopback sockets against a memory backend of
# proxy_io.h (tests/unit/nbd_memio.c), plus nbd_memserver, the same
# backend as a program for the real-client check (qemu-io, nbdinfo).
NBD_TEST_SUPPORT = tests/unit/nbd_memio.c tests/unit/nbd_memio.h
NBD_UNIT_SUPPORT = $(NBD_TEST_SUPPORT) \
	tests/unit/nbd_testcli.c tests/unit/nbd_testcli.h
NBD_UNIT_LDADD = libnbd_server.a $(OMBRA_BASE_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_nbd_handshake tests/unit/test_nbd_cmd \
	tests/unit/nbd_memserver
TESTS += tests/unit/test_nbd_handshake tests/unit/test_nbd_cmd \
	tests/unit/test_nbd_clients.sh
EXTRA_DIST += tests/unit/test_nbd_clients.sh

tests_unit_test_nbd_handshake_SOURCES = tests/unit/test_nbd_handshake.c \
	$(NBD_UNIT_SUPPORT)
tests_unit_test_nbd_handshake_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_nbd_handshake_LDADD = $(NBD_UNIT_LDADD)

tests_unit_test_nbd_cmd_SOURCES = tests/unit/test_nbd_cmd.c \
	$(NBD_UNIT_SUPPORT)
tests_unit_test_nbd_cmd_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_nbd_cmd_LDADD = $(NBD_UNIT_LDADD)

tests_unit_nbd_memserver_SOURCES = tests/unit/nbd_memserver.c \
	$(NBD_TEST_SUPPORT)
tests_unit_nbd_memserver_LDADD = libnbd_server.a $(OMBRA_BASE_LIBS)
