# lib.sh: helpers shared by the shell integration tests (sourced, not run).
#
# Provides a temp dir removed on exit, a local cluster started with
# ombra-local on reserved free ports (tests/py/ombra_test.py reserve-ports)
# and stopped on exit, `ctl` (ombractl with a timeout, output captured in
# $OUT/$ERR, exit status in $RC), assertions that print the command, its
# output and the process log tails and exit 1, and `jpy FILE EXPR` to
# evaluate a Python expression over a JSON document (d) without jq.  Every
# external command runs under `timeout`, so a hung process fails the test
# instead of hanging it.

PY=/usr/bin/python3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${OMBRA_SRCDIR:-$(cd "$HERE/../.." && pwd)}
BLD=${OMBRA_BUILDDIR:-$SRC/build}
OMBRA_LOCAL=$SRC/deploy/ombra-local
OMBRACTL=$BLD/cli/ombractl
[ -x "$OMBRACTL" ] || OMBRACTL=$(command -v ombractl || true)
[ -n "$OMBRACTL" ] || { echo "FAIL: ombractl not built ($BLD/cli/ombractl)"; exit 1; }
[ -x "$BLD/metad/ombra-metad" ] || command -v ombra-metad >/dev/null ||
	{ echo "FAIL: ombra-metad not built ($BLD/metad/ombra-metad)"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ombra-sh-XXXXXX")
OUT=$TMP/out
ERR=$TMP/err
CLUSTER_DIR=$TMP/cluster
EP=
RC=0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

dump_logs() {
	local f
	for f in "$CLUSTER_DIR"/*/*.log; do
		[ -f "$f" ] || continue
		echo "---- tail of $f" >&2
		tail -40 "$f" >&2
	done
}

cleanup() {
	local rc=$? f
	if [ -f "$CLUSTER_DIR/cluster.json" ]; then
		timeout 60 "$PY" "$OMBRA_LOCAL" down --dir "$CLUSTER_DIR" >/dev/null 2>&1 || true
	fi
	for f in "${TMPDIR:-/tmp}"/ombra-test-ports/*; do
		[ "$(cat "$f" 2>/dev/null)" != "$$" ] || rm -f "$f"
	done
	if [ -n "${OMBRA_TEST_KEEP:-}" ]; then
		log "keeping $TMP (OMBRA_TEST_KEEP)"
	else
		rm -rf "$TMP"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*" >&2
	echo "---- last command's stdout:" >&2
	cat "$OUT" >&2 2>/dev/null
	echo "---- last command's stderr:" >&2
	cat "$ERR" >&2 2>/dev/null
	dump_logs
	exit 1
}

# local_up ARGS...: ombra-local up on a free base port, JSON to $TMP/up.json.
local_up() {
	local base
	# 3 blocks of 10 ports for members 1..3, reserved while this shell runs.
	base=$("$PY" "$SRC/tests/py/ombra_test.py" reserve-ports 3 $$) || fail "no free ports"
	timeout 120 "$PY" "$OMBRA_LOCAL" up --dir "$CLUSTER_DIR" --base-port "$base" \
		--json "$@" >"$TMP/up.json" 2>"$ERR"
	RC=$?
	cp "$TMP/up.json" "$OUT"
	[ $RC -eq 0 ] || fail "ombra-local up exited $RC"
	EP=$(jpy "$TMP/up.json" 'd["endpoints"]')
	log "cluster up: $EP"
}

# ctl ARGS...: ombractl against $EP; sets RC, OUT, ERR.
ctl() {
	timeout 90 "$OMBRACTL" --endpoints "$EP" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	[ $RC -ne 124 ] || fail "ombractl $* hung (killed after 90 s)"
}

# ok ARGS...: ctl that must exit 0.
ok() {
	ctl "$@"
	[ $RC -eq 0 ] || fail "ombractl $* exited $RC, expected 0"
}

# expect_rc N ARGS...: ctl that must exit N.
expect_rc() {
	local want=$1
	shift
	ctl "$@"
	[ $RC -eq "$want" ] || fail "ombractl $* exited $RC, expected $want"
	[ "$want" -eq 0 ] || [ -s "$ERR" ] || fail "ombractl $* exited $RC with no message"
}

# jpy FILE EXPR: print EXPR evaluated with d = the JSON document in FILE.
jpy() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
r = eval(sys.argv[2])
print(json.dumps(r) if isinstance(r, (dict, list, bool)) else r)' "$1" "$2" ||
		fail "cannot evaluate $2 over $1"
}

# check FILE EXPR WHAT: EXPR over the JSON in FILE must be true.
check() {
	local v
	v=$(jpy "$1" "$2")
	[ "$v" = "true" ] || fail "$3 (checked: $2)"
}

# contains PATTERN FILE WHAT: grep -E PATTERN must match FILE.
contains() {
	grep -Eq -- "$1" "$2" || fail "$3: /$1/ not in $(basename "$2")"
}
