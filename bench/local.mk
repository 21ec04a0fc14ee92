# bench/: benchmarks (not tests); run by hand, see docs/benchmarks.md.
#
# bench/metad: ombra-metad vs etcd 3.4 on loopback.  bench/metad/run (Python)
# starts both clusters and calls ombra-bench-metad, the C load driver, once
# per phase.  The driver speaks etcd's KV API through protoc-c code generated
# into the build tree from bench/metad/etcd_kv.proto, like proto/local.mk.
BENCH_ETCD_PROTO = bench/metad/etcd_kv.proto
BENCH_ETCD_GEN = bench/metad/etcd_kv.pb-c.c bench/metad/etcd_kv.pb-c.h
EXTRA_DIST += $(BENCH_ETCD_PROTO)
BUILT_SOURCES += $(BENCH_ETCD_GEN)
CLEANFILES += $(BENCH_ETCD_GEN) bench/metad/.stamp
dist_noinst_SCRIPTS += bench/metad/run bench/metad/vlease

bench/metad/.stamp: $(BENCH_ETCD_PROTO)
	@$(MKDIR_P) bench/metad
	$(AM_V_GEN)$(PROTOC_C) --proto_path=$(srcdir)/bench/metad \
		--c_out=bench/metad $(srcdir)/$(BENCH_ETCD_PROTO) && touch $@
$(BENCH_ETCD_GEN): bench/metad/.stamp

noinst_PROGRAMS += bench/metad/ombra-bench-metad
bench_metad_ombra_bench_metad_SOURCES = \
	bench/metad/bench.h \
	bench/metad/driver.c \
	bench/metad/failover.c bench/metad/failover.h \
	bench/metad/latency.c bench/metad/latency.h \
	bench/metad/load.c bench/metad/load.h \
	bench/metad/system.c \
	bench/metad/system_etcd.c \
	bench/metad/system_metad.c
nodist_bench_metad_ombra_bench_metad_SOURCES = $(BENCH_ETCD_GEN)
bench_metad_ombra_bench_metad_CPPFLAGS = $(AM_CPPFLAGS) \
	-I$(srcdir)/bench/metad -I$(builddir)/bench/metad
bench_metad_ombra_bench_metad_LDADD = $(OMBRA_BASE_LIBS)

# bench/fio: fio's nbd engine against qemu-nbd on a local file and an Ombra
# volume through ombra-proxy (Python script; needs the daemons built).
dist_noinst_SCRIPTS += bench/fio/run

# bench/prefetch: the prefetch evaluation of issue 4 (Python; runs
# tools/ombra-sim on every shared trace, see docs/simulator.md).
dist_noinst_SCRIPTS += bench/prefetch/run

# bench/regions: issue 5's benchmark in the netns testbed (Python; needs
# root and a build with ombra-netdelay): the CloudPhysics trace replayed
# from region B with shadows off and on, and from A (docs/benchmarks.md).
dist_noinst_SCRIPTS += bench/regions/run
