#!/bin/bash
# test_socketmap - the socket map server as the MTA asks it at delivery,
# by hand (smap_ask) and by Postfix's own client (postmap -q), against a
# real redis-server: maps transport, valias, rcpt, mode and verify and every
# answer of each (a remote, local, backup, held, unknown and broken
# domain), keys that are no address, normalisation, address keys, the tag
# of an earlier mxswitch, the instance's transports file and its re-read,
# unknown maps and malformed requests; toggles, max_clients, Redis going
# away and back, stale answers, dry run after a reload, a unix socket, and
# a clean exit with clients connected.  In a private network namespace
# with its own DNS (pf_lib.sh): mx-here.test's best MX is 127.0.0.1.
T_NAME=test_socketmap
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pf_lib.sh"
pf_enter "$@"
PF_DNS=(--mx-host=mx-here.test,mx.here.test,10
    --host-record=mx.here.test,127.0.0.1)
pf_net_up || abort "private network and DNS"

free_port RPORT
free_port MPORT
free_port SMAP_PORT
SPORT=$SMAP_PORT
start_redis "$RPORT" || { fail "redis starts" "see $WORK"; finish; exit; }
rcli() { redis-cli -p "$RPORT" "$@" >/dev/null; }
XPORT="$WORK/postfix-transports"

# postmap reads main.cf: give it an empty one, not the host's.
mkdir -p "$WORK/postfix"
: >"$WORK/postfix/main.cf"

# write_conf FILE SOCKETMAP-SOCKET ROUTING-EXTRA [SOCKETMAP-EXTRA] [CACHE]
write_conf() {
    cat >"$1" <<CONF
milter: { socket = "inet:$MPORT@127.0.0.1"; allow_root = true; };
redis: { host = "127.0.0.1"; port = $RPORT; timeout_ms = 300; };
routing: { $3 };
cache: { ${5:-ttl = 3600;} };
socketmap: { socket = "$2"; ${4:-} };
CONF
}

# q KEY MAP - what postmap -q makes of the answer of the map at MAP
# (socketmap:...:NAME), in one line: "OK <value>", "NOTFOUND",
# "TEMP <reason>", "PERM <reason>" or "ERROR ..."
q() {
    local out rc err
    out=$(timeout 30 postmap -c "$WORK/postfix" -q "$1" "$2" \
        2>"$WORK/postmap.err")
    rc=$?
    err=$(cat "$WORK/postmap.err")
    if [ "$rc" = 0 ] && [ -z "$err" ]; then
        echo "OK $out"
    elif [ "$rc" = 1 ] && [ -z "$out" ] && [ -z "$err" ]; then
        echo NOTFOUND
    elif [ "$rc" = 1 ] && [ -z "$out" ] &&
        echo "$err" | grep -q 'socketmap server temporary error: '; then
        echo "TEMP $(echo "$err" | sed -n 's/.*temporary error: //p')"
    elif [ "$rc" = 1 ] && [ -z "$out" ] &&
        echo "$err" | grep -q 'socketmap server permanent error: '; then
        echo "PERM $(echo "$err" | sed -n 's/.*permanent error: //p')"
    else
        echo "ERROR rc=$rc out=$out err=$(echo "$err" | head -n 1)"
    fi
}
TMAP="socketmap:inet:127.0.0.1:$SPORT:transport"

# answers MAP KEY... - smap_ask's answers on one line, separated by " | "
answers() { smap_ask "$@" | paste -sd'|' | sed 's/|/ | /g'; }

# wait_answer MAP - until the server behind MAP (postmap form) answers
wait_answer() {
    local i
    for ((i = 0; i < 50; i++)); do
        case $(q probe@remote.test "$1") in ERROR*) sleep 0.2 ;; *) return ;; esac
    done
}

# raw DATA BYTES - send DATA on a fresh connection, print BYTES of reply
raw() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$SPORT" || exit 1
        printf '%s' "$1" >&3
        timeout 10 head -c "$2" <&3
    )
}

# closed_after DATA - send DATA, read everything until the server closes
closed_after() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$SPORT" || exit 1
        printf '%s' "$1" >&3
        timeout 10 cat <&3 || echo " (not closed)"
    )
}

rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:local.test local
rcli SET mxswitch:domain:none.test none
rcli SET mxswitch:domain:backup.test backup
rcli SET mxswitch:domain:mx-here.test remote
rcli SET mxswitch:domain:bad.test remotely
rcli SET mxswitch:domain:toggle.test remote
rcli SET mxswitch:domain:xn--bcher-kva.de remote
rcli SET mxswitch:address:ceo@local.test remote
rcli SET mxswitch:address:alice@remote.test none

# No transports file yet: local mode has no transport to name.
rm -f "$XPORT"
write_conf "$WORK/mx.conf" "inet:$SPORT@127.0.0.1" \
    'default = "none"; on_error = "tempfail";
     address_prefix = "mxswitch:address:";' 'max_clients = 3;'
start_mxswitch "$WORK/mx.conf" "$MPORT" && wait_port "$SPORT" 10 ||
    { fail "mxswitch starts with the socketmap" "-"; finish; exit; }

# Without socketmap.helo_name the probe's name is looked up at its first
# probe, not at start (test_sendmail shows the name).
expect_grep "without socketmap.helo_name the start says the probe will use the host's canonical name" \
    "$WORK/mxswitch.log" \
    "socketmap: maps .* at most 3 clients; the recipient probe says EHLO with the host's canonical name \(found at the first probe\)\$"
expect_grep "without a transports file, the start says local answers NOTFOUND" \
    "$WORK/mxswitch.log" \
    "socketmap: transports from $XPORT \(no such file\): local \"\", remote \"smtp:\": local mode answers NOTFOUND"
expect_eq "without a transports file: local NOTFOUND, remote smtp:" \
    "$(answers transport bob@local.test bob@remote.test)" "NOTFOUND | OK smtp:"
echo 'local = "virtual:"; remote = "smtp:";' >"$XPORT"
poll_for "OK virtual:" 8 smap_ask transport bob@local.test
expect_eq "a new transports file is read within about a second" "$GOT" \
    "OK virtual:"
echo 'local = "lmtp:unix:private/dovecot-lmtp"; remote = "relay:";' >"$XPORT"
poll_for "OK lmtp:unix:private/dovecot-lmtp | OK relay:" 8 \
    answers transport bob@local.test bob@remote.test
expect_eq "a changed transports file is read again within about a second" \
    "$GOT" "OK lmtp:unix:private/dovecot-lmtp | OK relay:"
expect_grep "reading the transports file is logged" "$WORK/mxswitch.log" \
    "socketmap: transports from $XPORT: local \"lmtp:unix:private/dovecot-lmtp\", remote \"relay:\""
echo 'local = "virtual:"; remote = ' >"$XPORT"
for _ in 1 2 3 4 5 6 7 8 9 10; do
    grep -q "socketmap: .*keeping the transports" "$WORK/mxswitch.log" && break
    smap_ask transport bob@local.test >/dev/null
    sleep 0.2
done
expect_eq "a broken transports file is refused: the last good one stays" \
    "$(answers transport bob@local.test bob@remote.test)" \
    "OK lmtp:unix:private/dovecot-lmtp | OK relay:"
expect_grep "a broken transports file is logged" "$WORK/mxswitch.log" \
    'warning: socketmap: .*keeping the transports local "lmtp:unix:private/dovecot-lmtp", remote "relay:"'
echo 'local = "virtual:"; remote = "smtp:";' >"$XPORT"
poll_for "OK virtual:" 8 smap_ask transport bob@local.test
expect_eq "the transports file fixed: read again" "$GOT" "OK virtual:"

# Every map's answers for one address of each kind of domain: remote,
# local, mode none, no key, backup, remote with its best MX here (held),
# an invalid value (TEMP).
KEYS=(bob@remote.test bob@local.test bob@none.test bob@unknown.test
    bob@backup.test bob@mx-here.test bob@bad.test)
TEMP_BAD='TEMP invalid value "remotely" in key mxswitch:domain:bad.test'
expect_eq "map transport: remote, local, none, no key, backup, held, invalid" \
    "$(answers transport "${KEYS[@]}")" \
    "OK smtp: | OK virtual: | NOTFOUND | NOTFOUND | OK smtp: | OK retry:4.4.6 the best MX of mx-here.test is this server | $TEMP_BAD"
expect_eq "map valias: remote, backup and held addresses are themselves" \
    "$(answers valias "${KEYS[@]}")" \
    "OK bob@remote.test | NOTFOUND | NOTFOUND | NOTFOUND | OK bob@backup.test | OK bob@mx-here.test | $TEMP_BAD"
expect_eq "map rcpt: remote refused, backup verified, held 450" \
    "$(answers rcpt "${KEYS[@]}")" \
    "OK 550 5.7.1 mail for remote.test is not accepted here: its mail exchanger is elsewhere | NOTFOUND | NOTFOUND | NOTFOUND | OK reject_unverified_recipient | OK 450 4.4.6 the best MX of mx-here.test is this server: try again later | $TEMP_BAD"
expect_eq "map mode: local, remote, hold, NOTFOUND, TEMP" \
    "$(answers mode "${KEYS[@]}")" \
    "OK remote | OK local | NOTFOUND | NOTFOUND | OK remote | OK hold | $TEMP_BAD"
# verify (Sendmail's Local_check_rcpt): rcpt, but a backup-mode address
# gets what its better MX says; backup.test has no MX here (NXDOMAIN), so
# nobody can tell: 450, never 550.
expect_eq "map verify: as rcpt, backup unknown to its better MX: 450 4.1.1" \
    "$(answers verify "${KEYS[@]}")" \
    "OK 550 5.7.1 mail for remote.test is not accepted here: its mail exchanger is elsewhere | NOTFOUND | NOTFOUND | NOTFOUND | OK 450 4.1.1 bob@backup.test: recipient address not verified yet: try again later | OK 450 4.4.6 the best MX of mx-here.test is this server: try again later | $TEMP_BAD"
# mxswitch-ctl explain makes the same decision and shows the same answers
# (a TEMP's reason aside), its exit code the action: 0 none, 10 local,
# 11 remote, 12 hold, 75 temp.
got=""
want=""
codes=""
for k in "${KEYS[@]}"; do
    out=$("$MXCTL" -c "$WORK/mx.conf" explain "$k" 2>&1)
    codes="$codes$? "
    # (verify for a backup address names the probe; the server probes)
    got="$got$k $(echo "$out" | sed -n 's/^map \(transport\|valias\|rcpt\|mode\): //p' | sed 's/^TEMP .*/TEMP/' | paste -sd'|');"
    want="$want$k $(for m in transport valias rcpt mode; do smap_ask "$m" "$k"; done |
        sed 's/^TEMP .*/TEMP/' | paste -sd'|');"
done
expect_eq "explain shows each map's answer as the server gives it" "$got" "$want"
expect_eq "explain's exit codes: remote 11, local 10, none 0, no key 0, backup 11, held 12, invalid 75" \
    "$codes" "11 10 0 0 11 12 75 "
expect_grep "an invalid value is logged as a warning" "$WORK/mxswitch.log" \
    'warning: socketmap: transport bob@bad.test domain=bad.test: lookup failed \(invalid value "remotely" in key mxswitch:domain:bad.test\): answered TEMP'
expect_grep "an answer is logged with its decision" "$WORK/mxswitch.log" \
    'info: socketmap: transport bob@remote.test -> OK smtp: \(domain remote.test mode remote action remote from [a-z]+ key "mxswitch:domain:remote.test"'
expect_grep "a not-found answer says why" "$WORK/mxswitch.log" \
    'debug: socketmap: transport bob@none.test -> NOTFOUND \(domain none.test mode none from [a-z]+ key "mxswitch:domain:none.test"'

# Keys that are no address, in every map: NOTFOUND at once.
for m in transport valias rcpt mode; do
    expect_eq "map $m: *, a bare domain, @domain, a user, a literal, a bad domain, empty: NOTFOUND" \
        "$(answers "$m" '*' remote.test @remote.test bob 'bob@[127.0.0.1]' bob@remote..test '')" \
        "NOTFOUND | NOTFOUND | NOTFOUND | NOTFOUND | NOTFOUND | NOTFOUND | NOTFOUND"
done

# Normalisation: case, trailing dot, IDN, subdomains, the +extension; the
# answer of valias is the key exactly as asked.
NKEYS=(Bob.Smith@Remote.TEST. bob@mail.remote.test $'bob@B\xc3\x9cCHER.de'
    bob@xn--bcher-kva.de bob+news@remote.test '"john doe"@remote.test')
expect_eq "normalised keys route by the domain's key" \
    "$(answers transport "${NKEYS[@]}")" \
    "OK smtp: | OK smtp: | OK smtp: | OK smtp: | OK smtp: | OK smtp:"
expect_eq "valias answers each key exactly as asked, case and extension kept" \
    "$(answers valias "${NKEYS[@]}")" \
    $'OK Bob.Smith@Remote.TEST. | OK bob@mail.remote.test | OK bob@B\xc3\x9cCHER.de | OK bob@xn--bcher-kva.de | OK bob+news@remote.test | OK "john doe"@remote.test'

# Address keys beat the domain's key, none included; the key is the local
# part without its extension, in lower case.
expect_eq "address keys: Ceo+News@Local.TEST remote, others of local.test local" \
    "$(answers transport Ceo+News@Local.TEST bob@local.test) / $(answers valias Ceo+News@Local.TEST)" \
    "OK smtp: | OK virtual: / OK Ceo+News@Local.TEST"
expect_eq "address keys: an address key none beats a remote domain" \
    "$(answers transport Alice@remote.test) / $(answers rcpt alice+x@remote.test)" \
    "NOTFOUND / NOTFOUND"
expect_grep "an address key is named in the log" "$WORK/mxswitch.log" \
    'socketmap: transport Ceo\+News@Local.TEST -> OK smtp: \(domain local.test mode remote action remote from [a-z]+ key "mxswitch:address:ceo@local.test"'

# Mail queued under the design that tagged recipients: valias answers the
# plain form, whatever the domain's mode; an extension that is no tag
# stays.
expect_eq "valias: the tag of an earlier mxswitch answers the plain form" \
    "$(answers valias bob+mx-remote@remote.test bob+mx-local@local.test bob+mx-remote@none.test BOB+mx-remote@Remote.TEST bob+news@local.test)" \
    "OK bob@remote.test | OK bob@local.test | OK bob@none.test | OK BOB@Remote.TEST | NOTFOUND"
expect_grep "the tag's plain form is logged" "$WORK/mxswitch.log" \
    'info: socketmap: valias bob\+mx-remote@none.test -> OK bob@none.test \(the tag of an earlier mxswitch\)'

# Postfix's own client: its answers, several on one connection.
expect_eq "postmap: map transport of a remote address" \
    "$(q bob@remote.test "$TMAP")" "OK smtp:"
expect_eq "postmap: map rcpt of a backup address" \
    "$(q bob@backup.test "socketmap:inet:127.0.0.1:$SPORT:rcpt")" \
    "OK reject_unverified_recipient"
expect_eq "postmap: an invalid value is TEMP" "$(q x@bad.test "$TMAP")" \
    "$TEMP_BAD"
expect_eq "postmap: another map name is PERM" \
    "$(q bob@remote.test "socketmap:inet:127.0.0.1:$SPORT:mxswitchx")" \
    "PERM unknown map name"
# Until the setup script runs again after an upgrade, an earlier version's
# virtual_alias_maps entry (map mxswitch) must not fail every lookup.
expect_eq "postmap: the old map name mxswitch answers as valias" \
    "$(q bob@remote.test "socketmap:inet:127.0.0.1:$SPORT:mxswitch")/$(q bob@local.test "socketmap:inet:127.0.0.1:$SPORT:mxswitch")" \
    "OK bob@remote.test/NOTFOUND"
expect_grep "the old map name is warned about, with what to do" \
    "$WORK/mxswitch.log" \
    'warning: socketmap: client 127.0.0.1:[0-9]+ asks map "mxswitch" of an earlier mxswitch: answered as valias; run the setup script again'
got=$(printf '%s\n' bob@remote.test alice@local.test eve@b.remote.test |
    timeout 30 postmap -c "$WORK/postfix" -q - "socketmap:inet:127.0.0.1:$SPORT:valias" 2>&1 | tr '\t\n' '= ')
expect_eq "many requests on one connection (postmap -q -)" "$got" \
    "bob@remote.test=bob@remote.test eve@b.remote.test=eve@b.remote.test "
expect_grep "an unknown map name is logged" "$WORK/mxswitch.log" \
    'warning: socketmap: client 127.0.0.1:[0-9]+: unknown map name \(map "mxswitchx"\): answered PERM'

# The protocol by hand: pipelining, and framing errors.
expect_eq "two requests in one packet get two replies" \
    "$(raw '25:transport bob@remote.test,26:transport alice@local.test,' 26)" \
    "8:OK smtp:,11:OK virtual:,"
expect_eq "an empty key: not found" "$(raw '7:valias ,' 12)" "9:NOTFOUND ,"
expect_eq "a payload with no key: PERM, connection stays" \
    "$(raw '9:transport,25:transport bob@remote.test,' 37)" \
    "22:PERM malformed request,8:OK smtp:,"
expect_eq "a broken netstring: PERM, then the connection is closed" \
    "$(closed_after '25:transport bob@remote.test;')" \
    "22:PERM malformed request,"
expect_eq "a request over 10000 bytes: PERM and closed" \
    "$(closed_after '10001:')" "22:PERM malformed request,"
expect_grep "a broken netstring is logged" "$WORK/mxswitch.log" \
    "socketmap: client 127.0.0.1:[0-9]+: malformed request \(missing ',' after netstring\)"

# Toggles: the cache ttl is 3600 s, so only the keyspace notification can
# make a query see the change.  It reaches the daemon a moment after SET
# returns, so each waits for the new answer (2 s), not the ttl.
expect_eq "toggle: remote before the change" "$(route_of toggle.test)" \
    "OK smtp:"
rcli SET mxswitch:domain:toggle.test local
poll_for "OK virtual:" 10 route_of toggle.test
expect_eq "toggle: SET local applies at once" "$GOT" "OK virtual:"
rcli SET mxswitch:domain:toggle.test remote
poll_for "OK smtp:" 10 route_of toggle.test
expect_eq "toggle: SET remote applies at once" "$GOT" "OK smtp:"
rcli DEL mxswitch:domain:toggle.test
poll_for NOTFOUND 10 route_of toggle.test
expect_eq "toggle: DEL applies at once" "$GOT" NOTFOUND

# max_clients = 3: with three connections held, a fourth is closed at once;
# postmap retries once, then reports a lookup error.  (A client that
# closed counts until the server reaps it, up to 0.2 s later: let the
# toggles' clients go first.)
sleep 0.5
exec 5<>"/dev/tcp/127.0.0.1/$SPORT" 6<>"/dev/tcp/127.0.0.1/$SPORT" \
    7<>"/dev/tcp/127.0.0.1/$SPORT"
sleep 0.5
got=$(q bob@remote.test "$TMAP")
case $got in
ERROR*"lookup error"*) pass "beyond max_clients a connection is refused" ;;
*) fail "beyond max_clients a connection is refused" "got '$got'" ;;
esac
expect_grep "refusing is logged" "$WORK/mxswitch.log" \
    'warning: socketmap: 3 clients connected \(socketmap.max_clients\): refusing new connections'
exec 5<&- 6<&- 7<&-
poll_for "OK smtp:" 20 q bob@remote.test "$TMAP"
expect_eq "a freed slot takes clients again" "$GOT" "OK smtp:"
expect_grep "accepting again is logged" "$WORK/mxswitch.log" \
    'info: socketmap: accepting connections again \([1-9][0-9]* refused'

# All three slots taken by clients silent for 5 s: a new client is served,
# and the one silent longest is disconnected to make room (EOF on its
# side, at once; the others stay connected).
sleep 0.5
exec 5<>"/dev/tcp/127.0.0.1/$SPORT" 6<>"/dev/tcp/127.0.0.1/$SPORT" \
    7<>"/dev/tcp/127.0.0.1/$SPORT"
sleep 5.5
expect_eq "all slots held by silent clients: a new client is served" \
    "$(q bob@remote.test "$TMAP")" "OK smtp:"
expect_grep "making room is logged" "$WORK/mxswitch.log" \
    'info: socketmap: 3 clients connected \(socketmap.max_clients\): closed the connection of client 127\.0\.0\.1:[0-9]+, silent for [5-9] s'
ends=0
for fd in 5 6 7; do
    # EOF: read fails at once (status 1); still connected: it times out
    read -r -t 1 -u "$fd" _ && continue
    [ $? -eq 1 ] && ends=$((ends + 1))
done
expect_eq "exactly one silent client was disconnected" "$ends" 1
exec 5<&- 6<&- 7<&-

# Redis goes away: TEMP for what the cache does not know; comes back:
# answers again from the same process.
stop_pid "$REDIS_PID"
got=$(answers transport u@fresh1.test)
case $got in
TEMP?*) pass "redis down: TEMP for an address the cache cannot answer" ;;
*) fail "redis down: TEMP for an address the cache cannot answer" "got '$got'" ;;
esac
expect_eq "redis down: cached domains still answer" \
    "$(answers transport bob@remote.test bob@local.test)" "OK smtp: | OK virtual:"
start_redis "$RPORT" || fail "redis restarts" "-"
rcli SET mxswitch:domain:fresh2.test remote
poll_for "OK smtp:" 50 route_of fresh2.test
expect_eq "redis back: answers recover without a restart" "$GOT" "OK smtp:"
expect_eq "redis back: it is the same mxswitch process" \
    "$(kill -0 "$MX_PID" 2>/dev/null && echo alive)" alive

# A client still connected (idle, and one half-way through a request) must
# not hold up or break the shutdown.
exec 5<>"/dev/tcp/127.0.0.1/$SPORT" 6<>"/dev/tcp/127.0.0.1/$SPORT"
printf '25:transport bob@' >&6
sleep 0.3
stop_mxswitch "mxswitch exits cleanly on SIGTERM with clients connected"
exec 5<&- 6<&-

# Stale answers: a 1 s ttl and cache.stale_ttl = 60.  Redis away, a
# cached answer past its ttl still answers; an address never asked is
# TEMP.  Redis back, a reload (which empties the cache) turns on dry run:
# NOTFOUND, and the log says what would have been answered.
write_conf "$WORK/mx3.conf" "inet:$SPORT@127.0.0.1" \
    'default = "none"; on_error = "tempfail";' "" "ttl = 1; stale_ttl = 60;"
rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:local.test local
: >"$WORK/mxswitch.log"
w=$(watches)
start_mxswitch "$WORK/mx3.conf" "$MPORT" && wait_port "$SPORT" 10 ||
    fail "mxswitch starts with stale_ttl" "-"
# A client that stays silent for more than a minute (a Sendmail process
# between two lookups: it takes an EOF for TEMP) is still served: asked at
# the end of this part.
exec 9<>"/dev/tcp/127.0.0.1/$SPORT"
t_idle=$SECONDS
await_watch "$w" || fail "stale_ttl: the change watcher subscribes" "-"
expect_eq "stale_ttl: answers while Redis is up" \
    "$(answers transport bob@remote.test bob@local.test)" "OK smtp: | OK virtual:"
stop_pid "$REDIS_PID"
sleep 1.2
expect_eq "stale_ttl: Redis down, past the ttl: the cached answers stand" \
    "$(answers transport bob@remote.test bob@local.test)" "OK smtp: | OK virtual:"
expect_grep "stale_ttl: the first stale answer is logged" "$WORK/mxswitch.log" \
    'warning: socketmap: redis cannot answer \(.+\): using cached answers up to cache.stale_ttl'
got=$(answers transport u@fresh3.test)
case $got in
TEMP?*) pass "stale_ttl: an address never cached is TEMP" ;;
*) fail "stale_ttl: an address never cached is TEMP" "got '$got'" ;;
esac
# A reload while Redis is away keeps the stale answers (same prefixes),
# also one whose file sets stale_ttl = 0: cache.* needs a restart.
write_conf "$WORK/mx3.conf" "inet:$SPORT@127.0.0.1" \
    'default = "none"; on_error = "tempfail";' "" "ttl = 1; stale_ttl = 0;"
kill -USR1 "$MX_PID"
poll_for 1 25 grep -c 'reload: .*: configuration 2 in force' "$WORK/mxswitch.log"
expect_eq "stale_ttl: a reload with Redis down is in force" "$GOT" 1
expect_grep "stale_ttl: its change needs a restart" "$WORK/mxswitch.log" \
    'reload: cache.stale_ttl changed: needs a restart; the running value stays in force'
expect_eq "stale_ttl: after a reload with Redis down the cached answers still stand" \
    "$(answers transport bob@remote.test bob@local.test)" "OK smtp: | OK virtual:"
start_redis "$RPORT" || fail "redis restarts" "-"
rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:local.test local
write_conf "$WORK/mx3.conf" "inet:$SPORT@127.0.0.1" \
    'default = "none"; on_error = "tempfail"; dry_run = true;' "" \
    "ttl = 1; stale_ttl = 60;"
kill -USR1 "$MX_PID"
poll_for "NOTFOUND | NOTFOUND" 25 answers transport bob@remote.test bob@local.test
expect_eq "dry run after a reload: every map answers NOTFOUND" \
    "$GOT / $(answers valias bob@remote.test) / $(answers rcpt bob@remote.test) / $(answers mode bob@local.test)" \
    "NOTFOUND | NOTFOUND / NOTFOUND / NOTFOUND / NOTFOUND"
# Redis was just restarted: until the pool has reconnected (it may still
# be backing off), a lookup fails and dry run answers NOTFOUND for that
# reason too; wait for real ones.
dry_logged() {
    answers transport bob@remote.test >/dev/null
    answers rcpt bob@remote.test >/dev/null
    grep -q 'socketmap: transport bob@remote.test -> dry_run would=OK smtp: ' \
        "$WORK/mxswitch.log" &&
        grep -q 'socketmap: rcpt bob@remote.test -> dry_run would=OK 550 5.7.1 ' \
            "$WORK/mxswitch.log" && echo yes
}
poll_for yes 25 dry_logged
expect_grep "dry run logs what transport would have answered" \
    "$WORK/mxswitch.log" 'socketmap: transport bob@remote.test -> dry_run would=OK smtp: '
expect_grep "dry run logs what rcpt would have answered" \
    "$WORK/mxswitch.log" 'socketmap: rcpt bob@remote.test -> dry_run would=OK 550 5.7.1 '
stop_pid "$REDIS_PID"
expect_eq "dry run: a lookup that fails is NOTFOUND too" \
    "$(answers transport u@fresh4.test)" NOTFOUND
expect_grep "dry run logs the TEMP it did not answer" "$WORK/mxswitch.log" \
    'socketmap: transport u@fresh4.test domain=fresh4.test: lookup failed .*: dry_run would=TEMP, answered NOTFOUND'
start_redis "$RPORT" || fail "redis restarts" "-"
sleep $((62 - (SECONDS - t_idle) > 0 ? 62 - (SECONDS - t_idle) : 0))
printf '25:transport bob@remote.test,' >&9
got=$(IFS= read -r -d , -t 5 -u 9 a && echo "$a")
expect_eq "a client silent for $((SECONDS - t_idle)) s is still served" "$got" \
    "9:NOTFOUND "
exec 9<&-
stop_mxswitch "mxswitch (stale, dry run) exits cleanly"

# routing.default = remote, on_error = default, on a unix socket; the
# removed socketmap.name is warned about; an old file's own tags are kept.
SOCK="$WORK/smap.sock"
UMAP="socketmap:unix:$SOCK:transport"
write_conf "$WORK/mx2.conf" "unix:$SOCK" \
    'default = "remote"; on_error = "default"; remote_tag = "out-x"; local_tag = "in-x";' \
    'name = "mxs-2";'
rcli SET mxswitch:domain:remote.test remote
rcli SET mxswitch:domain:bad.test remotely
: >"$WORK/mxswitch.log"
start_mxswitch "$WORK/mx2.conf" "$MPORT" ||
    fail "mxswitch starts on a unix socket" "-"
wait_answer "$UMAP"
expect_eq "unix socket: remote-mode domain routes remote" \
    "$(q bob@remote.test "$UMAP")" "OK smtp:"
expect_eq "unix socket is mode 0666" "$(stat -c %a "$SOCK")" 666
expect_grep "the removed socketmap.name is warned about" "$WORK/mxswitch.log" \
    'mx2.conf:5: socketmap.name: removed setting, ignored'
expect_grep "an old file's own tag is kept, and said so" "$WORK/mxswitch.log" \
    'mx2.conf:3: routing.remote_tag: removed setting: recipients are no longer tagged; "out-x" is still taken off'
expect_eq "map valias answers an address with the file's old tags its plain form" \
    "$(q bob+out-x@remote.test "socketmap:unix:$SOCK:valias") | $(q bob+in-x@remote.test "socketmap:unix:$SOCK:valias")" \
    "OK bob@remote.test | OK bob@remote.test"
expect_eq "the removed socketmap.name names no map" \
    "$(q bob@remote.test "socketmap:unix:$SOCK:mxs-2")" "PERM unknown map name"
expect_eq "default remote, no key: routes remote" \
    "$(q bob@unknown.test "$UMAP")" "OK smtp:"
expect_eq "on_error default: an invalid value routes by the default" \
    "$(q x@bad.test "$UMAP")" "OK smtp:"
expect_grep "on_error default is logged" "$WORK/mxswitch.log" \
    'socketmap: transport x@bad.test domain=bad.test: lookup failed \(invalid value "remotely".*\): using routing.default remote'

# A second server on the same unix socket must not steal it.
RC=0
free_port MPORT3
sed "s/inet:$MPORT@/inet:$MPORT3@/" "$WORK/mx2.conf" >"$WORK/mx3.conf"
# shellcheck disable=SC2086
OUT=$($WRAP "$MXSWITCH" -f -c "$WORK/mx3.conf" 2>&1) || RC=$?
expect_eq "a unix socket in use stops a second server (status 1)" "$RC" 1
expect_eq "a unix socket in use is explained" \
    "$(echo "$OUT" | grep -c "cannot listen on socketmap.socket unix:$SOCK: in use")" 1
expect_eq "the first server still answers" "$(q bob@remote.test "$UMAP")" \
    "OK smtp:"

# Redis down with on_error = default: the default, never TEMP.
stop_pid "$REDIS_PID"
expect_eq "on_error default: redis down routes by the default" \
    "$(q u@fresh3.test "$UMAP")" "OK smtp:"
start_redis "$RPORT" || fail "redis restarts" "-"
rcli SET mxswitch:domain:remote.test remote

stop_mxswitch "mxswitch (unix socket) exits cleanly"
expect_eq "the unix socket is removed at exit" \
    "$([ -e "$SOCK" ] && echo exists || echo removed)" removed

# A socket left behind by a killed server is replaced at the next start.
start_mxswitch "$WORK/mx2.conf" "$MPORT" || fail "mxswitch restarts" "-"
# The milter port opens before the socketmap's: wait for both (valgrind is
# slow enough to be killed in between).
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
kill -KILL "$MX_PID"
wait "$MX_PID" 2>/dev/null
untrack "$MX_PID"
expect_eq "a killed server leaves its socket" \
    "$([ -S "$SOCK" ] && echo stale)" stale
start_mxswitch "$WORK/mx2.conf" "$MPORT" ||
    fail "mxswitch starts over a stale socket" "-"
wait_answer "$UMAP"
expect_eq "a stale unix socket is replaced" "$(q bob@remote.test "$UMAP")" \
    "OK smtp:"
stop_mxswitch "mxswitch (after a stale socket) exits cleanly"
finish
