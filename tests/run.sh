#!/usr/bin/env bash
# THE test command (README; .ci/run calls exactly this). Installs what is missing, builds
# three ways (gcc with warnings as errors; clang with AddressSanitizer + UndefinedBehavior-
# Sanitizer; clang with libFuzzer), checks the format, starts a throwaway PostgreSQL 15 and
# Redis 7 on random loopback ports, runs ctest in the normal and the sanitizer build, runs
# every fuzz target for a bounded time, and stops everything on exit.
#   tests/run.sh [--quick] [-L LABEL] [--fuzz-seconds N]
#   --quick       normal build only (no sanitizer build, no fuzzing)
#   -L LABEL      only tests with this ctest label (unit, integration, interop, faults)
#   FUZZ_SECONDS  seconds per fuzz target (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=0 label="" fuzz_seconds=${FUZZ_SECONDS:-20}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    -L) [ $# -ge 2 ] || { echo "-L needs a label" >&2; exit 2; }; label=$2; shift 2 ;;
    --fuzz-seconds) [ $# -ge 2 ] || { echo "--fuzz-seconds needs a number" >&2; exit 2; }
      fuzz_seconds=$2; shift 2 ;;
    -h|--help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--quick] [-L LABEL] [--fuzz-seconds N]" >&2; exit 2 ;;
  esac
done
jobs=$(nproc)
step() { printf '\n=== %s\n' "$*"; }
results=() failed=0
record() { # record NAME STATUS: a line of the summary; any status but "ok..." fails the run
  results+=("$(printf '%-22s %s' "$1" "$2")")
  case "$2" in ok*) ;; *) failed=1 ;; esac
}

step "dependencies"
deploy/install-deps.sh
# shellcheck source-path=SCRIPTDIR/..
# shellcheck source=deploy/services.sh
. deploy/services.sh

step "format (clang-format, .clang-format)"
clang_format=$(command -v clang-format-14 || command -v clang-format)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t sources < <(git ls-files '*.c' '*.h')
else
  mapfile -t sources < <(find . -path ./build\* -prune -o \( -name '*.c' -o -name '*.h' \) -print)
fi
unformatted=()
for f in "${sources[@]}"; do
  [ -f "$f" ] || continue
  "$clang_format" --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done
if [ ${#unformatted[@]} -gt 0 ]; then
  printf '  %s\n' "${unformatted[@]}" >&2
  echo "clang-format would change the files above: run $clang_format -i on them" >&2
  exit 1
fi
echo "${#sources[@]} files formatted"

step "build (gcc, warnings are errors)"
CC=gcc cmake -B build -S . -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCF_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
if [ $quick = 0 ]; then
  step "build (clang, AddressSanitizer + UndefinedBehaviorSanitizer)"
  CC=clang-14 cmake -B build-asan -S . -DCMAKE_BUILD_TYPE=Debug -DCF_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  step "build (clang, libFuzzer)"
  CC=clang-14 cmake -B build-fuzz -S . -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCF_FUZZ=ON >/dev/null
  cmake --build build-fuzz -j"$jobs"
fi

step "services"
# A run killed before its cleanup leaves its folder behind, with the pids of what it started:
# stop those (only if the run that owns them is gone) and remove the folder.
for old in /tmp/certfleet-test.*; do
  [ -d "$old" ] || continue
  if [ -s "$old/owner.pid" ] && kill -0 "$(cat "$old/owner.pid")" 2>/dev/null; then continue; fi
  echo "cleaning up the stale test run $old"
  cf_redis_stop "$old/redis" || true
  cf_pg_stop "$old/pg" || true
  # Whatever still runs from that folder (its pid recorded, its command line or working
  # folder inside it: a recycled pid must not be killed).
  for pidfile in "$old"/*.server.pid; do
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    [ -d "/proc/$pid" ] || continue
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$old" ||
       readlink "/proc/$pid/cwd" 2>/dev/null | grep -qF "$old"; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$old"
done
tmp=$(mktemp -d /tmp/certfleet-test.XXXXXX)
chmod 755 "$tmp" # the postgres user must reach its data folder inside
echo $$ >"$tmp/owner.pid"
cleanup() {
  local rc=$?
  cf_redis_stop "$tmp/redis" || true
  cf_pg_stop "$tmp/pg" || true
  rm -rf "$tmp"
  return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=0
for attempt in 1 2 3 4 5; do
  pg_port=$(cf_free_port)
  if cf_pg_start "$tmp/pg" "$pg_port"; then started=1; break; fi
  echo "PostgreSQL did not start on port $pg_port (attempt $attempt)" >&2
done
[ $started = 1 ] || { echo "could not start PostgreSQL" >&2; exit 1; }
cf_pg_running "$tmp/pg" >"$tmp/postgres.server.pid"
started=0
for attempt in 1 2 3 4 5; do
  redis_port=$(cf_free_port)
  if cf_redis_start "$tmp/redis" "$redis_port"; then started=1; break; fi
  echo "Redis did not start on port $redis_port (attempt $attempt)" >&2
done
[ $started = 1 ] || { echo "could not start Redis" >&2; exit 1; }
cf_redis_running "$tmp/redis" >"$tmp/redis.server.pid"
export CERTFLEET_TEST_PG="host=127.0.0.1 port=$pg_port user=postgres dbname=postgres"
export CERTFLEET_TEST_REDIS="127.0.0.1:$redis_port"
echo "PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port, in $tmp"

# run_ctest NAME BUILD-DIR LABELS: ctest in that build, output kept for the summary.
run_ctest() {
  local name=$1 dir=$2 labels=$3 args=(--output-on-failure --no-tests=error -j2)
  [ -n "$labels" ] && args+=(-L "$labels")
  if ctest --test-dir "$dir" "${args[@]}" 2>&1 | tee "$tmp/ctest-$dir.log"; then
    record "$name" ok
  else
    record "$name" FAILED
  fi
}

step "tests (gcc build${label:+, label $label})"
run_ctest "tests (gcc)" build "$label"

if [ $quick = 0 ]; then
  step "tests (sanitizer build)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_ctest "tests (sanitizers)" build-asan "${label:-unit|integration}"

  step "fuzzing (${fuzz_seconds}s per target)"
  for fuzzer in build-fuzz/fuzz/fuzz_*; do
    [ -x "$fuzzer" ] || continue
    name=$(basename "$fuzzer")
    short=${name#fuzz_}
    corpus="$tmp/corpus-$short"
    mkdir -p "$corpus"
    [ -d "tests/fuzz/corpus/$short" ] && cp -r "tests/fuzz/corpus/$short/." "$corpus/"
    # Crashing inputs land next to the corpus in the tree (git ignores them) so that they
    # survive the cleanup and can be added to tests/fuzz/corpus as regression inputs.
    touch "$tmp/$name.start"
    if (cd "$tmp" && "$root/$fuzzer" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
          -artifact_prefix="$root/tests/fuzz/" -print_final_stats=1 "$corpus" \
          >"$tmp/$name.log" 2>&1); then
      runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$name.log" | tail -1)
      record "$name" "ok (${runs:-?} runs)"
    else
      tail -40 "$tmp/$name.log" >&2
      # Minimise what it found, so that the regression input is small enough to read; it
      # becomes a regression test once copied into the corpus (tests/fuzz/README.md).
      for found in $(find tests/fuzz -maxdepth 1 -newer "$tmp/$name.start" -type f \
                       \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \)); do
        small="tests/fuzz/minimized-$short-$(basename "$found")"
        (cd "$tmp" && "$root/$fuzzer" -minimize_crash=1 -max_total_time=60 -rss_limit_mb=2048 \
           -exact_artifact_path="$root/$small" "$root/$found" >"$tmp/$name.min.log" 2>&1) || true
        [ -s "$small" ] || small=$found
        echo "$name found $found; as a regression test:" >&2
        echo "  cp $small tests/fuzz/corpus/$short/regress-$(basename "$found")" >&2
      done
      record "$name" "FAILED (input saved in tests/fuzz/)"
    fi
  done
fi

step "summary"
printf '%s\n' "${results[@]}"
for log in "$tmp"/ctest-*.log; do
  [ -f "$log" ] || continue
  name=$(basename "$log" .log)
  count=$(grep -E '^[0-9]+% tests passed' "$log" | tail -1 || true)
  if [ -n "$count" ]; then printf '%-22s %s\n' "  ${name#ctest-}" "$count"; fi
done
if [ $failed != 0 ]; then
  echo "FAILED"
  exit 1
fi
echo "all passed"
