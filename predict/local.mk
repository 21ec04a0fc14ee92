# predict/: the access predictors (predict.h) and what other parts of the
# prefetch path build on them.  One noinst library linked by the proxy, the
# trace simulator and the unit tests; each helper adds its own sources with
# one `libpredict_a_SOURCES += ...` line.
noinst_LIBRARIES += libpredict.a
libpredict_a_SOURCES = predict/predict.h predict/predict.c
libpredict_a_SOURCES += predict/cache.h predict/cache_impl.h predict/cache.c predict/cache_table.h predict/cache_table.c predict/cache_lru.c predict/cache_arc.c predict/cache_s3fifo.c predict/trace.h predict/trace_impl.h predict/trace.c predict/trace_vscsi.c predict/trace_lis.c predict/trace_msr.c
libpredict_a_SOURCES += predict/lstm.h predict/lstm.c predict/lstm_model.h predict/lstm_model.c
libpredict_a_SOURCES += predict/pred_internal.h \
	predict/settab.c predict/settab.h \
	predict/obl.c predict/obl.h \
	predict/amp.c predict/amp.h \
	predict/mithril.c predict/mithril.h \
	predict/adaptive.c predict/adaptive.h \
	predict/score.c predict/score.h \
	predict/pfpolicy.c predict/pfpolicy.h
# The shipped LSTM model is found in the source tree by default (lstm.h).
libpredict_a_CPPFLAGS = $(AM_CPPFLAGS) -DOMBRA_LSTM_SRCDIR='"$(abs_top_srcdir)"'
