# tests/unit/sim.mk: cmocka tests of predict/'s block cache (LRU, ARC,
# S3-FIFO, prefetch accounting) and trace readers (vscsi v1/v2, ARC .lis,
# MSR CSV, .zst), and the ARC-paper literature check of ombra-sim on the
# shared traces (skips, exit 77, when /work/shared/traces is absent).
check_PROGRAMS += tests/unit/test_cache tests/unit/test_trace
TESTS += tests/unit/test_cache tests/unit/test_trace

tests_unit_test_cache_SOURCES = tests/unit/test_cache.c
tests_unit_test_cache_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_cache_LDADD = libpredict.a libombra.a $(CMOCKA_LIBS) -lm

tests_unit_test_trace_SOURCES = tests/unit/test_trace.c
tests_unit_test_trace_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_trace_LDADD = libpredict.a libombra.a $(CMOCKA_LIBS) -lm

TESTS += tests/integration/test_sim_arc.sh
EXTRA_DIST += tests/integration/test_sim_arc.sh
