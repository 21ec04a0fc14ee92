# tests/unit/lstm.mk: cmocka tests of the LSTM predictor (predict/lstm*.c):
# the C forward pass against PyTorch's recorded outputs for the shipped
# model, refusal of bad weights files, and the predictor on synthetic
# streams.  Need the model files in predict/models/ (found through
# $OMBRA_SRCDIR, set for every test), never PyTorch.
LSTM_UNIT_TESTS = \
	tests/unit/test_lstm \
	tests/unit/test_lstm_predict
check_PROGRAMS += $(LSTM_UNIT_TESTS)
TESTS += $(LSTM_UNIT_TESTS)
EXTRA_DIST += predict/models

LSTM_UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
LSTM_UNIT_LDADD = libpredict.a $(OMBRA_BASE_LIBS) $(CMOCKA_LIBS)

tests_unit_test_lstm_SOURCES = tests/unit/test_lstm.c
tests_unit_test_lstm_CFLAGS = $(LSTM_UNIT_CFLAGS)
tests_unit_test_lstm_LDADD = $(LSTM_UNIT_LDADD)

tests_unit_test_lstm_predict_SOURCES = tests/unit/test_lstm_predict.c
tests_unit_test_lstm_predict_CFLAGS = $(LSTM_UNIT_CFLAGS)
tests_unit_test_lstm_predict_LDADD = $(LSTM_UNIT_LDADD)
