#!/usr/bin/env bash
# Install what certfleet needs to build, test and run, from Debian 12's packages.
# Idempotent: apt runs only when something is missing, and "apt-get update" only when the
# package lists are missing or too old to install from. Needs root (or sudo) for that; asks
# nothing (DEBIAN_FRONTEND=noninteractive).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates curl python3 openssl
  clang-14 libclang-rt-14-dev clang-format-14
  libzmq3-dev libczmq-dev libmsgpack-dev libhiredis-dev libpq-dev libssl-dev
  libcmocka-dev libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
  postgresql-15 postgresql-client-15 redis-server redis-tools
  certbot pebble apache2-utils dnsmasq-base iproute2 procps
  docker-compose
)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null ||
    { echo "install-deps: these packages are missing and we are not root (and there is no sudo): ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
apt_install() {
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@"
}

# The Debian packages would start a system PostgreSQL cluster and a system Redis. certfleet
# never uses them (tests and deploy/local.sh run their own, in folders of their own, on other
# ports), so nothing is started during the install: policy-rc.d says "no" to every start.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
restore_policy() {
  if [ $created_policy = 1 ]; then "${sudo[@]}" rm -f /usr/sbin/policy-rc.d; fi
}
trap restore_policy EXIT

# Fresh machines (containers) have no package lists at all: fetch them first. Otherwise try
# with the lists we have and fetch new ones only if that fails (lists too old).
if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then
  "${sudo[@]}" apt-get update -q
fi
if ! apt_install "${missing[@]}"; then
  "${sudo[@]}" apt-get update -q
  apt_install "${missing[@]}"
fi

# If a system cluster runs anyway (it was there before, or an init system started it), it
# stays out of our way: we use other ports and our own sockets. Say so once.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  echo "note: a system PostgreSQL cluster is running (pg_lsclusters); certfleet does not use it"
fi
echo "dependencies installed"
