#!/usr/bin/env bash
# Sourced by the bench/run_*.sh scripts: build, then a throwaway PostgreSQL and Redis on free
# loopback ports in a temp folder, a config ($conf) and a broker; everything is stopped and
# removed on exit. Helpers: cf (the command with the config), sql (psql on the bench
# database), start_worker PROG NAME (pid in $last_pid), stop_pids PID..., peak_kib PID,
# rss_kib PID, start_front PROG, timed CMD... (wall seconds of CMD on stdout, CMD's output to $tmp/timed.out).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cmake -B build -S . >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
# shellcheck source=../deploy/services.sh
. deploy/services.sh
tmp=$(mktemp -d /tmp/certfleet-bench.XXXXXX)
chmod 755 "$tmp"
pids=()
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  cf_pg_stop "$tmp/pg" || true
  cf_redis_stop "$tmp/redis" || true
  rm -rf "$tmp"
}
trap bench_cleanup EXIT
pg_port=$(cf_free_port); cf_pg_start "$tmp/pg" "$pg_port"
redis_port=$(cf_free_port); cf_redis_start "$tmp/redis" "$redis_port"
broker_port=$(cf_free_port)
psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE bench" >/dev/null
conf="$tmp/bench.conf"
mkdir -m 700 "$tmp/keys"
cat >"$conf" <<CONF
[broker]
endpoint = tcp://127.0.0.1:$broker_port
[worker]
credit = 256
batch_max = 128
[postgres]
dsn = host=127.0.0.1 port=$pg_port user=postgres dbname=bench
migrations_dir = $root/schemas/sql
statement_timeout_ms = 600000
[redis]
host = 127.0.0.1
port = $redis_port
[keys]
storages_dir = $tmp/keys
[ca]
profiles_dir = $root/schemas/profiles
[log]
level = warn
[curve]
insecure = true
${BENCH_EXTRA_CONFIG:-}
CONF
cf() { "$root/build/bin/certfleet" --config "$conf" "$@"; }
sql() { psql -X -h 127.0.0.1 -p "$pg_port" -U postgres -d bench -v ON_ERROR_STOP=1 "$@"; }
cf db migrate >/dev/null
"$root/build/bin/certfleet-broker" --config "$conf" 2>"$tmp/broker.log" &
pids+=($!)

start_worker() {
  "$root/build/bin/$1" --config "$conf" --name "$2" 2>>"$tmp/$2.log" &
  last_pid=$!
  pids+=("$last_pid")
}
# A front (no --name): start_front PROG.
start_front() {
  "$root/build/bin/$1" --config "$conf" 2>>"$tmp/$1.log" &
  last_pid=$!
  pids+=("$last_pid")
}
stop_pids() {
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
# Peak and current resident memory of a process, in KiB.
peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
timed() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$tmp/timed.out" 2>&1 || { cat "$tmp/timed.out" >&2; return 1; }
  t1=$(date +%s.%N)
  python3 -c "print('%.3f' % ($t1 - $t0))"
}
# The raw signing rate of `openssl speed -multi 2 ALG` (signs/s over both cores).
speed_sign_rate() {
  openssl speed -seconds "${2:-3}" -multi 2 "$1" 2>/dev/null | tail -1 | awk '{print int($(NF-1))}'
}
