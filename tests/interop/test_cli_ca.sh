#!/usr/bin/env bash
# interop.cli_ca: the certfleet ca and cert commands against a real fleet (broker and signer on
# loopback, a fresh PostgreSQL database, the test Redis), checked with openssl: a root and an
# intermediate CA made with `ca init`, a CSR from `openssl req` signed with `cert sign` and
# accepted by `openssl verify -x509_strict`; list, view, dump and edit; --json; errors.
# Needs CERTFLEET_TEST_PG (an admin conninfo) and CERTFLEET_TEST_REDIS (127.0.0.1:PORT), else
# exits 77 (skipped); CF_BIN_DIR and CF_SOURCE_DIR come from ctest.
FLEET_EXTRA_CONFIG="[ca]
default_hostname = ca.example.test:8080"
# shellcheck source=lib_fleet.sh
. "$(dirname "$0")/lib_fleet.sh"
pem_count() { grep -c -- "-----BEGIN CERTIFICATE-----" "$1"; }

fleet_start certfleet-broker
fleet_start certfleet-signer signer
fleet_wait_service cert.issue 1

# --- ca init ------------------------------------------------------------------------------
out=$(cf ca init itroot "CN=Interop Root,O=certfleet" --key-type EC --elliptic-curve secp384r1 \
  --path-length 1 --website https://ca.example.test)
has "$out" 'Created certificate authority "itroot"' "ca init itroot"
printf 'inter secret\n' >pw
out=$(cf ca init itinter "/O=certfleet/CN=Interop Intermediate" --parent itroot --key-type EC \
  --expires 365 --password-file pw \
  --sign-extension '{"type": "issuer_alternative_name", "value": [{"type": "URI", "value": "https://ca.example.test/"}]}')
has "$out" 'Created certificate authority "itinter"' "ca init itinter"
cf --json ca init ited "CN=Interop Ed25519" --key-type Ed25519 --no-default-hostname >ited.json
json "ca init --json" <ited.json
pyjson 'd["name"] == "ited" and len(d["serial"]) > 0 and d["expires"] > 0' "ca init --json" <ited.json

# --- cert sign ----------------------------------------------------------------------------
openssl req -new -newkey rsa:2048 -nodes -keyout leaf.key -subj "/CN=leaf.example.test" \
  -out leaf.csr 2>/dev/null
openssl req -in leaf.csr -outform DER -out leaf.der.csr
expect_fail 1 "password" cert sign --ca itinter --csr leaf.csr
cf cert sign --ca itinter --csr leaf.csr --password 'inter secret' -o leaf.pem 2>serial.txt
serial=$(tr -d '\n' <serial.txt)
[[ $serial =~ ^[0-9A-F]+$ ]] || fail "cert sign: \"$serial\" on standard error is not a serial"
cf ca dump itroot -o root.pem
cf ca dump itinter >inter.pem
openssl verify -x509_strict -CAfile root.pem -untrusted inter.pem leaf.pem >/dev/null ||
  fail "openssl verify refused the certificate from a PEM CSR"
[ "$(openssl x509 -in leaf.pem -noout -serial)" = "serial=$serial" ] || fail "serial differs"
openssl x509 -in leaf.pem -noout -ext issuerAltName | grep -q "https://ca.example.test/" ||
  fail "cert sign: the CA's sign extension is missing"

cf cert sign --ca itinter --csr leaf.der.csr --password 'inter secret' --bundle --profile server \
  --expires 30 --no-ocsp-url >bundle.pem 2>/dev/null
[ "$(pem_count bundle.pem)" = 3 ] || fail "cert sign --bundle: not 3 certificates"
openssl verify -x509_strict -CAfile root.pem -untrusted bundle.pem bundle.pem >/dev/null ||
  fail "openssl verify refused the certificate from a DER CSR"
openssl x509 -in bundle.pem -noout -text | grep -q "OCSP - URI" &&
  fail "cert sign --no-ocsp-url: the OCSP URL is there"
cf cert sign --ca itinter --csr leaf.csr --password 'inter secret' --format DER -o leaf.der 2>/dev/null
openssl x509 -inform DER -in leaf.der -noout || fail "cert sign --format DER: not DER"
expect_fail 2 "give --password or --password-file, once" cert sign --ca itinter --csr leaf.csr \
  --password 'inter secret' --password-file pw
expect_fail 1 "nonexistent" cert sign --ca itinter --csr leaf.csr --password-file nonexistent
cf --json cert sign --ca itinter --csr leaf.csr --password 'inter secret' >sign.json
json "cert sign --json" <sign.json
pyjson 'd["ca"] == "itinter" and len(d["chain"]) == 2 and d["der"]' "cert sign --json" <sign.json

# --- ca list, view, dump ------------------------------------------------------------------
out=$(cf ca list)
has "$out" "itroot" "ca list"
has "$out" "└─ itinter" "ca list (tree)"
has "$out" "Interop Intermediate" "ca list"
cf --json ca list >list.json
json "ca list --json" <list.json
pyjson '{c["name"]: c["parent"] for c in d} == {"itroot": None, "itinter": "itroot", "ited": None}' \
  "ca list --json" <list.json

out=$(cf ca view itinter)
has "$out" 'Certificate authority "itinter"' "ca view"
has "$out" "itroot" "ca view (parent)"
has "$out" "Max path length:         0" "ca view"
has "$out" "Usable:                  yes" "ca view"
has "$out" "Public key (JWK):        {\"kty\":\"EC\"" "ca view"
has "$out" "SHA-256 fingerprint:" "ca view"
has "$out" "-----BEGIN CERTIFICATE-----" "ca view"
cf --json ca view itinter >view.json
json "ca view --json" <view.json
pyjson 'd["name"] == "itinter" and d["parent"] == "itroot" and len(d["bundle"]) == 2 and
  d["max_path_length"] == 0 and not d["allows_intermediate_ca"] and d["usable"] and
  d["public_key_jwk"]["kty"] == "EC" and d["fingerprints"]["sha256"]' "ca view --json" <view.json

cf ca dump itinter --bundle -o chain.pem
[ "$(pem_count chain.pem)" = 2 ] || fail "ca dump --bundle: not 2 certificates"
[ "$(openssl x509 -in chain.pem -noout -subject)" = "$(openssl x509 -in root.pem -noout -subject)" ] ||
  fail "ca dump --bundle: the root does not come first"
cf ca dump itroot --format der -o root.der
openssl x509 -inform DER -in root.der -noout || fail "ca dump --format DER: not DER"
cf --json ca dump itinter --bundle | pyjson 'len(d["certificates"]) == 2' "ca dump --json"

# --- cert list, view, dump ----------------------------------------------------------------
colons=$(sed 's/../&:/g; s/:$//' <<<"$serial")
lower=$(tr 'A-F' 'a-f' <<<"$colons")
out=$(cf cert list)
has "$out" "$colons" "cert list"
has "$out" "leaf.example.test" "cert list"
out=$(cf cert list --ca itroot)
grep -qF "$colons" <<<"$out" && fail "cert list --ca itroot shows a certificate of itinter"
cf --json cert list --ca itinter --expired --revoked >certs.json
json "cert list --json" <certs.json
pyjson "len(d) == 4 and \"$serial\" in [c['serial'] for c in d] and
  all(c['status'] == 'valid' and c['ca'] == 'itinter' for c in d)" "cert list --json" <certs.json

out=$(cf cert view "$lower")
has "$out" "leaf.example.test" "cert view"
has "$out" "$colons" "cert view"
has "$out" "itinter" "cert view"
cf --json cert view "$serial" --ca itinter >cert.json
json "cert view --json" <cert.json
pyjson "d['serial'] == '$serial' and d['ca'] == 'itinter' and d['status'] == 'valid' and
  d['csr'].startswith('-----BEGIN CERTIFICATE REQUEST-----')" "cert view --json" <cert.json

cf cert dump "$lower" --bundle -o dumped.pem
[ "$(pem_count dumped.pem)" = 3 ] || fail "cert dump --bundle: not 3 certificates"
openssl verify -x509_strict -CAfile root.pem -untrusted dumped.pem dumped.pem >/dev/null ||
  fail "openssl verify refused the dumped bundle"
cf cert dump "$serial" --format DER -o dumped.der
[ "$(openssl x509 -inform DER -in dumped.der -noout -serial)" = "serial=$serial" ] ||
  fail "cert dump --format DER: wrong certificate"
cf --json cert dump "$serial" | pyjson 'len(d["certificates"]) == 1' "cert dump --json"

# --- ca edit ------------------------------------------------------------------------------
out=$(cf ca edit itinter --disable --caa ca.example.test)
has "$out" "yes -> no" "ca edit --disable"
has "$out" "ca.example.test" "ca edit --caa"
expect_fail 1 "disabled" cert sign --ca itinter --csr leaf.csr --password 'inter secret'
cf --json ca edit itinter --enable | pyjson 'd["changed"]["enabled"]["new"] is True' "ca edit --json"
cf cert sign --ca itinter --csr leaf.csr --password 'inter secret' -o again.pem 2>/dev/null
out=$(cf ca edit itinter --enable)
has "$out" "nothing changed" "ca edit (no change)"

# --- errors -------------------------------------------------------------------------------
echo "not a CSR" >bad.csr
expect_fail 1 'certificate authority "nope" does not exist' cert sign --ca nope --csr leaf.csr
expect_fail 1 "holds no certificate signing request" cert sign --ca itinter --csr bad.csr
expect_fail 1 "holds no certificate signing request" cert sign --ca itinter --csr root.pem
expect_fail 1 "could not read" cert sign --ca itinter --csr "$work/missing.csr"
expect_fail 1 "is not JSON" cert sign --ca itinter --csr leaf.csr --extension '{bad'
expect_fail 1 "unknown extension" cert sign --ca itinter --csr leaf.csr --extension '{"type": "x"}'
expect_fail 2 "usage" cert sign --ca itinter
expect_fail 2 "unknown option" cert sign --ca itinter --csr leaf.csr --frobnicate
expect_fail 2 "PEM or DER" cert dump "$serial" --format XML
expect_fail 1 'certificate authority "nope" does not exist' ca view nope
expect_fail 1 'certificate authority "nope" does not exist' ca dump nope
expect_fail 1 'certificate authority "nope" does not exist' ca init itx "CN=x" --parent nope
expect_fail 1 "already exists" ca init itroot "CN=again" --key-type EC
expect_fail 1 'certificate authority "nope" does not exist' ca edit nope --disable
expect_fail 1 'certificate authority "nope" does not exist' cert list --ca nope
expect_fail 1 "does not exist" cert view 0123456789ABCDEF
expect_fail 1 "not a serial number" cert view xyz
expect_fail 2 "nothing to change" ca edit itinter
expect_fail 2 "usage" ca init itx

# Import: a CA made by the openssl command line, then a certificate it signed.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout imp.key \
  -subj "/CN=openssl made root" -days 30 -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" -out imp.pem 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout impleaf.key \
  -subj "/CN=imported.example.test" -out impleaf.csr 2>/dev/null
openssl x509 -req -in impleaf.csr -CA imp.pem -CAkey imp.key -CAcreateserial -days 5 \
  -outform DER -out impleaf.der 2>/dev/null
cf ca import itimported imp.pem imp.key | grep -q 'Imported certificate authority "itimported"' ||
  fail "ca import"
cf cert import --ca itimported impleaf.der | grep -q "Imported certificate" || fail "cert import"
cf cert list --ca itimported | grep -q "imported.example.test" || fail "imported certificate not listed"
expect_fail 1 "already known" cert import --ca itimported impleaf.der
expect_fail 1 "not signed by" cert import --ca itroot impleaf.der
expect_fail 1 "already exists" ca import itimported imp.pem imp.key
expect_fail 1 "does not belong" ca import itother imp.pem impleaf.key
expect_fail 2 "ca import NAME CERTIFICATE KEY" ca import itonly imp.pem

echo "ok: ca init/list/view/dump/edit/import and cert sign/list/view/dump/import"
