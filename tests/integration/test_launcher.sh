#!/bin/bash
# test_launcher: deploy/ombra-local end to end in a temp dir.
#
# up --regions 3 --json (3 running members, regions r1..r3 registered),
# status (exit 0, JSON with every member), a volume created through
# ombractl, a SIGKILLed member restarted by a second `up` (only that one
# gets a new pid), down (every process gone, status exits 1), up again
# (data kept: the volume is still there, regions not duplicated), a
# conflicting --regions refused, down.
#
# Fails (exit 1) printing the command, its output and the metad log tails.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

local_json() { # ARGS...: ombra-local ARGS --dir CLUSTER_DIR, output in OUT/ERR
	timeout 120 "$PY" "$OMBRA_LOCAL" "$@" --dir "$CLUSTER_DIR" >"$OUT" 2>"$ERR"
	RC=$?
}

pids_alive() { # FILE: number of listed pids that are live ombra-metad processes
	local n=0 p
	for p in $(jpy "$1" '" ".join(str(p["pid"]) for p in d["processes"] if p["pid"])'); do
		if grep -q ombra-metad "/proc/$p/cmdline" 2>/dev/null &&
			! grep -q '^[^)]*) Z' "/proc/$p/stat" 2>/dev/null; then
			n=$((n + 1))
		fi
	done
	echo $n
}

log "help"
timeout 30 "$PY" "$OMBRA_LOCAL" --help >"$OUT" 2>"$ERR" || fail "ombra-local --help"
for c in up status down; do
	timeout 30 "$PY" "$OMBRA_LOCAL" $c --help >"$OUT" 2>"$ERR" || fail "ombra-local $c --help"
	contains '--dir' "$OUT" "$c --help"
done
timeout 30 "$PY" "$OMBRA_LOCAL" bogus >"$OUT" 2>"$ERR"
[ $? -eq 2 ] || fail "unknown command should exit 2"
local_json status
[ $RC -eq 1 ] || fail "status of an empty dir should exit 1"
contains 'ombra-local:' "$ERR" "status of an empty dir"

log "up --regions 3"
local_up --regions 3
cp "$TMP/up.json" "$TMP/up1.json"
check "$TMP/up1.json" 'len(d["processes"]) == 3 and all(p["running"] and p["role"] == "metad" for p in d["processes"])' \
	"up: 3 running metad"
check "$TMP/up1.json" '[p["region"] for p in d["processes"]] == ["r1", "r2", "r3"] and d["endpoints"] == ",".join(p["grpc"] for p in d["processes"])' \
	"up: regions and endpoints"
check "$TMP/up1.json" 'all(int(p["raft"].split(":")[1]) == int(p["grpc"].split(":")[1]) + 1 and int(p["http"].split(":")[1]) == int(p["grpc"].split(":")[1]) + 2 for p in d["processes"])' \
	"up: raft = grpc+1, http = grpc+2"
[ "$(pids_alive "$TMP/up1.json")" -eq 3 ] || fail "up: pids are not 3 live ombra-metad"
for i in 1 2 3; do
	[ -s "$CLUSTER_DIR/metad-$i/metad.conf" ] || fail "no metad-$i/metad.conf"
	grep -q "bootstrap *= *true" "$CLUSTER_DIR/metad-$i/metad.conf" || fail "metad-$i not bootstrap"
	[ "$(grep -c '^\[member\.' "$CLUSTER_DIR/metad-$i/metad.conf")" -eq 3 ] ||
		fail "metad-$i.conf does not list 3 members"
done

log "status"
local_json status --json
[ $RC -eq 0 ] || fail "status exited $RC"
check "$OUT" 'len(d["processes"]) == 3 and all(p["running"] for p in d["processes"]) and len(d["cluster"]) == 3 and all(m["ok"] for m in d["cluster"])' \
	"status --json"
local_json status
[ $RC -eq 0 ] || fail "status (human) exited $RC"
contains 'running' "$OUT" "status (human)"

log "regions registered, create a volume"
ok --json region list
check "$OUT" 'sorted(r["name"] for r in d["regions"]) == ["r1", "r2", "r3"]' "regions after up"
ok volume create lv1 --size 3GiB --region r2

log "SIGKILL metad-2, up restarts only it"
pid2=$(jpy "$TMP/up1.json" 'd["processes"][1]["pid"]')
kill -9 "$pid2" || fail "kill metad-2"
for _ in $(seq 50); do
	grep -q ombra-metad "/proc/$pid2/cmdline" 2>/dev/null &&
		! grep -q '^[^)]*) Z' "/proc/$pid2/stat" 2>/dev/null || break
	sleep 0.1
done
local_json status --json
[ $RC -eq 1 ] || fail "status with a dead member should exit 1 (got $RC)"
check "$OUT" '[p["running"] for p in d["processes"]] == [True, False, True]' "status after kill"
local_json up --json
[ $RC -eq 0 ] || fail "second up exited $RC"
cp "$OUT" "$TMP/up2.json"
check "$TMP/up2.json" 'all(p["running"] for p in d["processes"])' "second up"
p1a=$(jpy "$TMP/up1.json" '[p["pid"] for p in d["processes"]]')
p2a=$(jpy "$TMP/up2.json" '[p["pid"] for p in d["processes"]]')
"$PY" -c 'import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.exit(0 if a[0] == b[0] and a[2] == b[2] and a[1] != b[1] else 1)' "$p1a" "$p2a" ||
	fail "second up should restart only metad-2 (pids before $p1a, after $p2a)"
contains 'region r1 already exists' "$ERR" "second up re-registers regions idempotently"

log "down"
local_json down
[ $RC -eq 0 ] || fail "down exited $RC"
[ "$(pids_alive "$TMP/up2.json")" -eq 0 ] || fail "processes still alive after down"
local_json status --json
[ $RC -eq 1 ] || fail "status after down should exit 1"
check "$OUT" 'not any(p["running"] for p in d["processes"])' "status after down"
grep -Eq 'SIGTERM|shut|stop|exit' "$CLUSTER_DIR/metad-1/metad.log" ||
	log "note: metad-1's log does not mention the shutdown"

log "up again keeps the data"
local_json up --regions 3 --json
[ $RC -eq 0 ] || fail "third up exited $RC"
ok --json volume get lv1
check "$OUT" "d['volume']['size_bytes'] == 3 * 2**30 and d['volume']['home_region'] == 'r2'" \
	"volume lv1 after restart"
ok --json region list
check "$OUT" 'sorted(r["name"] for r in d["regions"]) == ["r1", "r2", "r3"]' "regions after restart"

log "a conflicting --regions is refused"
local_json up --regions 5
[ $RC -eq 1 ] || fail "up --regions 5 on a 3-region dir should exit 1 (got $RC)"
contains '3-region' "$ERR" "conflict message"

log "down"
local_json down
[ $RC -eq 0 ] || fail "final down exited $RC"
local_json status --json
check "$OUT" 'not any(p["running"] for p in d["processes"])' "status after final down"
log "PASS"
