#!/usr/bin/env bash
# interop.acme_certbot: certbot (Debian's package) against certfleet-acme on loopback, as
# Boulder's own test setup runs it over plain HTTP. certbot registers, obtains a certificate
# with http-01 (its standalone server on the loopback port certfleet-validator is configured
# to use), renews it, and revokes it; `openssl verify` accepts the certificate, and
# certfleet's OCSP (certfleet-ocspd, `openssl ocsp`) and CRL show the revocation. Then a
# wildcard certificate with dns-01: certbot's manual plugin, its hook putting the TXT records
# into a dnsmasq on loopback that certfleet-validator is configured to ask.
# shellcheck source=lib_fleet.sh
. "$(dirname "$0")/lib_fleet.sh"
command -v certbot >/dev/null || { echo "skipped: certbot is not installed" >&2; exit 77; }

acme_port=$(free_port)
http_port=$(free_port)
ocspd_port=$(free_port)
dns_port=$(free_port)
host="127.0.0.1:$ocspd_port"
cat >>"$conf" <<EOF
[acme]
listen = 127.0.0.1:$acme_port
base_url = http://127.0.0.1:$acme_port
[validator]
http_port = $http_port
connect_address = 127.0.0.1
dns_resolver = 127.0.0.1:$dns_port
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
# --- a wildcard certificate with dns-01 -----------------------------------------------------
# certbot calls the auth hook once per name with the TXT value (CERTBOT_DOMAIN, without "*."
# for the wildcard); the hook serves every value so far from a dnsmasq it starts again each
# time (dnsmasq reads --txt-record only at start). Both names share one record name.
if [ -x /usr/sbin/dnsmasq ]; then
  fleet_on_exit() {
    if [ -s "$work/dnsmasq.pid" ]; then kill "$(cat "$work/dnsmasq.pid")" 2>/dev/null; fi
    return 0
  }
  cat >"$work/dns-auth.sh" <<EOF
#!/usr/bin/env bash
set -eu
echo "--txt-record=_acme-challenge.\$CERTBOT_DOMAIN,\$CERTBOT_VALIDATION" >>"$work/txt-records"
if [ -s "$work/dnsmasq.pid" ]; then
  old=\$(cat "$work/dnsmasq.pid")
  kill "\$old" 2>/dev/null || true
  for _ in \$(seq 50); do kill -0 "\$old" 2>/dev/null || break; sleep 0.1; done
fi
# Without --keep-in-foreground dnsmasq returns once it has bound its port.
mapfile -t records <"$work/txt-records"
/usr/sbin/dnsmasq --port=$dns_port --listen-address=127.0.0.1 --bind-interfaces --no-resolv \\
  --no-hosts --local=/test/ --user=root --pid-file="$work/dnsmasq.pid" --log-queries \\
  --log-facility="$work/dnsmasq.log" "\${records[@]}"
EOF
  chmod +x "$work/dns-auth.sh"
  certbot_run certonly --manual --preferred-challenges dns --manual-auth-hook "$work/dns-auth.sh" \
    -d "*.wild.example.test" -d wild.example.test --cert-name wild
  [ "$(wc -l <"$work/txt-records")" = 2 ] || fail "certbot's hook did not run once per name"
  wild="$work/cb/config/live/wild"
  openssl verify -x509_strict -CAfile root.pem -untrusted "$wild/chain.pem" "$wild/cert.pem" \
    >/dev/null || fail "openssl verify rejects the wildcard certificate"
  sans=$(openssl x509 -in "$wild/cert.pem" -noout -ext subjectAltName)
  has "$sans" "DNS:*.wild.example.test" "the wildcard certificate's subjectAltName"
  has "$sans" "DNS:wild.example.test" "the wildcard certificate's subjectAltName"
  # The validator really asked the DNS server for the record.
  grep -qF "query[TXT] _acme-challenge.wild.example.test from 127.0.0.1" "$work/dnsmasq.log" ||
    fail "dnsmasq saw no TXT query for _acme-challenge.wild.example.test"
else
  echo "skipped the dns-01 part: /usr/sbin/dnsmasq is not installed (dnsmasq-base)" >&2
fi
echo "interop.acme_certbot: ok"
