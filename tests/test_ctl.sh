#!/bin/bash
# test_ctl - mxswitch-ctl against a real redis-server: every command, input
# refused before anything is written, the audit stream and its cap, SCAN
# over thousands of keys, file and cPanel imports, explain for each mode
# (its decision, exit code and every map's answer, which the daemon's
# socket map server must then give), IDN names as the daemon reads them,
# and a Redis that is down.
T_NAME=test_ctl
. "$(dirname "$0")/lib.sh"

free_port RPORT
start_redis "$RPORT" || { fail "redis starts" "-"; finish; exit; }
rcli() { redis-cli -p "$RPORT" "$@"; }
free_port MPORT
free_port SMAP_PORT
MILTER="inet:$MPORT@127.0.0.1"
CONF="$WORK/mx.conf"
cat >"$CONF" <<CONF
milter: { socket = "$MILTER"; allow_root = true; };
redis: { port = $RPORT; timeout_ms = 1000; };
socketmap: { socket = "inet:$SMAP_PORT@127.0.0.1"; };
CONF
# The instance's transports, as the setup script writes them, beside every
# config of this test: local answers matter.
transports "$WORK"

# ctl ARGS... - run mxswitch-ctl on this test's config: stdout in OUT,
# stderr in ERR, exit status in RC
ctl() {
    RC=0
    # shellcheck disable=SC2086
    OUT=$($WRAP "$MXCTL" -c "$CONF" "$@" 2>"$WORK/ctl.err") || RC=$?
    ERR=$(cat "$WORK/ctl.err")
}
audit_len() { rcli XLEN mxswitch:audit; }

# --- set, get, del -----------------------------------------------------
ctl set Example.COM. remote
expect_eq "set: exit 0" "$RC" 0
expect_eq "set: names the normalised domain and the old value" "$OUT" \
    "example.com: remote (was unset)"
expect_eq "set: the key is the daemon's key" \
    "$(rcli GET mxswitch:domain:example.com)" remote
ctl set example.com REMOTE
expect_eq "set to the same mode: unchanged" "$OUT" \
    "example.com: remote (unchanged)"
expect_eq "set to the same mode: one audit entry, not two" "$(audit_len)" 1
ctl get EXAMPLE.com
expect_eq "get: prints the mode" "$RC/$OUT" "0/remote"
ctl set example.com local
expect_eq "set: a change reports the old mode" "$OUT" \
    "example.com: local (was remote)"

ctl set 'BÜCHER.example' remote
expect_eq "set: an IDN domain is stored under its A-label" \
    "$RC/$(rcli GET mxswitch:domain:xn--bcher-kva.example)" 0/remote
ctl get 'bücher.EXAMPLE'
expect_eq "get: U-label and A-label name one key" "$OUT" remote

ctl get nokey.example
expect_eq "get: no key exits 1" "$RC" 1
expect_eq "get: no key names the default" "$ERR" \
    "mxswitch-ctl: nokey.example: no key (routing.default is none)"
rcli SET mxswitch:domain:junk.example sideways >/dev/null
ctl get junk.example
expect_eq "get: a value that is not a mode exits 65 and is shown" \
    "$RC/$OUT" '65/"sideways"'
rcli DEL mxswitch:domain:junk.example >/dev/null

# Refusals: nothing reaches Redis.  MONITOR sees every command; a marker
# command afterwards shows when the monitor has caught up.
redis-cli -p "$RPORT" MONITOR >"$WORK/monitor" &
mon=$!
track "$mon"
sleep 0.3
before=$(rcli DBSIZE)
ctl set 'bad..example' remote
expect_eq "set: a bad domain exits 65" "$RC" 65
expect_eq "set: a bad domain is explained" "$ERR" \
    'mxswitch-ctl: set: "bad..example": not a valid domain: empty label in domain; nothing written'
ctl set 'bob@example.com' remote
expect_eq "set: an address is not a domain" "$RC" 65
ctl set example.org sideways
expect_eq "set: a bad mode exits 65" "$RC" 65
expect_eq "set: a bad mode is explained" "$ERR" \
    'mxswitch-ctl: set: "sideways": not a mode (none, local, remote, ...); nothing written'
ctl set example.org ''
expect_eq "set: an empty mode is refused" "$RC" 65
ctl del 'bad domain.example'
expect_eq "del: a bad domain exits 65" "$RC" 65
rcli ECHO refusals-done >/dev/null
poll_for 1 25 grep -c refusals-done "$WORK/monitor" >/dev/null
expect_eq "refused input: no command reached Redis" \
    "$(sed '/refusals-done/,$d' "$WORK/monitor" | grep -c -v -e '"DBSIZE"' -e '^OK$')" 0
expect_eq "refused input: the key count is unchanged" "$(rcli DBSIZE)" "$before"

ctl del example.com
expect_eq "del: reports the old mode" "$RC/$OUT" "0/example.com: deleted (was local)"
expect_eq "del: the key is gone" "$(rcli EXISTS mxswitch:domain:example.com)" 0
ctl del example.com
expect_eq "del of no key: unchanged, not audited" "$OUT/$(audit_len)" \
    "example.com: no key (unchanged)/4"

# --- history ---------------------------------------------------------------
SUDO_USER=alice ctl set example.net remote
ctl history
expect_eq "history: every change, oldest first, with old and new" \
    "$(echo "$OUT" | cut -d' ' -f3-)" \
    "example.com - -> remote
example.com remote -> local
xn--bcher-kva.example - -> remote
example.com local -> -
example.net - -> remote"
expect_eq "history: the time is UTC ISO 8601" \
    "$(echo "$OUT" | grep -Ec '^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z ')" 5
expect_eq "history: the user is SUDO_USER when set, else the login" \
    "$(echo "$OUT" | cut -d' ' -f2 | sort -u | tr '\n' ' ')" \
    "alice $(id -un) "
ctl history 'Bücher.example'
expect_eq "history DOMAIN: only that domain's changes (IDN normalised)" \
    "$(echo "$OUT" | cut -d' ' -f3-)" "xn--bcher-kva.example - -> remote"
expect_eq "audit entries carry time, user, domain, old and new" \
    "$(rcli XREVRANGE mxswitch:audit + - COUNT 1 | sed -n '2~2p' | tr '\n' ' ')" \
    "time user domain old new "

# --- import ----------------------------------------------------------------
cat >"$WORK/bad.list" <<'EOF'
# comment line
good1.example remote
bad..example local
good2.example sideways
good3.example
good4.example local extra
good5.example none   # trailing comment
EOF
before=$(rcli DBSIZE)
alen=$(audit_len)
ctl import "$WORK/bad.list"
expect_eq "import with bad lines: exit 65" "$RC" 65
expect_eq "import with bad lines: each is reported as file:line: reason" \
    "$ERR" \
    "$WORK/bad.list:3: \"bad..example\": not a valid domain: empty label in domain
$WORK/bad.list:4: \"sideways\": not a mode (none, local, remote, ...)
$WORK/bad.list:5: expected \"domain mode\"
$WORK/bad.list:6: expected \"domain mode\"
mxswitch-ctl: import: 4 bad line(s); nothing written"
expect_eq "import with bad lines: nothing written, nothing audited" \
    "$(rcli DBSIZE)/$(audit_len)/$(rcli EXISTS mxswitch:domain:good1.example)" \
    "$before/$alen/0"

printf 'a.example remote\nb.example local\na.example local\n' >"$WORK/dup.list"
ctl import "$WORK/dup.list"
expect_eq "import: a domain given twice with two modes is refused" \
    "$RC/$ERR" "65/$WORK/dup.list:3: a.example: also given as remote at $WORK/dup.list:1
mxswitch-ctl: import: 1 bad line(s); nothing written"

printf 'one.example remote\r\nTWO.example local\nthree.example none\none.example remote\n' \
    >"$WORK/good.list"
ctl import "$WORK/good.list"
expect_eq "import: every line set (CRLF, case, repeats taken in stride)" \
    "$RC/$OUT" "0/one.example: remote (was unset)
three.example: none (was unset)
two.example: local (was unset)
import: 3 changed, 0 unchanged"
ctl import "$WORK/good.list"
expect_eq "import again: nothing changes, nothing is audited" \
    "$OUT/$(audit_len)" "import: 0 changed, 3 unchanged/$((alen + 3))"
ctl import "$WORK/missing.list"
expect_eq "import: an unreadable file exits 66" "$RC" 66

# cPanel's layout: /etc/localdomains, /etc/remotedomains, /etc/secondarymx.
mkdir -p "$WORK/cpanel1" "$WORK/cpanel2"
printf 'host.example\nLocal-One.example\n\n' >"$WORK/cpanel1/localdomains"
printf 'remote-one.example\n' >"$WORK/cpanel1/remotedomains"
ctl import "$WORK/cpanel1"
expect_eq "import DIR (cPanel): localdomains -> local, remotedomains -> remote" \
    "$RC $(rcli MGET mxswitch:domain:host.example mxswitch:domain:local-one.example \
        mxswitch:domain:remote-one.example | tr '\n' ' ')" "0 local local remote "
printf 'x.example remote\n' >"$WORK/cpanel1/secondarymx.bak"
printf 'local-one.example\n' >"$WORK/cpanel2/remotedomains"
printf 'Local-One.example\n' >"$WORK/cpanel2/localdomains"
ctl import "$WORK/cpanel2"
expect_eq "import DIR: a domain in two cPanel files is refused" "$RC/$ERR" \
    "65/$WORK/cpanel2/remotedomains:1: local-one.example: also given as local at $WORK/cpanel2/localdomains:1
mxswitch-ctl: import: 1 bad line(s); nothing written"
ctl import "$WORK"
expect_eq "import DIR without cPanel files: exit 66" "$RC" 66

# --- list, export, SCAN ----------------------------------------------------
ctl list
expect_eq "list: every key, sorted, as domain mode" "$RC/$OUT" "0/example.net remote
host.example local
local-one.example local
one.example remote
remote-one.example remote
three.example none
two.example local
xn--bcher-kva.example remote"
ctl list 'ONE*'
expect_eq "list PATTERN: a glob on the domain" "$OUT" "one.example remote"
ctl export
printf '%s\n' "$OUT" >"$WORK/export.list"
expect_eq "export: a header and the list, in import format" \
    "$(head -n 1 "$WORK/export.list")/$(grep -vc '^#' "$WORK/export.list")" \
    "# mxswitch-ctl export: domain mode/8"
rcli DEL mxswitch:domain:two.example >/dev/null
ctl import "$WORK/export.list"
expect_eq "import of an export restores what changed since" "$OUT" \
    "two.example: local (was unset)
import: 1 changed, 7 unchanged"
rcli SET mxswitch:domain:Upper.Example remote >/dev/null
rcli SET mxswitch:domain:junk.example sideways >/dev/null
ctl list
expect_eq "list: unusable keys exit 65, stay off stdout" \
    "$RC/$(echo "$OUT" | grep -ci -e junk -e upper)" "65/0"
expect_eq "list: unusable keys are named on stderr" "$ERR" \
    "mxswitch-ctl: key mxswitch:domain:\"Upper.Example\": not a domain in normal form; the milter never reads it
mxswitch-ctl: key mxswitch:domain:junk.example: \"sideways\" is not a mode (the milter answers per routing.on_error)"
rcli DEL mxswitch:domain:Upper.Example mxswitch:domain:junk.example >/dev/null

# 12000 domains in one import: SCAN over many pages, and the audit cap.
seq -f 'd%05g.bulk.example remote' 1 12000 >"$WORK/bulk.list"
start=$(date +%s%N)
RC=0
"$MXCTL" -c "$CONF" import "$WORK/bulk.list" >"$WORK/bulk.out" 2>&1 || RC=$?
ms=$((($(date +%s%N) - start) / 1000000))
echo "     (import of 12000 domains: ${ms} ms)"
expect_eq "bulk import: 12000 changed" "$RC/$(tail -n 1 "$WORK/bulk.out")" \
    "0/import: 12000 changed, 0 unchanged"
len=$(audit_len)
expect_eq "the audit stream is capped near 10000 entries (XLEN $len)" \
    "$([ "$len" -ge 10000 ] && [ "$len" -lt 10200 ] && echo capped)" capped
ctl list '*.bulk.example'
expect_eq "list over 12000 keys: every one, sorted" \
    "$(echo "$OUT" | cut -d' ' -f1 | md5sum)" \
    "$(cut -d' ' -f1 "$WORK/bulk.list" | sort | md5sum)"
rcli ECHO list-done >/dev/null
poll_for 1 25 grep -c list-done "$WORK/monitor" >/dev/null
expect_eq "list uses SCAN, never KEYS" \
    "$(grep -c '"KEYS"' "$WORK/monitor")/$(grep -c '"SCAN"' "$WORK/monitor" |
        awk '{print ($1 > 10) ? "many" : $1}')" "0/many"
stop_pid "$mon"
rcli EVAL "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end" \
    0 'mxswitch:domain:*.bulk.example' >/dev/null

# --- explain ---------------------------------------------------------------
rcli SET mxswitch:domain:remote.test remote >/dev/null
rcli SET mxswitch:domain:local.test local >/dev/null
rcli SET mxswitch:domain:none.test none >/dev/null
rcli SET mxswitch:domain:bad.test sideways >/dev/null

# A remote domain's "dns:" line (is its best MX this server?) is what the
# host's resolver says of a name under .test: not this test's to fix.
nodns() { echo "$OUT" | grep -v '^dns: '; }
# pick PREFIX... - the lines of OUT that start with one of the words, |
pick() {
    local p re=""
    for p in "$@"; do re="$re${re:+|}^$p"; done
    echo "$OUT" | grep -E "$re" | tr '\n' '|'
}

ctl explain bob@a.b.remote.test
expect_eq "explain remote via a parent key: every candidate, the winner, every map, exit 11" \
    "$RC
$(nodns)" "11
address: \"<bob@a.b.remote.test>\"
domain: a.b.remote.test
candidate: mxswitch:domain:a.b.remote.test (no key)
candidate: mxswitch:domain:b.remote.test (no key)
candidate: mxswitch:domain:remote.test \"remote\"
winner: mxswitch:domain:remote.test
mode: remote
decision: remote (to the domain's MX hosts)
transports: $WORK/postfix-transports: local \"virtual:\", remote \"smtp:\"
map transport: OK smtp:
map valias: OK bob@a.b.remote.test
map rcpt: OK 550 5.7.1 mail for a.b.remote.test is not accepted here: its mail exchanger is elsewhere
map mode: OK remote
map verify: OK 550 5.7.1 mail for a.b.remote.test is not accepted here: its mail exchanger is elsewhere
milter at RCPT: continue"
ctl explain '<bob@remote.test>'
expect_eq "explain takes the address in angle brackets too" \
    "$RC/$(pick address mode decision 'map transport')" \
    "11/address: \"<bob@remote.test>\"|mode: remote|decision: remote (to the domain's MX hosts)|map transport: OK smtp:|"
ctl explain bob@remote.test --mailer smtp
expect_eq "explain takes one address only: --mailer and --host are gone (usage, 64)" \
    "$RC" 64
ctl explain bob@local.test
expect_eq "explain local: the local transport, exit 10" \
    "$RC/$(pick mode decision map milter)" \
    "10/mode: local|decision: local (to the mailbox on this server)|map transport: OK virtual:|map valias: NOTFOUND|map rcpt: NOTFOUND|map mode: OK local|map verify: NOTFOUND|milter at RCPT: continue|"
ctl explain bob@none.test
expect_eq "explain none: no opinion anywhere, exit 0" \
    "$RC/$(pick winner mode decision map milter)" \
    "0/winner: mxswitch:domain:none.test|mode: none|decision: none (no opinion)|map transport: NOTFOUND|map valias: NOTFOUND|map rcpt: NOTFOUND|map mode: NOTFOUND|map verify: NOTFOUND|milter at RCPT: continue|"
ctl explain bob@nokey.test
expect_eq "explain with no key: routing.default (none), exit 0" \
    "$RC/$(pick winner mode decision 'map transport')" \
    "0/winner: none (routing.default)|mode: none|decision: none (no opinion)|map transport: NOTFOUND|"
ctl explain 'bob+mx-remote@none.test'
expect_eq "explain an address tagged by an earlier mxswitch: the tag named, valias answers the plain form" \
    "$RC/$(pick tag decision 'map valias')" \
    "0/tag: remote, of an earlier mxswitch: map valias answers bob@none.test|decision: none (no opinion)|map valias: OK bob@none.test|"
ctl explain 'bob@BÜCHER.example'
expect_eq "explain an IDN address: the A-label key decides" \
    "$RC/$(pick domain winner 'map rcpt')" \
    "11/domain: xn--bcher-kva.example|winner: mxswitch:domain:xn--bcher-kva.example|map rcpt: OK 550 5.7.1 mail for xn--bcher-kva.example is not accepted here: its mail exchanger is elsewhere|"
ctl explain bob@bad.test
expect_eq "explain a key with an invalid value: temp, TEMP to every map, 451 as the milter, exit 75" \
    "$RC/$(pick lookup decision map milter)" \
    "75/lookup: failed: invalid value \"sideways\" in key mxswitch:domain:bad.test|decision: temp (lookup failed)|map transport: TEMP|map valias: TEMP|map rcpt: TEMP|map mode: TEMP|map verify: TEMP|milter at RCPT: 451 4.3.0|"
ctl explain '<postmaster>'
expect_eq "explain an address with no domain: never looked up, exit 0" \
    "$RC/$(pick domain decision)" \
    "0/domain: none (no domain: never looked up)|decision: none|"
ctl explain 'bob@bad..test'
expect_eq "explain a malformed domain: 451 4.1.2, exit 65" \
    "$RC/$(echo "$OUT" | tail -n 1)" \
    '65/decision: 451 4.1.2 ("bad..test": not a valid domain: empty label in domain)'
ctl explain 'bob@b@remote.test'
expect_eq "explain a malformed address: 451 4.1.3, exit 65" \
    "$RC/$(echo "$OUT" | tail -n 1)" \
    "65/decision: 451 4.1.3 (malformed address: more than one '@')"
cat >"$WORK/dry.conf" <<CONF
redis: { port = $RPORT; };
routing: { dry_run = true; };
CONF
RC=0
OUT=$($WRAP "$MXCTL" -c "$WORK/dry.conf" explain bob@remote.test 2>&1) || RC=$?
expect_eq "explain with routing.dry_run: the decision and a note" \
    "$RC/$(echo "$OUT" | tail -n 1)" \
    "11/note: routing.dry_run is on: the daemon only logs this and answers NOTFOUND"
mkdir -p "$WORK/bare"
printf 'redis: { port = %s; };\n' "$RPORT" >"$WORK/bare/mx.conf"
RC=0
OUT=$($WRAP "$MXCTL" -c "$WORK/bare/mx.conf" explain bob@local.test 2>&1) || RC=$?
expect_eq "explain without the transports file: local, but the transport map has no local answer" \
    "$RC/$(pick decision transports 'map transport')" \
    "10/decision: local (to the mailbox on this server)|transports: $WORK/bare/postfix-transports does not exist: local \"\", remote \"smtp:\"|map transport: NOTFOUND|"
cat >"$WORK/deflocal.conf" <<CONF
redis: { port = $RPORT; };
routing: { default = "local"; };
CONF
RC=0
OUT=$($WRAP "$MXCTL" -c "$WORK/deflocal.conf" explain bob@nokey.test 2>&1) || RC=$?
expect_eq "explain with a local default: never local delivery, exit 0" \
    "$RC/$(pick winner mode decision 'map transport')" \
    "0/winner: none (routing.default)|mode: local|decision: none (a local default never overrides the MTA's routing)|map transport: NOTFOUND|"

# Per-address keys: the address key is tried first and beats the domain's.
cat >"$WORK/addr.conf" <<CONF
redis: { port = $RPORT; };
routing: { address_prefix = "mxswitch:address:"; };
CONF
rcli SET mxswitch:address:ceo@local.test remote >/dev/null
rcli SET mxswitch:address:stay@remote.test none >/dev/null
RC=0
OUT=$($WRAP "$MXCTL" -c "$WORK/addr.conf" explain 'CEO+news@Local.TEST' 2>&1) || RC=$?
expect_eq "explain: an address key beats a local domain; the maps answer the address as written, exit 11" \
    "$RC
$(nodns)" "11
address: \"<CEO+news@Local.TEST>\"
domain: local.test
candidate: mxswitch:address:ceo@local.test \"remote\"
candidate: mxswitch:domain:local.test \"local\"
winner: mxswitch:address:ceo@local.test
mode: remote
decision: remote (to the domain's MX hosts)
transports: $WORK/postfix-transports: local \"virtual:\", remote \"smtp:\"
map transport: OK smtp:
map valias: OK CEO+news@Local.TEST
map rcpt: OK 550 5.7.1 mail for local.test is not accepted here: its mail exchanger is elsewhere
map mode: OK remote
map verify: OK 550 5.7.1 mail for local.test is not accepted here: its mail exchanger is elsewhere
milter at RCPT: continue"
RC=0
OUT=$($WRAP "$MXCTL" -c "$WORK/addr.conf" explain stay@remote.test 2>&1) || RC=$?
expect_eq "explain: an address key none beats a remote domain, exit 0" \
    "$RC/$(pick winner mode decision 'map transport')" \
    "0/winner: mxswitch:address:stay@remote.test|mode: none|decision: none (no opinion)|map transport: NOTFOUND|"
RC=0
OUT=$($WRAP "$MXCTL" -c "$WORK/addr.conf" explain '"john doe"@remote.test' \
    2>&1) || RC=$?
expect_eq "explain: an address with no address key says why, the domain decides" \
    "$RC/$(pick candidate winner)" \
    "11/candidate: no address key (local part has byte 0x20)|candidate: mxswitch:domain:remote.test \"remote\"|winner: mxswitch:domain:remote.test|"

# The daemon itself answers what explain said, on the same keys (IDN
# included): each map through its socket map server, and the milter.
start_mxswitch "$CONF" "$MPORT" && wait_port "$SMAP_PORT" 5 ||
    fail "mxswitch starts" "-"
# differ ADDRESS - every map where the daemon's answer is not explain's
differ() {
    local m want got
    ctl explain "$1"
    for m in transport valias rcpt mode; do
        want=$(echo "$OUT" | sed -n "s/^map $m: //p")
        got=$(smap_ask "$m" "$1")
        [ "$want" = TEMP ] && got=${got%% *} # explain gives no reason
        [ "$want" = "$got" ] || printf '%s: explain "%s", daemon "%s"; ' "$m" "$want" "$got"
    done
    want=$(echo "$OUT" | sed -n 's/^milter at RCPT: //p')
    got=$(printf 'connect c 127.0.0.1\nmail <s@c.test>\nrcpt <%s>\neom\n' "$1" |
        mtc_run | sed -n 's/^rcpt [^:]*: \(reply \)\{0,1\}\([^ ]*\( [0-9.]*\)\{0,1\}\).*/\2/p')
    [ "$want" = "$got" ] || printf 'milter: explain "%s", daemon "%s"; ' "$want" "$got"
    echo "$RC"
}
expect_eq "the daemon answers what explain said: parent key" \
    "$(differ bob@a.b.remote.test)" 11
expect_eq "the daemon answers what explain said: IDN key set by the tool" \
    "$(differ 'bob@bücher.example')" 11
expect_eq "the daemon answers what explain said: local key" \
    "$(differ bob@local.test)" 10
expect_eq "the daemon answers what explain said: invalid value" \
    "$(differ bob@bad.test)" 75
expect_eq "the daemon answers what explain said: an address tagged by an earlier mxswitch" \
    "$(differ 'bob+mx-remote@none.test')" 0
stop_mxswitch "mxswitch: clean exit"

# --- errors: usage, config, ACL, Redis down ---------------------------------
RC=0
"$MXCTL" -c "$CONF" frobnicate >/dev/null 2>&1 || RC=$?
expect_eq "an unknown command exits 64" "$RC" 64
RC=0
"$MXCTL" -c "$CONF" set only-one.example >/dev/null 2>&1 || RC=$?
expect_eq "a missing operand exits 64" "$RC" 64
RC=0
ERR=$("$MXCTL" -c "$WORK/none.conf" list 2>&1) || RC=$?
expect_eq "a config that cannot be read exits 78 and says so" \
    "$RC/$(echo "$ERR" | tail -n 1)" \
    "78/mxswitch-ctl: $WORK/none.conf: configuration rejected"

rcli ACL SETUSER reader on '>pw-reader-3' '~*' +mget +get +ping >/dev/null
cat >"$WORK/reader.conf" <<CONF
redis: { port = $RPORT; username = "reader"; password = "pw-reader-3"; };
CONF
RC=0
ERR=$("$MXCTL" -c "$WORK/reader.conf" set acl.example remote 2>&1) || RC=$?
expect_eq "an ACL that refuses EVAL: exit 1, Redis's reason shown" \
    "$RC/$(echo "$ERR" | grep -c 'EVAL refused: NOPERM')" "1/1"
expect_eq "an ACL that refuses EVAL: nothing written" \
    "$(rcli EXISTS mxswitch:domain:acl.example)" 0

cat >"$WORK/ondefault.conf" <<CONF
redis: { port = $RPORT; timeout_ms = 200; };
routing: { on_error = "default"; default = "remote"; };
CONF
RC=0
OUT=$($WRAP "$MXCTL" -c "$WORK/ondefault.conf" explain bob@bad.test 2>/dev/null) || RC=$?
expect_eq "an invalid value, on_error = default: the default decides, as the daemon answers" \
    "$RC/$(pick lookup mode decision 'map transport' milter)" \
    "11/lookup: failed: invalid value \"sideways\" in key mxswitch:domain:bad.test|mode: remote|decision: remote (lookup failed)|map transport: OK smtp:|milter at RCPT: continue|"

stop_pid "$REDIS_PID"
ctl set down.example remote
expect_eq "Redis down: set exits 75 (EX_TEMPFAIL)" "$RC" 75
expect_eq "Redis down: set names the endpoint and the reason" "$ERR" \
    "mxswitch-ctl: Redis 127.0.0.1:$RPORT db 0: connect: Connection refused"
ctl get down.example
expect_eq "Redis down: get exits 75" "$RC" 75
ctl list
expect_eq "Redis down: list exits 75" "$RC" 75
ctl history
expect_eq "Redis down: history exits 75" "$RC" 75
ctl import "$WORK/good.list"
expect_eq "Redis down: import exits 75" "$RC" 75
ctl explain bob@remote.test

RC=0
OUT=$($WRAP "$MXCTL" -c "$WORK/ondefault.conf" explain bob@a.test 2>/dev/null) || RC=$?
expect_eq "Redis down, on_error = default: the default decides, as the daemon answers" \
    "$RC/$(pick mode decision 'map transport' milter)" \
    "11/mode: remote|decision: remote (lookup failed)|map transport: OK smtp:|milter at RCPT: continue|"

# --- backup: imported from cPanel's secondarymx, explained -----------------
start_redis "$RPORT" || fail "redis restarts" "-"
printf 'b-local.example\n' >"$WORK/cpanel2/localdomains"
printf 'b-remote.example\n' >"$WORK/cpanel2/remotedomains"
printf 'b-backup.example\n' >"$WORK/cpanel2/secondarymx"
ctl import "$WORK/cpanel2"
expect_eq "import DIR (cPanel): secondarymx -> backup" \
    "$RC $(rcli MGET mxswitch:domain:b-local.example mxswitch:domain:b-remote.example \
        mxswitch:domain:b-backup.example | tr '\n' ' ')" "0 local remote backup "
ctl explain bob@b-backup.example
expect_eq "explain backup: routed like remote, verified at RCPT, exit 11" \
    "$RC/$(pick mode decision 'map transport' 'map rcpt' 'map mode' 'map verify')" \
    "11/mode: backup|decision: remote (to the MX hosts better than this one)|map transport: OK smtp:|map rcpt: OK reject_unverified_recipient|map mode: OK remote|map verify, when the better MX takes the address: NOTFOUND|map verify, when it refuses it: OK 550 5.1.1 bob@b-backup.example: recipient address rejected: the domain's better MX refuses it|map verify, until it answers: OK 450 4.1.1 bob@b-backup.example: recipient address not verified yet: try again later|"
# At a terminal (script(1) gives it one) a change also says when it takes
# effect; piped, as above, the output is the one line.
OUT=$(script -qec "$MXCTL -c $CONF set tty.example remote" /dev/null | tr -d '\r')
expect_eq "set at a terminal: the change and when Postfix follows it" "$OUT" \
    "tty.example: remote (was unset)
note: the next delivery attempt follows it; Postfix may keep an address's old route up to 30 s if it resolved it just now"
OUT=$(script -qec "$MXCTL -c $CONF set tty.example remote" /dev/null | tr -d '\r')
expect_eq "set at a terminal, nothing changed: no note" "$OUT" \
    "tty.example: remote (unchanged)"

finish
