#!/bin/bash
# test_e2e_clients: real NBD clients against a real one-region cluster.
#
# deploy/ombra-local starts 1 metad, 2 stored and 1 proxy in a temp dir on
# reserved ports; volumes have 2 copies (RF 2).  Through the proxy's NBD
# export:
#   - an ext4 image built from /usr/share/doc (mke2fs -d) goes into a
#     volume with qemu-img convert and comes back out byte-identical, and
#     e2fsck -fn passes on the copy;
#   - qemu-io patterns on a volume with 64 KiB segments: aligned and
#     512-byte unaligned writes across segment boundaries, the last block,
#     discard and write -z reading back zeros, requests in flight together
#     (aio), vectored I/O, neighbours left untouched;
#   - nbdcopy of 256 MiB of random data in and out, sha256 equal;
#   - fio's nbd engine: randwrite with verify=crc32c passes;
#   - nbdinfo shows the export size, nbdinfo --list lists every volume.
# Finally the cluster is stopped and no daemon log may hold a sanitizer
# report.
#
# Exit 77 (skip) only when one of the client programs is missing; any
# failure exits 1 printing the command, its output and every process log.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

for p in qemu-img qemu-io nbdcopy nbdinfo fio mke2fs e2fsck sha256sum; do
	command -v "$p" >/dev/null || { echo "SKIP: $p not installed (deploy/install-deps)"; exit 77; }
done

MIB=$((1024 * 1024))
T0=$(date +%s)

# run SECONDS CMD...: CMD under timeout, output in $OUT/$ERR, must exit 0.
run() {
	local secs=$1
	shift
	timeout "$secs" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	[ $RC -ne 124 ] || fail "$* ran over ${secs}s"
	[ $RC -eq 0 ] || fail "$* exited $RC"
}

# qio VOLUME CMDS...: qemu-io with each argument as one -c command; fails
# on a non-zero exit or any reported failure (older qemu-io exits 0 after
# a failed pattern check).
qio() {
	local vol=$1 args=() c
	shift
	for c in "$@"; do args+=(-c "$c"); done
	run 60 qemu-io -f raw -d unmap "${args[@]}" "$NBD/$vol"
	if grep -Eqi 'fail|error|mismatch' "$OUT" "$ERR"; then
		fail "qemu-io on $vol reported a failure for: $*"
	fi
}

# sha FILE: its sha256.
sha() { sha256sum "$1" | cut -d' ' -f1; }

local_up --regions 1
NBD=nbd://$(jpy "$TMP/up.json" 'd["regions"][0]["proxy"]["nbd"]')
NBD_HOST=$(jpy "$TMP/up.json" 'd["regions"][0]["proxy"]["nbd"]')
log "NBD export base $NBD"

ok volume create fs --size 256MiB --region r1 --replicas 2
ok volume create qio --size 16MiB --region r1 --replicas 2 --segment-size 64KiB
ok volume create rnd --size 256MiB --region r1 --replicas 2
ok volume create fio --size 64MiB --region r1 --replicas 2 --segment-size 256KiB

# The proxy learns new volumes from metad's watch stream: wait for each.
for v in fs qio rnd fio; do
	for i in $(seq 60); do
		timeout 10 nbdinfo --size "$NBD/$v" >"$OUT" 2>"$ERR" && break
		sleep 0.5
	done
	[ "$(cat "$OUT")" != "" ] || fail "proxy never exported volume $v"
done

log "-- nbdinfo: export size and the list of exports"
run 20 nbdinfo --json "$NBD/fs"
check "$OUT" 'd["exports"][0]["export-size"] == 256 * 1024 * 1024' "nbdinfo size of fs"
check "$OUT" 'd["exports"][0]["is_read_only"] is False' "fs is writable"
run 20 nbdinfo --size "$NBD/qio"
[ "$(cat "$OUT")" = $((16 * MIB)) ] || fail "nbdinfo --size qio: $(cat "$OUT")"
run 20 nbdinfo --list --json "nbd://$NBD_HOST"
check "$OUT" 'sorted(e["export-name"] for e in d["exports"]) == ["fio", "fs", "qio", "rnd"]' \
	"nbdinfo --list names every volume"

log "-- ext4 image from /usr/share/doc through qemu-img convert"
IMG_MB=256
DOC_MB=$(du -sm /usr/share/doc | cut -f1)
# A small tree gets a smaller image (mke2fs fails, and so the test, when a
# tree does not fit).
[ "$DOC_MB" -ge 64 ] || IMG_MB=$((DOC_MB * 2 + 32))
run 120 mke2fs -q -t ext4 -d /usr/share/doc "$TMP/img" "${IMG_MB}M"
run 60 e2fsck -fn "$TMP/img"
run 120 qemu-img convert -n -f raw -O raw "$TMP/img" "$NBD/fs"
run 120 qemu-img convert -f raw -O raw "$NBD/fs" "$TMP/fs.out"
# The volume may be larger than the image: compare the image's length and
# require zeros after it.
IMG_BYTES=$(stat -c %s "$TMP/img")
[ "$(stat -c %s "$TMP/fs.out")" -eq $((256 * MIB)) ] || fail "copy of fs has the wrong size"
cmp -n "$IMG_BYTES" "$TMP/img" "$TMP/fs.out" >"$OUT" 2>&1 || fail "ext4 image differs after the round trip"
if [ "$IMG_BYTES" -lt $((256 * MIB)) ]; then
	cmp -i "$IMG_BYTES:0" -n $((256 * MIB - IMG_BYTES)) "$TMP/fs.out" /dev/zero >"$OUT" 2>&1 ||
		fail "volume fs not zero after the image"
fi
truncate -s "$IMG_BYTES" "$TMP/fs.out"
run 60 e2fsck -fn "$TMP/fs.out"
grep -q 'clean\|files' "$OUT" || fail "e2fsck output unexpected"
# A second reader over the same export sees the same bytes (qemu-img compare).
run 120 qemu-img compare -f raw -F raw "$TMP/img" "$NBD/fs"
rm -f "$TMP/fs.out"
log "   ext4 round trip ok ($IMG_MB MiB image, $DOC_MB MiB tree)"

log "-- qemu-io patterns on 64 KiB segments"
S=65536
qio qio "write -P 0x11 0 1M" "read -P 0x11 0 1M"
# 512-byte aligned, unaligned to 4 KiB, across the boundary of segments 0/1
qio qio "write -P 0x22 $((S - 1536)) 3584" \
	"read -P 0x22 $((S - 1536)) 3584" \
	"read -P 0x11 $((S - 4096)) 2560" \
	"read -P 0x11 $((S + 2048)) 2048"
# a single 512-byte sector in the middle of a block
qio qio "write -P 0x33 $((5 * S + 1024)) 512" \
	"read -P 0x11 $((5 * S)) 1024" \
	"read -P 0x33 $((5 * S + 1024)) 512" \
	"read -P 0x11 $((5 * S + 1536)) 2560"
# one write spanning three segments, unaligned at both ends
qio qio "write -P 0x44 $((7 * S + 512)) $((2 * S + 1024))" \
	"read -P 0x44 $((7 * S + 512)) $((2 * S + 1024))" \
	"read -P 0x11 $((7 * S)) 512" \
	"read -P 0x11 $((9 * S + 1536)) 512"
# the last block and the last sector of the volume
qio qio "write -P 0x55 $((16 * MIB - 4096)) 4096" "read -P 0x55 $((16 * MIB - 4096)) 4096" \
	"write -P 0x56 $((16 * MIB - 512)) 512" "read -P 0x55 $((16 * MIB - 4096)) 3584" \
	"read -P 0x56 $((16 * MIB - 512)) 512"
# discard reads back zeros (whole and partial blocks), neighbours kept
qio qio "write -P 0x66 $((2 * MIB)) 1M" "discard $((2 * MIB)) 512k" \
	"read -P 0 $((2 * MIB)) 512k" "read -P 0x66 $((2 * MIB + 512 * 1024)) 512k"
# write -z, aligned and unaligned
qio qio "write -P 0x77 $((4 * MIB)) 1M" "write -z $((4 * MIB)) 256k" \
	"write -z $((4 * MIB + 300 * 1024 + 512)) 1024" \
	"read -P 0 $((4 * MIB)) 256k" "read -P 0x77 $((4 * MIB + 256 * 1024)) $((44 * 1024 + 512))" \
	"read -P 0 $((4 * MIB + 300 * 1024 + 512)) 1024" \
	"read -P 0x77 $((4 * MIB + 301 * 1024 + 512)) $((723 * 1024 - 512))"
# requests in flight together (aio), and vectored I/O across a boundary
qio qio "aio_write -P 0x88 $((10 * S)) 64k" "aio_write -P 0x89 $((11 * S + 4096)) 64k" \
	"aio_write -P 0x8a $((13 * S - 512)) 8k" "aio_flush" \
	"aio_read -P 0x88 $((10 * S)) 64k" "aio_read -P 0x89 $((11 * S + 4096)) 64k" \
	"aio_read -P 0x8a $((13 * S - 512)) 8k" "aio_flush" \
	"writev -P 0x99 $((15 * S - 1536)) 512 1024 2048" \
	"readv -P 0x99 $((15 * S - 1536)) 2048 1536" "read -P 0x11 $((15 * S + 2048)) 2048"
# everything above is still there, read back by a fresh connection
qio qio "read -P 0x11 0 $((S - 1536))" "read -P 0x22 $((S - 1536)) 3584" \
	"read -P 0x44 $((7 * S + 512)) $((2 * S + 1024))" \
	"read -P 0x55 $((16 * MIB - 4096)) 3584" "read -P 0 $((2 * MIB)) 512k" \
	"read -P 0 $((1 * MIB)) 1M"
log "   qemu-io patterns ok"

log "-- nbdcopy 256 MiB of random data in and out"
run 60 head -c $((256 * MIB)) /dev/urandom
mv "$OUT" "$TMP/rand"
run 180 nbdcopy "$TMP/rand" "$NBD/rnd"
run 180 nbdcopy "$NBD/rnd" "$TMP/rand.out"
[ "$(sha "$TMP/rand")" = "$(sha "$TMP/rand.out")" ] || fail "nbdcopy round trip: sha256 differs"
rm -f "$TMP/rand" "$TMP/rand.out"
log "   nbdcopy ok"

log "-- fio nbd engine: randwrite + verify=crc32c"
run 240 fio --name=e2e-verify --ioengine=nbd --uri="$NBD/fio" --rw=randwrite \
	--bsrange=4k-64k --size=64M --iodepth=16 --verify=crc32c --do_verify=1 \
	--verify_fatal=1 --verify_backlog=1024 --randrepeat=0 --output-format=json --output="$TMP/fio.json"
cp "$TMP/fio.json" "$OUT"
check "$OUT" 'd["jobs"][0]["error"] == 0' "fio job reported an error"
check "$OUT" 'd["jobs"][0]["write"]["io_bytes"] >= 64 * 1024 * 1024' "fio wrote the whole file"
check "$OUT" 'd["jobs"][0]["read"]["io_bytes"] > 0' "fio verified (read back) data"
log "   fio verify ok"

log "-- every daemon still runs; stop and check the logs"
local_cmd() { timeout 120 "$PY" "$OMBRA_LOCAL" "$@" --dir "$CLUSTER_DIR" >"$OUT" 2>"$ERR"; RC=$?; }
local_cmd status --json
check "$OUT" 'all(p["running"] for p in d["processes"])' "a daemon died during the test"
local_cmd down
[ $RC -eq 0 ] || fail "ombra-local down exited $RC"
if grep -l 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:' "$CLUSTER_DIR"/*/*.log >"$OUT"; then
	fail "sanitizer reports in $(tr '\n' ' ' <"$OUT")"
fi
log "PASS test_e2e_clients in $(($(date +%s) - T0))s"
exit 0
