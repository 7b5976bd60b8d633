#!/usr/bin/env bash
# CRL benchmark: certfleet-crl building CRLs of 100,000 and 1,000,000 revoked entries (seconds,
# peak memory of the worker against the CRL's size) next to `openssl ca -gencrl` on the same
# entries in the same run, and the 1,000,000 spread over 64 shards built by two crl workers.
#   bench/run_crl.sh [--sizes "100000 1000000"] [--shards 64]
# The revoked certificates are rows made with SQL (random 128-bit serials, a third with
# keyCompromise and an invalidity date): a CRL needs only serial, date and reason.
sizes="100000 1000000" shards=64
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    *) echo "usage: $0 [--sizes \"N ...\"] [--shards N]" >&2; exit 2 ;;
  esac
done
# shellcheck source=lib_bench.sh
. "$(dirname "$0")/lib_bench.sh"

start_worker certfleet-signer bench-signer
signer=$last_pid
cf ca init crlbench "CN=CRL bench" --key-type EC --no-default-hostname >/dev/null
cf ca init crlshard "CN=CRL bench sharded" --key-type EC --crl-shards "$shards" \
  --default-hostname crl.example.test >/dev/null
stop_pids "$signer"
ca_id=$(sql -tAc "SELECT id FROM certificate_authorities WHERE name = 'crlbench'")
shard_id=$(sql -tAc "SELECT id FROM certificate_authorities WHERE name = 'crlshard'")

# fill CA_ID N SHARDS: N revoked certificates of CA_ID spread over SHARDS shards.
fill() {
  sql -qc "DELETE FROM certificates WHERE ca_id = $1" >/dev/null
  sql -qc "INSERT INTO certificates (ca_id, serial, subject, valid_from, expires, der, revoked,
             revoked_date, revoked_reason, compromised, crl_shard)
           SELECT $1, '4' || upper(substr(md5(i::text), 1, 23)) || lpad(upper(to_hex(i)), 8, '0'),
             '[]', now() - interval '1 day', now() + interval '90 days', '\\x00', true,
             now() - (i % 1000) * interval '1 minute',
             CASE WHEN i % 3 = 0 THEN 'key_compromise' ELSE 'unspecified' END,
             CASE WHEN i % 3 = 0 THEN now() - interval '2 days' END, i % $3
           FROM generate_series(1, $2) AS i" >/dev/null
  sql -qc "ANALYZE certificates" >/dev/null
}

# The same entries as an openssl ca database, and a config to build a CRL from it.
openssl_setup() {
  local d="$tmp/ossl"
  rm -rf "$d"; mkdir -p "$d"
  cf ca dump crlbench -o "$d/ca.pem"
  cp "$tmp/keys/$(sql -tAc "SELECT key_backend_options->>'path' FROM certificate_authorities WHERE id = $ca_id")" "$d/ca.key"
  sql -tAc "SELECT 'R' || chr(9) || to_char(expires AT TIME ZONE 'UTC', 'YYMMDDHH24MISS') || 'Z' || chr(9)
             || to_char(revoked_date AT TIME ZONE 'UTC', 'YYMMDDHH24MISS') || 'Z'
             || CASE WHEN revoked_reason = 'key_compromise' THEN ',keyCompromise' ELSE '' END
             || chr(9) || serial || chr(9) || 'unknown' || chr(9) || '/CN=x'
             FROM certificates WHERE ca_id = $ca_id" >"$d/index.txt"
  echo 1000 >"$d/crlnumber"
  cat >"$d/ca.cnf" <<CNF
[ca]
default_ca = cf
[cf]
dir = $d
database = \$dir/index.txt
crlnumber = \$dir/crlnumber
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
default_crl_days = 1
unique_subject = no
crl_extensions = crlext
[crlext]
authorityKeyIdentifier = keyid
CNF
}

# Wall seconds and peak RSS (KiB) of a child: "SECONDS KIB".
run_measured() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.time()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print("%.3f %d" % (time.time() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
PY
}

printf '# %s cores, %s\n' "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf '| entries | certfleet s | CRL MiB | worker peak MiB (growth) | growth / CRL size | openssl ca -gencrl s | its peak MiB | speed-up |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for n in $sizes; do
  fill "$ca_id" "$n" 1
  start_worker certfleet-crl bench-crl
  crl=$last_pid
  sleep 1
  # Warm up (connections, the CA key, OpenSSL's tables) with an empty CRL, so that the growth
  # measured below is the CRL's own.
  cf crl build crlbench --scope ca >/dev/null
  idle=$(rss_kib "$crl")
  secs=$(timed cf --json crl build crlbench --scope user)
  size=$(sql -tAc "SELECT length(der) FROM crls WHERE ca_id = $ca_id AND scope = 'user'")
  peak=$(peak_kib "$crl")
  stop_pids "$crl"
  openssl_setup
  read -r osecs opeak < <(run_measured openssl ca -gencrl -config "$tmp/ossl/ca.cnf" -out "$tmp/ossl/crl.pem")
  python3 -c "
size, peak, idle = $size, $peak, $idle
print('| $n | $secs | %.1f | %.1f (%.1f) | %.2fx | $osecs | %.1f | %.1fx |' % (size / 2**20, peak / 1024, (peak - idle) / 1024, (peak - idle) * 1024 / size, $opeak / 1024, $osecs / $secs))"
done

# The largest size over SHARDS shards, built by two workers (one job per shard).
n=${sizes##* }
fill "$shard_id" "$n" "$shards"
start_worker certfleet-crl bench-crl-a
a=$last_pid
start_worker certfleet-crl bench-crl-b
b=$last_pid
sleep 1
secs=$(timed cf crl build crlshard)
built=$(sql -tAc "SELECT count(*) || ' CRLs, ' || sum(entries) || ' entries, ' || round(sum(length(der)) / 1048576.0, 1) || ' MiB' FROM crls WHERE ca_id = $shard_id AND scope = 'user'")
byw=$(sql -tAc "SELECT string_agg(built_by || ': ' || c, ', ') FROM (SELECT built_by, count(*) AS c FROM crls WHERE ca_id = $shard_id GROUP BY built_by) x")
stop_pids "$a" "$b"
printf '\n%s entries over %s shards, 2 crl workers: %s s (%s; %s)\n' "$n" "$shards" "$secs" "$built" "$byw"
