#!/usr/bin/env bash
# ACME issuance benchmark, in one run: the same client (build/bench/certfleet-bench-acme: N
# accounts in parallel, M orders each, K names per order, http-01 answered by the client's own
# responder, a P-256 CSR per order, certificate downloaded) against
#  1. certfleet: certfleet-acme + certfleet-validator + certfleet-signer(s) on PostgreSQL,
#     Redis and the broker (bench/lib_bench.sh), an EC P-256 CA with ACME enabled;
#  2. pebble (Debian's, the ACME test server of Let's Encrypt) validating http-01 for real:
#     its -dnsserver is a small DNS responder (below) answering 127.0.0.1 for every name and its httpPort is the
#     client's responder, so it does the same work certfleet's validator does;
#  3. pebble with PEBBLE_VA_ALWAYS_VALID=1: no validation at all, the most generous setting
#     for pebble (an upper bound of its request handling, not a like-for-like comparison).
# Both pebble runs use PEBBLE_VA_NOSLEEP=1 (no artificial validation delay) and
# PEBBLE_WFE_NONCEREJECT=0 (by default pebble rejects 5% of good nonces on purpose, which
# costs it retries that certfleet does not pay). pebble keeps everything in memory and signs
# with an in-process key: it has no database, no broker and no audit trail.
#
#   bench/run_acme.sh [--accounts N] [--orders M] [--names K] [--signers S]
#                     [--validators V] [--poll-cap-ms MS] [--pebble-timeout S]
#                     [--pebble-only] [--verbose]
# --pebble-only skips certfleet (no database; builds only the client). --verbose logs every
# request of the client with its time in $tmp/client-LABEL.log and shows the certfleet one.
# --poll-cap-ms: the client sleeps what Retry-After says between polls, but at most this
# (certfleet-acme answers Retry-After: 1 on pending objects, pebble sends none, so the client
# polls pebble every 5 ms, doubling).
set -euo pipefail
accounts=16 orders=20 names=1 signers=2 validators=2 pebble_only=0 verbose=() poll_cap=200 pebble_timeout=45
while [ $# -gt 0 ]; do
  case "$1" in
    --accounts) accounts=$2; shift 2 ;;
    --orders) orders=$2; shift 2 ;;
    --names) names=$2; shift 2 ;;
    --signers) signers=$2; shift 2 ;;
    --validators) validators=$2; shift 2 ;;
    --pebble-only) pebble_only=1; shift ;;
    --verbose) verbose=(--verbose); shift ;;
    --poll-cap-ms) poll_cap=$2; shift 2 ;;
    --pebble-timeout) pebble_timeout=$2; shift 2 ;;
    *) echo "usage: $0 [--accounts N] [--orders M] [--names K] [--signers S] [--validators V] [--poll-cap-ms MS] [--pebble-timeout S] [--pebble-only] [--verbose]" >&2
       exit 2 ;;
  esac
done
command -v pebble >/dev/null || { echo "pebble is not installed (apt-get install pebble)" >&2; exit 77; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
http_port=$(free_port)
dns_port=$(free_port)

if [ "$pebble_only" = 1 ]; then
  cd "$(dirname "$0")/.."
  root=$(pwd)
  cmake -B build -S . >/dev/null && cmake --build build -j"$(nproc)" --target certfleet-bench-acme >/dev/null
  tmp=$(mktemp -d /tmp/certfleet-bench-acme.XXXXXX)
  pids=()
  s_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
  }
  trap s_cleanup EXIT
  stop_pids() {
    local p
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
  }
else
  acme_port=$(free_port)
  # The validator connects to 127.0.0.1 whatever the name, on the client's responder port;
  # its resolver (CAA, dns-01) is the DNS responder below, so nothing leaves the machine.
  # challenge_wait_ms: the client polls at once after answering its one challenge per order
  # (docs/acme.md "Challenges"); CERTFLEET_ACME_CHALLENGE_WAIT_MS=0 measures without it.
  BENCH_EXTRA_CONFIG="[acme]
listen = 127.0.0.1:$acme_port
base_url = http://127.0.0.1:$acme_port
challenge_wait_ms = 1000
[validator]
http_port = $http_port
connect_address = 127.0.0.1
dns_resolver = 127.0.0.1:$dns_port"
  # shellcheck source=lib_bench.sh
  . "$(dirname "$0")/lib_bench.sh"
fi
client="$root/build/bench/certfleet-bench-acme"

# A small DNS responder for pebble's VA (and certfleet's resolver): A queries get 127.0.0.1, every other
# type an empty NOERROR answer (so: no CAA records, no AAAA).
cat >"$tmp/dnsresponder.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    q, addr = s.recvfrom(512)
    if len(q) < 12:
        continue
    i = 12
    while i < len(q) and q[i] != 0:
        i += q[i] + 1
    if i + 5 > len(q):
        continue
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    answers = 1 if qtype == 1 else 0
    resp = q[:2] + struct.pack(">HHHHH", 0x8180, 1, answers, 0, 0) + q[12:i + 5]
    if answers:
        resp += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    s.sendto(resp, addr)
PY
python3 "$tmp/dnsresponder.py" "$dns_port" 2>"$tmp/dnsresponder.log" &
pids+=($!)

# Wait until URL answers 200 (curl options after it), at most 20 s.
wait_http() {
  local url=$1 i
  shift
  for i in $(seq 1 200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$@" "$url" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "no answer from $url" >&2
  return 1
}

# One client run, given up after LIMIT seconds: its table row goes to $tmp/rows; failures
# are reported but do not stop the script. Returns the client's status (124: timed out).
run_client() {
  local label=$1 dir=$2 limit=$3 rc=0
  shift 3
  timeout "$limit" "$client" --directory "$dir" --accounts "$accounts" --orders "$orders" \
    --names "$names" --http-port "$http_port" --label "$label" --poll-cap-ms "$poll_cap" \
    ${verbose[@]+"${verbose[@]}"} "$@" >>"$tmp/rows" 2>"$tmp/client-$label.log" || rc=$?
  if [ "$rc" = 124 ]; then
    echo "# $label: no result within $limit s" >&2
  elif [ "$rc" != 0 ]; then
    echo "# $label: some orders failed, first errors:" >&2
    grep -v '^[0-9.]* \[' "$tmp/client-$label.log" | head -20 >&2
  fi
  return "$rc"
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$tmp/pebble-key.pem" -out "$tmp/pebble-cert.pem" -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

# pebble with ENV settings: LABEL ENV...
# pebble 2.4.0 (Debian 12) can deadlock under concurrent load, more often the more accounts
# and names: every request then hangs on its in-memory store's lock. Goroutine dumps (SIGQUIT)
# show MemoryStore.FindValidAuthorization holding the store's read lock while it waits for an
# authorization's own lock, and a writer queued on the store lock: a lock-order inversion in
# pebble, not something a client can avoid. A run that hangs is given up after
# --pebble-timeout seconds and retried with a fresh pebble, at most three times; every hung
# attempt is reported on stderr and counted below the table.
pebble_hangs=0
run_pebble() {
  local label=$1 attempt lport mport tport pid rc
  shift
  for attempt in 1 2 3; do
    lport=$(free_port) mport=$(free_port) tport=$(free_port)
    cat >"$tmp/pebble-$label.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$lport", "managementListenAddress": "127.0.0.1:$mport",
  "certificate": "$tmp/pebble-cert.pem", "privateKey": "$tmp/pebble-key.pem",
  "httpPort": $http_port, "tlsPort": $tport, "ocspResponderURL": "",
  "externalAccountBindingRequired": false}}
JSON
    env PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 "$@" \
      pebble -config "$tmp/pebble-$label.json" -dnsserver "127.0.0.1:$dns_port" \
      >"$tmp/pebble-$label.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_http "https://127.0.0.1:$lport/dir" --insecure
    rc=0
    run_client "$label" "https://127.0.0.1:$lport/dir" "$pebble_timeout" --insecure || rc=$?
    stop_pids "$pid"
    [ "$rc" = 124 ] || return 0
    pebble_hangs=$((pebble_hangs + 1))
    echo "# $label: pebble hung (attempt $attempt of 3)" >&2
  done
}

: >"$tmp/rows"
if [ "$pebble_only" = 0 ]; then
  for i in $(seq 1 "$signers"); do start_worker certfleet-signer "bench-signer-$i"; done
  for i in $(seq 1 "$validators"); do start_worker certfleet-validator "bench-validator-$i"; done
  sleep 1
  cf ca init acmebench "CN=ACME bench" --key-type EC --acme-enable >/dev/null
  if [ -x "$root/build/bin/certfleet-acme" ]; then
    start_front certfleet-acme
    wait_http "http://127.0.0.1:$acme_port/acme/acmebench/directory"
    run_client certfleet "http://127.0.0.1:$acme_port/acme/acmebench/directory" 3600 || true
  else
    echo "# build/bin/certfleet-acme is missing: certfleet row skipped" >&2
  fi
fi
run_pebble pebble-http01
run_pebble pebble-always-valid PEBBLE_VA_ALWAYS_VALID=1

printf '# %s cores, %s accounts x %s orders x %s names, %s\n' "$(nproc)" "$accounts" "$orders" \
  "$names" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-24s %8s %8s %7s %9s %9s %9s %9s\n' server accounts orders failed seconds orders/s \
  "p50 ms" "p99 ms"
cat "$tmp/rows"
if [ ${#verbose[@]} -gt 0 ] && [ -f "$tmp/client-certfleet.log" ]; then
  echo "# certfleet client log:" >&2
  cat "$tmp/client-certfleet.log" >&2
fi
# orders/s is the sixth column; the ratio is certfleet over each pebble run.
python3 -c '
import sys
rate = {f[0]: float(f[5]) for f in (l.split() for l in sys.stdin) if len(f) >= 8}
cf = rate.get("certfleet")
for peer in ("pebble-http01", "pebble-always-valid"):
    if cf is not None and rate.get(peer):
        print("certfleet / %s: %.2fx" % (peer, cf / rate[peer]))' <"$tmp/rows"
[ "$pebble_hangs" = 0 ] || echo "pebble hung $pebble_hangs time(s) and was restarted (see above)"
