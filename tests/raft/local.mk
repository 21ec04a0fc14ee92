# tests/raft: deterministic Raft tests.  libraft's raft_fixture runs a whole
# metad cluster in one process on virtual time, each member applying the log
# to the real state machine (libmetadfsm.a).  Seeds: OMBRA_RAFT_SEEDS=N
# (count), OMBRA_RAFT_SEED=S (one seed), OMBRA_RAFT_STEPS=N (schedule length).
check_PROGRAMS += tests/raft/test_raft_fixture
TESTS += tests/raft/test_raft_fixture
tests_raft_test_raft_fixture_SOURCES = tests/raft/test_raft_fixture.c \
	tests/raft/raft_shim.h
tests_raft_test_raft_fixture_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_raft_test_raft_fixture_LDADD = $(METAD_FSM_LIBS) $(OMBRA_BASE_LIBS) \
	$(CMOCKA_LIBS)
