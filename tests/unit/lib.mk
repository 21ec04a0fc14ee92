# tests/unit/lib.mk: cmocka unit tests for the lib/ utilities (sizes,
# metrics, protobuf JSON, HTTP endpoint).  Each is a standalone program run
# by automake's parallel harness; a failing assertion fails `make check`.
LIB_UNIT_TESTS = \
	tests/unit/test_size \
	tests/unit/test_metrics \
	tests/unit/test_pbjson \
	tests/unit/test_http
check_PROGRAMS += $(LIB_UNIT_TESTS)
TESTS += $(LIB_UNIT_TESTS)

LIB_UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
LIB_UNIT_LDADD = $(OMBRA_BASE_LIBS) $(CMOCKA_LIBS)

tests_unit_test_size_SOURCES = tests/unit/test_size.c
tests_unit_test_size_CFLAGS = $(LIB_UNIT_CFLAGS)
tests_unit_test_size_LDADD = $(LIB_UNIT_LDADD)

tests_unit_test_metrics_SOURCES = tests/unit/test_metrics.c
tests_unit_test_metrics_CFLAGS = $(LIB_UNIT_CFLAGS)
tests_unit_test_metrics_LDADD = $(LIB_UNIT_LDADD)

tests_unit_test_pbjson_SOURCES = tests/unit/test_pbjson.c
tests_unit_test_pbjson_CFLAGS = $(LIB_UNIT_CFLAGS)
tests_unit_test_pbjson_LDADD = $(LIB_UNIT_LDADD)

tests_unit_test_http_SOURCES = tests/unit/test_http.c
tests_unit_test_http_CFLAGS = $(LIB_UNIT_CFLAGS)
tests_unit_test_http_LDADD = $(LIB_UNIT_LDADD)
