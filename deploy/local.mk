# deploy/: local launcher and quick-start scripts.
dist_bin_SCRIPTS += deploy/ombra-local
EXTRA_DIST += deploy/install-deps deploy/main-job
