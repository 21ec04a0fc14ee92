# tests/integration: black-box tests against real ombra-metad processes on
# loopback (Python gRPC client from tests/py/gen, ombractl, ombra-local).
# Run through automake's harness with the environment of tests/local.mk;
# .py files by $(PYTHON3), .sh files by bash.  Each test bounds its own run
# time and stops every process it started.  The longest runs first so
# that `make -j2 check` overlaps it with the others.
INTEGRATION_TESTS = \
	tests/integration/test_wan_locality.py \
	tests/integration/test_wan_partition.py \
	tests/integration/test_wan_region_loss.py \
	tests/integration/test_wan_shadow_lifecycle.py \
	tests/integration/test_wan_staleness.py \
	tests/integration/test_e2e_crash.py \
	tests/integration/test_e2e_clients.sh \
	tests/integration/test_e2e_corrupt.py \
	tests/integration/test_e2e_bad_input.py \
	tests/integration/test_replay.py \
	tests/integration/test_failover.py \
	tests/integration/test_stored.py \
	tests/integration/test_leases.py \
	tests/integration/test_volume_lease.py \
	tests/integration/test_region_failover.py \
	tests/integration/test_shadow_policy.py \
	tests/integration/test_foreign_copies.py \
	tests/integration/test_shadow_converge.py \
	tests/integration/test_foreign_sweep.py \
	tests/integration/test_routing.py \
	tests/integration/test_prefetch_engine.py \
	tests/integration/test_proxy.py \
	tests/integration/test_bad_input.py \
	tests/integration/test_membership.py \
	tests/integration/test_ombractl.sh \
	tests/integration/test_launcher.sh \
	tests/integration/test_testbed.sh \
	tests/integration/test_http.py \
	tests/integration/test_watch.py \
	tests/integration/test_tls.py
TESTS += $(INTEGRATION_TESTS)
EXTRA_DIST += $(INTEGRATION_TESTS) tests/integration/lib.sh tests/run-all
