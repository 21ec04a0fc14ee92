# tools/: ombra-replay, the trace replay tool (Python 3, see docs/replay.md).
#
# BUILD/tools/ombra-replay is generated from tools/ombra-replay.in with the
# interpreter, the library directory (tools/ in the source tree) and the
# directory of the Python gRPC stubs substituted.  The stubs are the ones
# tests/local.mk generates from proto/ into BUILD/tests/py/gen (one rule
# for both); `make` builds them for the tool, `make check` for the tests.
REPLAY_PY = \
	tools/ombra_replay/__init__.py \
	tools/ombra_replay/cli.py \
	tools/ombra_replay/content.py \
	tools/ombra_replay/engine.py \
	tools/ombra_replay/grpc_backend.py \
	tools/ombra_replay/mapping.py \
	tools/ombra_replay/nbd_backend.py \
	tools/ombra_replay/report.py \
	tools/ombra_replay/stubs.py \
	tools/ombra_replay/traces.py
EXTRA_DIST += tools/ombra-replay.in $(REPLAY_PY)
noinst_SCRIPTS = tools/ombra-replay
noinst_DATA = $(PY_GEN_STAMP)
CLEANFILES += tools/ombra-replay

tools/ombra-replay: $(srcdir)/tools/ombra-replay.in Makefile
	@$(MKDIR_P) tools
	$(AM_V_GEN)sed -e 's|@PYTHON3[@]|$(PYTHON3)|g' \
		-e 's|@toolsdir[@]|$(abs_top_srcdir)/tools|g' \
		-e 's|@gendir[@]|$(abs_top_builddir)/tests/py/gen|g' \
		$(srcdir)/tools/ombra-replay.in > $@.tmp && \
		chmod +x $@.tmp && mv $@.tmp $@

# Unit tests of the replay library: trace readers, mapping, content and
# the engine against in-process servers (no cluster needed).
REPLAY_TESTS = \
	tests/tools/test_traces.py \
	tests/tools/test_replay_engine.py
TESTS += $(REPLAY_TESTS)
EXTRA_DIST += $(REPLAY_TESTS) tests/tools/replay_helpers.py

# The consistency checker of the multi-region tests (tests/checker:
# linearizability of STRONG reads, BOUNDED staleness, monotonic versions)
# on known-good and known-bad histories.
TESTS += tests/tools/test_checker.py
EXTRA_DIST += tests/tools/test_checker.py tests/checker
# Structure of deploy/docker-compose.yml (Docker is not run by the tests).
TESTS += tests/tools/test_compose.py
EXTRA_DIST += tests/tools/test_compose.py
