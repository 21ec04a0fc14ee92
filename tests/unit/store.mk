# tests/unit/store.mk: cmocka tests of the segment store library
# (libsegstore.a): checksums, versions, the data path, corruption
# detection, repair, tiers and bad input.  Each test works in its own
# temporary directory under /tmp and removes it.
check_PROGRAMS += tests/unit/test_segstore
TESTS += tests/unit/test_segstore

tests_unit_test_segstore_SOURCES = tests/unit/test_segstore.c
tests_unit_test_segstore_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_segstore_LDADD = $(SEGSTORE_LIBS) $(OMBRA_BASE_LIBS) \
	$(CMOCKA_LIBS)

# The pure parts of the ombra-stored daemon (stored/daemon.mk's
# libstored.a): versions, ranges, merge, request-id LRU, command line,
# shard-map conversion.
check_PROGRAMS += tests/unit/test_stored_logic
TESTS += tests/unit/test_stored_logic

tests_unit_test_stored_logic_SOURCES = tests/unit/test_stored_logic.c
tests_unit_test_stored_logic_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/stored
tests_unit_test_stored_logic_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_stored_logic_LDADD = libstored.a $(SEGSTORE_LIBS) \
	$(OMBRA_BASE_LIBS) $(CMOCKA_LIBS)
