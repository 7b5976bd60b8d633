#!/usr/bin/env bash
# The CURVE key pairs of a fleet (docs/security.md), made once and kept (idempotent: an
# existing key is never replaced; delete it to make a new one).
#   deploy/make-keys.sh DIR [CERTFLEET]
# DIR/NAME.key   secret certificate of NAME (mode 0600): [curve] secret_key_file of that process
# DIR/broker.pub the broker's public certificate: [curve] broker_public_key_file of everyone else
# DIR/clients/   the allow-list the broker reads ([curve] clients_dir): one public certificate
#                per client or worker key, with its grant (role, job types, CAs)
# CERTFLEET is the certfleet command (default: the one on PATH).
set -euo pipefail
dir=${1:?usage: make-keys.sh DIR [CERTFLEET]}
cf=${2:-certfleet}
mkdir -p "$dir/clients"
chmod 700 "$dir"

# key NAME [keygen options]: make NAME once; clients and workers go on the allow-list.
key() {
  local name=$1
  shift
  if [ ! -f "$dir/$name.key" ]; then
    "$cf" keygen "$name" --dir "$dir" "$@" >/dev/null
  fi
  if [ "$name" != broker ]; then
    cp "$dir/$name.pub" "$dir/clients/$name.pub"
  fi
}

key broker
# Every worker program shares one key: they are interchangeable and scale out.
key worker --role worker
# The certfleet command of the operators: every job type, every CA.
key admin --role client --job-types '*' --cas '*'
# The ACME front issues and revokes only for ACME-enabled CAs and asks for validations.
key acme --role client --job-types cert.issue,cert.revoke,acme.validate --cas @acme
# The scheduler submits the periodic jobs only.
key scheduler --role client --job-types crl.build,ocsp.keygen,ocsp.presign,notify.expiring --cas '*'
echo "keys in $dir: broker, worker, admin, acme, scheduler (allow-list: $dir/clients)"
