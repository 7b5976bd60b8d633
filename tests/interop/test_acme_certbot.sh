#!/usr/bin/env bash
# interop.acme_certbot: certbot (Debian's package) against certfleet-acme on loopback, as
# Boulder's own test setup runs it over plain HTTP. certbot registers, obtains a certificate
# with http-01 (its standalone server on the loopback port certfleet-validator is configured
# to use), renews it, and revokes it; `openssl verify` accepts the certificate, and
# certfleet's OCSP (certfleet-ocspd, `openssl ocsp`) and CRL show the revocation.
# shellcheck source=lib_fleet.sh
. "$(dirname "$0")/lib_fleet.sh"
command -v certbot >/dev/null || { echo "skipped: certbot is not installed" >&2; exit 77; }

acme_port=$(free_port)
http_port=$(free_port)
ocspd_port=$(free_port)
host="127.0.0.1:$ocspd_port"
cat >>"$conf" <<EOF
[acme]
listen = 127.0.0.1:$acme_port
base_url = http://127.0.0.1:$acme_port
[validator]
http_port = $http_port
connect_address = 127.0.0.1
timeout_ms = 5000
[ocspd]
listen = $host
EOF
fleet_start certfleet-broker
fleet_start certfleet-signer signer
fleet_start certfleet-validator validator
fleet_start certfleet-crl crl
fleet_start certfleet-ocsp ocsp
fleet_start certfleet-acme
fleet_start certfleet-ocspd
fleet_wait_service acme.validate 1
fleet_wait_service cert.revoke 1
fleet_wait_service ocsp.presign 1

# --- an ACME-enabled CA below a root --------------------------------------------------------
cf ca init acmeroot "CN=ACME Root,O=certfleet" --key-type EC --path-length 1 \
  --default-hostname "$host" >/dev/null
cf ca init acmeca "CN=ACME Issuing CA,O=certfleet" --parent acmeroot --key-type EC \
  --path-length 0 --default-hostname "$host" --acme-enable >/dev/null
cf ca dump acmeroot -o root.pem
cf ca dump acmeca -o issuing.pem
cf ocsp keygen acmeca >/dev/null
directory="http://127.0.0.1:$acme_port/acme/acmeca/directory"
for _ in $(seq 100); do
  curl -sf "$directory" >/dev/null && break
  sleep 0.1
done
curl -sf "$directory" | pyjson '"newOrder" in d and "newAccount" in d' "the ACME directory"

certbot_run() {
  certbot "$@" --non-interactive --server "$directory" --config-dir "$work/cb/config" \
    --work-dir "$work/cb/work" --logs-dir "$work/cb/logs" >"$work/certbot.out" 2>&1 ||
    { cat "$work/certbot.out" "$work/cb/logs/letsencrypt.log" 2>/dev/null | tail -60 >&2;
      fail "certbot $1 failed"; }
}

# --- register, obtain with http-01 ----------------------------------------------------------
certbot_run register --agree-tos -m admin@example.test
certbot_run certonly --standalone --preferred-challenges http --http-01-address 127.0.0.1 \
  --http-01-port "$http_port" -d www.example.test -d example.test --cert-name web
live="$work/cb/config/live/web"
[ -f "$live/cert.pem" ] || fail "certbot wrote no certificate"
openssl verify -x509_strict -CAfile root.pem -untrusted "$live/chain.pem" "$live/cert.pem" >/dev/null ||
  fail "openssl verify rejects the certificate certbot obtained"
openssl x509 -in "$live/cert.pem" -noout -ext subjectAltName | grep -q "DNS:www.example.test" ||
  fail "the certificate lacks www.example.test"
first=$(openssl x509 -in "$live/cert.pem" -noout -serial | cut -d= -f2)

# --- renew -------------------------------------------------------------------------------
# Without a terminal (CI) certbot renew first sleeps a random time of up to 8 minutes.
certbot_run renew --force-renewal --no-random-sleep-on-renew --cert-name web \
  --http-01-address 127.0.0.1 --http-01-port "$http_port"
second=$(openssl x509 -in "$live/cert.pem" -noout -serial | cut -d= -f2)
[ "$first" != "$second" ] || fail "certbot renew did not get a new certificate"
openssl verify -x509_strict -CAfile root.pem -untrusted "$live/chain.pem" "$live/cert.pem" >/dev/null ||
  fail "openssl verify rejects the renewed certificate"

# --- OCSP says good, then revoke with certbot: OCSP and the CRL say revoked ---------------
cf ocsp presign acmeca >/dev/null
ocsp() {
  openssl ocsp -issuer issuing.pem -cert "$live/cert.pem" -url "http://$host/ocsp/acmeca/" \
    -CAfile root.pem -verify_other issuing.pem 2>"$work/ocsp.err"
}
has "$(ocsp)" ": good" "openssl ocsp before the revocation"
certbot_run revoke --cert-path "$live/cert.pem" --reason keycompromise --no-delete-after-revoke
out=$(ocsp)
has "$out" ": revoked" "openssl ocsp after certbot revoke"
grep -q "Reason: keyCompromise" <<<"$out" || fail "OCSP shows no keyCompromise: $out"
cf crl build acmeca >/dev/null
curl -sf -o issuing.crl "http://$host/crl/acmeca.crl" || fail "GET the CRL"
openssl crl -inform DER -in issuing.crl -noout -text | grep -q "Serial Number: $second" ||
  fail "the revoked certificate is not on the CRL"
openssl crl -inform DER -in issuing.crl -out issuing.crl.pem
if openssl verify -crl_check -CAfile root.pem -untrusted issuing.pem -CRLfile issuing.crl.pem \
  "$live/cert.pem" >/dev/null 2>&1; then
  fail "openssl verify -crl_check accepts the revoked certificate"
fi
# The first certificate is still good.
cp "$work/cb/config/archive/web/cert1.pem" first.pem
openssl verify -crl_check -CAfile root.pem -untrusted issuing.pem -CRLfile issuing.crl.pem \
  first.pem >/dev/null || fail "openssl verify -crl_check rejects the first certificate"
echo "interop.acme_certbot: ok"
