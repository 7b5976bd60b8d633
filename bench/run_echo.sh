#!/usr/bin/env bash
# Broker benchmark: starts a broker and WORKERS workers on a free loopback port (no database
# needed for sys.ping), runs certfleet-bench-echo next to the raw ZeroMQ echo, stops them.
#   bench/run_echo.sh [--workers N] [--seconds S] [--depths 1,16,256] [--type sys.ping] [--curve]
# --curve: the fleet with CURVE keys (deploy/make-keys.sh), the raw echo with CURVE as well.
# For the durable sys.echo, run it against a local fleet instead:
#   deploy/local.sh up && build/bench/certfleet-bench-echo --endpoint tcp://127.0.0.1:25555 --type sys.echo
set -euo pipefail
cd "$(dirname "$0")/.."
workers=2 seconds=3 depths=1,16,256 type=sys.ping curve=0
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) workers=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --depths) depths=$2; shift 2 ;;
    --type) type=$2; shift 2 ;;
    --curve) curve=1; shift ;;
    *) echo "usage: $0 [--workers N] [--seconds S] [--depths LIST] [--type TYPE] [--curve]" >&2; exit 2 ;;
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
CONF
if [ $curve = 1 ]; then
  deploy/make-keys.sh "$dir/keys" build/bin/certfleet >/dev/null
  printf '[curve]\nbroker_public_key_file = %s\nclients_dir = %s\n' \
    "$dir/keys/broker.pub" "$dir/keys/clients" >>"$dir/bench.conf"
else
  printf '[curve]\ninsecure = true\n' >>"$dir/bench.conf"
fi
CERTFLEET_CURVE_SECRET_KEY_FILE=$dir/keys/broker.key \
  build/bin/certfleet-broker --config "$dir/bench.conf" 2>"$dir/broker.log" & pids+=($!)
for i in $(seq 1 "$workers"); do
  CERTFLEET_CURVE_SECRET_KEY_FILE=$dir/keys/worker.key \
    build/bin/certfleet-signer --config "$dir/bench.conf" --name "bench-$i" 2>"$dir/worker$i.log" & pids+=($!)
done
sleep 1
echo "# $(nproc) cores, $workers worker process(es), $([ $curve = 1 ] && echo CURVE || echo plain TCP), $(date -u +%Y-%m-%dT%H:%MZ)"
CERTFLEET_CURVE_SECRET_KEY_FILE=$dir/keys/admin.key build/bench/certfleet-bench-echo \
  --config "$dir/bench.conf" --type "$type" --seconds "$seconds" --depths "$depths"
