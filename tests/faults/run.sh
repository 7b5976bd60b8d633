#!/usr/bin/env bash
# faults.matrix: the fault matrix (docs/reliability.md). A fleet of its own (lib_faults.sh),
# every process under a restart loop; for each row: mixed work (faults-load: cert.issue,
# cert.revoke, crl.build, ocsp.presign) and one ACME order (certbot, http-01) run while the
# fault is injected; the recovery time is measured (until a probe job of every kind and both
# HTTP fronts answer again); then check.sh verifies the journals against PostgreSQL. Prints a
# table (fault, jobs, lost, duplicated, recovery seconds, ACME, verdict); exits 1 on any
# failure. Recovery seconds are reported, never asserted: only FAULTS_NEVER_S bounds them.
#
# Size (defaults fit CI: the whole matrix in about 5 minutes on 2 cores):
#   FAULTS_ROWS="kill-signer ..."  only these rows (names as in the table)
#   FAULTS_RATE=120         new jobs a second of the load (0: as fast as it goes)
#   FAULTS_INFLIGHT=64      jobs in flight of the load
#   FAULTS_ROW_SECONDS=5    load after recovery, per row
#   FAULTS_BURST=3000       jobs of the queue-full burst ([broker] queue_max is FAULTS_QUEUE_MAX, 200)
#   FAULTS_PG_DOWN_S=10     how long PostgreSQL stays stopped
#   FAULTS_NEVER_S=180      a fault not recovered after this many seconds fails its row
# shellcheck source=lib_faults.sh
. "$(dirname "$0")/lib_faults.sh"

rate=${FAULTS_RATE:-120}
inflight=${FAULTS_INFLIGHT:-64}
row_seconds=${FAULTS_ROW_SECONDS:-5}
burst=${FAULTS_BURST:-3000}
pg_down_s=${FAULTS_PG_DOWN_S:-10}
all_rows="kill-signer kill-crl kill-ocsp kill-validator kill-notifier kill-broker kill-scheduler
kill-acme kill-ocspd kill-one-signer redis-restart postgres-stop queue-full slow-client disconnect"
rows=${FAULTS_ROWS:-$all_rows}

fleet_up
journals=()
table=()
failed=0
n=0

# --- the faults: each injects one and sets fault_end (now_s) when the fault is over ----------
fault_note=""
kill_proc() { # kill -9 the process of supervisor NAME; the supervisor restarts it
  local before
  before=$(starts_of "$1")
  kill -9 "$(pid_of "$1")"
  fault_end=$(now_s)
  for _ in $(seq $((FAULTS_NEVER_S * 10))); do
    [ "$(starts_of "$1")" -gt "$before" ] && return 0
    sleep 0.1
  done
  fault_note="not restarted"
}
fault_kill_scheduler() {
  local token
  token=$(redis-cli -p "$redis_port" GET lock:scheduler 2>/dev/null || true)
  kill_proc scheduler
  # Recovered only once a scheduler leads again: the lock is held under a new token.
  for _ in $(seq $((FAULTS_NEVER_S * 10))); do
    local now_token
    now_token=$(redis-cli -p "$redis_port" GET lock:scheduler 2>/dev/null || true)
    if [ -n "$now_token" ] && [ "$now_token" != "$token" ]; then return 0; fi
    sleep 0.1
  done
  fault_note="no scheduler took the lock again"
}
fault_kill_one_signer() {
  # Two signers: kill -9 one while the other serves (its jobs in flight go back to the queue
  # and to the other signer); once it is back, the second one is stopped again (SIGTERM).
  supervise signer2 certfleet-signer --name signer2
  local second=${sup_pids[-1]}
  fleet_wait_service cert.issue 2
  kill_proc signer
  kill "$second" 2>/dev/null || true
  wait "$second" 2>/dev/null || true
}
fault_redis_restart() {
  cf_redis_stop "$redis_dir"
  cf_redis_start "$redis_dir" "$redis_port" || fail "Redis did not start again on $redis_port"
  fault_end=$(now_s)
}
fault_postgres_stop() {
  cf_pg_stop "$pg_dir"
  sleep "$pg_down_s"
  cf_pg_start "$pg_dir" "$pg_port" || fail "PostgreSQL did not start again on $pg_port"
  fault_end=$(now_s)
}
fault_queue_full() {
  fault_end=$(now_s)
  "$FAULTS_LOAD" load --config "$conf" --journal "$row_prefix.burst" --ca "$load_ca" \
    --csr "$csr" --jobs "$burst" --inflight "$burst" --timeout-ms 5000 --attempts 3 \
    >"$work/burst-$n.out" 2>>"$work/burst.err" || fault_note="burst client failed"
  local busy
  busy=$(sed -n 's/.* busy=\([0-9]*\).*/\1/p' "$work/burst-$n.out")
  fault_note="${fault_note:+$fault_note, }busy=${busy:-?}"
}
fault_slow_client() {
  # A client that reads its replies 20 ms apart with 200 jobs in flight, and stalled HTTP
  # clients (headers never finished, a body never sent) on both fronts, for 10 s.
  "$FAULTS_LOAD" load --config "$conf" --journal "$row_prefix.slow" --ca "$load_ca" \
    --csr "$csr" --seconds 8 --inflight 200 --slow-ms 20 --timeout-ms 5000 \
    >"$work/slow-$n.out" 2>>"$work/slow.err" &
  local slow=$!
  python3 - "$ocspd_port" "$acme_port" "$acme_ca" <<'EOF' &
import socket, sys, time
ocspd, acme, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = []
for i in range(40):
    for port, head in ((ocspd, b"POST /ocsp/x/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0"),
                       (acme, b"POST /acme/" + ca.encode() + b"/new-order HTTP/1.1\r\nHost: x\r\n"),
                       (ocspd, b"GET /health HTTP/1.1\r\nHo")):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(head)
            socks.append(s)
        except OSError:
            pass
time.sleep(10)
EOF
  local stall=$!
  fault_end=$(now_s)
  stall_pid=$stall slow_pid=$slow
}
fault_disconnect() {
  # Submit and vanish; then a new client sends the same ids and gets the one result.
  "$FAULTS_LOAD" load --config "$conf" --journal "$row_prefix.abandon" --ca "$load_ca" \
    --csr "$csr" --abandon 100 >"$work/abandon-$n.out" 2>>"$work/abandon.err" ||
    fault_note="abandoning client failed"
  fault_end=$(now_s)
  "$FAULTS_LOAD" resume --config "$conf" --journal "$row_prefix.abandon" \
    --from "$row_prefix.abandon" >"$work/resume-$n.out" 2>>"$work/resume.err" ||
    fault_note="resuming client failed"
}

run_row() {
  local name=$1 fn=$2 load_pid acme_pid rec acme="ok" verdict=PASS check_out check_rc=0
  n=$((n + 1))
  row_prefix="$work/j$n"
  fault_note="" stall_pid="" slow_pid=""
  rm -f "$work/stop"
  "$FAULTS_LOAD" load --config "$conf" --journal "$row_prefix.load" --ca "$load_ca" \
    --csr "$csr" --rate "$rate" --inflight "$inflight" --stop-file "$work/stop" \
    --crl-scope user --give-up-s "$FAULTS_NEVER_S" >"$work/load-$n.out" 2>>"$work/load.err" &
  load_pid=$!
  acme_order "row$n" &
  acme_pid=$!
  sleep 2
  "$fn"
  rec=$(probe_recovery "$fault_end" "$row_prefix.probe")
  [ -z "$stall_pid" ] || wait "$stall_pid" || true
  [ -z "$slow_pid" ] || wait "$slow_pid" || fault_note="${fault_note:+$fault_note, }slow client failed"
  sleep "$row_seconds"
  touch "$work/stop"
  wait "$load_pid" || fault_note="${fault_note:+$fault_note, }load gave up on jobs"
  if ! wait "$acme_pid"; then
    # An order that met the fault may fail; one made after recovery must not.
    if acme_order "row${n}b"; then acme="retried"; else acme="FAIL"; fi
  fi
  for j in "$row_prefix".*; do journals+=("$j"); done
  check_out=$("$CF_SOURCE_DIR/tests/faults/check.sh" "$conf" "$load_ca" "$row_prefix." \
    "${journals[@]}" 2>"$work/check-$n.err") || check_rc=$?
  local jobs lost dup
  jobs=$(sed -n 's/.*jobs=\([0-9]*\).*/\1/p' <<<"$check_out")
  lost=$(sed -n 's/.*lost=\([0-9]*\).*/\1/p' <<<"$check_out")
  dup=$(sed -n 's/.*duplicated=\([0-9]*\).*/\1/p' <<<"$check_out")
  if [ $check_rc != 0 ] || [ "$rec" = never ] || [ "$acme" = FAIL ] ||
     grep -q "failed\|not restarted\|gave up\|no scheduler" <<<"$fault_note"; then
    verdict=FAIL
    failed=1
    {
      echo "--- row $name failed: $fault_note"
      head -30 "$work/check-$n.err"
      [ "$acme" != FAIL ] || tail -20 "$work/certbot-row${n}b.out"
      [ "$rec" != never ] || tail -5 "$work/probe.err"
    } >&2
  fi
  table+=("$(printf '%-16s %7s %5s %5s %9s %8s  %-5s %s' "$name" "${jobs:-?}" "${lost:-?}" \
    "${dup:-?}" "$rec" "$acme" "$verdict" "$fault_note")")
  echo "${table[-1]}"
}

for row in $rows; do
  case "$row" in
  kill-signer | kill-crl | kill-ocsp | kill-validator | kill-notifier | kill-broker | \
    kill-acme | kill-ocspd)
    eval "fault_$row() { kill_proc ${row#kill-}; }"
    run_row "$row" "fault_$row"
    ;;
  kill-scheduler)
    if [ $has_scheduler = 1 ]; then
      run_row "$row" fault_kill_scheduler
    else
      table+=("$(printf '%-16s %7s %5s %5s %9s %8s  %-5s %s' "$row" - - - - - skip \
        "certfleet-scheduler is not built")")
    fi
    ;;
  kill-one-signer) run_row "$row" fault_kill_one_signer ;;
  redis-restart) run_row "$row" fault_redis_restart ;;
  postgres-stop) run_row "$row" fault_postgres_stop ;;
  queue-full) run_row "$row" fault_queue_full ;;
  slow-client) run_row "$row" fault_slow_client ;;
  disconnect) run_row "$row" fault_disconnect ;;
  *) fail "unknown row \"$row\" (rows: $(tr '\n' ' ' <<<"$all_rows"))" ;;
  esac
done

echo
printf '%-16s %7s %5s %5s %9s %8s  %-5s %s\n' fault jobs lost dup recovery acme verdict note
printf '%s\n' "${table[@]}"
echo "(recovery: seconds from the end of the fault until a probe job of every kind succeeded"
echo " and both HTTP fronts answered; process restarts: $(for p in "${fleet_names[@]}"; do
  printf '%s=%s ' "$p" $(($(starts_of "$p") - 1)); done))"
[ $failed = 0 ] || fail "the fault matrix found failures (above)"
echo "faults.matrix: ok"
