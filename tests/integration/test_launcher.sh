#!/bin/bash
# test_launcher: deploy/ombra-local end to end with real daemons, 2 regions
# (per region 1 ombra-metad, 2 ombra-stored, 1 ombra-proxy) in a temp dir.
#
# up --json (8 processes, the documented port layout, live pids of the
# right binaries, every /healthz 200, every stored NODE_UP in metad, logs
# in DIR/<proc>/<proc>.log, metad configured with node_timeout_ms = 3000),
# status (human and JSON), data written through r1's proxy (gRPC) reads
# back, `ombractl volume shards` shows the primary's version and tier,
# `kill r1-stored1` (metad marks it DOWN, status exits 1) and `start
# r1-stored1` (UP again, only its pid changes), `kill --signal TERM` of a
# proxy and `up` restarting only it, down (every process gone), up again
# (volume and data kept, regions not duplicated), a conflicting --regions
# refused, unknown process names refused, down.
#
# Fails (exit 1) printing the command, its output and every process's log
# tail.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export PYTHONPATH=$BLD/tests/py/gen${PYTHONPATH:+:$PYTHONPATH}

local_cmd() { # ARGS...: ombra-local ARGS --dir CLUSTER_DIR, output in OUT/ERR
	timeout 180 "$PY" "$OMBRA_LOCAL" "$@" --dir "$CLUSTER_DIR" >"$OUT" 2>"$ERR"
	RC=$?
}

# pids_alive FILE: number of listed processes whose pid runs their binary.
pids_alive() {
	local n=0 p bin
	while read -r p bin; do
		if grep -qa "ombra-$bin" "/proc/$p/cmdline" 2>/dev/null &&
			! grep -q '^[^)]*) Z' "/proc/$p/stat" 2>/dev/null; then
			n=$((n + 1))
		fi
	done < <(jpy "$1" '"\n".join("%d %s" % (p["pid"], p["role"]) for p in d["processes"] if p["pid"])')
	echo $n
}

# pid_of FILE NAME: the pid a summary lists for process NAME.
pid_of() { jpy "$1" "[p['pid'] for p in d['processes'] if p['name'] == '$2'][0]"; }

# node_state NAME: the state metad reports for storage node NAME.
node_state() {
	ctl --json node list
	[ $RC -eq 0 ] || fail "node list exited $RC"
	jpy "$OUT" "([n['state'] for n in d.get('nodes', []) if n['name'] == '$1'] + ['absent'])[0]"
}

# wait_node NAME STATE SECONDS
wait_node() {
	local i s
	for i in $(seq $(($3 * 2))); do
		s=$(node_state "$1")
		[ "$s" = "$2" ] && return 0
		sleep 0.5
	done
	fail "$1 is $s in metad, expected $2 within $3 s"
}

# data write|check PROXY: a pattern across the first segment boundary
# (1 MiB), unaligned, through the proxy's VolumeService.
data() {
	timeout 60 "$PY" - "$1" "$2" >"$OUT" 2>"$ERR" <<'EOF'
import sys
import grpc
import volume_pb2
import volume_pb2_grpc

mode, proxy = sys.argv[1], sys.argv[2]
stub = volume_pb2_grpc.VolumeServiceStub(grpc.insecure_channel(proxy))
off, n = 2**20 - 3 * 4096 + 17, 6 * 4096 + 100
pattern = bytes((i * 7 + 3) % 251 for i in range(n))
if mode == "write":
    stub.Write(volume_pb2.WriteRequest(volume="lv1", offset_bytes=off, data=pattern,
                                       request_id="test-launcher-1"), timeout=30)
r = stub.Read(volume_pb2.ReadRequest(volume="lv1", offset_bytes=off, length_bytes=n),
              timeout=30)
if r.data != pattern:
    sys.exit("read back %d bytes that differ from the %d written" % (len(r.data), n))
print("ok")
EOF
	[ $? -eq 0 ] || fail "data $1 through $2"
}

log "help and usage errors"
timeout 30 "$PY" "$OMBRA_LOCAL" --help >"$OUT" 2>"$ERR" || fail "ombra-local --help"
for c in up status down kill start; do
	timeout 30 "$PY" "$OMBRA_LOCAL" $c --help >"$OUT" 2>"$ERR" || fail "ombra-local $c --help"
	contains '--dir' "$OUT" "$c --help"
done
timeout 30 "$PY" "$OMBRA_LOCAL" bogus >"$OUT" 2>"$ERR"
[ $? -eq 2 ] || fail "unknown command should exit 2"
local_cmd status
[ $RC -eq 1 ] || fail "status of an empty dir should exit 1"
contains 'ombra-local:' "$ERR" "status of an empty dir"

log "up --regions 2"
local_up --regions 2
S=$TMP/up1.json
cp "$TMP/up.json" "$S"
check "$S" '[p["name"] for p in d["processes"]] == ["r1-metad", "r1-stored1", "r1-stored2", "r1-proxy", "r2-metad", "r2-stored1", "r2-stored2", "r2-proxy"]' \
	"up: the 8 processes of 2 regions"
check "$S" 'all(p["running"] and p["health"] == "ok" for p in d["processes"])' \
	"up: every process running and /healthz ok"
BASE=$(jpy "$S" 'int(d["processes"][0]["grpc"].split(":")[1])')
"$PY" - "$S" "$BASE" >"$OUT" 2>"$ERR" <<'EOF' || fail "up: port layout"
import json, sys
d, base = json.load(open(sys.argv[1])), int(sys.argv[2])
want = {"metad": {"grpc": 0, "raft": 1, "http": 2}, "stored1": {"grpc": 3, "http": 4},
        "stored2": {"grpc": 5, "http": 6}, "proxy": {"grpc": 7, "nbd": 8, "http": 9}}
for p in d["processes"]:
    i = int(p["region"][1:])
    for k, off in want[p["name"].split("-")[1]].items():
        got = int(p[k].split(":")[1])
        if got != base + 10 * (i - 1) + off:
            sys.exit("%s %s port %d, expected %d" % (p["name"], k, got, base + 10 * (i - 1) + off))
for i, r in enumerate(d["regions"], 1):
    if r["name"] != "r%d" % i or len(r["stored"]) != 2 or not r["proxy"]["nbd"] or \
            not r["metad"]["grpc"]:
        sys.exit("regions entry %d incomplete: %r" % (i, r))
EOF
[ "$(pids_alive "$S")" -eq 8 ] || fail "up: the pids are not 8 live daemons"
for p in r1-metad r1-stored1 r1-stored2 r1-proxy r2-metad r2-stored1 r2-stored2 r2-proxy; do
	[ -s "$CLUSTER_DIR/$p/$p.log" ] || fail "no log $CLUSTER_DIR/$p/$p.log"
done
grep -q '^node_timeout_ms = 3000$' "$CLUSTER_DIR/r1-metad/metad.conf" ||
	fail "metad.conf does not set node_timeout_ms = 3000"
for h in $(jpy "$S" '" ".join(p["http"] for p in d["processes"])'); do
	"$PY" -c 'import sys, urllib.request
sys.exit(0 if urllib.request.urlopen("http://%s/healthz" % sys.argv[1], timeout=5).status == 200 else 1)' \
		"$h" || fail "GET http://$h/healthz is not 200"
done
ok --json node list
check "$OUT" 'sorted(n["name"] for n in d["nodes"] if n["state"] == "NODE_UP" and n["last_heartbeat_ms_ago"] > 0) == ["r1-stored1", "r1-stored2", "r2-stored1", "r2-stored2"]' \
	"every stored heartbeating and NODE_UP"
check "$OUT" 'all(n["capacity_bytes"] == 80 * 2**30 and len(n["tiers"]) == 2 for n in d["nodes"])' \
	"every stored has the fast and slow tiers (16 + 64 GiB)"
ok node list
contains 'r2-stored2' "$OUT" "node list (human)"

log "status"
local_cmd status --json
[ $RC -eq 0 ] || fail "status exited $RC"
check "$OUT" 'len(d["processes"]) == 8 and all(p["running"] and p["health"] == "ok" for p in d["processes"]) and len(d["cluster"]) == 2 and all(m["ok"] for m in d["cluster"])' \
	"status --json"
local_cmd status
[ $RC -eq 0 ] || fail "status (human) exited $RC"
contains '^r1-proxy +[0-9]+ +up ' "$OUT" "status (human) shows r1-proxy up"

log "a volume and data through r1's proxy"
P1=$(jpy "$S" 'd["regions"][0]["proxy"]["grpc"]')
P2=$(jpy "$S" 'd["regions"][1]["proxy"]["grpc"]')
ok volume create lv1 --size 1GiB --region r1
data write "$P1"
data check "$P2"
ok --json volume shards lv1 --max 2
check "$OUT" 'all(s["primary_info"]["version"] > 0 and s["primary_info"]["tier"] in ("fast", "slow") for s in d["segments"])' \
	"volume shards: the primaries report a version and tier for the written segments"
ok volume shards lv1 --max 3
contains '^ +0 +r1-stored[12] +r1-stored[12] ' "$OUT" "volume shards (human)"

log "kill r1-stored1, metad marks it DOWN, start it again"
local_cmd kill r1-stored1
[ $RC -eq 0 ] || fail "kill r1-stored1 exited $RC"
local_cmd status --json
[ $RC -eq 1 ] || fail "status with a dead stored should exit 1 (got $RC)"
check "$OUT" '[p["name"] for p in d["processes"] if not p["running"]] == ["r1-stored1"]' \
	"status after kill"
wait_node r1-stored1 NODE_DOWN 15
local_cmd kill r1-stored1
[ $RC -eq 1 ] || fail "killing a stopped process should exit 1"
local_cmd start r1-stored1 --json
[ $RC -eq 0 ] || fail "start r1-stored1 exited $RC"
wait_node r1-stored1 NODE_UP 5
local_cmd status --json
[ $RC -eq 0 ] || fail "status after start exited $RC"
cp "$OUT" "$TMP/st2.json"
"$PY" -c 'import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
pa = {p["name"]: p["pid"] for p in a["processes"]}
pb = {p["name"]: p["pid"] for p in b["processes"]}
sys.exit(0 if all((pa[n] != pb[n]) == (n == "r1-stored1") for n in pa) else 1)' "$S" "$TMP/st2.json" ||
	fail "start should start only r1-stored1"
data check "$P1"

log "kill --signal TERM r2-proxy, up restarts only it"
local_cmd kill r2-proxy --signal TERM
[ $RC -eq 0 ] || fail "kill --signal TERM r2-proxy exited $RC"
contains 'r2-proxy: stopped' "$ERR" "r2-proxy exits on SIGTERM"
local_cmd up --json
[ $RC -eq 0 ] || fail "second up exited $RC"
cp "$OUT" "$TMP/up2.json"
"$PY" -c 'import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
pa = {p["name"]: p["pid"] for p in a["processes"]}
pb = {p["name"]: p["pid"] for p in b["processes"]}
sys.exit(0 if all((pa[n] != pb[n]) == (n == "r2-proxy") for n in pa) else 1)' "$TMP/st2.json" "$TMP/up2.json" ||
	fail "second up should restart only r2-proxy"
contains 'region r1 already exists' "$ERR" "second up registers regions idempotently"
data check "$P2"

log "bad process names"
local_cmd kill r9-stored1
[ $RC -eq 1 ] || fail "kill of an unknown process should exit 1"
contains 'processes: r1-metad' "$ERR" "unknown process message lists the processes"
local_cmd start nonsense
[ $RC -eq 1 ] || fail "start of an unknown process should exit 1"

log "down"
local_cmd down
[ $RC -eq 0 ] || fail "down exited $RC"
[ "$(pids_alive "$TMP/up2.json")" -eq 0 ] || fail "processes still alive after down"
contains 'r1-stored1: stopped' "$ERR" "stored exits on SIGTERM"
local_cmd status --json
[ $RC -eq 1 ] || fail "status after down should exit 1"
check "$OUT" 'not any(p["running"] for p in d["processes"])' "status after down"

log "up again keeps the data"
local_cmd up --regions 2 --json
[ $RC -eq 0 ] || fail "third up exited $RC"
check "$OUT" 'all(p["running"] and p["health"] == "ok" for p in d["processes"])' "third up"
ok --json volume get lv1
check "$OUT" "d['volume']['size_bytes'] == 2**30 and d['volume']['home_region'] == 'r1'" \
	"volume lv1 after restart"
ok --json region list
check "$OUT" 'sorted(r["name"] for r in d["regions"]) == ["r1", "r2"]' "regions after restart"
data check "$P1"

log "a conflicting --regions is refused"
local_cmd up --regions 3
[ $RC -eq 1 ] || fail "up --regions 3 on a 2-region dir should exit 1 (got $RC)"
contains '2-region' "$ERR" "conflict message"

log "down"
local_cmd down
[ $RC -eq 0 ] || fail "final down exited $RC"
local_cmd status --json
check "$OUT" 'not any(p["running"] for p in d["processes"])' "status after final down"
log "PASS"
