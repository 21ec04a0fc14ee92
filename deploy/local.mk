# deploy/: local launcher and quick-start scripts.
dist_bin_SCRIPTS += deploy/ombra-local
EXTRA_DIST += deploy/install-deps deploy/main-job
# netns testbed (docs/testbed.md) and its untested docker-compose twin
EXTRA_DIST += deploy/testbed/ombra-testbed deploy/testbed/testbed_procs.py \
	deploy/docker-compose.yml deploy/docker/Dockerfile \
	deploy/docker/Dockerfile.dockerignore deploy/docker/entrypoint.sh \
	deploy/docker/netem.sh
