#!/bin/bash
# netem.sh: the delay sidecar of one region in deploy/docker-compose.yml.
#
# What it is for: the region's daemons share this container's network
# namespace (network_mode: service:<region>-net), so its egress qdisc is
# the region's WAN link.  For OMBRA_DELAYS="IP=MS,IP=MS" it builds a prio
# qdisc with one band per destination, a netem qdisc holding that band's
# packets MS milliseconds, and a u32 filter per destination address; other
# traffic takes the last band, undelayed.  Each region delays only what it
# sends, so the RTT between two regions is twice the pair's delay (the
# same matrix on both sides).  Then it sleeps until stopped.
#
# Needs CAP_NET_ADMIN and sch_netem in the host kernel (tc netem; the netns
# testbed uses NFQUEUE instead because its machine lacks sch_netem).
# How it fails: a bad OMBRA_DELAYS item or a failing tc command prints the
# reason and exits 1 (the compose file restarts the sidecar).
set -euo pipefail
DEV=${OMBRA_NETEM_DEV:-eth0}
IFS=, read -r -a items <<<"${OMBRA_DELAYS:-}"
n=${#items[@]}
if [ "$n" -gt 15 ]; then
	echo "netem.sh: at most 15 destinations (prio has 16 bands)" >&2
	exit 1
fi
tc qdisc del dev "$DEV" root 2>/dev/null || true
if [ "$n" -gt 0 ]; then
	# every priority maps to the last band (index n): undelayed default
	# shellcheck disable=SC2046
	tc qdisc add dev "$DEV" root handle 1: prio bands $((n + 1)) \
		priomap $(for _ in $(seq 16); do printf '%d ' "$n"; done)
	k=1
	for item in "${items[@]}"; do
		ip=${item%%=*}
		ms=${item#*=}
		if ! [[ "$ip" =~ ^[0-9.]+$ && "$ms" =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
			echo "netem.sh: OMBRA_DELAYS item '$item': expected IP=MS" >&2
			exit 1
		fi
		tc qdisc add dev "$DEV" parent 1:$k handle $((k * 10)): netem delay "${ms}ms"
		tc filter add dev "$DEV" parent 1: protocol ip prio 1 u32 \
			match ip dst "$ip/32" flowid 1:$k
		echo "netem.sh: $DEV -> $ip: ${ms} ms one way"
		k=$((k + 1))
	done
fi
trap 'exit 0' TERM INT
while :; do
	sleep 3600 &
	wait $!
done
