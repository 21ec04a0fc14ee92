#!/bin/bash
# test_testbed: deploy/testbed/ombra-testbed end to end: 3 regions, each in
# its own network namespace with 1 ombra-metad, 2 ombra-stored and 1
# ombra-proxy, real one-way delays r1-r2 25 ms, r1-r3 40 ms, r2-r3 30 ms
# (NFQUEUE + ombra-netdelay, applied where packets arrive).
#
# Proves: `up --json` lists the 12 processes on the regions' addresses and
# the delay matrix; the TCP connect time (SYN to a closed port, RST back:
# one round trip) between regions, both ways and for every pair, is twice
# the one-way delay (the minimum of 6 within -1/+6 ms), from the observer
# namespace a real connect to metad takes under 5 ms; a 32 MiB
# TCP stream r1 -> r2 runs at more than 4 MB/s (the delay does not throttle
# the sender's socket); a volume
# homed in r1, created with ombractl, is written and read back through r2's
# proxy (Python gRPC client run with `ombra-testbed exec r2`), and that
# write takes at least one r1-r2 round trip; `status` exits 0;
# `kill r3 stored2` + `restart r3 stored2` bring it back; `partition P`
# (r2, or r3 if r2's metad leads the Raft group) makes P unreachable from
# the other regions (and them from P) while the observer still reaches it,
# and `heal P` restores the delayed path; `down` leaves
# no namespace, no ombra-netdelay and no change to the host's iptables;
# no daemon log holds a sanitizer report.
#
# Skips (exit 77, naming what is missing) without root, ip/iptables,
# network namespaces (with veth and bridge), NFQUEUE (kernel module
# nfnetlink_queue) or a build with ombra-netdelay (configure without
# libnetfilter-queue-dev).  Fails
# (exit 1) printing the command, its output and every process's log tail.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
export PYTHONPATH=$BLD/tests/py/gen${PYTHONPATH:+:$PYTHONPATH}

TESTBED=$SRC/deploy/testbed/ombra-testbed
NETDELAY=$BLD/tools/netdelay/ombra-netdelay
NAME=t$(($$ % 100000))
TB_DIR=$TMP/testbed
# shellcheck disable=SC2034
CLUSTER_DIR=$TB_DIR # lib.sh's dump_logs: DIR/<proc>/<proc>.log

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

host_iptables() { # the root namespace's rules without counters
	iptables-save 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
}

tb() { # ARGS...: ombra-testbed ARGS with this test's dir; RC, OUT, ERR
	timeout 150 "$TESTBED" --dir "$TB_DIR" --bin-dir "$BLD" "$@" >"$OUT" 2>"$ERR"
	RC=$?
}

testbed_cleanup() {
	local rc=$?
	if [ -f "$TB_DIR/testbed.json" ]; then
		timeout 60 "$TESTBED" --dir "$TB_DIR" down >/dev/null 2>&1 || true
	fi
	ip netns del "$NAME-probe" 2>/dev/null
	(exit $rc)
	cleanup
}
trap testbed_cleanup EXIT

# ---------------------------------------------------------------- skips

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, iptables, NFQUEUE)"
for t in ip iptables iptables-save; do
	command -v "$t" >/dev/null || skip "$t not installed (deploy/install-deps: iproute2 iptables)"
done
[ -x "$NETDELAY" ] || skip "$NETDELAY not built (configure did not find libnetfilter_queue; deploy/install-deps installs libnetfilter-queue-dev)"
ip netns add "$NAME-probe" 2>"$ERR" || skip "network namespaces unavailable: $(cat "$ERR")"
ip -n "$NAME-probe" link add pa type veth peer name pb 2>"$ERR" &&
	ip -n "$NAME-probe" link add pbr type bridge 2>>"$ERR" ||
	skip "veth pairs or bridges unavailable in a network namespace: $(cat "$ERR")"
modprobe nfnetlink_queue 2>/dev/null
ip netns exec "$NAME-probe" iptables -w -A OUTPUT -d 10.99.0.0/24 -j NFQUEUE --queue-num 7 \
	2>"$ERR" || skip "iptables NFQUEUE target unavailable: $(cat "$ERR")"
timeout 1 ip netns exec "$NAME-probe" "$NETDELAY" --queue 7=1 >"$OUT" 2>"$ERR"
[ $? -eq 124 ] || skip "ombra-netdelay cannot bind an NFQUEUE queue (module nfnetlink_queue?): $(tail -2 "$ERR")"
ip netns del "$NAME-probe" || fail "ip netns del $NAME-probe"
IPT_BEFORE=$TMP/ipt-before
host_iptables >"$IPT_BEFORE"

# ---------------------------------------------------------------- up

log "help and usage"
timeout 10 "$TESTBED" --help >"$OUT" 2>"$ERR" || fail "ombra-testbed --help"
for w in up down status partition heal kill restart exec; do
	contains "^  $w" "$OUT" "--help lists $w"
done
timeout 10 "$TESTBED" bogus >"$OUT" 2>"$ERR"
[ $? -eq 2 ] || fail "unknown command should exit 2"
tb status
[ $RC -eq 1 ] && [ -s "$ERR" ] || fail "status of an empty dir should exit 1 with a message"

log "up: 3 regions, testbed $NAME"
T0=$(date +%s)
tb up --name "$NAME" --json
[ $RC -eq 0 ] || fail "ombra-testbed up exited $RC"
S=$TMP/up.json
cp "$OUT" "$S"
log "up took $(($(date +%s) - T0)) s"
check "$S" 'len(d["processes"]) == 12 and all(p["running"] and p["health"] == "ok" for p in d["processes"])' \
	"up: 12 processes running and healthy"
check "$S" 'all(p["grpc"].startswith("10.77.%s.1:" % p["region"][1:]) for p in d["processes"])' \
	"up: every process on its region's address"
check "$S" 'd["testbed"]["delays_ms"] == {"r1-r2": 25.0, "r1-r3": 40.0, "r2-r3": 30.0}' \
	"up: the default delay matrix"
check "$S" '[r["netns"] for r in d["testbed"]["regions"]] == ["'"$NAME"'-r1", "'"$NAME"'-r2", "'"$NAME"'-r3"]' \
	"up: one namespace per region"
for r in r1 r2 r3; do
	ip netns list | grep -q "^$NAME-$r\b" || fail "namespace $NAME-$r missing"
done
tb status
[ $RC -eq 0 ] || fail "status exited $RC after up"

# ---------------------------------------------------------------- delays

# connect_ms REGION ADDR [PORT]: minimum TCP connect time (ms) from
# REGION's namespace over 6 tries, or "unreachable" (2 s timeout).  The
# default port 9 has no listener: the answer is a RST, one round trip as
# well, so the measure depends on no daemon.
connect_ms() {
	timeout 30 "$TESTBED" --dir "$TB_DIR" exec "$1" "$PY" -c '
import socket, sys, time
best = None
for _ in range(6):
    t = time.monotonic()
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
    except ConnectionRefusedError:
        pass
    except OSError:
        print("unreachable")
        sys.exit(0)
    ms = (time.monotonic() - t) * 1000
    best = ms if best is None else min(best, ms)
print("%.1f" % best)' "$2" "${3:-9}" 2>"$ERR"
}

# expect_rtt FROM TO ONE_WAY_MS
expect_rtt() {
	local i=${2#r} ms
	ms=$(connect_ms "$1" "10.77.$i.1")
	echo "$ms" >"$OUT"
	log "RTT $1 -> $2: $ms ms (one-way $3 ms)"
	"$PY" -c 'import sys; ms, d = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if 2 * d - 1 <= ms <= 2 * d + 6 else 1)' \
		"$ms" "$3" 2>/dev/null || fail "RTT $1 -> $2 is $ms ms, expected 2 x $3 ms"
}

log "round trips between regions"
expect_rtt r1 r2 25
expect_rtt r2 r1 25
expect_rtt r1 r3 40
expect_rtt r3 r2 30
MS=$(connect_ms wan 10.77.3.1 7120) # metad's gRPC port: a real connect
"$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 5 else 1)' "$MS" 2>/dev/null ||
	fail "observer -> r3 connect $MS ms, expected undelayed (< 5 ms)"

log "bulk TCP r1 -> r2 (32 MiB)"
timeout 60 "$TESTBED" --dir "$TB_DIR" exec r2 "$PY" -c '
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.2.1", 9700))
s.listen(1)
s.settimeout(30)
c, _ = s.accept()
n, t = 0, time.monotonic()
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    n += len(b)
print("%d %.3f" % (n, time.monotonic() - t))' >"$TMP/bulk" 2>"$ERR" &
BULK=$!
timeout 60 "$TESTBED" --dir "$TB_DIR" exec r1 "$PY" -c '
import socket, time
for _ in range(50):
    try:
        s = socket.create_connection(("10.77.2.1", 9700), timeout=5)
        break
    except ConnectionRefusedError:
        time.sleep(0.1)
buf = b"o" * (1 << 20)
for _ in range(32):
    s.sendall(buf)
s.close()' >"$OUT" 2>&1 || fail "bulk sender in r1"
wait $BULK || fail "bulk receiver in r2"
read -r BYTES SECS <"$TMP/bulk"
log "bulk: $BYTES bytes in $SECS s"
"$PY" -c 'import sys; n, s = int(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if n == 32 << 20 and n / s > 4e6 else 1)' \
	"$BYTES" "$SECS" || fail "bulk TCP r1 -> r2: $BYTES bytes in $SECS s, expected 32 MiB at > 4 MB/s"

# ---------------------------------------------------------------- data

log "volume homed in r1, written and read through r2's proxy"
timeout 60 "$TESTBED" --dir "$TB_DIR" exec wan "$OMBRACTL" volume create tbv --size 64MiB \
	--region r1 --replicas 2 >"$OUT" 2>"$ERR" || fail "ombractl volume create tbv --region r1"
timeout 90 "$TESTBED" --dir "$TB_DIR" exec r2 "$PY" - >"$OUT" 2>"$ERR" <<'EOF' || fail "data through r2's proxy"
import os, sys, time
import grpc
import volume_pb2
import volume_pb2_grpc

assert os.environ["OMBRA_REGION"] == "r2", os.environ["OMBRA_REGION"]
stub = volume_pb2_grpc.VolumeServiceStub(grpc.insecure_channel(os.environ["OMBRA_PROXY"]))
best = None
for k in range(4):
    off, n = 2**20 - 4096 + 512 * k, 3 * 4096 + 100
    data = bytes((i * 13 + k) % 251 for i in range(n))
    t = time.monotonic()
    stub.Write(volume_pb2.WriteRequest(volume="tbv", offset_bytes=off, data=data,
                                       request_id="test-testbed-%d" % k), timeout=30)
    ms = (time.monotonic() - t) * 1000
    best = ms if best is None else min(best, ms)
    r = stub.Read(volume_pb2.ReadRequest(volume="tbv", offset_bytes=off, length_bytes=n),
                  timeout=30)
    if r.data != data:
        sys.exit("write %d: read back %d bytes that differ from the %d written"
                 % (k, len(r.data), n))
print("fastest write through r2 to r1: %.1f ms" % best)
if best < 49:
    sys.exit("a write from r2 to the r1 volume took %.1f ms, less than one r1-r2 "
             "round trip (50 ms): the delay is not on the data path" % best)
EOF
log "$(cat "$OUT")"

# ---------------------------------------------------------------- processes

log "kill and restart r3 stored2"
tb kill r3 stored2
[ $RC -eq 0 ] || fail "kill r3 stored2 exited $RC"
tb status
[ $RC -eq 1 ] || fail "status should exit 1 while r3-stored2 is down"
tb restart r3 stored2
[ $RC -eq 0 ] || fail "restart r3 stored2 exited $RC"
tb status
[ $RC -eq 0 ] || fail "status exited $RC after the restart"

# ---------------------------------------------------------------- partition

# The partitioned region is one whose metad is not the Raft leader: this
# tests the testbed's mechanism; partitioning the leader is issue 5's
# failover tests' business (and crashed ombra-metad in raft_barrier on
# 2026-12-07, metad/raftnode.c barrier_done re-issuing a barrier from the
# callback while the deposed leader is torn down).
timeout 30 "$TESTBED" --dir "$TB_DIR" exec wan "$OMBRACTL" cluster status >"$OUT" 2>"$ERR" ||
	fail "ombractl cluster status"
LEADER=$(sed -n 's/^leader: *member \([0-9]*\) .*/\1/p' "$OUT")
[ -n "$LEADER" ] || fail "no leader in cluster status"
P=r2 A=r1 B=r3
[ "$LEADER" != 2 ] || { P=r3 A=r1 B=r2; }
PI=${P#r}
log "partition $P (metad leader: member $LEADER)"
tb partition "$P"
[ $RC -eq 0 ] || fail "partition $P exited $RC"
for pair in "$A 10.77.$PI.1" "$B 10.77.$PI.1" "$P 10.77.${A#r}.1"; do
	# shellcheck disable=SC2086
	MS=$(connect_ms $pair)
	[ "$MS" = unreachable ] || fail "partitioned: connect $pair answered in $MS ms"
done
MS=$(connect_ms wan "10.77.$PI.1")
[ "$MS" != unreachable ] || fail "partition $P also cut the observer off"
tb status
contains "$P: .*PARTITIONED" "$OUT" "status shows $P partitioned"
tb status --json
check "$OUT" '[r["name"] for r in d["testbed"]["regions"] if r["partitioned"]] == ["'"$P"'"] and all(r["netdelay_pid"] for r in d["testbed"]["regions"])' \
	"status --json: only $P partitioned, every ombra-netdelay running"
log "heal $P"
tb heal "$P"
[ $RC -eq 0 ] || fail "heal $P exited $RC"
expect_rtt "$A" "$P" "$(case "$A$P" in r1r2) echo 25 ;; r1r3) echo 40 ;; esac)"
expect_rtt "$P" "$B" "$(case "$P$B" in r2r3) echo 30 ;; r3r2) echo 30 ;; esac)"

# ---------------------------------------------------------------- down

log "down"
NETDELAY_PIDS=$(cat "$TB_DIR"/*-netdelay/netdelay.pid 2>/dev/null)
tb down
[ $RC -eq 0 ] || fail "down exited $RC"
if ip netns list | grep -q "^$NAME-"; then
	fail "namespaces left after down: $(ip netns list | grep "^$NAME-" | tr '\n' ' ')"
fi
for pid in $NETDELAY_PIDS; do
	if grep -qa ombra-netdelay "/proc/$pid/cmdline" 2>/dev/null; then
		fail "ombra-netdelay pid $pid still runs after down"
	fi
done
host_iptables >"$TMP/ipt-after"
diff "$IPT_BEFORE" "$TMP/ipt-after" >"$OUT" || fail "the host's iptables rules changed"
for p in $(jpy "$S" '" ".join(str(p["pid"]) for p in d["processes"])'); do
	[ ! -d "/proc/$p" ] || grep -q '^[^)]*) Z' "/proc/$p/stat" ||
		fail "daemon pid $p still runs after down"
done
if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TB_DIR"/*/*.log >"$OUT"; then
	fail "sanitizer reports in $(tr '\n' ' ' <"$OUT")"
fi
log "took $(($(date +%s) - T0)) s"
echo "PASS"
