#!/usr/bin/env bash
# Sourced by tests/faults/run.sh (the fault matrix) and tests/faults/soak.sh: a fleet of its
# own on loopback, with a PostgreSQL and a Redis of its own (deploy/services.sh) that the
# faults may stop and restart, the fleet set-up of tests/interop/lib_fleet.sh on top of them,
# every process under a small supervisor that restarts it when it dies (as systemd's
# Restart=always does in production, deploy/systemd/), two CAs (one for the load, one for
# ACME), and the helpers the scripts share. Skips (exit 77) without PostgreSQL 15 or Redis.
#
# After sourcing: everything of lib_fleet.sh ($work, $conf, cf, fail, free_port, ...), plus
#   $srv (the folder of everything, /tmp/certfleet-faults.*), $pg_dir $pg_port $redis_dir
#   $redis_port, $csr (a DER CSR for cert.issue), $load_ca, $acme_ca, $acme_port, $ocspd_port,
#   supervise NAME PROG [ARGS]   start PROG under a restart loop (pid of the process: pid_of NAME)
#   fleet_up                     the whole fleet under supervisors, waited for
#   probe_recovery T0 KINDS      seconds from T0 until probe jobs of KINDS and the HTTP fronts
#                                answer (faults-load probe); "never" past $FAULTS_NEVER_S
#   acme_order NAME              one ACME order with certbot (http-01, standalone)
#   rss_of NAME                  VmRSS of the process in kB
# Config lines for the fleet: FAULTS_EXTRA_CONFIG.
set -euo pipefail

: "${CF_BIN_DIR:?CF_BIN_DIR is not set}" "${CF_SOURCE_DIR:?CF_SOURCE_DIR is not set}"
: "${FAULTS_LOAD:=$(dirname "$CF_BIN_DIR")/tests/faults-load}"
[ -x "$FAULTS_LOAD" ] || { echo "FAIL: faults-load is not built ($FAULTS_LOAD)" >&2; exit 1; }
# shellcheck source=../../deploy/services.sh
. "$CF_SOURCE_DIR/deploy/services.sh"
[ -x "$CF_PG_BIN/initdb" ] || { echo "skipped: PostgreSQL 15 is not installed in $CF_PG_BIN" >&2; exit 77; }
for tool in redis-server redis-cli psql openssl python3 curl certbot; do
  command -v "$tool" >/dev/null || { echo "skipped: $tool is not installed" >&2; exit 77; }
done
FAULTS_NEVER_S=${FAULTS_NEVER_S:-180}

# A run killed before its cleanup (a ctest timeout) leaves its folder behind with the pid of
# its shell: stop what still runs from there (its command line names the folder) and remove it.
for old in /tmp/certfleet-faults.*; do
  [ -d "$old" ] || continue
  if [ -s "$old/owner.pid" ] && kill -0 "$(cat "$old/owner.pid")" 2>/dev/null; then continue; fi
  echo "cleaning up the stale fault run $old" >&2
  for proc in /proc/[0-9]*; do
    if tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qF "$old/"; then
      kill -9 "${proc#/proc/}" 2>/dev/null || true
    fi
  done
  cf_redis_stop "$old/redis" || true
  cf_pg_stop "$old/pg" || true
  rm -rf "$old"
done

srv=$(mktemp -d /tmp/certfleet-faults.XXXXXX)
chmod 755 "$srv" # the postgres user must reach its data folder inside
echo $$ >"$srv/owner.pid"
pg_dir=$srv/pg redis_dir=$srv/redis
sup_pids=()

faults_stop_fleet() {
  local pid
  for pid in "${sup_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${sup_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  sup_pids=()
}
# Instead of lib_fleet.sh's cleanup (its database lives and dies with our PostgreSQL): stop
# the fleet, then the servers; on failure show the end of every log; remove the folder.
faults_cleanup() {
  local rc=$? log
  trap - EXIT
  faults_stop_fleet
  cf_redis_stop "$redis_dir" || true
  cf_pg_stop "$pg_dir" || true
  if [ -n "${work:-}" ] &&
     grep -l "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$work"/*.log 2>/dev/null; then
    echo "FAIL: a process log holds a sanitizer report" >&2
    [ $rc -ne 0 ] || rc=1
  fi
  if [ $rc -ne 0 ] && [ -n "${work:-}" ]; then
    for log in "$work"/*.log "$work"/*.err; do
      [ -f "$log" ] && { echo "--- $(basename "$log")"; tail -n 20 "$log"; }
    done
  fi
  cd /
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $srv" >&2; else rm -rf "$srv"; fi
  exit $rc
}
trap faults_cleanup EXIT
trap 'exit 130' INT TERM

started=0
for _ in 1 2 3 4 5; do
  pg_port=$(cf_free_port)
  if cf_pg_start "$pg_dir" "$pg_port"; then started=1; break; fi
done
[ $started = 1 ] || { echo "FAIL: could not start PostgreSQL" >&2; exit 1; }
started=0
for _ in 1 2 3 4 5; do
  redis_port=$(cf_free_port)
  if cf_redis_start "$redis_dir" "$redis_port"; then started=1; break; fi
done
[ $started = 1 ] || { echo "FAIL: could not start Redis" >&2; exit 1; }

acme_port=$(cf_free_port)
ocspd_port=$(cf_free_port)
http_port=$(cf_free_port)
export CERTFLEET_TEST_PG="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"
export CERTFLEET_TEST_REDIS="127.0.0.1:$redis_port"
# The fleet's folder inside ours, so that every process's command line names $srv.
# Job locks of 5 s instead of the default 60 s: a job in the hands of a killed worker is
# locked (answered "in_progress") until its lock expires; 60 s per kill would make the matrix
# long without showing more (docs/reliability.md).
export TMPDIR=$srv
FLEET_EXTRA_CONFIG="[curve]
insecure = true
[broker]
queue_max = ${FAULTS_QUEUE_MAX:-200}
liveness = 3
[worker]
job_lock_ttl_ms = 5000
credit = 32
batch_max = 32
[client]
timeout_ms = 2000
attempts = 3
[acme]
listen = 127.0.0.1:$acme_port
base_url = http://127.0.0.1:$acme_port
[validator]
http_port = $http_port
connect_address = 127.0.0.1
timeout_ms = 5000
[ocspd]
listen = 127.0.0.1:$ocspd_port
[smtp]
url = smtp://127.0.0.1:9
from = certfleet@example.test
[scheduler]
crl_interval_s = 5
ocsp_presign_interval_s = 5
ocsp_keygen_interval_s = 30
notify_interval_s = 30
lock_ttl_ms = 3000
${FAULTS_EXTRA_CONFIG:-}"
# lib_fleet.sh replaces our EXIT trap with its own: ours runs it.
# shellcheck source=../interop/lib_fleet.sh
. "$CF_SOURCE_DIR/tests/interop/lib_fleet.sh"
trap faults_cleanup EXIT
trap 'exit 130' INT TERM

# supervise NAME PROG [ARGS...]: PROG with the config, restarted 0.3 s after it dies, its
# output appended to NAME.log, its pid in NAME.pid, each start counted in NAME.starts.
supervise() {
  local name=$1 prog=$2
  shift 2
  (
    child=""
    trap '[ -z "$child" ] || kill "$child" 2>/dev/null; [ -z "$child" ] || wait "$child"; exit 0' TERM
    while :; do
      "$CF_BIN_DIR/$prog" --config "$conf" "$@" >>"$work/$name.log" 2>&1 &
      child=$!
      echo "$child" >"$work/$name.pid"
      echo "$child" >>"$work/$name.starts"
      wait "$child" || true
      sleep 0.3
    done
  ) &
  sup_pids+=($!)
}
pid_of() { cat "$work/$1.pid"; }
starts_of() { wc -l <"$work/$1.starts"; }
rss_of() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$(pid_of "$1")/status" 2>/dev/null || echo 0; }

# The programs of the fleet and their supervisor names; the scheduler when it is built.
fleet_names=(broker signer crl ocsp validator notifier acme ocspd)
has_scheduler=0
[ -x "$CF_BIN_DIR/certfleet-scheduler" ] && has_scheduler=1 && fleet_names+=(scheduler)

# fleet_up: every program under its supervisor; the PKI on the first call; waits until the
# workers and both HTTP fronts serve.
fleet_up() {
  supervise broker certfleet-broker
  supervise signer certfleet-signer --name signer
  supervise crl certfleet-crl --name crl
  supervise ocsp certfleet-ocsp --name ocsp
  supervise validator certfleet-validator --name validator
  supervise notifier certfleet-notifier --name notifier
  supervise acme certfleet-acme
  supervise ocspd certfleet-ocspd
  [ $has_scheduler = 0 ] || supervise scheduler certfleet-scheduler
  fleet_wait_service cert.issue 1
  fleet_wait_service crl.build 1
  fleet_wait_service ocsp.presign 1
  fleet_wait_service acme.validate 1
  if ! cf ca list 2>/dev/null | grep -q "$load_ca"; then
    cf ca init faultroot "CN=Fault Root,O=certfleet" --key-type EC --path-length 1 \
      --default-hostname "127.0.0.1:$ocspd_port" >/dev/null
    cf ca init "$load_ca" "CN=Fault Load CA,O=certfleet" --parent faultroot --key-type EC \
      --path-length 0 --default-hostname "127.0.0.1:$ocspd_port" >/dev/null
    cf ca init "$acme_ca" "CN=Fault ACME CA,O=certfleet" --parent faultroot --key-type EC \
      --path-length 0 --default-hostname "127.0.0.1:$ocspd_port" --acme-enable >/dev/null
    cf ocsp keygen "$load_ca" "$acme_ca" faultroot >/dev/null
  fi
  local up=0
  for _ in $(seq 150); do
    if curl -sf "http://127.0.0.1:$ocspd_port/health" >/dev/null &&
       curl -sf "http://127.0.0.1:$acme_port/acme/$acme_ca/directory" >/dev/null; then
      up=1
      break
    fi
    sleep 0.2
  done
  [ $up = 1 ] || fail "certfleet-ocspd or certfleet-acme does not answer"
  [ -d "$work/cb/config/accounts" ] && return 0
  certbot register --agree-tos -m admin@example.test --non-interactive \
    --server "http://127.0.0.1:$acme_port/acme/$acme_ca/directory" \
    --config-dir "$work/cb/config" --work-dir "$work/cb/work" --logs-dir "$work/cb/logs" \
    >"$work/certbot-register.out" 2>&1 || fail "certbot register: $(tail -5 "$work/certbot-register.out")"
}

# The probe kinds: every job kind the fleet serves (notify.expiring once the notifier serves it).
probe_kinds() {
  local kinds=issue,revoke,crl,presign,validate,echo
  if cf status 2>/dev/null | grep -q '^notify\.expiring  *[1-9]'; then kinds+=,notify; fi
  echo "$kinds"
}

now_s() { date +%s.%N; }

# probe_recovery T0 JOURNAL: seconds from T0 (now_s) until one probe job of every kind has
# succeeded and both HTTP fronts answer; "never" after FAULTS_NEVER_S.
probe_recovery() {
  local t0=$1 journal=$2 out end
  if ! out=$("$FAULTS_LOAD" probe --config "$conf" --journal "$journal" --ca "$load_ca" \
        --csr "$csr" --kinds "$(probe_kinds)" --crl-scope ca --timeout-ms 1000 --attempts 2 \
        --limit-s "$FAULTS_NEVER_S" 2>>"$work/probe.err"); then
    echo "probe: $out" >>"$work/probe.err"
    echo never
    return
  fi
  for _ in $(seq $((FAULTS_NEVER_S * 5))); do
    if curl -sf -m 2 "http://127.0.0.1:$ocspd_port/health" >/dev/null &&
       curl -sf -m 2 "http://127.0.0.1:$acme_port/acme/$acme_ca/directory" >/dev/null; then
      end=$(now_s)
      python3 -c "print('%.1f' % ($end - $t0))"
      return
    fi
    sleep 0.2
  done
  echo never
}

# acme_order NAME: one certificate for NAME.example.test from certfleet-acme with certbot
# (http-01 through its standalone server). 0 on success; the output in certbot-NAME.out.
acme_order() {
  certbot certonly --standalone --preferred-challenges http --http-01-address 127.0.0.1 \
    --http-01-port "$http_port" -d "$1.example.test" --cert-name "$1" --non-interactive \
    --server "http://127.0.0.1:$acme_port/acme/$acme_ca/directory" \
    --config-dir "$work/cb/config" --work-dir "$work/cb/work" --logs-dir "$work/cb/logs" \
    >"$work/certbot-$1.out" 2>&1
}

# The load's issuing CA and the ACME CA (below faultroot, made by fleet_up), and the CSR
# every cert.issue of the load signs.
load_ca=faultload acme_ca=faultacme
csr=$work/load.csr.der
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/load.key" \
  -subj "/CN=load.example.test" -outform DER -out "$csr" 2>/dev/null
