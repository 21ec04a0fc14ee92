# deploy/: local launcher and quick-start scripts.
dist_bin_SCRIPTS += deploy/ombra-local
