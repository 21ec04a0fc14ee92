# metad/ daemon: ombra-metad (Raft node, AdminService, MetaService, HTTP).
bin_PROGRAMS += metad/ombra-metad
metad_ombra_metad_SOURCES = \
	metad/main.c metad/metad.h \
	metad/config.c metad/config.h \
	metad/raftnode.c metad/raftnode.h \
	metad/raft_async.c metad/raft_async.h \
	metad/service.h metad/service.c \
	metad/service_admin.c metad/service_cluster.c metad/service_meta.c \
	metad/watch.c metad/health.c \
	metad/service_vlease.c metad/failover.c metad/failover.h \
	metad/shadowpol_run.c metad/shadowpol_run.h
metad_ombra_metad_LDADD = $(METAD_FSM_LIBS) $(OMBRA_BASE_LIBS)
