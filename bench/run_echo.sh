#!/usr/bin/env bash
# Broker benchmark: starts a broker and WORKERS workers on a free loopback port (no database
# needed for sys.ping), runs certfleet-bench-echo next to the raw ZeroMQ echo, stops them.
#   bench/run_echo.sh [--workers N] [--seconds S] [--depths 1,16,256] [--type sys.ping]
# For the durable sys.echo, run it against a local fleet instead:
#   deploy/local.sh up && build/bench/certfleet-bench-echo --endpoint tcp://127.0.0.1:25555 --type sys.echo
set -euo pipefail
cd "$(dirname "$0")/.."
workers=2 seconds=3 depths=1,16,256 type=sys.ping
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --depths) depths=$2; shift 2 ;;
    --type) type=$2; shift 2 ;;
    *) echo "usage: $0 [--workers N] [--seconds S] [--depths LIST] [--type TYPE]" >&2; exit 2 ;;
  esac
done
[ -x build/bench/certfleet-bench-echo ] || { cmake -B build -S . >/dev/null && cmake --build build -j2 >/dev/null; }
dir=$(mktemp -d /tmp/certfleet-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
cat > "$dir/bench.conf" <<CONF
[broker]
endpoint = tcp://127.0.0.1:$port
[worker]
credit = 256
[log]
level = warn
[curve]
insecure = true
CONF
build/bin/certfleet-broker --config "$dir/bench.conf" 2>"$dir/broker.log" & pids+=($!)
for i in $(seq 1 "$workers"); do
  build/bin/certfleet-signer --config "$dir/bench.conf" --name "bench-$i" 2>"$dir/worker$i.log" & pids+=($!)
done
sleep 1
echo "# $(nproc) cores, $workers worker process(es), $(date -u +%Y-%m-%dT%H:%MZ)"
build/bench/certfleet-bench-echo --endpoint "tcp://127.0.0.1:$port" --type "$type" \
  --seconds "$seconds" --depths "$depths"
