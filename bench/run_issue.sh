#!/usr/bin/env bash
# Issuance benchmark: certfleet end to end (client -> broker -> signer -> PostgreSQL commit ->
# reply) for EC P-256, Ed25519 and RSA-2048 CAs with 1 and 2 signer processes, next to a loop of
# `openssl ca -batch` on the same CSRs and the raw `openssl speed` signing rate, in one run.
#   bench/run_issue.sh [--count N] [--depth D] [--openssl-count N]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
count=5000 depth=256 ossl_count=200
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --depth) depth=$2; shift 2 ;;
    --openssl-count) ossl_count=$2; shift 2 ;;
    *) echo "usage: $0 [--count N] [--depth D] [--openssl-count N]" >&2; exit 2 ;;
  esac
done
cmake -B build -S . >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
# shellcheck source=../deploy/services.sh
. deploy/services.sh
tmp=$(mktemp -d /tmp/certfleet-bench-issue.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  cf_pg_stop "$tmp/pg" || true
  cf_redis_stop "$tmp/redis" || true
  rm -rf "$tmp"
}
trap cleanup EXIT
pg_port=$(cf_free_port); cf_pg_start "$tmp/pg" "$pg_port"
redis_port=$(cf_free_port); cf_redis_start "$tmp/redis" "$redis_port"
broker_port=$(cf_free_port)
psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE bench" >/dev/null
conf="$tmp/bench.conf"
cat >"$conf" <<CONF
[broker]
endpoint = tcp://127.0.0.1:$broker_port
[worker]
credit = 256
batch_max = 128
[postgres]
dsn = host=127.0.0.1 port=$pg_port user=postgres dbname=bench
migrations_dir = $root/schemas/sql
[redis]
host = 127.0.0.1
port = $redis_port
[keys]
storages_dir = $tmp/keys
[log]
level = warn
[curve]
insecure = true
CONF
cf=build/bin/certfleet
$cf --config "$conf" db migrate >/dev/null
build/bin/certfleet-broker --config "$conf" 2>"$tmp/broker.log" & pids+=($!)

echo "# making $count CSRs" >&2
mkdir -p "$tmp/csrs"
python3 - "$tmp/csrs" "$count" <<'PY'
import subprocess, sys, os
d, n = sys.argv[1], int(sys.argv[2])
key = os.path.join(d, "key.pem")
subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key], check=True)
for i in range(n):
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN=host{i}.example.com",
                    "-outform", "DER", "-out", os.path.join(d, f"{i}.der")], check=True)
PY

start_signers() {
  local n=$1 i
  for i in $(seq 1 "$n"); do
    build/bin/certfleet-signer --config "$conf" --name "bench-signer-$i" 2>>"$tmp/signer.log" & signer_pids+=($!)
  done
  sleep 1
}
stop_signers() {
  for p in "${signer_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${signer_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  signer_pids=()
}
signer_pids=()

# openssl ca as the peer: a loop of `openssl ca -batch`, one process per certificate, as a
# shell-scripted CA does it.
openssl_ca_rate() {
  local kt=$1 d="$tmp/ossl-$1"
  mkdir -p "$d/new"; : >"$d/index.txt"; echo 1000 >"$d/serial"
  case $kt in
    ec) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" 2>/dev/null ;;
    ed25519) openssl genpkey -algorithm ED25519 -out "$d/ca.key" 2>/dev/null ;;
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/ca.key" 2>/dev/null ;;
  esac
  openssl req -x509 -new -key "$d/ca.key" -subj "/CN=openssl $kt" -days 30 -out "$d/ca.pem" 2>/dev/null
  cat >"$d/ca.cnf" <<CNF
[ca]
default_ca = cf
[cf]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
default_days = 30
policy = any
unique_subject = no
copy_extensions = none
x509_extensions = ext
[any]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment,keyAgreement
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
  local md="-md sha256"
  [ "$kt" = ed25519 ] && md=""
  local t0 t1 i
  t0=$(date +%s.%N)
  for i in $(seq 0 $((ossl_count - 1))); do
    # shellcheck disable=SC2086
    openssl ca -batch -config "$d/ca.cnf" $md -in "$tmp/csrs/$i.der" -inform DER -out /dev/null 2>/dev/null
  done
  t1=$(date +%s.%N)
  python3 -c "print(round($ossl_count / ($t1 - $t0)))"
}

speed_rate() {
  local alg=$1 out
  out=$(openssl speed -seconds 2 -multi 2 "$alg" 2>/dev/null | tail -1)
  case $alg in
    ecdsap256) echo "$out" | awk '{print int($(NF-1))}' ;;
    ed25519) echo "$out" | awk '{print int($(NF-1))}' ;;
    rsa2048) echo "$out" | awk '{print int($(NF-1))}' ;;
  esac
}

printf '# %s cores, %s certificates per run, %s in flight, %s\n' "$(nproc)" "$count" "$depth" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf '| key | signers | certfleet certs/s | p50 ms | p99 ms | openssl ca loop certs/s | raw openssl speed sign/s (2 procs) | vs openssl ca | vs raw |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for kt in ec ed25519 rsa; do
  case $kt in
    ec) params='"key_type": "EC"'; alg=ecdsap256 ;;
    ed25519) params='"key_type": "Ed25519"'; alg=ed25519 ;;
    rsa) params='"key_type": "RSA", "key_size": 2048'; alg=rsa2048 ;;
  esac
  start_signers 1
  printf '{"type": "ca.init", "params": {"name": "bench-%s", "subject": "CN=bench %s", %s}}\n' "$kt" "$kt" "$params" >"$tmp/ca-$kt.json"
  $cf --config "$conf" job submit "$tmp/ca-$kt.json" >/dev/null
  stop_signers
  ossl=$(openssl_ca_rate "$kt")
  raw=$(speed_rate "$alg")
  for n in 1 2; do
    psql -h 127.0.0.1 -p "$pg_port" -U postgres -d bench -qc "TRUNCATE certificates CASCADE; DELETE FROM job_results WHERE type = 'cert.issue'" >/dev/null
    start_signers "$n"
    read -r rate p50 p99 ok failed < <(build/bench/certfleet-bench-issue --endpoint "tcp://127.0.0.1:$broker_port" \
      --ca "bench-$kt" --csrs "$tmp/csrs" --count "$count" --depth "$depth")
    stop_signers
    rows=$(psql -h 127.0.0.1 -p "$pg_port" -U postgres -d bench -tAc "SELECT count(*) FROM certificates")
    [ "$rows" = "$ok" ] || echo "warning: $rows rows for $ok certificates" >&2
    python3 -c "print('| $kt | $n | $rate | %.1f | %.1f | $ossl | $raw | %.1fx | %.0f%% |' % ($p50/1000, $p99/1000, $rate/max($ossl,1), 100*$rate/max($raw,1)))"
  done
done
