# metad/ state machine library: commands, LMDB state machine, placement.
# Linked by ombra-metad and by the unit and Raft fixture tests.
noinst_LIBRARIES += libmetadfsm.a
libmetadfsm_a_SOURCES = \
	metad/cmd.c metad/cmd.h \
	metad/placement.c metad/placement.h \
	metad/raft_guard.c metad/raft_guard.h \
	metad/fsm.h metad/fsm_internal.h \
	metad/fsm.c metad/fsm_apply.c metad/fsm_query.c metad/fsm_snapshot.c \
	metad/fsm_place.c metad/fsm_lease.c metad/fsm_apply_place.c \
	metad/fsm_dedup.c metad/fsm_audit.c \
	metad/vlease.h metad/fsm_vlease.c metad/fsm_promote.c \
	metad/shadowpol.c metad/shadowpol.h metad/fsm_shadow.c \
	metad/access.c metad/access.h
METAD_FSM_LIBS = libmetadfsm.a $(RAFT_LIBS) $(LMDB_LIBS) $(OPENSSL_LIBS)
