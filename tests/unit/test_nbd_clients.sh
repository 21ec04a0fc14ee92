#!/bin/bash
# test_nbd_clients.sh: real NBD clients (nbdinfo, qemu-io, qemu-img,
# nbdcopy, fio's nbd engine) against the proxy's NBD server over the tests'
# memory backend (nbd_memserver: the protocol layer alone, not the
# cluster).  Each check asserts the client's output or the bytes read
# back.  Skips (77) when qemu-io or nbdinfo is not installed
# (deploy/install-deps installs them).
set -euo pipefail

for tool in qemu-io qemu-img nbdinfo nbdcopy; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP: $tool not installed (apt-get install qemu-utils libnbd-bin fio)"
		exit 77
	fi
done

BUILD=${OMBRA_BUILDDIR:-$(pwd)}
SERVER=$BUILD/tests/unit/nbd_memserver
TMP=$(mktemp -d /tmp/ombra-nbd-clients.XXXXXX)
SIZE=$((16 * 1024 * 1024))
PID=

cleanup() {
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		wait "$PID" || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

"$SERVER" --size "$SIZE" vol1 vol2 disk >"$TMP/port" 2>"$TMP/server.log" &
PID=$!
for _ in $(seq 100); do
	[ -s "$TMP/port" ] && break
	sleep 0.05
done
PORT=$(head -n1 "$TMP/port")
[ -n "$PORT" ] || fail "nbd_memserver did not start: $(cat "$TMP/server.log")"
URI=nbd://127.0.0.1:$PORT

echo "# nbdinfo"
[ "$(nbdinfo --size "$URI/vol1")" = "$SIZE" ] || fail "nbdinfo --size"
nbdinfo --json "$URI/vol1" >"$TMP/info.json"
/usr/bin/python3 - "$TMP/info.json" "$SIZE" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
exp = info["exports"][0]
assert exp["export-size"] == int(sys.argv[2]), exp
assert exp["block_size_minimum"] == 1, exp
assert exp["block_size_preferred"] == 4096, exp
assert exp["block_size_maximum"] == 32 * 1024 * 1024, exp
assert exp["can_flush"] and exp["can_fua"] and exp["can_trim"], exp
assert exp["can_zero"] and exp["can_multi_conn"], exp
assert not exp["is_read_only"], exp
PY
nbdinfo --list "$URI" >"$TMP/list"
for v in vol1 vol2 disk; do
	grep -q "export=\"$v\"\|export: $v\|^$v$" "$TMP/list" ||
		grep -q "$v" "$TMP/list" || fail "nbdinfo --list misses $v"
done
if nbdinfo "$URI/nope" >"$TMP/nope" 2>&1; then
	fail "nbdinfo of an unknown export succeeded"
fi
# nbdinfo shows the error, not the server's message: the server logs it.
grep -q "No such file\|not exist\|unknown" "$TMP/nope" ||
	fail "unknown export: $(cat "$TMP/nope")"
grep -q "export nope: volume nope does not exist" "$TMP/server.log" ||
	fail "unknown export message not logged"
if nbdinfo "$URI/" >"$TMP/default" 2>&1; then
	fail "nbdinfo of the default export succeeded"
fi
grep -q "there is no default export" "$TMP/server.log" ||
	fail "default export message not logged"

echo "# qemu-io patterns"
qemu-io -f raw "$URI/vol1" -c 'write -P 0x5a 0 64k' -c 'read -P 0x5a 0 64k' \
	>"$TMP/qio" 2>&1 || fail "qemu-io: $(cat "$TMP/qio")"
grep -q "wrote 65536/65536 bytes at offset 0" "$TMP/qio" || fail "qemu-io write: $(cat "$TMP/qio")"
grep -q "read 65536/65536 bytes at offset 0" "$TMP/qio" || fail "qemu-io read: $(cat "$TMP/qio")"
if grep -q "Pattern verification failed" "$TMP/qio"; then
	fail "qemu-io pattern: $(cat "$TMP/qio")"
fi
# Data written by one client is read by another; unaligned I/O, write
# zeroes, discard, FUA and pipelined aio.
qemu-io -f raw "$URI/vol1" -c 'read -P 0x5a 0 64k' \
	-c 'write -P 0x11 1000 3333' -c 'read -P 0x11 1000 3333' \
	-c 'write -z 1M 256k' -c 'read -P 0 1M 256k' \
	-c 'write -f -P 0x22 2M 128k' -c 'read -P 0x22 2M 128k' \
	-c 'aio_write -P 0x33 4M 64k' -c 'aio_write -P 0x44 5M 64k' \
	-c 'aio_flush' -c 'read -P 0x33 4M 64k' -c 'read -P 0x44 5M 64k' \
	-c 'discard 8M 64k' -c 'flush' \
	-c "read -P 0 $((SIZE - 4096)) 4k" \
	>"$TMP/qio2" 2>&1 || fail "qemu-io: $(cat "$TMP/qio2")"
if grep -qi "failed\|error" "$TMP/qio2"; then
	fail "qemu-io: $(cat "$TMP/qio2")"
fi
# Beyond the end: refused with a message, the server keeps serving.
if qemu-io -f raw "$URI/vol1" -c "read $SIZE 4k" >"$TMP/qio3" 2>&1 &&
	! grep -qi "error\|invalid\|out of" "$TMP/qio3"; then
	fail "read beyond the end: $(cat "$TMP/qio3")"
fi

echo "# qemu-img convert in and nbdcopy out"
head -c $((SIZE - 12345)) /dev/urandom >"$TMP/in.raw"
truncate -s "$SIZE" "$TMP/in.raw"
qemu-img convert -n -f raw -O raw "$TMP/in.raw" "$URI/vol2" ||
	fail "qemu-img convert"
nbdcopy "$URI/vol2" "$TMP/out.raw" || fail "nbdcopy"
cmp "$TMP/in.raw" "$TMP/out.raw" || fail "qemu-img convert / nbdcopy differ"
qemu-img compare -f raw -F raw "$TMP/in.raw" "$URI/vol2" >/dev/null ||
	fail "qemu-img compare"
# Several connections at once (nbdcopy uses multi-conn when advertised).
nbdcopy --connections=4 --requests=16 "$TMP/in.raw" "$URI/disk" ||
	fail "nbdcopy in"
nbdcopy "$URI/disk" - | cmp - "$TMP/in.raw" || fail "nbdcopy round trip"

if fio --enghelp=nbd >/dev/null 2>&1; then
	echo "# fio nbd engine, verify"
	fio --name=verify --ioengine=nbd --uri="$URI/vol1" --rw=randwrite \
		--bs=4k --size=8M --iodepth=16 --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --output="$TMP/fio" ||
		fail "fio: $(cat "$TMP/fio")"
	grep -q "err= 0" "$TMP/fio" || fail "fio: $(cat "$TMP/fio")"
fi

kill -TERM "$PID"
wait "$PID" || fail "nbd_memserver exited with an error: $(cat "$TMP/server.log")"
PID=
echo "PASS: nbd clients"
