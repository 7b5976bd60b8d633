#!/usr/bin/env bash
# The files under deploy/ that run certfleet for real stay in step with the programs:
# docker-compose.yml is valid (docker-compose config -q) and runs every program; every program
# has a systemd unit that systemd-analyze accepts and an env file; deploy/make-keys.sh makes
# the keys every process of the sample config needs, and the sample config loads.
set -euo pipefail
src=${CF_SOURCE_DIR:?} bin=${CF_BIN_DIR:?}
cd "$src"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

if command -v docker-compose >/dev/null; then
  docker-compose -f docker-compose.yml config -q || fail "docker-compose config -q refused docker-compose.yml"
  echo "ok: docker-compose config -q"
elif [ "${CI:-}" = true ]; then
  fail "docker-compose is not installed (deploy/install-deps.sh installs it)"
else
  echo "skip: docker-compose config (docker-compose not installed)"
fi

programs=()
for p in "$bin"/certfleet-*; do programs+=("$(basename "$p")"); done
[ ${#programs[@]} -ge 9 ] || fail "expected every program in $bin, found ${programs[*]}"
for p in "${programs[@]}"; do
  grep -q "\"$p\"" docker-compose.yml || fail "docker-compose.yml runs no $p"
  if [ -f "deploy/systemd/$p.service" ]; then
    unit="$p.service" env="$p"
  elif [ -f "deploy/systemd/$p@.service" ]; then
    unit="$p@1.service" env="$p@1"
    cp "deploy/systemd/$p@.service" "$work/$unit.in"
  else
    fail "no systemd unit for $p under deploy/systemd"
  fi
  [ -f "deploy/systemd/env/$env.env" ] || fail "no deploy/systemd/env/$env.env"
  grep -q "certfleet-" deploy/systemd/certfleet.target || fail "certfleet.target names nothing"
  grep -q "$p" deploy/systemd/certfleet.target || fail "certfleet.target does not start $p"
  # The unit as installed, with the program where this build put it.
  from="deploy/systemd/$unit"
  [ -f "$work/$unit.in" ] && from="$work/$unit.in"
  sed "s|/usr/local/bin/|$bin/|" "$from" >"$work/$unit"
  rm -f "$work/$unit.in"
done
if command -v systemd-analyze >/dev/null; then
  (cd "$work" && systemd-analyze verify --man=no ./*.service) >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log" >&2; fail "systemd-analyze verify refused a unit"; }
  # It also reports problems without failing: any line about our units is one.
  if grep -i "certfleet" "$work/verify.log"; then fail "systemd-analyze verify warned"; fi
  echo "ok: systemd-analyze verify (${#programs[@]} units)"
fi

# The keys the sample config and the units name.
PATH="$bin:$PATH" deploy/make-keys.sh "$work/keys" >/dev/null
for f in broker.key broker.pub worker.key admin.key acme.key scheduler.key \
  clients/worker.pub clients/admin.pub clients/acme.pub clients/scheduler.pub; do
  [ -s "$work/keys/$f" ] || fail "make-keys.sh made no $f"
done
[ ! -e "$work/keys/clients/broker.pub" ] || fail "the broker's own key is not a client"
before=$(sha256sum "$work/keys/admin.key")
PATH="$bin:$PATH" deploy/make-keys.sh "$work/keys" >/dev/null
[ "$(sha256sum "$work/keys/admin.key")" = "$before" ] || fail "make-keys.sh replaced a key"
for f in deploy/systemd/env/*.env; do
  k=$(sed -n 's|^CERTFLEET_CURVE_SECRET_KEY_FILE=/etc/certfleet/keys/||p' "$f")
  [ -z "$k" ] || [ -s "$work/keys/$k" ] || fail "$f names a key make-keys.sh does not make: $k"
done
echo "ok: deploy/make-keys.sh"
echo "PASS"
