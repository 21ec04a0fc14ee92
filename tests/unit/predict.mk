# tests/unit/predict.mk: cmocka tests of the predictors in predict/ (obl,
# amp, mithril, the adaptive selector) on synthetic streams with known
# answers, scored by the evaluation helper test_predict_eval.c.
PREDICT_UNIT_TESTS = tests/unit/test_predict tests/unit/test_predict_adaptive \
	tests/unit/test_pfpolicy
check_PROGRAMS += $(PREDICT_UNIT_TESTS)
TESTS += $(PREDICT_UNIT_TESTS)

PREDICT_TEST_EVAL = tests/unit/test_predict_eval.c \
	tests/unit/test_predict_eval.h
PREDICT_TEST_LDADD = libpredict.a libombra.a $(CMOCKA_LIBS) -lm

tests_unit_test_predict_SOURCES = tests/unit/test_predict.c \
	$(PREDICT_TEST_EVAL)
tests_unit_test_predict_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_predict_LDADD = $(PREDICT_TEST_LDADD)

tests_unit_test_predict_adaptive_SOURCES = \
	tests/unit/test_predict_adaptive.c $(PREDICT_TEST_EVAL)
tests_unit_test_predict_adaptive_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_predict_adaptive_LDADD = $(PREDICT_TEST_LDADD)

tests_unit_test_pfpolicy_SOURCES = tests/unit/test_pfpolicy.c
tests_unit_test_pfpolicy_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_pfpolicy_LDADD = $(PREDICT_TEST_LDADD)
