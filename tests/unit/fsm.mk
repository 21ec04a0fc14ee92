# tests/unit: cmocka tests of the metadata state machine library
# (libmetadfsm.a): command codec and validators, the LMDB state machine with
# its snapshots and shard maps, and rendezvous placement.
FSM_TEST_LDADD = $(METAD_FSM_LIBS) $(OMBRA_BASE_LIBS) $(CMOCKA_LIBS)

check_PROGRAMS += tests/unit/test_cmd tests/unit/test_fsm \
	tests/unit/test_fsm_lease tests/unit/test_placement \
	tests/unit/test_vlease tests/unit/test_shadowpol \
	tests/unit/test_shadowpol_fsm tests/unit/test_audit
TESTS += tests/unit/test_cmd tests/unit/test_fsm tests/unit/test_fsm_lease \
	tests/unit/test_placement tests/unit/test_vlease \
	tests/unit/test_shadowpol tests/unit/test_shadowpol_fsm \
	tests/unit/test_audit

tests_unit_test_cmd_SOURCES = tests/unit/test_cmd.c
tests_unit_test_cmd_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_cmd_LDADD = $(FSM_TEST_LDADD)

FSM_TESTLIB = tests/unit/fsm_testlib.c tests/unit/fsm_testlib.h

tests_unit_test_fsm_SOURCES = tests/unit/test_fsm.c $(FSM_TESTLIB)
tests_unit_test_fsm_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_fsm_LDADD = $(FSM_TEST_LDADD)

tests_unit_test_fsm_lease_SOURCES = tests/unit/test_fsm_lease.c \
	$(FSM_TESTLIB)
tests_unit_test_fsm_lease_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_fsm_lease_LDADD = $(FSM_TEST_LDADD)

tests_unit_test_placement_SOURCES = tests/unit/test_placement.c
tests_unit_test_placement_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_placement_LDADD = $(FSM_TEST_LDADD)

tests_unit_test_vlease_SOURCES = tests/unit/test_vlease.c $(FSM_TESTLIB)
tests_unit_test_vlease_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vlease_LDADD = $(FSM_TEST_LDADD)

tests_unit_test_shadowpol_SOURCES = tests/unit/test_shadowpol.c
tests_unit_test_shadowpol_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_shadowpol_LDADD = $(FSM_TEST_LDADD)

tests_unit_test_shadowpol_fsm_SOURCES = tests/unit/test_shadowpol_fsm.c \
	$(FSM_TESTLIB)
tests_unit_test_shadowpol_fsm_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_shadowpol_fsm_LDADD = $(FSM_TEST_LDADD)

tests_unit_test_audit_SOURCES = tests/unit/test_audit.c $(FSM_TESTLIB)
tests_unit_test_audit_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_audit_LDADD = $(FSM_TEST_LDADD)
