#!/usr/bin/env bash
# The first command a newcomer runs (README): install what is missing, build, start a local
# fleet in .run/ (deploy/local.sh up), send it a demonstration job and say what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\n==> %s\n' "$*"; }

say "installing what is missing (Debian packages; nothing when all is there)"
deploy/install-deps.sh

say "building: every program goes to build/bin"
cmake -B build -S . >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

say "starting a local fleet in .run/ (PostgreSQL, Redis, broker, workers; loopback only)"
deploy/local.sh up
eval "$(deploy/local.sh env)"
cf=build/bin/certfleet

# The workers announce themselves to the broker within a heartbeat or two.
ready=0
for _ in $(seq 1 60); do
  if "$cf" status >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.25
done
if [ $ready = 0 ]; then
  echo "the broker did not answer within 15 s; its log is .run/log/certfleet-broker.log" >&2
  deploy/local.sh status >&2 || true
  exit 1
fi

say "the broker and its workers (certfleet status)"
"$cf" status

say "a job round trip: certfleet job submit schemas/jobs/examples/sys.echo.json"
echo "the job:"
sed 's/^/    /' schemas/jobs/examples/sys.echo.json
echo "the reply:"
if ! reply=$("$cf" job submit schemas/jobs/examples/sys.echo.json); then
  echo "the job failed; the logs are in .run/log/" >&2
  exit 1
fi
printf '%s\n' "$reply" | sed 's/^/    /'
summary=$(printf '%s' "$reply" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("status \"%s\", answered by worker \"%s\", job id %s"
      % (r.get("status"), r.get("result", {}).get("worker", "?"), r.get("id")))' 2>/dev/null ||
  echo "see the reply above")
echo "in short: $summary"

cat <<TXT

What happened: the certfleet command sent the job to the broker over ZeroMQ; the broker
handed it to a worker that serves sys.echo; the worker took a Redis lock on the job id,
recorded the job and its reply in PostgreSQL (table job_results) in one transaction, and
answered. Sending the same job id again returns the stored reply without running it twice.

TXT

say "a certificate authority: a root, an intermediate below it, and a server certificate"
demo=.run/demo
# The CAs' default hostname is the local certfleet-ocspd, so the OCSP and CRL URLs in the
# certificates are ones this machine answers.
host=127.0.0.1:${CERTFLEET_LOCAL_OCSPD_PORT:-28080}
mkdir -p "$demo"
# Idempotent: a second run reuses the CAs of the first.
if ! $cf ca view demo-root >/dev/null 2>&1; then
  $cf ca init demo-root "CN=certfleet demo root,O=certfleet" --key-type EC --path-length 1 \
    --default-hostname "$host"
fi
if ! $cf ca view demo-intermediate >/dev/null 2>&1; then
  $cf ca init demo-intermediate "CN=certfleet demo intermediate,O=certfleet" --parent demo-root \
    --key-type EC --path-length 0 --default-hostname "$host"
fi
$cf ca list
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$demo/server.key" \
  -subj "/CN=server.example.test" -out "$demo/server.csr" 2>/dev/null
$cf cert sign --ca demo-intermediate --csr "$demo/server.csr" --profile webserver --out "$demo/server.pem"
$cf ca dump demo-root -o "$demo/root.pem"
$cf ca dump demo-intermediate -o "$demo/intermediate.pem"
say "openssl verify -x509_strict accepts the server certificate"
openssl verify -x509_strict -CAfile "$demo/root.pem" -untrusted "$demo/intermediate.pem" "$demo/server.pem"
$cf x509 show "$demo/server.pem" | sed 's/^/    /'

say "revocation: an OCSP responder, pre-signed answers, a revocation, a CRL"
$cf ocsp keygen demo-intermediate demo-root
$cf ocsp presign demo-intermediate demo-root
ocsp_query() {
  openssl ocsp -issuer "$demo/intermediate.pem" -cert "$demo/server.pem" \
    -url "http://$host/ocsp/demo-intermediate/" -CAfile "$demo/root.pem" \
    -verify_other "$demo/intermediate.pem" 2>&1 | sed 's/^/    /'
}
echo "openssl ocsp asks certfleet-ocspd about the server certificate:"
ocsp_query
serial=$(openssl x509 -in "$demo/server.pem" -noout -serial | cut -d= -f2)
$cf cert revoke "$serial" --reason superseded
echo "openssl ocsp asks again (the response was re-signed when the certificate was revoked):"
ocsp_query
$cf crl build --all
curl -sf -o "$demo/intermediate.crl" "http://$host/crl/demo-intermediate.crl"
openssl crl -inform DER -in "$demo/intermediate.crl" -out "$demo/intermediate.crl.pem"
echo "the CRL served at http://$host/crl/demo-intermediate.crl lists it:"
openssl crl -in "$demo/intermediate.crl.pem" -noout -text | grep -A3 "Serial Number: $serial" | sed 's/^/    /'
echo "and openssl verify -crl_check now rejects the certificate:"
openssl verify -crl_check -CAfile "$demo/root.pem" -untrusted "$demo/intermediate.pem" \
  -CRLfile "$demo/intermediate.crl.pem" "$demo/server.pem" 2>&1 | sed 's/^/    /' || true

cat <<TXT

The server certificate, its key and the CA certificates are in $demo/.
The fleet keeps running. Next:
  eval "\$(deploy/local.sh env)"   point the certfleet command at this fleet
  build/bin/certfleet ca list      the CAs; ca view NAME, cert list, cert sign --ca NAME --csr FILE
  build/bin/certfleet crl build --all; ocsp presign --all   refresh CRLs and OCSP responses
  http://$host/           certfleet-ocspd: /ocsp/CA/, /crl/CA.crl, /ca/CA.der
  build/bin/certfleet status       workers, credit and queues
  deploy/local.sh status           the processes and their pids (logs in .run/log/)
  deploy/local.sh down             stop everything
TXT
