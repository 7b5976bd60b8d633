#!/usr/bin/env bash
# OCSP benchmark, in one run:
#  (b) pre-signing the responses of COUNT P-256 certificates with two certfleet-ocsp workers,
#      as a ratio of the raw `openssl speed -multi 2 ecdsap256` signing rate measured here;
#  (c) certfleet-ocspd requests/s and p99 at 1, 16 and 64 keep-alive connections (as
#      configured by default, and with [ocspd] response_cache_ms = 1000), next to the
#      `openssl ocsp` responder (index file, signing each answer) on the same request.
#   bench/run_ocsp.sh [--count 1000000] [--shards 64] [--seconds 5]
# The certificates are rows made with SQL (random serials; every 50th revoked): pre-signing
# needs only serials and status.
count=1000000 shards=64 seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--count N] [--shards N] [--seconds S]" >&2; exit 2 ;;
  esac
done
ocspd_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BENCH_EXTRA_CONFIG="[ocspd]
listen = 127.0.0.1:$ocspd_port"
# shellcheck source=lib_bench.sh
. "$(dirname "$0")/lib_bench.sh"

start_worker certfleet-signer bench-signer
signer=$last_pid
start_worker certfleet-ocsp bench-ocsp-a
start_worker certfleet-ocsp bench-ocsp-b
cf ca init ocspbench "CN=OCSP bench" --key-type EC --default-hostname "127.0.0.1:$ocspd_port" >/dev/null
cf ocsp keygen ocspbench >/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/leaf.key" \
  -subj "/CN=leaf.example.test" -out "$tmp/leaf.csr" 2>/dev/null
cf cert sign --ca ocspbench --csr "$tmp/leaf.csr" -o "$tmp/leaf.pem" 2>/dev/null
stop_pids "$signer"
ca_id=$(sql -tAc "SELECT id FROM certificate_authorities WHERE name = 'ocspbench'")
sql -qc "INSERT INTO certificates (ca_id, serial, subject, valid_from, expires, der, revoked,
           revoked_date, revoked_reason)
         SELECT $ca_id, '4' || upper(substr(md5(i::text), 1, 23)) || lpad(upper(to_hex(i)), 8, '0'),
           '[]', now() - interval '1 day', now() + interval '90 days', '\\x00', i % 50 = 0,
           CASE WHEN i % 50 = 0 THEN now() END,
           CASE WHEN i % 50 = 0 THEN 'superseded' ELSE '' END
         FROM generate_series(1, $count - 2) AS i; ANALYZE certificates" >/dev/null
total=$(sql -tAc "SELECT count(*) FROM certificates WHERE ca_id = $ca_id")

printf '# %s cores, %s\n\n' "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
raw=$(speed_sign_rate ecdsap256 3)
secs=$(timed cf ocsp presign ocspbench --shards "$shards")
stored=$(sql -tAc "SELECT count(*) FROM ocsp_responses WHERE ca_id = $ca_id")
python3 -c "
rate = $stored / $secs
print('| responses | shards | workers | seconds | responses/s | raw openssl sign/s (2 procs) | ratio |')
print('|---:|---:|---:|---:|---:|---:|---:|')
print('| $stored of $total | $shards | 2 | $secs | %.0f | $raw | %.0f%% |' % (rate, 100 * rate / $raw))"

# (c) certfleet-ocspd against the openssl ocsp responder, same request.
start_front certfleet-ocspd
# A second one with the in-process cache of hot responses on ([ocspd] response_cache_ms).
cached_port=$(cf_free_port)
CERTFLEET_OCSPD_LISTEN="127.0.0.1:$cached_port" CERTFLEET_OCSPD_RESPONSE_CACHE_MS=1000 \
  start_front certfleet-ocspd
cf ca dump ocspbench -o "$tmp/ca.pem"
openssl ocsp -issuer "$tmp/ca.pem" -cert "$tmp/leaf.pem" -reqout "$tmp/req.der" -no_nonce >/dev/null 2>&1
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$ocspd_port/health" >/dev/null && break; sleep 0.1; done
# The openssl responder: the same CA's key signs (its own responder), index of the one leaf.
ossl="$tmp/ossl"
mkdir -p "$ossl"
cp "$tmp/keys/$(sql -tAc "SELECT key_backend_options->>'path' FROM certificate_authorities WHERE id = $ca_id")" "$ossl/ca.key"
serial=$(openssl x509 -in "$tmp/leaf.pem" -noout -serial | cut -d= -f2)
printf 'V\t%s\t\t%s\tunknown\t/CN=leaf.example.test\n' \
  "$(date -u -d '+90 days' +%y%m%d%H%M%SZ)" "$serial" >"$ossl/index.txt"
ossl_port=$(cf_free_port)
openssl ocsp -index "$ossl/index.txt" -port "$ossl_port" -rsigner "$tmp/ca.pem" \
  -rkey "$ossl/ca.key" -CA "$tmp/ca.pem" -ignore_err 2>"$tmp/openssl-ocsp.log" &
pids+=($!)
sleep 1
echo
first=--header
for c in 1 16 64; do
  build/bench/certfleet-bench-http $first --label "certfleet-ocspd" --port "$ocspd_port" \
    --path /ocsp/ocspbench/ --body "$tmp/req.der" --connections "$c" --seconds "$seconds"
  first=
  build/bench/certfleet-bench-http --label "certfleet-ocspd, 1 s cache" --port "$cached_port" \
    --path /ocsp/ocspbench/ --body "$tmp/req.der" --connections "$c" --seconds "$seconds"
  build/bench/certfleet-bench-http --label "openssl ocsp (1 process)" --port "$ossl_port" \
    --path / --body "$tmp/req.der" --connections "$c" --seconds "$seconds"
done
