#!/usr/bin/env bash
# certfleet x509 show against certificates, CSRs and CRLs made by the openssl command line:
# the readable form names what openssl put there, --json parses and holds the data model's
# shapes, and bad input is a clear error with exit code 1.
set -euo pipefail
cf="${CF_BIN_DIR:?}/certfleet"
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cd "$d"
fail() { echo "FAIL: $*" >&2; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -days 30 \
  -subj "/C=AT/O=certfleet test/CN=show CA" -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key \
  -subj "/CN=show.example.test" -addext "subjectAltName=DNS:show.example.test,IP:127.0.0.1" -out leaf.csr 2>/dev/null
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 5 -copy_extensions copy \
  -extfile <(printf 'extendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n') -out leaf.pem 2>/dev/null
openssl x509 -in leaf.pem -outform DER -out leaf.der
mkdir -p db && : >db/index.txt && echo 01 >db/crlnumber
cat >ca.cnf <<CNF
[ca]
default_ca = x
[x]
database = $d/db/index.txt
crlnumber = $d/db/crlnumber
certificate = $d/ca.pem
private_key = $d/ca.key
default_md = sha256
default_crl_days = 1
CNF
openssl ca -config ca.cnf -gencrl -out crl.pem 2>/dev/null

out=$("$cf" x509 show leaf.pem)
grep -q "show.example.test" <<<"$out" || fail "subject missing"
grep -q "show CA" <<<"$out" || fail "issuer missing"
grep -qi "SHA-256" <<<"$out" || fail "SHA-256 fingerprint missing"
grep -q "serverAuth" <<<"$out" || fail "extended key usage missing"
grep -q "127.0.0.1" <<<"$out" || fail "IP SAN missing"
fp=$(openssl x509 -in leaf.pem -noout -fingerprint -sha256 | cut -d= -f2)
grep -q "$fp" <<<"$out" || fail "SHA-256 fingerprint differs from openssl's ($fp)"

"$cf" --json x509 show leaf.der >leaf.json
python3 - leaf.json <<'PY' || fail "JSON form"
import json, sys
d = json.load(open(sys.argv[1]))
s = json.dumps(d)
assert "2.5.4.3" in s and "show.example.test" in s, "subject as Name model"
types = [e["type"] for e in d["extensions"]]
assert "subject_alternative_name" in types and "extended_key_usage" in types, types
san = [e for e in d["extensions"] if e["type"] == "subject_alternative_name"][0]
assert {"type": "IP", "value": "127.0.0.1"} in san["value"], san
PY

"$cf" x509 show leaf.csr | grep -q "show.example.test" || fail "CSR"
"$cf" x509 show crl.pem | grep -qi "crl" || fail "CRL"

# One extension whose value does not decode (a template SEQUENCE with bytes after its end):
# the others are still shown, the bad one raw, with its reason, in text and in JSON.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout odd.key -days 1 \
  -subj "/CN=odd.example.test" -addext "subjectAltName=DNS:odd.example.test" \
  -addext "1.3.6.1.4.1.311.21.7=DER:30:0d:06:08:2b:06:01:04:01:82:37:15:02:01:00:02:01:00" \
  -out odd.pem 2>/dev/null
out=$("$cf" x509 show odd.pem) || fail "a certificate with one bad extension was not shown"
grep -q "DNS:odd.example.test" <<<"$out" || fail "one bad extension hid the others: $out"
grep -q "cannot be decoded, shown raw" <<<"$out" || fail "the bad extension is not named: $out"
"$cf" --json x509 show odd.pem >odd.json
python3 - odd.json <<'PY' || fail "JSON form of a bad extension"
import json, sys
d = json.load(open(sys.argv[1]))
types = [e["type"] for e in d["extensions"]]
assert "subject_alternative_name" in types, types
raw = [e for e in d["extensions"] if e["type"] == "unknown"]
assert raw and raw[0]["value"]["oid"] == "1.3.6.1.4.1.311.21.7", d["extensions"]
i = d["extensions"].index(raw[0])
assert any(e["field"].startswith("extensions[%d]" % i) for e in d["errors"]), d["errors"]
PY

echo "garbage" >bad.pem
if "$cf" x509 show bad.pem 2>err.txt; then fail "garbage accepted"; fi
[ -s err.txt ] || fail "no error message for garbage"
if "$cf" x509 show /nonexistent 2>err.txt; then fail "missing file accepted"; fi
echo "x509 show: 1 passed, 0 failed"
