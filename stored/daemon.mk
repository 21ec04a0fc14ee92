# stored/ daemon: ombra-stored (StoreService, replication, repair, scrub,
# re-sync), linking the segment store library from stored/local.mk.
bin_PROGRAMS += stored/ombra-stored
# The daemon's pure helpers, also linked by the unit tests.
noinst_LIBRARIES += libstored.a
libstored_a_SOURCES = \
	stored/options.c stored/options.h \
	stored/wlogic.c stored/wlogic.h \
	stored/shardmap.c stored/shardmap.h \
	stored/foreign_logic.c stored/foreign_logic.h
stored_ombra_stored_SOURCES = \
	stored/main.c stored/stored.h \
	stored/node.c stored/mapcache.c stored/meta.c stored/work.c \
	stored/wop.h stored/svc_write.c stored/wrepl.c stored/svc_read.c \
	stored/svc_misc.c \
	stored/scrub.c stored/resync.c \
	stored/foreign_t.h stored/foreign.h stored/foreign.c \
	stored/foreign_pull.c stored/foreign_rep.c stored/foreign_shadow.c \
	stored/foreign_sweep.c \
	stored/svc_copy.c
stored_ombra_stored_LDADD = libstored.a $(SEGSTORE_LIBS) $(OMBRA_BASE_LIBS)

# The watermark / present-block rules of foreign copies (pure).
check_PROGRAMS += tests/unit/test_foreign_logic
TESTS += tests/unit/test_foreign_logic
tests_unit_test_foreign_logic_SOURCES = tests/unit/test_foreign_logic.c
tests_unit_test_foreign_logic_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/stored
tests_unit_test_foreign_logic_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_foreign_logic_LDADD = libstored.a $(SEGSTORE_LIBS) $(OMBRA_BASE_LIBS) \
	$(CMOCKA_LIBS)
