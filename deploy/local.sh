#!/usr/bin/env bash
# A whole certfleet fleet on this machine, from the checkout, everything in .run/:
# PostgreSQL and Redis on loopback, migrations applied, the broker and every worker built.
#   deploy/local.sh up       start what is not running (idempotent), then show the status
#   deploy/local.sh down     stop everything, in reverse order
#   deploy/local.sh status   one line per process; non-zero if something is down
#   deploy/local.sh env      print the export line for the certfleet command
# Ports (loopback only): CERTFLEET_LOCAL_PG_PORT (25432), CERTFLEET_LOCAL_REDIS_PORT (26379),
# CERTFLEET_LOCAL_BROKER_PORT (25555), CERTFLEET_LOCAL_OCSPD_PORT (28080): below the kernel's ephemeral range
# (32768-60999), so that no outgoing connection ever holds them. Metrics and health
# (docs/metrics.md): CERTFLEET_LOCAL_METRICS_PORT (29100) + the program's place in the start order.
# Layout: .run/certfleet.conf (written by "up"), .run/pg (PostgreSQL data), .run/redis,
# .run/log/NAME.log, .run/pids/NAME.pid, .run/keys (CURVE keys, made once by "up":
# NAME.key secret, NAME.pub public, clients/ the broker's allow-list; docs/security.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
run="$root/.run"
pg_port=${CERTFLEET_LOCAL_PG_PORT:-25432}
redis_port=${CERTFLEET_LOCAL_REDIS_PORT:-26379}
broker_port=${CERTFLEET_LOCAL_BROKER_PORT:-25555}
ocspd_port=${CERTFLEET_LOCAL_OCSPD_PORT:-28080}
metrics_base=${CERTFLEET_LOCAL_METRICS_PORT:-29100}
conf="$run/certfleet.conf"
bin="$root/build/bin"
# shellcheck source-path=SCRIPTDIR
# shellcheck source=services.sh
. "$root/deploy/services.sh"

# Start order; stopped in reverse. Only the programs that are built are run.
programs=(certfleet-broker certfleet-signer certfleet-crl certfleet-ocsp certfleet-validator
  certfleet-notifier certfleet-scheduler certfleet-acme certfleet-ocspd)

# Where PostgreSQL's data lives. As root, PostgreSQL runs as the postgres user, who must be
# able to reach the folder: a checkout under a private home (/root/...) is out of its reach,
# so the data then goes to /var/tmp/certfleet-<hash of the checkout path>, linked as .run/pg.
pg_dir() {
  if [ -L "$run/pg" ]; then
    readlink "$run/pg"
  elif [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$run" 2>/dev/null; then
    local alt
    alt="/var/tmp/certfleet-$(printf '%s' "$root" | sha256sum | cut -c1-16)/pg"
    cat >&2 <<MSG
note: the postgres user cannot reach $run (a folder on the way is not
      searchable by others), so PostgreSQL keeps its data in $alt,
      linked as .run/pg; "deploy/local.sh down" stops it, "rm -rf $(dirname "$alt")" removes it.
MSG
    mkdir -p "$(dirname "$alt")"
    chown postgres: "$(dirname "$alt")"
    chmod 700 "$(dirname "$alt")"
    if [ -d "$run/pg" ] && [ ! -L "$run/pg" ]; then rmdir "$run/pg" 2>/dev/null || true; fi
    ln -sfn "$alt" "$run/pg"
    echo "$alt"
  else
    echo "$run/pg"
  fi
}

# The pid in PIDFILE if that process runs.
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

write_config() {
  local tmp="$conf.tmp.$$"
  cat >"$tmp" <<CONF
# Written by deploy/local.sh up (again at every "up": edits are lost). Every key and its
# default: README.md "Configuration"; any key can be overridden by CERTFLEET_<SECTION>_<KEY>.
[broker]
endpoint = tcp://127.0.0.1:$broker_port
[postgres]
dsn = host=127.0.0.1 port=$pg_port user=postgres dbname=certfleet
migrations_dir = $root/schemas/sql
[redis]
host = 127.0.0.1
port = $redis_port
[ocspd]
listen = 127.0.0.1:$ocspd_port
[log]
level = info
[smtp]
# Expiry mail goes to a mail server on this machine; without one, mails wait as "failed"
# and are tried again every retry_s (docs/notify.md).
url = smtp://127.0.0.1:25
from = certfleet@localhost
[curve]
# The fabric runs with CURVE keys made by "up" in .run/keys (docs/security.md). Each process
# gets its own secret key through CERTFLEET_CURVE_SECRET_KEY_FILE; the one here is the
# certfleet command's (admin: every job type, every CA).
secret_key_file = $run/keys/admin.key
broker_public_key_file = $run/keys/broker.pub
clients_dir = $run/keys/clients
CONF
  mv "$tmp" "$conf"
}

# The metrics port of program $1: the base plus its place in the start order.
metrics_port_of() {
  local i
  for i in "${!programs[@]}"; do
    [ "${programs[$i]}" = "$1" ] && { echo $((metrics_base + i)); return; }
  done
}

# The secret key file of program $1 (empty: it does not speak to the broker).
key_of() {
  case $1 in
    certfleet-broker) echo "$run/keys/broker.key" ;;
    certfleet-acme) echo "$run/keys/acme.key" ;;
    certfleet-scheduler) echo "$run/keys/scheduler.key" ;;
    certfleet-ocspd) echo "" ;;
    *) echo "$run/keys/worker.key" ;;
  esac
}

psql_admin() {
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres "$@"
}

up() {
  if [ ! -x "$bin/certfleet" ] || [ ! -x "$bin/certfleet-broker" ]; then
    echo "building (build/bin is missing)"
    cmake -B build -S . >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
  fi
  mkdir -p "$run/log" "$run/pids" "$run/redis"
  chmod 755 "$run"
  deploy/make-keys.sh "$run/keys" "$bin/certfleet" >/dev/null
  write_config

  local pgd p pid
  pgd=$(pg_dir)
  if ! cf_pg_running "$pgd" >/dev/null; then
    cf_pg_start "$pgd" "$pg_port" ||
      { echo "PostgreSQL did not start on 127.0.0.1:$pg_port (port taken? see $pgd/server.log)" >&2; exit 1; }
  fi
  if ! cf_redis_running "$run/redis" >/dev/null; then
    cf_redis_start "$run/redis" "$redis_port" ||
      { echo "Redis did not start on 127.0.0.1:$redis_port (port taken? see .run/redis/redis.log)" >&2; exit 1; }
  fi
  if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'certfleet'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE certfleet"
  fi
  "$bin/certfleet" --config "$conf" db migrate

  for p in "${programs[@]}"; do
    [ -x "$bin/$p" ] || continue
    alive "$run/pids/$p.pid" >/dev/null && continue
    # A session of its own: a Ctrl-C in this terminal later does not reach the fleet.
    CERTFLEET_CURVE_SECRET_KEY_FILE=$(key_of "$p") CERTFLEET_METRICS_PORT=$(metrics_port_of "$p") \
      setsid "$bin/$p" --config "$conf" </dev/null >>"$run/log/$p.log" 2>&1 &
    echo $! >"$run/pids/$p.pid"
  done
  # A program that fails at start (bad config, port taken) exits at once: let status see it.
  sleep 1
  status
}

# stop_pid NAME PIDFILE: TERM, wait up to 10 s, then KILL.
stop_pid() {
  local name=$1 f=$2 pid i
  if pid=$(alive "$f"); then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name did not stop within 10 s: killed" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

down() {
  local i
  for ((i = ${#programs[@]} - 1; i >= 0; i--)); do
    stop_pid "${programs[$i]}" "$run/pids/${programs[$i]}.pid"
  done
  [ -d "$run" ] || { echo "nothing runs here"; return 0; }
  cf_redis_stop "$run/redis"
  if [ -e "$run/pg" ]; then cf_pg_stop "$(pg_dir)"; fi
  echo "local fleet stopped"
}

status() {
  local rc=0 p pid pgd=$run/pg
  if [ -L "$run/pg" ]; then pgd=$(readlink "$run/pg"); fi
  if pid=$(cf_pg_running "$pgd"); then
    printf '%-22s running  pid %-8s 127.0.0.1:%s\n' postgresql "$pid" "$pg_port"
  else
    printf '%-22s stopped\n' postgresql
    rc=1
  fi
  if pid=$(cf_redis_running "$run/redis"); then
    printf '%-22s running  pid %-8s 127.0.0.1:%s\n' redis "$pid" "$redis_port"
  else
    printf '%-22s stopped\n' redis
    rc=1
  fi
  for p in "${programs[@]}"; do
    [ -x "$bin/$p" ] || continue
    if pid=$(alive "$run/pids/$p.pid"); then
      printf '%-22s running  pid %-8s metrics http://127.0.0.1:%s/metrics\n' "$p" "$pid" "$(metrics_port_of "$p")"
    else
      printf '%-22s stopped  (log: .run/log/%s.log)\n' "$p" "$p"
      rc=1
    fi
  done
  return $rc
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) echo "export CERTFLEET_CONFIG=$conf" ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
