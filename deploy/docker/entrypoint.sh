#!/bin/bash
# entrypoint.sh: the command of every container of deploy/docker-compose.yml.
#
#   entrypoint.sh netem            the region's delay sidecar (netem.sh)
#   entrypoint.sh metad            one member of the metad Raft group
#   entrypoint.sh stored N         the region's storage node N (1 or 2)
#   entrypoint.sh proxy            the region's proxy (gRPC + NBD)
#   entrypoint.sh init             add the regions to metad once it has a leader
#
# Environment: OMBRA_REGION (r1), OMBRA_REGION_ID (1), OMBRA_ADDR (the
# region's address on the wan network; every daemon of the region listens
# on it, they share the sidecar's network namespace), OMBRA_METAD
# ("1=10.78.0.11,2=10.78.0.12,..." the metad members by id), OMBRA_REGIONS
# (init: "r1,r2,r3"), OMBRA_DELAYS (netem).  Ports are those of region r1
# in deploy/ombra-local, in every region: metad gRPC 7100, Raft 7101, HTTP
# 7102; stored1 7103/7104; stored2 7105/7106; proxy gRPC 7107, NBD 7108,
# HTTP 7109.  Data in $OMBRA_DATA (default /data, a volume per container).
#
# How it fails: a missing variable or unknown role prints the reason and
# exits 2; a daemon's own failure is its exit status (compose restarts it).
# UNTESTED on the machine it was written on (no Docker; docs/testbed.md).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
D=${OMBRA_DATA:-/data}

need() {
	local v
	for v in "$@"; do
		[ -n "${!v:-}" ] || {
			echo "entrypoint.sh: $v is not set" >&2
			exit 2
		}
	done
}

# metad gRPC endpoints: "10.78.0.11:7100,..."
endpoints() {
	local item out=
	for item in ${OMBRA_METAD//,/ }; do
		out+=${out:+,}${item#*=}:7100
	done
	echo "$out"
}

case "${1:-}" in
netem)
	exec "$HERE/netem.sh"
	;;
metad)
	need OMBRA_REGION_ID OMBRA_ADDR OMBRA_METAD
	mkdir -p "$D/raft"
	{
		echo "[metad]"
		echo "id = $OMBRA_REGION_ID"
		echo "data_dir = $D/raft"
		echo "grpc_listen = $OMBRA_ADDR:7100"
		echo "raft_listen = $OMBRA_ADDR:7101"
		echo "http_listen = $OMBRA_ADDR:7102"
		echo "node_timeout_ms = 3000"
		echo "bootstrap = true"
		for item in ${OMBRA_METAD//,/ }; do
			printf '\n[member.%s]\nraft = %s:7101\ngrpc = %s:7100\n' \
				"${item%%=*}" "${item#*=}" "${item#*=}"
		done
	} >"$D/metad.conf"
	exec ombra-metad --config "$D/metad.conf"
	;;
stored)
	need OMBRA_REGION OMBRA_ADDR OMBRA_METAD
	n=${2:-}
	[[ "$n" =~ ^[12]$ ]] || {
		echo "entrypoint.sh: stored needs N (1 or 2)" >&2
		exit 2
	}
	port=$((7103 + 2 * (n - 1)))
	mkdir -p "$D/index" "$D/fast" "$D/slow"
	exec ombra-stored --name "$OMBRA_REGION-stored$n" --region "$OMBRA_REGION" \
		--listen "$OMBRA_ADDR:$port" --metad "$(endpoints)" --data-dir "$D/index" \
		--tier "fast:$D/fast:16GiB" --tier "slow:$D/slow:64GiB" \
		--http "$OMBRA_ADDR:$((port + 1))"
	;;
proxy)
	need OMBRA_REGION OMBRA_ADDR OMBRA_METAD
	exec ombra-proxy --region "$OMBRA_REGION" --listen "$OMBRA_ADDR:7107" \
		--metad "$(endpoints)" --nbd "$OMBRA_ADDR:7108" --http "$OMBRA_ADDR:7109"
	;;
init)
	need OMBRA_METAD OMBRA_REGIONS
	until ombractl --endpoints "$(endpoints)" --timeout-ms 3000 cluster status >/dev/null; do
		sleep 1
	done
	for r in ${OMBRA_REGIONS//,/ }; do
		if out=$(ombractl --endpoints "$(endpoints)" region add "$r" 2>&1); then
			echo "region $r added"
		elif [[ "$out" == *ALREADY_EXISTS* ]]; then
			echo "region $r already exists"
		else
			echo "entrypoint.sh: region add $r: $out" >&2
			exit 1
		fi
	done
	;;
*)
	echo "usage: entrypoint.sh netem|metad|stored N|proxy|init" >&2
	exit 2
	;;
esac
