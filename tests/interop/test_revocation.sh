#!/usr/bin/env bash
# interop.revocation: revocation end to end with the openssl command line as the client.
# A fleet (broker, signer, two crl workers, two ocsp workers, certfleet-ocspd) and a root and
# intermediate whose default_hostname is certfleet-ocspd, so the URLs in the certificates are
# the ones it serves. Checked: `openssl ocsp -url` reports good, then revoked with its reason
# right after `cert revoke` (re-signed at once, before any presign run), verifying the
# responder chain; `openssl crl -verify` accepts every CRL fetched over HTTP; `openssl verify
# -crl_check` rejects the revoked leaf and accepts the good one; a revoked intermediate shows
# in the root's CA-scope CRL and -crl_check_all rejects its leaf; bad input is refused.
# shellcheck source=lib_fleet.sh
. "$(dirname "$0")/lib_fleet.sh"

ocspd_port=$(free_port)
host="127.0.0.1:$ocspd_port"
cat >>"$conf" <<EOF
[ocspd]
listen = $host
EOF
fleet_start certfleet-broker
fleet_start certfleet-signer signer
fleet_start certfleet-crl crl1
fleet_start certfleet-crl crl2
fleet_start certfleet-ocsp ocsp1
fleet_start certfleet-ocsp ocsp2
fleet_start certfleet-ocspd
fleet_wait_service cert.revoke 1
fleet_wait_service crl.build 2
fleet_wait_service ocsp.presign 2
for _ in $(seq 100); do
  curl -sf "http://$host/health" >/dev/null && break
  sleep 0.1
done
curl -sf "http://$host/health" >/dev/null || fail "certfleet-ocspd does not answer /health"

# --- a hierarchy whose URLs point at certfleet-ocspd --------------------------------------
cf ca init root "CN=Revocation Root,O=certfleet" --key-type EC --path-length 1 \
  --default-hostname "$host" >/dev/null
cf ca init inter "CN=Revocation Intermediate,O=certfleet" --parent root --key-type EC \
  --path-length 0 --default-hostname "$host" >/dev/null
cf ca init inter2 "CN=Second Intermediate,O=certfleet" --parent root --key-type RSA \
  --key-size 2048 --path-length 0 --default-hostname "$host" >/dev/null
cf ca dump root -o root.pem
cf ca dump inter -o inter.pem
cf ca dump inter2 -o inter2.pem
for name in good bad other; do
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" \
    -subj "/CN=$name.example.test" -out "$name.csr" 2>/dev/null
done
cf cert sign --ca inter --csr good.csr -o good.pem 2>good.serial
cf cert sign --ca inter --csr bad.csr -o bad.pem 2>bad.serial
cf cert sign --ca inter2 --csr other.csr -o other.pem 2>other.serial
bad_serial=$(tr -d '\n' <bad.serial)
openssl x509 -in good.pem -noout -ext authorityInfoAccess,crlDistributionPoints | grep -q "$host" ||
  fail "the leaf does not carry certfleet-ocspd's URLs"

# --- OCSP: responders, pre-signed answers, good ------------------------------------------
cf ocsp keygen inter root >/dev/null
cf ocsp presign inter root >/dev/null
ocsp() { # ocsp ISSUER CERT CA-NAME: openssl ocsp's status line for CERT
  openssl ocsp -issuer "$1" -cert "$2" -url "http://$host/ocsp/$3/" -CAfile root.pem \
    -verify_other "$1" 2>"$work/ocsp.err"
}
out=$(ocsp inter.pem good.pem inter)
has "$out" "good.pem: good" "openssl ocsp (good)"
grep -q "Response verify OK" ocsp.err || fail "openssl ocsp did not verify the responder chain: $(cat ocsp.err)"
out=$(ocsp inter.pem bad.pem inter)
has "$out" "bad.pem: good" "openssl ocsp (not yet revoked)"
# The response comes with RFC 5019 caching headers.
openssl ocsp -issuer inter.pem -cert good.pem -reqout req.der >/dev/null 2>&1
headers=$(curl -s -D - -o /dev/null -H 'Content-Type: application/ocsp-request' \
  --data-binary @req.der "http://$host/ocsp/inter/")
has "$headers" "application/ocsp-response" "OCSP content type"
has "$headers" "max-age=" "OCSP Cache-Control"

# --- revoke: OCSP answers revoked at once -------------------------------------------------
out=$(cf cert revoke "$bad_serial" --reason key_compromise)
has "$out" "Revoked certificate" "cert revoke"
out=$(ocsp inter.pem bad.pem inter)
has "$out" "bad.pem: revoked" "openssl ocsp right after cert revoke"
grep -q "Reason: keyCompromise" <<<"$out" || fail "openssl ocsp shows no keyCompromise reason: $out"
out=$(ocsp inter.pem good.pem inter)
has "$out" "good.pem: good" "openssl ocsp (the other certificate)"
# Revoking twice, or an unknown serial: clear errors, exit 1.
expect_fail 1 already_revoked cert revoke "$bad_serial"
expect_fail 1 unknown_certificate cert revoke 0123456789ABCDEF

# --- CRLs over HTTP ------------------------------------------------------------------------
inter2_serial=$(openssl x509 -in inter2.pem -noout -serial | cut -d= -f2)
cf crl build --all >/dev/null
# A revoked CA signs nothing more, no CRL either: its last CRL stays published. Its parent's
# CA-scope CRL lists it from the next build on.
cf ca revoke inter2 --reason cessation_of_operation >/dev/null
cf crl build root >/dev/null
fetch() { curl -sf -o "$2" "http://$host$1" || fail "GET $1"; }
fetch /crl/inter.crl inter.crl
fetch /crl/root/ca.crl root-ca.crl
fetch /crl/inter2.crl inter2.crl
fetch /ca/root.der root.der
cmp <(openssl x509 -in root.der -inform DER -outform DER) <(openssl x509 -in root.pem -outform DER) ||
  fail "/ca/root.der is not the root certificate"
for crl in inter.crl:inter.pem root-ca.crl:root.pem inter2.crl:inter2.pem; do
  file=${crl%%:*} issuer=${crl##*:}
  openssl crl -inform DER -in "$file" -noout -CAfile "$issuer" -verify 2>&1 | grep -q "verify OK" ||
    fail "openssl crl -verify rejects $file"
  openssl crl -inform DER -in "$file" -out "${file%.crl}.crl.pem"
done
openssl crl -in inter.crl.pem -noout -text | grep -q "Serial Number: $bad_serial" ||
  fail "the revoked serial is not in the intermediate's CRL"
openssl crl -in root-ca.crl.pem -noout -text | grep -q "Serial Number: $inter2_serial" ||
  fail "the revoked intermediate is not in the root's CA CRL"
openssl crl -in inter.crl.pem -noout -text | grep -q "Only User Certificates" ||
  fail "the user CRL lacks onlyContainsUserCerts"
openssl crl -in root-ca.crl.pem -noout -text | grep -q "Only CA Certificates" ||
  fail "the CA CRL lacks onlyContainsCACerts"
cat root.pem inter.pem inter2.pem >cas.pem
cat inter.crl.pem root-ca.crl.pem inter2.crl.pem >crls.pem
verify() { openssl verify -crl_check -CAfile root.pem -untrusted "$1" -CRLfile crls.pem "$2" 2>&1; }
verify_all() { openssl verify -crl_check_all -CAfile root.pem -untrusted "$1" -CRLfile crls.pem "$2" 2>&1; }
out=$(verify inter.pem good.pem) || fail "openssl verify -crl_check rejects the good leaf: $out"
# (-crl_check_all on a good chain would also want a CRL covering the self-signed root, which
# carries no distribution point: OpenSSL's "different CRL scope". Roots are not revoked by
# CRL; the revoked intermediate below is what -crl_check_all must catch.)
if out=$(verify inter.pem bad.pem); then fail "openssl verify -crl_check accepts the revoked leaf"; fi
has "$out" "certificate revoked" "openssl verify -crl_check on the revoked leaf"
if out=$(verify_all inter2.pem other.pem); then
  fail "openssl verify -crl_check_all accepts a leaf of the revoked intermediate"
fi
has "$out" "certificate revoked" "openssl verify -crl_check_all below the revoked intermediate"

# --- bad OCSP input ------------------------------------------------------------------------
head -c 300 /dev/urandom >garbage.bin
curl -s -o garbage.resp -H 'Content-Type: application/ocsp-request' --data-binary @garbage.bin \
  "http://$host/ocsp/inter/"
{ openssl ocsp -respin garbage.resp -resp_text -noverify 2>&1 || true; } | grep -qi "malformedrequest" ||
  fail "a garbage OCSP request is not answered malformedRequest"
# A request for the intermediate's certificate sent to the root's URL: unauthorized.
openssl ocsp -issuer inter.pem -cert good.pem -reqout other-ca.der >/dev/null 2>&1
curl -s -o other-ca.resp -H 'Content-Type: application/ocsp-request' --data-binary @other-ca.der \
  "http://$host/ocsp/root/"
{ openssl ocsp -respin other-ca.resp -resp_text -noverify 2>&1 || true; } | grep -qi "unauthorized" ||
  fail "a request for another CA is not answered unauthorized"
# The fleet still answers after all of it.
out=$(ocsp inter.pem good.pem inter)
has "$out" "good.pem: good" "openssl ocsp after bad input"
echo "interop.revocation: ok"
