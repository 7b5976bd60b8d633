#!/usr/bin/env bash
# interop.cli_revocation: the certfleet verbs for revocation, CRLs and OCSP (cert revoke,
# ca revoke, crl build, crl dump, ocsp keygen, ocsp presign). First their argument errors,
# against a config whose broker and database do not exist, so that any contact would show;
# then, against a real fleet (broker, signer, crl and ocsp workers on loopback, a fresh
# PostgreSQL database, the test Redis), every part whose worker serves its jobs: a root and an
# intermediate CA, certificates signed and revoked, CRLs built for every CA and read back with
# `openssl crl`, OCSP responders made and responses pre-signed.
# Needs CERTFLEET_TEST_PG and CERTFLEET_TEST_REDIS, else exits 77 (tests/interop/lib_fleet.sh).
# shellcheck source=lib_fleet.sh
. "$(dirname "$0")/lib_fleet.sh"

# --- argument errors, with nothing to contact ---------------------------------------------
# Nothing listens on DEAD: a command that went to the broker or PostgreSQL would fail with
# exit 1 and another message, not with the usage error (exit 2) expected here.
dead=$(free_port)
conf_real=$conf
conf="$work/dead.conf"
cat >"$work/dead.conf" <<EOF
[broker]
endpoint = tcp://127.0.0.1:$dead
[postgres]
dsn = host=127.0.0.1 port=$dead dbname=nothing connect_timeout=2
[client]
timeout_ms = 200
attempts = 1
[log]
level = error
[curve]
insecure = true
EOF
expect_fail 2 "usage: certfleet cert revoke SERIAL" cert revoke
expect_fail 2 'unknown option "--frobnicate"' cert revoke 0A1B --frobnicate
expect_fail 2 'unknown revocation reason "sleepy"' cert revoke 0A1B --reason sleepy
expect_fail 2 'option "--reason" needs a value' cert revoke 0A1B --reason
expect_fail 2 '"--compromised" needs a time in UTC' cert revoke 0A1B --compromised yesterday
expect_fail 2 '"--compromised" needs a time in UTC' cert revoke 0A1B --compromised 2026-02-30T10:00:00Z
expect_fail 2 "is in the future" cert revoke 0A1B --compromised 2999-01-01T00:00:00Z
expect_fail 2 '"xyz" is not a serial number' cert revoke xyz
expect_fail 2 "usage: certfleet cert revoke" cert revoke 0A 0B
expect_fail 2 "usage: certfleet ca revoke NAME" ca revoke
expect_fail 2 'unknown option "--ca"' ca revoke root --ca other
expect_fail 2 'unknown revocation reason "sleepy"' ca revoke root --reason sleepy
expect_fail 2 "usage: certfleet crl build" crl build
expect_fail 2 "usage: certfleet crl build" crl build root --all
expect_fail 2 'unknown CRL scope "everything"' crl build --all --scope everything
expect_fail 2 'option "--shard" needs an integer' crl build --all --scope user --shard one
expect_fail 2 'option "--shard" needs --scope' crl build root --shard 1
expect_fail 2 'scope "ca" has only shard 0' crl build root --scope ca --shard 1
expect_fail 2 'option "--expires" needs an integer from 600' crl build --all --expires 5
expect_fail 2 'unknown option "--frobnicate"' crl build --all --frobnicate
expect_fail 1 'could not open.*"missing.pw"\|"missing.pw"' crl build --all --password-file missing.pw
: >empty.pw
expect_fail 1 'password file "empty.pw" is empty' ocsp keygen --all --password-file empty.pw
expect_fail 2 "usage: certfleet crl dump" crl dump
expect_fail 2 'unknown CRL scope "nope"' crl dump root --scope nope
expect_fail 2 'option "--shard" needs an integer' crl dump root --shard -1
expect_fail 2 "give --pem or --der" crl dump root --pem --der
expect_fail 2 "usage: certfleet ocsp keygen" ocsp keygen
expect_fail 2 "usage: certfleet ocsp keygen" ocsp keygen root --all
expect_fail 2 'option "--key-size" needs an integer' ocsp keygen --all --key-size big
expect_fail 2 "usage: certfleet ocsp presign" ocsp presign
expect_fail 2 'option "--shards" needs an integer from 1' ocsp presign --all --shards 0
expect_fail 2 'unknown option "--frobnicate"' ocsp presign root --frobnicate
expect_fail 2 'unknown command "crl frob"' crl frob
expect_fail 2 'unknown command "ocsp frob"' ocsp frob
# Times and reasons in every accepted spelling get past the checks to the (absent) broker.
for t in 2020-01-02T03:04:05Z "2020-01-02 03:04:05" 1577934245; do
  expect_fail 1 "cert.revoke: .*(timeout)" cert revoke 0a:1b --compromised "$t" --reason keyCompromise
done
# Help, on standard output with exit 0.
has "$(cf help)" "crl build|dump" "certfleet help"
has "$(cf help)" "ocsp keygen|presign" "certfleet help"
has "$(cf cert help)" "cert revoke SERIAL" "cert help"
has "$(cf ca help)" "ca revoke NAME" "ca help"
has "$(cf crl help)" "crl dump CA" "crl help"
has "$(cf ocsp help)" "ocsp presign CA" "ocsp help"
has "$(cf cert revoke --help)" "aa_compromise" "cert revoke --help"

# --- a fleet of our own -------------------------------------------------------------------
conf=$conf_real
fleet_start certfleet-broker
fleet_start certfleet-signer signer
fleet_start certfleet-crl crl
fleet_start certfleet-ocsp ocsp
fleet_wait_service cert.revoke 1
fleet_wait_service crl.build 1
fleet_wait_service ocsp.presign 1

# --- CAs and certificates -----------------------------------------------------------------
cf ca init revroot "CN=Revocation Root,O=certfleet" --key-type EC --elliptic-curve secp384r1 \
  --path-length 1 --default-hostname ca.example.test:8080 >/dev/null
cf ca init revinter "CN=Revocation Intermediate,O=certfleet" --parent revroot --key-type EC \
  --default-hostname ca.example.test:8080 >/dev/null
cf ca init revsub "CN=Revocation Sub,O=certfleet" --parent revroot --key-type EC \
  --path-length 0 >/dev/null
cf ca dump revroot -o root.pem
cf ca dump revinter -o inter.pem
cat root.pem inter.pem >chain.pem
sign() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
    -subj "/CN=$1.example.test" -out "$1.csr" 2>/dev/null
  cf cert sign --ca revinter --csr "$1.csr" -o "$1.pem" 2>&1 | tr -d '\n'
}
serial=$(sign leaf1)
serial2=$(sign leaf2)
serial3=$(sign leaf3)
[[ $serial =~ ^[0-9A-F]+$ ]] || fail "cert sign: \"$serial\" is not a serial"
colons=$(sed 's/../&:/g; s/:$//' <<<"$serial")
lower=$(tr 'A-F' 'a-f' <<<"$colons")
revoked=""

# --- cert revoke, ca revoke ---------------------------------------------------------------
out=$(cf cert revoke "$lower" --reason keyCompromise --compromised "2024-01-02 03:04:05")
has "$out" "Revoked certificate" "cert revoke"
has "$out" "$colons" "cert revoke (serial)"
has "$out" "revinter" "cert revoke (CA)"
has "$out" "key_compromise" "cert revoke (reason)"
has "$out" "2024-01-02T03:04:05Z" "cert revoke (compromised)"
has "$out" "CRLs marked stale:" "cert revoke"
has "$out" "OCSP response:" "cert revoke"
cf --json cert revoke "$serial2" --ca revinter --reason superseded >revoke.json
pyjson "d['serial'] == '$serial2' and d['ca'] == 'revinter' and d['kind'] == 'certificate' and
  d['reason'] == 'superseded' and d['compromised'] is None and d['revoked_date'] and
  d['ocsp'] in ('resigned', 'no_responder') and isinstance(d['crls_marked'], int)" \
  "cert revoke --json" <revoke.json
expect_fail 1 "already_revoked" cert revoke "$serial"
expect_fail 1 "unknown_certificate" cert revoke 0123456789ABCDEF
expect_fail 1 "unknown_ca" cert revoke "$serial3" --ca no-such-ca
has "$(cf cert view "$serial")" "revoked" "cert view after revoke"
out=$(cf ca revoke revsub --reason cessation_of_operation)
has "$out" 'Revoked certificate authority "revsub"' "ca revoke"
has "$out" "cessation_of_operation" "ca revoke (reason)"
expect_fail 1 "already_revoked" ca revoke revsub
expect_fail 1 'certificate authority "nope" does not exist' ca revoke nope
revoked=$serial

# --- crl build, crl dump ------------------------------------------------------------------
out=$(cf crl build --all)
has "$out" "NEXT UPDATE" "crl build --all"
for ca in revroot revinter; do
  grep -Eq "^$ca +ca +0 +[0-9]+ +[0-9]+ +[0-9]+ .* built\$" <<<"$out" ||
    fail "crl build --all: no ca scope CRL of $ca"
  grep -Eq "^$ca +user +0 +[0-9]+ +[0-9]+ +[0-9]+ .* built\$" <<<"$out" ||
    fail "crl build --all: no user scope CRL of $ca"
done
if [ -n "$revoked" ]; then
  grep -q "^revsub " <<<"$out" && fail "crl build --all: built for the revoked CA revsub"
fi
cf --json crl build revinter >build.json
pyjson 'len(d) == 2 and sorted(r["scope"] for r in d) == ["ca", "user"] and
  all(r["ca"] == "revinter" and r["number"] >= 1 and r["size"] > 0 for r in d)' \
  "crl build --json" <build.json
cf --json crl build revinter --scope user --shard 0 --if-stale >stale.json
pyjson 'len(d) == 1 and d[0]["skipped"] is True' "crl build --if-stale" <stale.json
cf crl dump revinter --pem >inter.crl.pem
openssl crl -in inter.crl.pem -noout -CAfile chain.pem 2>&1 | grep -q "verify OK" ||
  fail "crl dump: openssl does not verify the CRL"
text=$(openssl crl -in inter.crl.pem -noout -text)
if [ -n "$revoked" ]; then
  has "$text" "Serial Number: $revoked" "crl dump | openssl crl"
  has "$text" "Key Compromise" "crl dump | openssl crl (reason)"
  has "$text" "Serial Number: $serial2" "crl dump | openssl crl"
  has "$(cf crl dump revroot --scope ca | openssl crl -noout -text)" "Serial Number:" \
    "crl dump --scope ca of the root (revoked child CA)"
fi
cf crl dump revinter -o inter.crl
openssl crl -inform DER -in inter.crl -noout || fail "crl dump -o: not DER"
cf --json crl dump revinter --scope ca >dump.json
pyjson 'd["ca"] == "revinter" and d["scope"] == "ca" and d["format"] == "PEM" and
  d["crl"].startswith("-----BEGIN X509 CRL-----")' "crl dump --json" <dump.json
expect_fail 1 "no CRL of certificate authority \"revinter\" for scope attribute" \
  crl dump revinter --scope attribute
expect_fail 1 'certificate authority "nope" does not exist' crl dump nope
expect_fail 1 'certificate authority "nope" does not exist' crl build nope
expect_fail 1 'has 1 CRL shard' crl build revinter --scope user --shard 3
rc=0
cf crl build revinter --scope user --algorithm NOPE-512 >bad.out 2>bad.err || rc=$?
[ $rc = 1 ] || fail "crl build with a bad algorithm: exit $rc"
grep -q '^certfleet: crl.build "revinter" user/0: .*invalid_value' bad.err ||
  fail "crl build with a bad algorithm: \"$(cat bad.err)\""
grep -q "failed" bad.out || fail "crl build with a bad algorithm: the table lacks the failure"

# --- ocsp keygen, ocsp presign ------------------------------------------------------------
out=$(cf ocsp keygen revroot revinter)
has "$out" "RENEWED" "ocsp keygen"
grep -Eq "^revinter +yes " <<<"$out" || fail "ocsp keygen: revinter not renewed: $out"
cf --json ocsp keygen revinter >keygen.json
pyjson 'len(d) == 1 and d[0]["ca"] == "revinter" and d[0]["renewed"] is False and d[0]["serial"]' \
  "ocsp keygen --json (not due)" <keygen.json
cf --json ocsp keygen revinter --force |
  pyjson 'd[0]["renewed"] is True' "ocsp keygen --force"
out=$(cf ocsp presign revinter revroot)
has "$out" "SIGNED" "ocsp presign"
has "$out" "responses/s" "ocsp presign"
grep -Eq "^revinter +1 +[1-9]" <<<"$out" || fail "ocsp presign: nothing signed for revinter: $out"
cf --json ocsp presign --all --force --shards 4 >presign.json
pyjson 'd["signed"] >= 3 and d["signed"] == d["good"] + d["revoked"] and
  all(c["shards"] == 1 and c["failed"] == 0 for c in d["cas"])' "ocsp presign --json" <presign.json
if [ -n "$revoked" ]; then
  pyjson 'd["revoked"] >= 2' "ocsp presign --json (revoked)" <presign.json
fi
cf ca init revplain "CN=Revocation Plain" --key-type EC >/dev/null
expect_fail 1 'certificate authority "revplain" has no OCSP responder' ocsp presign revplain
cf ocsp presign --all >all.out 2>all.err
grep -q 'skipping certificate authority "revplain"' all.err || fail "ocsp presign --all: no note"
expect_fail 1 'certificate authority "nope" does not exist' ocsp keygen nope

echo "interop.cli_revocation: ok"
