#!/usr/bin/env bash
# Start and stop throwaway PostgreSQL 15 and Redis 7 servers on loopback in a folder.
# Sourced by tests/run.sh and deploy/local.sh:
#   cf_pg_start DIR PORT    cf_pg_stop DIR    cf_pg_running DIR
#   cf_redis_start DIR PORT    cf_redis_stop DIR    cf_redis_running DIR
#   cf_free_port
# PostgreSQL runs as the postgres user when we are root (it refuses to run as root). Both
# listen on 127.0.0.1 only; PostgreSQL's unix socket is in its data folder, not /run.

CF_PG_BIN=${CF_PG_BIN:-/usr/lib/postgresql/15/bin}

# A TCP port that nobody listens on right now (someone may take it before we do: callers
# retry with another).
cf_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Run a PostgreSQL program, as the postgres user when we are root. From "/": our working
# folder may be out of that user's reach (every path we pass is absolute).
cf_as_pg() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# The pid of the postmaster of DIR, if it runs.
cf_pg_running() {
  local dir=$1 pid
  [ -f "$dir/postmaster.pid" ] || return 1
  pid=$(head -1 "$dir/postmaster.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# cf_pg_start DATADIR PORT: init if needed (trust for loopback, fsync left on), start, wait
# until it answers. The log is DATADIR/server.log.
cf_pg_start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  if [ ! -s "$dir/PG_VERSION" ]; then
    cf_as_pg "$CF_PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$dir.initdb.log" 2>&1 || { cat "$dir.initdb.log" >&2; return 1; }
  fi
  # A stale postmaster.pid from a killed run would stop the start: remove it if its pid is gone.
  if [ -f "$dir/postmaster.pid" ] && ! cf_pg_running "$dir" >/dev/null; then
    rm -f "$dir/postmaster.pid"
  fi
  cf_as_pg "$CF_PG_BIN/pg_ctl" -D "$dir" -w -t 60 -l "$dir/server.log" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null ||
    { tail -20 "$dir/server.log" >&2; return 1; }
}

cf_pg_stop() {
  local dir=$1 pid
  pid=$(cf_pg_running "$dir") || return 0
  cf_as_pg "$CF_PG_BIN/pg_ctl" -D "$dir" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    kill -9 "$pid" 2>/dev/null || true
}

# The pid of the Redis of DIR, if it runs.
cf_redis_running() {
  local dir=$1 pid
  [ -s "$dir/redis.pid" ] || return 1
  pid=$(cat "$dir/redis.pid")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# cf_redis_start DIR PORT: start without persistence and check that it is really ours that
# answers on PORT: redis-server --daemonize exits 0 even when the port is taken, and then a
# stranger's Redis would answer our PING.
cf_redis_start() {
  local dir=$1 port=$2 i pid answer
  mkdir -p "$dir"
  rm -f "$dir/redis.pid"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null || return 1
  for i in $(seq 1 50); do
    if pid=$(cf_redis_running "$dir"); then
      answer=$(redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r' |
        sed -n 's/^process_id://p')
      [ "$answer" = "$pid" ] && return 0
    elif [ "$i" -gt 20 ]; then
      break # it exited (port taken?)
    fi
    sleep 0.1
  done
  tail -5 "$dir/redis.log" >&2 2>/dev/null || true
  cf_redis_stop "$dir"
  return 1
}

cf_redis_stop() {
  local dir=$1 pid i
  pid=$(cf_redis_running "$dir") || { rm -f "$dir/redis.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/redis.pid"
}
