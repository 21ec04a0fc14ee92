# predict/: the access predictors (predict.h) and what other parts of the
# prefetch path build on them.  One noinst library linked by the proxy, the
# trace simulator and the unit tests; each helper adds its own sources with
# one `libpredict_a_SOURCES += ...` line.
noinst_LIBRARIES += libpredict.a
libpredict_a_SOURCES = predict/predict.h predict/predict.c
