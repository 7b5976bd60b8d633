#!/usr/bin/env bash
# faults.soak: the soak test (docs/reliability.md). The fleet of lib_faults.sh under high
# mixed load (faults-load: cert.issue, cert.revoke, crl.build, ocsp.presign; certbot ACME orders
# one after another; HTTP reads of certfleet-ocspd) for SOAK_SECONDS, the VmRSS of every
# process sampled every SOAK_SAMPLE_S seconds. Memory is flat when, for every process, the
# median of the last third of the samples after the warm-up is at most 110 % of the median of
# the first third plus 8 MiB. It also fails when a process restarted (a crash under load) or
# when check.sh finds a job lost or duplicated. Prints the samples table.
#   SOAK_SECONDS=120  SOAK_WARMUP_S=30  SOAK_SAMPLE_S=3  SOAK_RATE=400 (0: as fast as it goes)
#   SOAK_INFLIGHT=128
# shellcheck source=lib_faults.sh
. "$(dirname "$0")/lib_faults.sh"

seconds=${SOAK_SECONDS:-120}
warmup=${SOAK_WARMUP_S:-30}
sample_s=${SOAK_SAMPLE_S:-3}
rate=${SOAK_RATE:-400}
inflight=${SOAK_INFLIGHT:-128}
[ "$seconds" -gt "$warmup" ] || fail "SOAK_SECONDS ($seconds) must be above SOAK_WARMUP_S ($warmup)"

fleet_up
rm -f "$work/stop"
"$FAULTS_LOAD" load --config "$conf" --journal "$work/soak.load" --ca "$load_ca" --csr "$csr" \
  --rate "$rate" --inflight "$inflight" --stop-file "$work/stop" --crl-scope user \
  --give-up-s "$FAULTS_NEVER_S" >"$work/soak-load.out" 2>"$work/soak-load.err" &
load_pid=$!
( # ACME orders, one after another
  i=0
  while [ ! -e "$work/stop" ]; do
    i=$((i + 1))
    acme_order "soak$i" && echo ok >>"$work/acme.results" || echo failed >>"$work/acme.results"
  done
) &
acme_pid=$!
( # HTTP reads of certfleet-ocspd: health, the CA certificate, the CRL
  while [ ! -e "$work/stop" ]; do
    curl -sf -o /dev/null "http://127.0.0.1:$ocspd_port/health" || true
    curl -sf -o /dev/null "http://127.0.0.1:$ocspd_port/crl/$load_ca.crl" || true
    curl -sf -o /dev/null "http://127.0.0.1:$ocspd_port/ca/$load_ca.der" || true
    sleep 0.05
  done
) &
http_pid=$!

samples=$work/rss.tsv
printf 't' >"$samples"
printf '\t%s' "${fleet_names[@]}" >>"$samples"
echo >>"$samples"
start=$(date +%s)
while :; do
  t=$(($(date +%s) - start))
  [ "$t" -lt "$seconds" ] || break
  printf '%s' "$t" >>"$samples"
  for name in "${fleet_names[@]}"; do printf '\t%s' "$(rss_of "$name")" >>"$samples"; done
  echo >>"$samples"
  sleep "$sample_s"
done
touch "$work/stop"
load_rc=0
wait "$load_pid" || load_rc=$?
wait "$acme_pid" || true
wait "$http_pid" || true
echo "load: $(cat "$work/soak-load.out")"
acme_ok=$(grep -c '^ok' "$work/acme.results" 2>/dev/null || true)
acme_failed=$(grep -c '^failed' "$work/acme.results" 2>/dev/null || true)
echo "ACME orders: ${acme_ok:-0} ok, ${acme_failed:-0} failed"

problems=0
for name in "${fleet_names[@]}"; do
  restarts=$(($(starts_of "$name") - 1))
  if [ "$restarts" -gt 0 ]; then
    echo "FAIL: $name restarted $restarts time(s) under load (see $name.log)" >&2
    problems=1
  fi
done
[ "$load_rc" = 0 ] || { echo "FAIL: the load gave up on jobs" >&2; problems=1; }
[ "${acme_failed:-0}" = 0 ] || { echo "FAIL: ACME orders failed" >&2; problems=1; }
if ! check_out=$("$CF_SOURCE_DIR/tests/faults/check.sh" "$conf" "$load_ca" "$work/soak." \
      "$work/soak.load" 2>"$work/check.err"); then
  head -30 "$work/check.err" >&2
  problems=1
fi
echo "check: $check_out"

python3 - "$samples" "$warmup" <<'EOF' || problems=1
import statistics, sys
path, warmup = sys.argv[1], int(sys.argv[2])
lines = [l.rstrip("\n").split("\t") for l in open(path)]
names, data = lines[0][1:], [[int(x) for x in l] for l in lines[1:] if l and l[0]]
print("RSS samples (MiB); t in seconds since the load started, warm-up until %d s" % warmup)
print("%5s" % "t" + "".join("%11s" % n for n in names))
for row in data:
    mark = " " if row[0] >= warmup else "w"
    print("%4d%s" % (row[0], mark) + "".join("%11.1f" % (kb / 1024) for kb in row[1:]))
after = [row for row in data if row[0] >= warmup]
if len(after) < 6:
    print("FAIL: fewer than 6 samples after the warm-up: raise SOAK_SECONDS", file=sys.stderr)
    sys.exit(1)
third = len(after) // 3
failed = False
print("\n%-11s %12s %12s %12s  %s" % ("process", "first MiB", "last MiB", "limit MiB", "verdict"))
for i, name in enumerate(names):
    first = statistics.median(r[i + 1] for r in after[:third])
    last = statistics.median(r[i + 1] for r in after[-third:])
    limit = first * 1.10 + 8 * 1024
    flat = last <= limit
    failed |= not flat
    print("%-11s %12.1f %12.1f %12.1f  %s" % (name, first / 1024, last / 1024, limit / 1024,
                                             "flat" if flat else "GROWS"))
sys.exit(1 if failed else 0)
EOF
[ $problems = 0 ] || fail "the soak test found failures (above)"
echo "faults.soak: ok"
