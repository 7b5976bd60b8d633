#!/usr/bin/env bash
# Sourced by the interop tests: a fleet of their own on loopback (a fresh PostgreSQL database
# on CERTFLEET_TEST_PG, the test Redis, a broker on a free port), the programs started from
# CF_BIN_DIR, and the small assertions the scripts share. Skips (exit 77) without the test
# services. After sourcing: $work (temp folder, the current directory), $conf, cf (the
# command with the config), fleet_start PROG [NAME], fleet_wait_service TYPE COUNT,
# free_port, fail, has, json, pyjson, expect_fail. Extra config lines: FLEET_EXTRA_CONFIG. A
# function fleet_on_exit, if the test defines one, runs first when the test exits.
set -euo pipefail

if [ -z "${CERTFLEET_TEST_PG:-}" ] || [ -z "${CERTFLEET_TEST_REDIS:-}" ]; then
  echo "skipped: CERTFLEET_TEST_PG and CERTFLEET_TEST_REDIS are not set" >&2
  exit 77
fi
for tool in psql openssl python3 curl; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool is not installed" >&2; exit 77; }
done
: "${CF_BIN_DIR:?CF_BIN_DIR is not set}" "${CF_SOURCE_DIR:?CF_SOURCE_DIR is not set}"

work=$(mktemp -d)
chmod 755 "$work"
conf="$work/certfleet.conf"
db="cf_interop_$$_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
pids=()
db_made=0

fleet_cleanup() {
  local rc=$?
  # A test's own helpers (a DNS server, say) go first: fleet_on_exit, when the test defines it.
  if declare -F fleet_on_exit >/dev/null; then fleet_on_exit || true; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ $db_made = 1 ]; then
    psql "$CERTFLEET_TEST_PG" -qXc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  # A sanitizer report in any process log fails the test.
  if grep -l "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$work"/*.log 2>/dev/null; then
    echo "FAIL: a process log holds a sanitizer report" >&2
    [ $rc -ne 0 ] || rc=1
  fi
  if [ $rc -ne 0 ]; then
    for log in "$work"/*.log; do
      [ -f "$log" ] && { echo "--- $(basename "$log")"; tail -n 30 "$log"; }
    done
  fi
  cd /
  [ -n "${KEEP_WORK:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
  exit $rc
}
trap fleet_cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
cf() { "$CF_BIN_DIR/certfleet" --config "$conf" "$@"; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# has TEXT NEEDLE WHAT: TEXT contains NEEDLE.
has() { grep -qF -- "$2" <<<"$1" || fail "$3: output lacks \"$2\""; }
# json WHAT < DOC: DOC is one JSON document.
json() { python3 -m json.tool >/dev/null || fail "$1: output is not JSON"; }
# pyjson EXPR WHAT < DOC: the Python expression EXPR over the parsed document d is true.
pyjson() {
  python3 -c "import json, sys; d = json.load(sys.stdin); sys.exit(0 if ($1) else 1)" ||
    fail "$2: JSON does not satisfy $1"
}
# expect_fail CODE PATTERN ARGS...: certfleet ARGS exits CODE with one error line matching PATTERN.
expect_fail() {
  local code=$1 pattern=$2 rc=0
  shift 2
  cf "$@" >"$work/out" 2>"$work/err" || rc=$?
  [ $rc -eq "$code" ] || fail "certfleet $*: exit $rc, expected $code: $(cat "$work/err")"
  grep -q -- "$pattern" "$work/err" || fail "certfleet $*: \"$(cat "$work/err")\" lacks \"$pattern\""
  [ "$(wc -l <"$work/err")" -eq 1 ] || fail "certfleet $*: the error is not one line"
  [ ! -s "$work/out" ] || fail "certfleet $*: printed to standard output on error"
}

psql "$CERTFLEET_TEST_PG" -qXc "CREATE DATABASE \"$db\"" >/dev/null
db_made=1
dsn="$(sed -E 's/(^|[[:space:]])dbname=[^[:space:]]*//' <<<"$CERTFLEET_TEST_PG") dbname=$db"
broker_port=$(free_port)
mkdir -m 700 "$work/keys"
cat >"$conf" <<EOF
[broker]
endpoint = tcp://127.0.0.1:$broker_port
heartbeat_ms = 250
[postgres]
dsn = $dsn
migrations_dir = $CF_SOURCE_DIR/schemas/sql
[redis]
host = ${CERTFLEET_TEST_REDIS%:*}
port = ${CERTFLEET_TEST_REDIS##*:}
[keys]
storages_dir = $work/keys
[ca]
profiles_dir = $CF_SOURCE_DIR/schemas/profiles
[signer]
cache_ms = 0
[log]
level = warn
[curve]
insecure = true
${FLEET_EXTRA_CONFIG:-}
EOF
cf db migrate >/dev/null
cd "$work"

# fleet_start PROG [NAME]: start CF_BIN_DIR/PROG with the config (and --name NAME, for a
# worker), its output in NAME.log; its pid in $last_pid.
fleet_start() {
  local prog=$1 name=${2:-}
  if [ -n "$name" ]; then
    "$CF_BIN_DIR/$prog" --config "$conf" --name "$name" >"$work/$name.log" 2>&1 &
  else
    "$CF_BIN_DIR/$prog" --config "$conf" >"$work/$prog.log" 2>&1 &
  fi
  pids+=($!)
  last_pid=$!
}
# fleet_wait_service TYPE COUNT: until the broker counts COUNT workers for job type TYPE.
fleet_wait_service() {
  for _ in $(seq 150); do
    if cf status 2>/dev/null | grep -q "^${1//./\\.}  *$2 "; then return 0; fi
    sleep 0.2
  done
  cf status >&2 || true
  fail "no $2 worker(s) for $1 came up"
}
