#!/bin/bash
# test_ombractl: the admin CLI against a real 3-member cluster (started with
# ombra-local on free ports in a temp dir).
#
# Covers region add/list, node register/list (nodes registered late in a
# leader's term must still get their heartbeat grace), volume create (10GiB, 1MiB
# segments, --replicas) / get / list / resize / shards / delete in human and
# --json output (parsed with python3), exit codes (1 for server errors such
# as NOT_FOUND and ALREADY_EXISTS, 2 for usage errors), and leader
# following when only a follower's endpoint is given.
#
# Fails (exit 1) printing the command, its stdout/stderr and the metad log
# tails.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

GIB=1073741824

log "start a 3-region cluster"
local_up --regions 3 --metad-only
UP_AT=$(date +%s)
check "$TMP/up.json" 'len(d["processes"]) == 3 and all(p["running"] for p in d["processes"])' \
	"ombra-local up did not report 3 running members"

log "cluster status"
ok cluster status
contains 'leader' "$OUT" "cluster status (human) names no leader"
EP_ALL=$EP
for i in 0 1 2; do
	EP=$(echo "$EP_ALL" | cut -d, -f$((i + 1)))
	ok --json cluster status
	cp "$OUT" "$TMP/status$i.json"
done
EP=$EP_ALL
# cluster status --json on one endpoint: [{"endpoint": EP, "status":
# GetClusterStatusResponse}] (one entry per endpoint asked).
norm='(d[0]["status"] if isinstance(d, list) else d)'
LEADER_EP=
FOLLOWER_EP=
for i in 0 1 2; do
	st=$(jpy "$TMP/status$i.json" "$norm[\"state\"]")
	ep=$(echo "$EP_ALL" | cut -d, -f$((i + 1)))
	case $st in
	leader) LEADER_EP=$ep ;;
	follower) FOLLOWER_EP=$ep ;;
	esac
	check "$TMP/status$i.json" "$norm[\"leader_address\"] != '' and len($norm[\"state_hash\"]) == 64" \
		"member $ep: status without leader address or state hash"
done
[ -n "$LEADER_EP" ] && [ -n "$FOLLOWER_EP" ] ||
	fail "no leader/follower among the 3 statuses (leader '$LEADER_EP', follower '$FOLLOWER_EP')"
log "leader $LEADER_EP, a follower $FOLLOWER_EP"

log "regions"
ok region add r9
expect_rc 1 region add r1
contains 'ALREADY_EXISTS' "$ERR" "duplicate region add"
ok region list
for r in r1 r2 r3 r9; do contains "(^|[[:space:]])$r([[:space:]]|$)" "$OUT" "region list"; done
ok --json region list
check "$OUT" 'sorted(r["name"] for r in d["regions"]) == ["r1", "r2", "r3", "r9"]' \
	"region list --json"

log "volume create / get"
ok volume create v1 --size 10GiB --region r1 --segment-size 1MiB --replicas 2
ok --json volume get v1
check "$OUT" "d['volume']['size_bytes'] == 10 * $GIB and d['volume']['segment_size_bytes'] == 2**20" \
	"volume get v1 sizes"
check "$OUT" "d['volume']['replicas'] == 2 and d['volume']['home_region'] == 'r1' and d['volume']['segment_count'] == 10240 and d['volume']['state'] == 'VOLUME_ACTIVE'" \
	"volume get v1 fields"
ok volume get v1
contains 'v1' "$OUT" "volume get (human)"
contains '10GiB|10 GiB' "$OUT" "volume get (human) size"
ok --json volume create v2 --size 64MiB --region r2
check "$OUT" "d['volume']['name'] == 'v2' and d['volume']['segment_size_bytes'] == 2**20 and d['volume']['replicas'] == 2" \
	"volume create v2 --json defaults"

log "volume list"
ok volume list
contains 'v1' "$OUT" "volume list"
contains 'v2' "$OUT" "volume list"
ok --json volume list --region r1
check "$OUT" '[v["name"] for v in d["volumes"]] == ["v1"]' "volume list --region r1"

log "volume resize"
ok --json volume resize v1 --size 20GiB
check "$OUT" "d['volume']['size_bytes'] == 20 * $GIB and d['volume']['segment_count'] == 20480" \
	"resize to 20GiB"
expect_rc 1 volume resize v1 --size 5GiB
contains 'FAILED_PRECONDITION' "$ERR" "shrink"

log "nodes (registered more than node_timeout_ms = 10 s after the election)"
# A registered node gets node_timeout_ms of grace to send its first
# heartbeat, counted from its registration: registering late in a leader's
# term must not mark it DOWN at once.  (No ombra-stored heartbeats here.)
while [ $(($(date +%s) - UP_AT)) -lt 12 ]; do sleep 0.5; done
for n in 1 2 3; do
	ok node register "n$n" --region r1 --address "127.0.0.1:$((9100 + n))" \
		--tier "fast:$TMP/n$n/fast:100GiB" --tier "slow:$TMP/n$n/slow:1TiB"
done
sleep 1.5 # > metad's 1 s health check period
ok --json node list --region r1
check "$OUT" 'sorted(n["name"] for n in d["nodes"]) == ["n1", "n2", "n3"]' "node list --json"
check "$OUT" 'all(n["capacity_bytes"] == 1124 * 2**30 for n in d["nodes"])' \
	"node capacity is not the sum of its tiers"
check "$OUT" 'all(n["state"] == "NODE_UP" for n in d["nodes"])' \
	"nodes registered 1.5 s ago are not NODE_UP"
ok node list
for n in n1 n2 n3; do contains "$n" "$OUT" "node list"; done
ok --json node list --region r2
check "$OUT" 'd.get("nodes", []) == []' "node list --region r2 is not empty"

log "volume shards"
# v1 was created before any node existed: when n2 and n3 registered, metad
# pinned its segments where they were (on n1) and listed the newcomer as a
# copy to re-sync, because a segment may hold data (docs/metad.md).  A
# volume created now spreads over all three nodes.
ok --json volume shards v1 --max 64
check "$OUT" 'all(len(s["replica_node_ids"]) + len(s.get("resync_node_ids", [])) == 1 for s in d["segments"])' \
	"shards v1: every segment pinned with one replica in sync or to re-sync"
ok volume create vs --size 20GiB --region r1 --segment-size 1MiB --replicas 2
ok --json volume shards vs
cp "$OUT" "$TMP/shards.json"
check "$TMP/shards.json" 'len(d["segments"]) == 1024 and d["next_segment"] == 1024' \
	"shards: first page of 1024 with next_segment 1024"
check "$TMP/shards.json" 'all(s["primary_node_id"] in {n["id"] for n in d["nodes"]} and len(s["replica_node_ids"]) == 1 and s["primary_node_id"] not in s["replica_node_ids"] for s in d["segments"])' \
	"shards: every segment needs a known primary and one distinct replica"
check "$TMP/shards.json" '[s["index"] for s in d["segments"]] == list(range(1024))' "shards: indexes"
check "$TMP/shards.json" 'len({s["primary_node_id"] for s in d["segments"]}) == 3' \
	"shards: 1024 segments should spread over all 3 nodes"
ok --json volume shards vs --first 20478 --max 5
check "$OUT" '[s["index"] for s in d["segments"]] == [20478, 20479] and d["next_segment"] == 0' \
	"shards: last page"
ok volume shards vs --max 4 --no-versions
contains 'n[123]' "$OUT" "shards (human) names nodes"

log "errors and exit codes"
expect_rc 1 volume get nosuch
contains 'NOT_FOUND' "$ERR" "get unknown volume"
contains 'nosuch' "$ERR" "get unknown volume message"
expect_rc 1 volume create v1 --size 1GiB --region r1
contains 'ALREADY_EXISTS' "$ERR" "duplicate volume"
expect_rc 1 volume create v3 --size 1GiB --region r7
contains 'NOT_FOUND' "$ERR" "unknown region"
expect_rc 2 volume create v3 --region r1
expect_rc 2 volume create v3 --size 10XB --region r1
expect_rc 2 volume create v3 --size 1GiB --region r1 --replicas many
expect_rc 2 volume frobnicate v1
expect_rc 2 nosuchcommand
expect_rc 2 volume get
ctl --help
[ $RC -eq 0 ] || fail "ombractl --help exited $RC"
contains 'volume' "$OUT" "--help mentions volume"
timeout 60 "$OMBRACTL" --endpoints 127.0.0.1:1 --timeout-ms 1500 cluster status >"$OUT" 2>"$ERR"
RC=$?
[ $RC -eq 1 ] || fail "unreachable endpoint: exit $RC, expected 1"
[ -s "$ERR" ] || fail "unreachable endpoint: no message"

log "leader following from a follower endpoint"
EP=$FOLLOWER_EP
ok --json volume create v3 --size 1GiB --region r3 --replicas 1
check "$OUT" "d['volume']['name'] == 'v3' and d['volume']['replicas'] == 1" "create via follower"
ok --json volume get v3
check "$OUT" "d['volume']['home_region'] == 'r3'" "get via follower"
EP=$EP_ALL

log "volume delete"
timeout 60 "$OMBRACTL" --endpoints "$EP" volume delete v2 </dev/null >"$OUT" 2>"$ERR"
RC=$?
[ $RC -eq 2 ] || fail "delete without --yes on a non-TTY: exit $RC, expected 2"
ok volume get v2
ok volume delete v2 --yes
expect_rc 1 volume get v2
contains 'NOT_FOUND' "$ERR" "deleted volume"
expect_rc 1 volume delete v2 --yes
ok --json volume list
check "$OUT" 'sorted(v["name"] for v in d["volumes"]) == ["v1", "v3", "vs"]' "volume list after delete"

log "every member converged on the same state"
EP=$EP_ALL
converged=0
for _ in $(seq 50); do
	ok --json cluster status
	if [ "$(jpy "$OUT" 'len(d) == 3 and len({e["status"]["state_hash"] for e in d}) == 1 and len({e["status"]["applied_index"] for e in d}) == 1')" = true ]; then
		converged=1
		break
	fi
	sleep 0.2
done
[ $converged -eq 1 ] || fail "members did not reach the same applied index and state hash in 10 s"

log "PASS"
