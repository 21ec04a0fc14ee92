# tests/: shared test wiring.  Every test runs through automake's parallel
# harness with the environment below; the groups live in their own
# fragments.
# The shared real traces: $OMBRA_TRACES_DIR, else ../shared/traces next to
# the source tree, else /work/shared/traces (tests skip when none exists).
# OMBRA_OPTIMIZED=yes: no debug, no sanitizers (latency goals asserted).
AM_TESTS_ENVIRONMENT = \
	OMBRA_SRCDIR='$(abs_top_srcdir)'; export OMBRA_SRCDIR; \
	OMBRA_OPTIMIZED='$(OMBRA_OPTIMIZED)'; export OMBRA_OPTIMIZED; \
	OMBRA_BUILDDIR='$(abs_top_builddir)'; export OMBRA_BUILDDIR; \
	PYTHONPATH='$(abs_top_builddir)/tests/py/gen:$(abs_top_srcdir)/tests/py'; export PYTHONPATH; \
	PATH='$(abs_top_builddir)/metad:$(abs_top_builddir)/cli:$(abs_top_srcdir)/deploy:'"$$PATH"; export PATH; \
	for d in '$(abs_top_srcdir)/../shared/traces' /work/shared/traces; do \
		if [ -z "$${OMBRA_TRACES_DIR:-}" ] && [ -d "$$d" ]; then \
			OMBRA_TRACES_DIR=$$d; fi; done; \
	if [ -n "$${OMBRA_TRACES_DIR:-}" ]; then export OMBRA_TRACES_DIR; \
		: "$${OMBRA_TRACE:=$$OMBRA_TRACES_DIR/cloudPhysicsIO.vscsi.zst}"; \
		export OMBRA_TRACE; fi;
TEST_EXTENSIONS = .py .sh
PY_LOG_COMPILER = $(PYTHON3)
SH_LOG_COMPILER = /bin/bash

# Python gRPC client stubs generated from proto/ (grpc_tools).
PY_GEN_STAMP = tests/py/gen/.stamp
$(PY_GEN_STAMP): $(PROTO_FILES)
	@$(MKDIR_P) tests/py/gen
	$(AM_V_GEN)$(PYTHON3) -m grpc_tools.protoc -I$(srcdir)/proto \
		--python_out=tests/py/gen --grpc_python_out=tests/py/gen \
		$(addprefix $(srcdir)/,$(PROTO_FILES)) && touch $@
check_DATA = $(PY_GEN_STAMP)
clean-local:
	rm -rf tests/py/gen
EXTRA_DIST += tests/py

include tests/unit/lib.mk
include tests/unit/rpc.mk
include tests/unit/store.mk
include tests/unit/fsm.mk
include tests/unit/nbd.mk
include tests/unit/lstm.mk
include tests/unit/sim.mk
include tests/unit/predict.mk
include tests/raft/local.mk
include tests/integration/local.mk
