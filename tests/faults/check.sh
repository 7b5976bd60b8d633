#!/usr/bin/env bash
# tests/faults/check.sh CONFIG CA ROW-PREFIX JOURNAL...: the checker of the fault matrix and
# the soak test (docs/reliability.md). Reads the journals of tests/faults/load.c (in the order
# they were written; those whose path starts with ROW-PREFIX are the row's) and the fleet's PostgreSQL
# (CONFIG's [postgres] dsn), runs a last OCSP pre-signing pass of every CA with a responder
# and a last CRL build of CA (through `certfleet`, CF_BIN_DIR), and checks:
#   - every job sent was answered exactly once (one final answer per id in the journals; a job
#     the client resent or that a new client sent again with the same id still has one);
#   - job_results holds the one row of every durable job answered, with the same status;
#   - every ok cert.issue reply's serial is in certificates, under that job id, and exactly one
#     certificate carries each job id (none lost, none duplicated); no serial twice per CA;
#   - every ok cert.revoke left its certificate revoked;
#   - CRL numbers strictly increase per (CA, scope, shard) in the order the builds were made
#     (each client keeps one build of a scope in flight, so journal order is build order);
#   - every unexpired certificate of a CA with a responder has a current OCSP response whose
#     status matches its revocation;
#   - the next CRL of CA (built here, parsed with `openssl crl`) lists every revoked,
#     unexpired certificate of CA, with a CRL number above every earlier one.
# Prints one line "jobs=N lost=N duplicated=N" for the row's journals; each problem on standard
# error; exits 1 when there is any.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: $0 CONFIG CA ROW-PREFIX JOURNAL..." >&2; exit 2; }
: "${CF_BIN_DIR:?CF_BIN_DIR is not set}"
conf=$1 ca=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cf() { "$CF_BIN_DIR/certfleet" --config "$conf" "$@"; }
dsn=$(sed -n 's/^dsn *= *//p' "$conf" | tail -1)

# The last OCSP pass and the next CRL, before the database is read.
mapfile -t responder_cas < <(psql "$dsn" -AtXc "SELECT DISTINCT a.name FROM ocsp_responders r
  JOIN certificate_authorities a ON a.id = r.ca_id WHERE r.expires > now() ORDER BY 1")
for name in "${responder_cas[@]}"; do
  cf ocsp presign "$name" >"$tmp/presign.out" 2>&1 ||
    { echo "problem: certfleet ocsp presign $name failed: $(tail -3 "$tmp/presign.out")" >&2; exit 1; }
done
cf crl build "$ca" --scope user >"$tmp/crl.out" 2>&1 ||
  { echo "problem: certfleet crl build $ca failed: $(tail -3 "$tmp/crl.out")" >&2; exit 1; }
cf crl dump "$ca" --scope user --der -o "$tmp/next.crl" >/dev/null 2>&1 ||
  { echo "problem: certfleet crl dump $ca failed" >&2; exit 1; }
openssl crl -inform DER -in "$tmp/next.crl" -noout -text >"$tmp/next.crl.txt" ||
  { echo "problem: openssl crl cannot read the CRL of $ca" >&2; exit 1; }

q() { psql "$dsn" -AtXF $'\t' -c "$1"; }
q "SELECT encode(id, 'hex'), type, status FROM job_results" >"$tmp/job_results"
q "SELECT encode(c.job_id, 'hex'), c.serial, a.name FROM certificates c
   JOIN certificate_authorities a ON a.id = c.ca_id WHERE c.job_id IS NOT NULL" >"$tmp/cert_jobs"
q "SELECT a.name, c.serial FROM certificates c JOIN certificate_authorities a ON a.id = c.ca_id
   WHERE c.revoked" >"$tmp/revoked"
q "SELECT a.name, c.serial FROM certificates c JOIN certificate_authorities a ON a.id = c.ca_id
   WHERE c.revoked AND c.expires > now() AND a.name = '$ca'" >"$tmp/revoked_unexpired"
q "SELECT ca_id, serial, count(*) FROM certificates GROUP BY 1, 2 HAVING count(*) > 1" >"$tmp/serial_twice"
# Certificates of CAs with a current responder and no current response of the right status.
q "SELECT a.name, c.serial, c.revoked, coalesce(o.status, 'none'), coalesce(o.next_update > now(), false)
   FROM certificates c JOIN certificate_authorities a ON a.id = c.ca_id
   LEFT JOIN ocsp_responses o ON o.ca_id = c.ca_id AND o.serial = c.serial
   WHERE c.expires > now()
     AND EXISTS (SELECT 1 FROM ocsp_responders r WHERE r.ca_id = c.ca_id AND r.expires > now())
     AND (o.serial IS NULL OR o.next_update <= now()
          OR o.status <> CASE WHEN c.revoked THEN 'revoked' ELSE 'good' END)" >"$tmp/ocsp_missing"
q "SELECT c.number FROM crls c JOIN certificate_authorities a ON a.id = c.ca_id
   WHERE a.name = '$ca' AND c.scope = 'user' AND c.shard = 0" >"$tmp/crl_number"

python3 - "$tmp" "$ca" "$@" <<'EOF'
import collections, re, sys

tmp, ca, row, journals = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
problems = []
def problem(text):
    problems.append(text)

def norm(serial):
    return serial.replace(":", "").upper().lstrip("0") or "0"

def rows(name):
    with open(f"{tmp}/{name}") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]

sends, finals, gave_up, types = (collections.Counter(), collections.defaultdict(list),
                                 collections.Counter(), {})
row_ids, order = set(), []
for path in journals:
    with open(path) as f:
        for line in f:
            part = line.rstrip("\n").split("\t")
            if len(part) < 4:
                continue
            tag, _, jid, jtype = part[:4]
            types[jid] = jtype
            if path.startswith(row):
                row_ids.add(jid)
            if tag == "S":
                sends[jid] += 1
            elif tag == "F":
                fields = dict(kv.split("=", 1) for kv in part[6:] if "=" in kv)
                finals[jid].append((part[4], part[5], fields))
                order.append((jid, part[4], fields))
            elif tag == "X":
                gave_up[jid] += 1

# Exactly one final answer per job.
finals.update({j: [] for j in sends if j not in finals})
lost_ids = [j for j in sends if not finals[j]]
dup_ids = [j for j in sends if len(finals[j]) > 1 or sends[j] > 1]
for j in finals:
    if j not in sends:
        problem(f"job {j}: a final answer for an id never sent")
for j in lost_ids:
    problem(f"job {j} ({types[j]}): no final answer" + (" (the client gave up)" if gave_up[j] else ""))
for j in dup_ids:
    problem(f"job {j} ({types[j]}): {len(finals[j])} final answers, sent as new {sends[j]} times")

# job_results: the one stored result of every durable job.
durable = {"cert.issue", "cert.revoke", "crl.build", "sys.echo", "ocsp.keygen"}
stored = {r[0]: r for r in rows("job_results")}
for j, answers in finals.items():
    if types[j] not in durable or len(answers) != 1:
        continue
    status = answers[0][0]
    if status == "ok" and j not in stored:
        problem(f"job {j} ({types[j]}): answered ok but job_results has no row")
    elif j in stored and stored[j][2] != status:
        problem(f"job {j}: answered {status} but job_results holds {stored[j][2]}")

# Certificates: one per issuing job, with the serial the reply gave; no serial twice.
by_job = collections.defaultdict(list)
for jid, serial, name in rows("cert_jobs"):
    by_job[jid].append((norm(serial), name))
lost_certs = dup_certs = 0
row_lost_certs = row_dup_certs = 0
for j, answers in finals.items():
    if types[j] != "cert.issue" or len(answers) != 1 or answers[0][0] != "ok":
        continue
    certs = by_job.get(j, [])
    serial = norm(answers[0][2].get("serial", ""))
    if len(certs) != 1 or certs[0][0] != serial:
        if not certs or serial not in [c[0] for c in certs]:
            lost_certs += 1
            row_lost_certs += j in row_ids
            problem(f"cert.issue {j}: serial {serial} is not in certificates under its job id")
        if len(certs) > 1:
            dup_certs += 1
            row_dup_certs += j in row_ids
            problem(f"cert.issue {j}: {len(certs)} certificates carry this job id")
for r in rows("serial_twice"):
    problem(f"serial {r[1]} is used {r[2]} times by CA id {r[0]}")

revoked = {(name, norm(serial)) for name, serial in rows("revoked")}
for j, answers in finals.items():
    if types[j] == "cert.revoke" and len(answers) == 1 and answers[0][0] == "ok":
        f = answers[0][2]
        if (f.get("ca"), norm(f.get("serial", ""))) not in revoked:
            problem(f"cert.revoke {j}: {f.get('serial')} is not revoked in certificates")

# CRL numbers: strictly increasing per (CA, scope, shard) in build order.
last = {}
for jid, status, f in order:
    if types[jid] != "crl.build" or status != "ok" or "number" not in f:
        continue
    key = (f.get("ca"), f.get("scope"), f.get("shard"))
    number = int(f["number"])
    if f.get("skipped") == "1":
        if key in last and number < last[key]:
            problem(f"crl.build {jid}: skipped with number {number} below {last[key]} for {key}")
        continue
    if key in last and number <= last[key]:
        problem(f"crl.build {jid}: CRL number {number} after {last[key]} for {key}")
    last[key] = number

# OCSP after the last pre-signing pass.
for name, serial, was_revoked, status, current in rows("ocsp_missing"):
    problem(f"OCSP: certificate {serial} of {name} (revoked: {was_revoked}) has response "
            f"{status} (current: {current})")

# The next CRL lists every revocation, under a higher number.
text = open(f"{tmp}/next.crl.txt").read()
listed = {norm(s) for s in re.findall(r"Serial Number: *([0-9A-Fa-f:]+)", text)}
m = re.search(r"CRL Number: *(?:critical)?\s*\n\s*(?:0x)?([0-9A-Fa-f]+)", text)
if not m:
    problem("the next CRL has no CRL Number")
else:
    raw = m.group(1)
    number = int(raw, 16) if re.search(r"0x" + raw, text) else int(raw)
    stored_number = rows("crl_number")
    if stored_number and int(stored_number[0][0]) != number:
        problem(f"the next CRL's number {number} is not the stored {stored_number[0][0]}")
    key = (ca, "user", "0")
    if key in last and number <= last[key]:
        problem(f"the next CRL's number {number} is not above {last[key]}")
missing = [s for _, s in rows("revoked_unexpired") if norm(s) not in listed]
for s in missing[:20]:
    problem(f"revoked certificate {s} of {ca} is not on the next CRL")
if len(missing) > 20:
    problem(f"... and {len(missing) - 20} more revoked certificates not on the next CRL")

row_lost = sum(1 for j in row_ids if j in sends and not finals[j]) + row_lost_certs
row_dup = sum(1 for j in row_ids if len(finals[j]) > 1 or sends[j] > 1) + row_dup_certs
print(f"jobs={sum(1 for j in row_ids if j in sends)} lost={row_lost} duplicated={row_dup} "
      f"problems={len(problems)}")
for p in problems[:50]:
    print("problem: " + p, file=sys.stderr)
if len(problems) > 50:
    print(f"problem: ... and {len(problems) - 50} more", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
