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
