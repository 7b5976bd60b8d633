#!/usr/bin/env bash
# interop.cli_watchers: the certfleet verbs for watchers and expiry mail (watcher add, remove,
# list; cert sign --watch; cert view; notify expiring). First their argument errors, against a
# config whose broker and database do not exist, so that any contact would show; then against
# a real fleet (broker, signer and notifier on loopback, a fresh PostgreSQL database, the test
# Redis) whose mail server is down, so that real runs report failed mails.
# Needs CERTFLEET_TEST_PG and CERTFLEET_TEST_REDIS, else exits 77 (tests/interop/lib_fleet.sh).
smtp_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
FLEET_EXTRA_CONFIG="[smtp]
url = smtp://127.0.0.1:$smtp_port
from = certfleet <ca@example.com>
timeout_ms = 2000"
# shellcheck source=lib_fleet.sh
. "$(dirname "$0")/lib_fleet.sh"

# --- argument errors, with nothing to contact ---------------------------------------------
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
[curve]
insecure = true
[log]
level = error
EOF
expect_fail 2 "usage: certfleet watcher add EMAIL" watcher add
expect_fail 2 "usage: certfleet watcher add EMAIL" watcher add a@example.com b@example.com
expect_fail 2 '"not-an-address" is not a valid mail address' watcher add not-an-address
expect_fail 2 '"a..b@example.com" is not a valid mail address' watcher add a..b@example.com
expect_fail 2 '"a@example" is not a valid mail address' watcher remove a@example
expect_fail 2 'option "--name" needs at most 200 characters' watcher add a@example.com --name $'A\tB'
expect_fail 2 'unknown option "--name"' watcher remove a@example.com --name x
expect_fail 2 '"xyz" is not a serial number' watcher add a@example.com --cert xyz
expect_fail 2 'option "--ca" needs --cert' watcher add a@example.com --ca root
expect_fail 2 "give --cert once" watcher list --cert 0A --cert 0B
expect_fail 2 "usage: certfleet watcher list" watcher list extra
expect_fail 2 "usage: certfleet watcher remove EMAIL" watcher remove
expect_fail 2 'option "--cert" needs a value' watcher add a@example.com --cert
expect_fail 2 'unknown command "watcher frob"' watcher frob
expect_fail 2 'option "--thresholds" needs an integer from 1 to 3650' notify expiring --thresholds 30,0
expect_fail 2 'option "--thresholds" needs an integer from 1 to 3650' notify expiring --thresholds soon
expect_fail 2 'option "--limit" needs an integer from 1 to 10000' notify expiring --limit 0
expect_fail 2 "usage: certfleet notify expiring" notify expiring now
expect_fail 2 'unknown command "notify frob"' notify frob
has "$(cf help)" "watcher add|remove|list" "certfleet help"
has "$(cf help)" "notify expiring" "certfleet help"
has "$(cf watcher help)" "watcher remove EMAIL" "watcher help"
has "$(cf notify help)" "--dry-run" "notify help"
has "$(cf cert help)" "--watch EMAIL" "cert help"

# --- a fleet of our own -------------------------------------------------------------------
conf=$conf_real
fleet_start certfleet-broker
fleet_start certfleet-signer signer
fleet_start certfleet-notifier notifier
fleet_wait_service cert.issue 1
fleet_wait_service notify.expiring 1

cf ca init wroot "CN=Watch Root,O=certfleet" --key-type EC >/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key \
  -subj "/CN=leaf.example.test" -out leaf.csr 2>/dev/null
serial=$(cf cert sign --ca wroot --csr leaf.csr --expires 2 --watch alice@example.com \
  --watch Bob@Example.com -o leaf.pem 2>&1 | tr -d '\n')
[[ $serial =~ ^[0-9A-F]+$ ]] || fail "cert sign --watch: \"$serial\" is not a serial"
cf --json cert sign --ca wroot --csr leaf.csr --expires 40 --watch bob@example.com >far.json
pyjson "d['watchers'] == ['Bob@Example.com']" "cert sign --watch (the stored spelling)" <far.json
far=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["serial"])' <far.json)
expect_fail 1 "invalid_value, params.watchers\[1\]" cert sign --ca wroot --csr leaf.csr \
  --watch ok@example.com --watch 'bad address@example.com'

# cert view shows the watchers.
has "$(cf cert view "$serial")" "Watchers:              alice@example.com, Bob@Example.com" \
  "cert view"
cf --json cert view "$serial" | pyjson "d['watchers'] == ['alice@example.com', 'Bob@Example.com']" \
  "cert view --json"

# watcher add: new, then the same address in other letters renames it.
out=$(cf watcher add carol@example.com --name "Carol C" --cert "$serial")
has "$out" "watcher created: carol@example.com, 1 certificate added" "watcher add"
has "$out" "leaf.example.test" "watcher add (the certificate)"
cf --json watcher add CAROL@example.com --name Carol --cert "$far" --ca wroot |
  pyjson "d['created'] is False and d['mail'] == 'carol@example.com' and d['name'] == 'Carol' and
    len(d['certificates']) == 2 and d['linked'] == 1" "watcher add (existing)"
cf --json watcher add carol@example.com --cert "$far" |
  pyjson "d['linked'] == 0 and d['name'] == 'Carol'" "watcher add (again, name kept)"
expect_fail 1 'certificate "0A0B" does not exist' watcher add dan@example.com --cert 0a:0b
expect_fail 1 'certificate authority "nope" does not exist' watcher add dan@example.com \
  --cert "$serial" --ca nope
out=$(cf watcher list)
has "$out" "MAIL" "watcher list"
has "$out" "Bob@Example.com" "watcher list"
grep -q "dan@example.com" <<<"$out" && fail "watcher add: a failed add left a watcher behind"
cf --json watcher list | pyjson "[(w['mail'], w['certificates']) for w in d] ==
  [('alice@example.com', 1), ('Bob@Example.com', 2), ('carol@example.com', 2)]" "watcher list --json"
cf --json watcher list --cert "$serial" |
  pyjson "[w['mail'] for w in d] == ['alice@example.com', 'Bob@Example.com', 'carol@example.com']
    and all(w['notices'] == [] for w in d)" "watcher list --cert"

# notify expiring: a dry run lists, a real run with the mail server down fails and says so.
cf --json notify expiring --dry-run |
  pyjson "d['dry_run'] is True and d['due'] == 3 and d['skipped'] == 9 and d['sent'] == 0 and
    sorted(n['mail'] for n in d['notices']) == ['Bob@Example.com', 'alice@example.com',
    'carol@example.com'] and all(n['threshold_days'] == 3 and n['serial'] == '$serial'
    for n in d['notices'])" "notify expiring --dry-run"
has "$(cf notify expiring --dry-run --thresholds 7,3)" "dry run: 3 mails due, 3 notices would be skipped" \
  "notify expiring --dry-run (text)"
has "$(cf notify expiring --dry-run --ca wroot --limit 1)" "leaf.example.test" "notify --ca --limit"
expect_fail 1 "unknown_ca, params.ca" notify expiring --ca nope
rc=0
cf --json notify expiring >notify.json 2>notify.err || rc=$?
[ $rc -eq 1 ] || fail "notify expiring with the mail server down: exit $rc, expected 1"
pyjson "d['dry_run'] is False and d['due'] == 3 and d['sent'] == 0 and d['failed'] == 3 and
  d['skipped'] == 9" "notify expiring (server down)" <notify.json
has "$(cat notify.err)" "3 mails failed" "notify expiring (stderr)"
cf --json watcher list --cert "$serial" |
  pyjson "all([(n['threshold_days'], n['status']) for n in w['notices'] if n['status'] != 'skipped']
    == [(3, 'failed')] and w['notices'][-1]['last_error'] for w in d)" "watcher list --cert (notices)"
has "$(cf watcher list --cert "$serial")" "failed" "watcher list --cert (text)"

# watcher remove: from one certificate (all or nothing), then entirely.
out=$(cf watcher remove bob@example.com --cert "$serial")
has "$out" "watcher Bob@Example.com: 1 certificate removed" "watcher remove --cert"
expect_fail 1 'watcher "Bob@Example.com" does not watch certificate' watcher remove \
  bob@example.com --cert "$serial"
cf --json watcher list --cert "$far" | pyjson "[w['mail'] for w in d] == ['Bob@Example.com',
  'carol@example.com']" "watcher remove --cert (the other certificate kept)"
has "$(cf watcher remove BOB@example.com)" "watcher removed: Bob@Example.com" "watcher remove"
expect_fail 1 'watcher "bob@example.com" does not exist' watcher remove bob@example.com
cf --json watcher list | pyjson "[w['mail'] for w in d] == ['alice@example.com',
  'carol@example.com']" "watcher list after remove"
has "$(cf cert view "$far")" "Watchers:              carol@example.com" "cert view after remove"
echo "interop.cli_watchers: ok"
