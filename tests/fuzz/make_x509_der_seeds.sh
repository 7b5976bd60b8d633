#!/usr/bin/env bash
# Writes the rich seeds of tests/fuzz/corpus/x509_der/ with the openssl command line: a CA
# certificate with name constraints and the policy extensions, a leaf certificate with every
# general name type (seven kinds of otherName among them), AIA, CRL distribution points with
# reasons and a CRL issuer, policies with CPS and user notice, TLS feature, an SCT list, a
# Microsoft template and the precertificate poison, a request carrying extensions, EC and Ed25519 requests, and a CRL
# with an IssuingDistributionPoint and entries with reason codes, an invalidity date and a hold
# instruction. The keys are made here and thrown away; only public DER is written.
#   tests/fuzz/make_x509_der_seeds.sh [OUT-DIR]    (default: tests/fuzz/corpus/x509_der)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$src/tests/fuzz/corpus/x509_der}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p db && : >db/index.txt && echo 1000 >db/crlnumber

# Two SCTs in a SignedCertificateTimestampList (RFC 6962 3.3) inside its OCTET STRING.
sct_one="00:37:00:00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d:1e:1f:00:00:01:8b:cf:e5:68:00:00:00:04:03:00:08:30:06:02:01:01:02:01:01"
scts="04:74:00:72:$sct_one:$sct_one"

cat >seeds.cnf <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
C = DE
ST = Vienna
L = Wien
O = Example Org
OU = Unit
CN = rich.example.com
emailAddress = admin@example.com
serialNumber = 1234
[ca_ext]
basicConstraints = critical,CA:TRUE,pathlen:2
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
nameConstraints = critical,permitted;DNS:example.com,permitted;IP:192.0.2.0/255.255.255.0,excluded;email:bad.example.com,permitted;dirName:dir_sect,excluded;URI:.bad.example
policyConstraints = requireExplicitPolicy:1,inhibitPolicyMapping:2
inhibitAnyPolicy = 3
policyMappings = 1.2.3.4:1.2.3.5
freshestCRL = URI:http://delta.example.com/d.crl
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment,keyAgreement
extendedKeyUsage = serverAuth,clientAuth,codeSigning,emailProtection,timeStamping,OCSPSigning,1.3.6.1.4.1.311.20.2.2
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always,issuer
subjectAltName = @san
issuerAltName = URI:http://issuer.example.com,email:ca@example.com
authorityInfoAccess = OCSP;URI:http://ocsp.example.com/,caIssuers;URI:http://ca.example.com/ca.der
crlDistributionPoints = crldp
certificatePolicies = @pol1,2.5.29.32.0
tlsfeature = status_request
1.3.6.1.4.1.311.21.7 = DER:30:10:06:08:2b:06:01:04:01:82:37:15:02:01:00:02:01:00
1.3.6.1.4.1.11129.2.4.2 = DER:$scts
[precert_ext]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:pre.example.com
1.3.6.1.4.1.11129.2.4.3 = critical,ASN1:NULL
[req_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = @san
certificatePolicies = @pol1
tlsfeature = status_request,status_request_v2
crlDistributionPoints = crldp
[san]
DNS.1 = rich.example.com
DNS.2 = *.wild.example.com
IP.1 = 192.0.2.1
IP.2 = 2001:db8::1
email.1 = user@example.com
URI.1 = https://example.com/path?q=1
RID.1 = 1.2.3.4
dirName.1 = dir_sect
otherName.1 = 1.3.6.1.4.1.311.20.2.3;UTF8:upn@example.com
otherName.2 = 1.3.6.1.5.5.7.8.9;UTF8:smtp@example.com
otherName.3 = 1.2.3.5;INT:42
otherName.4 = 1.2.3.6;BOOLEAN:TRUE
otherName.5 = 1.2.3.7;IA5STRING:ia5
otherName.6 = 1.2.3.8;UTCTIME:260101120000Z
otherName.7 = 1.2.3.9;OCTETSTRING:abcd
[dir_sect]
C = AT
CN = Directory Name
[crldp]
fullname = URI:http://crl.example.com/a.crl
reasons = keyCompromise,CACompromise
CRLissuer = dirName:dir_sect
[pol1]
policyIdentifier = 1.2.3.4.5
CPS.1 = https://cps.example.com
userNotice.1 = @notice
[notice]
explicitText = "Explicit text"
organization = "Example Org"
noticeNumbers = 1,2,3
[ca]
default_ca = seeds
[seeds]
database = db/index.txt
crlnumber = db/crlnumber
certificate = ca.pem
private_key = ca.key
default_md = sha256
default_crl_days = 7
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid:always
issuingDistributionPoint = critical,@idp
[idp]
fullname = URI:http://crl.example.com/a.crl
onlysomereasons = keyCompromise,superseded
indirectCRL = TRUE
CNF

q() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@" >&2; exit 1; }; }
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
q openssl req -x509 "${ec[@]}" -keyout ca.key -config seeds.cnf -extensions ca_ext -days 30 -out ca.pem
q openssl req -new -newkey rsa:1024 -nodes -keyout leaf.key -config seeds.cnf -reqexts req_ext -out leaf.csr
q openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 0x1001 -extfile seeds.cnf \
  -extensions leaf_ext -days 10 -out leaf.pem
q openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 0x1002 -extfile seeds.cnf \
  -extensions precert_ext -days 10 -out precert.pem
q openssl req -x509 -newkey ed25519 -nodes -keyout ed.key -subj "/CN=ed25519.example.com/O=Ed" \
  -addext "subjectAltName=DNS:ed25519.example.com" -days 1 -out ed.pem
for c in leaf precert ed; do
  case $c in
    leaf) q openssl ca -config seeds.cnf -revoke leaf.pem -crl_reason keyCompromise ;;
    precert) q openssl ca -config seeds.cnf -revoke precert.pem -crl_compromise 20260101120000Z ;;
    ed) q openssl ca -config seeds.cnf -revoke ed.pem -crl_hold 1.2.840.10040.2.2 ;;
  esac
done
q openssl ca -config seeds.cnf -gencrl -out rich.crl

mkdir -p "$out"
q openssl x509 -in ca.pem -outform DER -out "$out/rich_ca_cert"
q openssl x509 -in leaf.pem -outform DER -out "$out/rich_leaf_cert"
q openssl x509 -in precert.pem -outform DER -out "$out/rich_precert"
q openssl x509 -in ed.pem -outform DER -out "$out/ed25519_cert"
q openssl req -in leaf.csr -outform DER -out "$out/rich_csr"
q openssl crl -in rich.crl -outform DER -out "$out/rich_crl"
# Requests with the keys cf_csr reads the fast way (tests/fuzz/README.md).
q openssl req -new "${ec[@]}" -keyout ec.key -subj "/CN=ec.example.com" -outform DER -out "$out/ec_p256_csr"
q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout ec384.key \
  -subj "/CN=ec384.example.com" -sha384 -outform DER -out "$out/ec_p384_csr"
q openssl req -new -newkey ed25519 -nodes -keyout edr.key -subj "/CN=ed.example.com" \
  -outform DER -out "$out/ed25519_csr"
echo "seeds written to $out"
