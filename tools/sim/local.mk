# tools/sim/: ombra-sim, the offline trace simulator (docs/simulator.md):
# predict/'s caches, trace readers and predictors driven over recorded
# traces.  Built as BUILD/tools/ombra-sim.
bin_PROGRAMS += tools/ombra-sim
tools_ombra_sim_SOURCES = \
	tools/sim/main.c \
	tools/sim/report.c tools/sim/report.h \
	tools/sim/sim.c tools/sim/sim.h \
	tools/sim/sweep.c tools/sim/sweep.h
tools_ombra_sim_LDADD = libpredict.a libombra.a -lm
EXTRA_DIST += tools/train-prefetch-model
